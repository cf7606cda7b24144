//! CORS: only the paired SPA's origin may read our answers, errors included; and a refusal says
//! what was refused, in the answer, the log and the metrics, since a wrong SPA port or a
//! missing header is how a pairing usually breaks.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_cors::{Cors, CorsError};
use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::error::{ErrorBody, mime_json};
use crate::metrics::{CorsRefusal, Metrics};

/// The request headers a browser on the allowed origin may send.
const ALLOWED_HEADERS: [&str; 3] = ["authorization", "content-type", "dpop"];

/// Only the paired SPA's origin may read our answers, errors included; it may send a DPoP
/// proof, and read the challenge and the server's DPoP nonce.
pub fn cors(origin: &str) -> Cors {
    Cors::default()
        .allowed_origin(origin)
        .allowed_methods(["GET"])
        .allowed_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers([header::WWW_AUTHENTICATE, crate::error::DPOP_NONCE])
        .max_age(86_400)
}

/// How refusals are explained: the allowed origin to name, their count, and their log lines,
/// at most 20 distinct origins a minute so a flood cannot fill the log. Shared by
/// every worker.
#[derive(Debug)]
pub struct CorsRefusals {
    allowed: String,
    metrics: Arc<Metrics>,
    log: Mutex<LogWindow>,
}

#[derive(Debug)]
struct LogWindow {
    started: Instant,
    origins: HashSet<String>,
    unlogged: u64,
}

impl LogWindow {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            origins: HashSet::new(),
            unlogged: 0,
        }
    }
}

const LOG_WINDOW: Duration = Duration::from_secs(60);
const LOG_LINES: usize = 20;

impl CorsRefusals {
    pub fn new(allowed: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            allowed: allowed.to_owned(),
            metrics,
            log: Mutex::new(LogWindow::new()),
        }
    }

    /// The one origin allowed.
    pub fn allowed(&self) -> &str {
        &self.allowed
    }

    /// The answer to a request actix-cors refused: 400 with a `message` saying what was
    /// refused and what is allowed (and still no `Access-Control-Allow-Origin`); counted, and
    /// logged.
    fn explain(&self, req: &HttpRequest, error: &CorsError) -> HttpResponse {
        let text = |name: HeaderName| {
            req.headers()
                .get(name)
                .map(|v| shortened(&String::from_utf8_lossy(v.as_bytes())))
                .unwrap_or_default()
        };
        let origin = text(header::ORIGIN);
        let allowed = &self.allowed;
        let (reason, message) = match error {
            CorsError::OriginNotAllowed => (
                CorsRefusal::origin,
                format!(
                    "CORS: the origin {origin} may not call this API; it allows {allowed} only \
                     (CLIENT_ORIGIN_URL)"
                ),
            ),
            CorsError::MethodNotAllowed | CorsError::BadRequestMethod => (
                CorsRefusal::method,
                format!(
                    "CORS: the method {} is not allowed from {origin}; allowed: GET",
                    text(header::ACCESS_CONTROL_REQUEST_METHOD)
                ),
            ),
            CorsError::HeadersNotAllowed | CorsError::BadRequestHeaders => (
                CorsRefusal::headers,
                format!(
                    "CORS: the request headers {} are not all allowed from {origin}; allowed: {}",
                    text(header::ACCESS_CONTROL_REQUEST_HEADERS),
                    ALLOWED_HEADERS.join(", ")
                ),
            ),
            other => (CorsRefusal::malformed, format!("CORS: {other}")),
        };
        self.metrics.observe_cors_refusal(reason);
        self.log(&origin, &message, req);
        HttpResponse::build(StatusCode::BAD_REQUEST)
            .content_type(mime_json())
            .body(
                ErrorBody {
                    message: &message,
                    error: None,
                    error_description: None,
                }
                .to_json(),
            )
    }

    fn log(&self, origin: &str, message: &str, req: &HttpRequest) {
        let mut window = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if window.started.elapsed() >= LOG_WINDOW {
            if window.unlogged > 0 {
                log::info!(
                    "CORS: {} more refusals in the last minute were not logged",
                    window.unlogged
                );
            }
            *window = LogWindow::new();
        }
        if window.origins.contains(origin) || window.origins.len() >= LOG_LINES {
            window.unlogged += 1;
            return;
        }
        window.origins.insert(origin.to_owned());
        drop(window);
        log::info!(
            "refused {} {}: {message}",
            req.method(),
            req.path().escape_debug()
        );
    }
}

/// At most 200 characters of a header's text, escaped for a log line.
fn shortened(text: &str) -> String {
    text.chars()
        .take(200)
        .flat_map(char::escape_debug)
        .collect()
}

/// What actix-cors puts in `Vary` (without its draft private-network feature).
const CORS_VARY: &str = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// An answer actix-cors refused, explained; any other as it is.
pub(super) fn explained<B>(
    response: ServiceResponse<EitherBody<B>>,
    refusals: &CorsRefusals,
) -> ServiceResponse<EitherBody<B>> {
    let explanation = response
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(|error| refusals.explain(response.request(), error));
    let Some(explanation) = explanation else {
        // A simple request from another origin is served as to anyone (curl sends an Origin
        // too), without Access-Control-Allow-Origin: the browser withholds it from the page.
        // It is counted and logged like a refused preflight, for whoever wonders why.
        if response.request().headers().contains_key(header::ORIGIN)
            && !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        {
            refusals.explain(response.request(), &CorsError::OriginNotAllowed);
        }
        return response;
    };
    let (request, refused) = response.into_parts();
    let mut explanation = explanation;
    if let Some(vary) = refused.headers().get(header::VARY) {
        explanation.headers_mut().insert(header::VARY, vary.clone());
    }
    ServiceResponse::new(request, explanation).map_into_right_body()
}

/// The `Vary` actix-cors would add, for an answer to a request that skipped it: the answer
/// still varies with `Origin` for caches.
pub(super) fn add_cors_vary(headers: &mut HeaderMap) {
    let value = match headers.get(header::VARY) {
        Some(existing) => {
            let mut value = existing.as_bytes().to_vec();
            value.extend_from_slice(b", ");
            value.extend_from_slice(CORS_VARY.as_bytes());
            HeaderValue::from_bytes(&value).unwrap_or(HeaderValue::from_static(CORS_VARY))
        }
        None => HeaderValue::from_static(CORS_VARY),
    };
    headers.insert(header::VARY, value);
}
