//! The one middleware every answer passes through, [`Envelope`]: request ids, the header
//! budget and (while the development issuer runs) loopback hosts only, CORS for the requests
//! that ask for it, security headers, the JSON error shape for the framework's own errors,
//! and metrics.
//!
//! It is one layer, with one small future, rather than four: each layer of `wrap_fn` or
//! `Transform` nests its future in the next, and the HTTP dispatcher moves the outermost
//! future on every request, so the layers' cost grew with their number, not their work.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Instant;

use actix_cors::{Cors, CorsMiddleware};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpMessage, web};
use futures_util::future::{Either, LocalBoxFuture, MapOk, Ready, TryFutureExt, ready};
use pin_project_lite::pin_project;

use crate::error::{ApiError, ErrorBody, message_for_status, mime_json};
use crate::host::addressed_to_loopback;
use crate::metrics::{Metrics, RouteMetrics};
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::startup::cors::{CorsRefusals, add_cors_vary, explained};

/// What a request must satisfy before it is routed.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Header names and values may add up to this many bytes; more is refused with 431.
    pub max_header_bytes: usize,
    /// Only requests addressed to a loopback host are served (421 otherwise): set while the
    /// development issuer runs, against DNS rebinding.
    pub loopback_only: bool,
}

impl Admission {
    /// Why `req` is refused before routing, if it is.
    fn refusal(self, req: &ServiceRequest) -> Option<ApiError> {
        let size: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if size > self.max_header_bytes {
            return Some(ApiError::HeadersTooLarge);
        }
        if self.loopback_only && !addressed_to_loopback(req.uri(), req.headers()) {
            log::info!(
                "refused {} id={}: addressed to a host other than loopback",
                req.path(),
                RequestId::of(req.request())
            );
            return Some(ApiError::MisdirectedRequest);
        }
        None
    }
}

/// Every answer's envelope. In order, from the outside in:
/// - the request's id (the caller's when sane, else a new one), echoed in `X-Request-Id`;
/// - CORS, for the requests it concerns (those with an `Origin`, and every `OPTIONS`); any
///   other request (curl, a balancer's probe, a server-side client) skips actix-cors, which
///   boxes a future and validates for every request, and gets only the `Vary` it would add;
/// - admission ([`Admission`]), inside CORS so a refusal still gets the CORS headers;
///
/// and on the way out, the JSON shape for the framework's own errors (unknown path, wrong
/// method, CORS refusals), the security headers Auth0's samples send, and the count of the
/// answer under the label of the route it matched.
pub struct Envelope {
    pub admission: Admission,
    pub cors: Cors,
    pub refusals: Arc<CorsRefusals>,
}

/// What a route's body becomes: itself or an admission refusal, then either of those or a
/// CORS refusal, then either of those or a framework error rewritten as JSON.
pub type Enveloped<B> = EitherBody<EitherBody<EitherBody<B>>>;

impl<S, B> Transform<S, ServiceRequest> for Envelope
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<Enveloped<B>>;
    type Error = Error;
    type Transform = EnvelopeService<S>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let admit = Rc::new(Admit {
            service,
            rules: self.admission,
        });
        let cors = self.cors.new_transform(Rc::clone(&admit));
        let refusals = Arc::clone(&self.refusals);
        Box::pin(async move {
            Ok(EnvelopeService {
                admit,
                cors: cors.await?,
                refusals,
            })
        })
    }
}

pub struct EnvelopeService<S> {
    admit: Rc<Admit<S>>,
    cors: CorsMiddleware<Rc<Admit<S>>>,
    refusals: Arc<CorsRefusals>,
}

type Admitted<B> = ServiceResponse<EitherBody<B>>;
type AdmitFuture<F, B> =
    Either<MapOk<F, fn(ServiceResponse<B>) -> Admitted<B>>, Ready<Result<Admitted<B>, Error>>>;

impl<S, B> Service<ServiceRequest> for EnvelopeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<Enveloped<B>>;
    type Error = Error;
    type Future = EnvelopeFuture<AdmitFuture<S::Future, B>, B>;

    forward_ready!(admit);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let id = RequestId::for_headers(req.headers());
        let id_header = id.header_value();
        req.extensions_mut().insert(id);
        let answer =
            if req.headers().contains_key(header::ORIGIN) || req.method() == Method::OPTIONS {
                let refusals = Arc::clone(&self.refusals);
                Either::Right(Box::pin(
                    self.cors
                        .call(req)
                        .map_ok(move |response| explained(response, &refusals)),
                ) as LocalBoxFuture<'static, _>)
            } else {
                Either::Left(self.admit.call(req))
            };
        EnvelopeFuture {
            answer,
            started,
            id: Some(id_header),
        }
    }
}

pin_project! {
    /// The answer of the layers inside, then the envelope's work on it.
    pub struct EnvelopeFuture<F, B> {
        #[pin]
        answer: Either<F, LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<EitherBody<B>>>, Error>>>,
        started: Instant,
        id: Option<HeaderValue>,
    }
}

impl<F, B> Future for EnvelopeFuture<F, B>
where
    F: Future<Output = Result<Admitted<B>, Error>>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<Enveloped<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.answer.as_pin_mut() {
            Either::Left(plain) => {
                let mut response = std::task::ready!(plain.poll(cx))?;
                add_cors_vary(response.headers_mut());
                response.map_into_left_body()
            }
            Either::Right(cors) => std::task::ready!(cors.poll(cx))?,
        };
        let mut response = json_error_body(response);
        let headers = response.headers_mut();
        add_security_headers(headers);
        if let Some(id) = this.id.take() {
            headers.insert(X_REQUEST_ID.clone(), id);
        }
        observe(&response, this.started.elapsed());
        Poll::Ready(Ok(response))
    }
}

/// Counts an answer under the label of the route it matched (in the matched resource's data);
/// a 404 matched nothing.
fn observe<B>(response: &ServiceResponse<B>, elapsed: std::time::Duration) {
    let status = response.status();
    let request = response.request();
    match request.app_data::<RouteMetrics>() {
        Some(route) if status != StatusCode::NOT_FOUND => {
            route.observe(request.method(), status, elapsed)
        }
        _ => {
            if let Some(metrics) = request.app_data::<web::Data<Metrics>>() {
                metrics.observe_request("unmatched", request.method(), status, elapsed);
            }
        }
    }
}

/// Admission ([`Admission`]) in front of the routes.
pub struct Admit<S> {
    service: S,
    rules: Admission,
}

impl<S, B> Service<ServiceRequest> for Admit<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    type Response = Admitted<B>;
    type Error = Error;
    type Future = AdmitFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match self.rules.refusal(&req) {
            Some(refusal) => {
                Either::Right(ready(Ok(req.error_response(refusal).map_into_right_body())))
            }
            None => Either::Left(
                self.service
                    .call(req)
                    .map_ok(ServiceResponse::map_into_left_body as fn(_) -> _),
            ),
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

/// Adds each security header the answer does not carry yet. Which ones it carries is learnt
/// in one walk over its few headers rather than six lookups.
fn add_security_headers(headers: &mut HeaderMap) {
    let mut set = [false; 6];
    for name in headers.keys() {
        if let Some(i) = SECURITY_HEADERS.iter().position(|(known, _)| known == name) {
            set[i] = true;
        }
    }
    for ((name, value), set) in SECURITY_HEADERS.iter().zip(set) {
        if !set {
            headers.insert(name.clone(), value.clone());
        }
    }
}

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
