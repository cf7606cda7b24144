//! The middleware every answer passes through: request ids and metrics, security headers, the
//! JSON error shape for the framework's own errors, CORS and the header budget.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, ErrorHandlerResponse};
use actix_web::{Error, HttpMessage};

use crate::error::{ApiError, ErrorBody, message_for_status, mime_json};
use crate::host::addressed_to_loopback;
use crate::metrics::Metrics;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::routes::RouteLabel;

/// Gives the request an id (echoed in `X-Request-Id`) and counts the answer, the framework's
/// own errors included, under the label of the route it matched.
pub fn observe<S, B>(
    metrics: &Arc<Metrics>,
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let started = Instant::now();
    let id = RequestId::for_headers(req.headers());
    let header = id.header_value();
    req.extensions_mut().insert(id);
    let method = req.method().clone();
    let metrics = Arc::clone(metrics);
    let answer = service.call(req);
    async move {
        let mut response = answer.await?;
        response.headers_mut().insert(X_REQUEST_ID.clone(), header);
        let status = response.status();
        // The label is in the matched resource's data; a 404 matched nothing.
        let route = match response.request().app_data::<RouteLabel>() {
            Some(RouteLabel(path)) if status != actix_web::http::StatusCode::NOT_FOUND => path,
            _ => "unmatched",
        };
        metrics.observe_request(route, &method, status, started.elapsed());
        Ok(response)
    }
}

/// What a request must satisfy before it is routed.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Header names and values may add up to this many bytes; more is refused with 431.
    pub max_header_bytes: usize,
    /// Only requests addressed to a loopback host are served (421 otherwise): set while the
    /// development issuer runs, against DNS rebinding.
    pub loopback_only: bool,
}

/// Refuses with 431 a request whose headers exceed the budget, and with 421 one addressed to
/// another host when only loopback is served.
pub fn admit<S, B>(
    rules: Admission,
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let answer = if size > rules.max_header_bytes {
        Err(req.error_response(ApiError::HeadersTooLarge))
    } else if rules.loopback_only && !addressed_to_loopback(req.uri(), req.headers()) {
        log::info!(
            "refused {} id={}: addressed to a host other than loopback",
            req.path(),
            RequestId::of(req.request())
        );
        Err(req.error_response(ApiError::MisdirectedRequest))
    } else {
        Ok(service.call(req))
    };
    async move {
        match answer {
            Ok(call) => Ok(call.await?.map_into_boxed_body()),
            Err(refusal) => Ok(refusal),
        }
    }
}

/// Only the paired SPA's origin may read our answers, errors included.
pub fn cors(origin: &str) -> Cors {
    Cors::default()
        .allowed_origin(origin)
        .allowed_methods(["GET"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(86_400)
}

/// The headers Auth0's samples put on every answer.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "deny"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'",
        ))
        .add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
        .add((
            header::CACHE_CONTROL,
            "no-cache, no-store, max-age=0, must-revalidate",
        ))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

/// Gives framework-made errors (unknown path, wrong method, CORS refusals) our JSON shape.
/// Answers that are already JSON pass untouched.
pub fn json_error_body<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let (request, mut response) = response.into_parts();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, mime_json());
    response.headers_mut().remove(header::CONTENT_LENGTH);
    let body = ErrorBody {
        message: message_for_status(status),
        error: None,
        error_description: None,
    }
    .to_json();
    let response = ServiceResponse::new(request, response.set_body(body))
        .map_into_boxed_body()
        .map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}
