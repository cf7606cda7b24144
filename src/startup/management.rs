//! The management listener, apart from the public API: `/metrics`, and `/` listing it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};

use actix_web::ResponseError;

use crate::auth::authenticator::Authenticator;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::startup::StartupError;

/// The management listener: `/metrics`, and `/` listing it.
pub fn serve_metrics(
    address: std::net::SocketAddr,
    authenticator: web::Data<Authenticator>,
    metrics: Arc<Metrics>,
) -> Result<(u16, ServerHandle), StartupError> {
    let bind_error = |source| StartupError::MetricsBind {
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let server = HttpServer::new(move || {
        let authenticator = authenticator.clone();
        let metrics = Arc::clone(&metrics);
        App::new()
            .route(
                "/",
                web::get().to(|| async {
                    HttpResponse::Ok().json(serde_json::json!({
                        "endpoints": {
                            "/metrics": "Prometheus metrics (OpenMetrics text)",
                        }
                    }))
                }),
            )
            // Anything else: the API's JSON 404, not an empty answer.
            .default_service(web::to(|| async { ApiError::NotFound.error_response() }))
            .route(
                "/metrics",
                web::get().to(move || {
                    metrics.set_cached_tokens(authenticator.cached_tokens());
                    let text = authenticator.render_metrics();
                    async move {
                        HttpResponse::Ok()
                            // prometheus-client encodes OpenMetrics text (# EOF, # UNIT).
                            .content_type(
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(text)
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    log::info!("metrics on http://{}:{port}/metrics", address.ip());
    Ok((port, handle))
}
