//! The middleware every answer passes through: the envelope (request ids, security headers,
//! the JSON error shape for the framework's own errors, metrics) and admission (the
//! header budget and, while the development issuer runs, loopback hosts only).

use std::future::Future;
use std::sync::LazyLock;
use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage, web};

use crate::error::{ApiError, ErrorBody, message_for_status, mime_json};
use crate::host::addressed_to_loopback;
use crate::metrics::{Metrics, RouteMetrics};
use crate::request_id::{RequestId, X_REQUEST_ID};

/// Every answer's envelope, in one pass: the request's id (echoed in `X-Request-Id`), the
/// security headers Auth0's samples send, our JSON shape for the framework's own errors
/// (unknown path, wrong method, CORS refusals), and the count of the answer under the label
/// of the route it matched. One layer instead of four keeps the request path close to bare
/// actix-web.
pub fn envelope<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    let started = Instant::now();
    let id = RequestId::for_headers(req.headers());
    let id_header = id.header_value();
    req.extensions_mut().insert(id);
    let method = req.method().clone();
    let answer = service.call(req);
    async move {
        let mut response = json_error_body(answer.await?);
        let headers = response.headers_mut();
        for (name, value) in SECURITY_HEADERS.iter() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        headers.insert(X_REQUEST_ID.clone(), id_header);
        let status = response.status();
        let elapsed = started.elapsed();
        let request = response.request();
        // A route's metrics are in its resource's data; a 404 matched nothing.
        match request.app_data::<RouteMetrics>() {
            Some(route) if status != StatusCode::NOT_FOUND => {
                route.observe(&method, status, elapsed)
            }
            _ => {
                if let Some(metrics) = request.app_data::<web::Data<Metrics>>() {
                    metrics.observe_request("unmatched", &method, status, elapsed);
                }
            }
        }
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

/// The headers Auth0's samples put on every answer (unless the handler set one itself).
static SECURITY_HEADERS: LazyLock<[(HeaderName, HeaderValue); 6]> = LazyLock::new(|| {
    [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "deny"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'",
        ),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ),
        (
            header::CACHE_CONTROL,
            "no-cache, no-store, max-age=0, must-revalidate",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
    ]
    .map(|(name, value)| (name, HeaderValue::from_static(value)))
});

/// Gives framework-made errors (unknown path, wrong method, CORS refusals) our JSON shape.
/// Successes and answers that are already JSON pass untouched.
fn json_error_body<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
) -> ServiceResponse<EitherBody<B>> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response.map_into_left_body();
    }
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
    ServiceResponse::new(request, response.set_body(body))
        .map_into_boxed_body()
        .map_into_right_body()
}
