//! Building and running the server: the one app factory, CORS, security headers, and the
//! [`Application`] that binds before it runs so callers (and tests) learn the real port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{
    Server, ServerHandle, Service, ServiceFactory, ServiceRequest, ServiceResponse,
};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, ErrorHandlerResponse, ErrorHandlers, Logger};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, web};
use derive_more::{Display, Error};
use tokio::task::JoinHandle;

use crate::auth::cache::TokenCache;
use crate::auth::extractor::Authenticator;
use crate::auth::store::JwksStore;
use crate::auth::validator::TokenValidator;
use crate::clock::{Clock, SystemClock};
use crate::error::{ApiError, ErrorBody, message_for_status, mime_json};
use crate::metrics::Metrics;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::routes;
use crate::settings::Settings;

/// What every worker's app shares.
#[derive(Clone)]
pub struct AppState {
    pub authenticator: web::Data<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub allowed_origin: String,
    /// Requests whose header names and values add up to more are refused with 431.
    pub max_header_bytes: usize,
}

/// The one app factory, used by [`Application`] and by tests.
pub fn create_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metrics = state.metrics;
    let max_header_bytes = state.max_header_bytes;
    App::new()
        .app_data(state.authenticator)
        .configure(routes::configure)
        // Innermost, so a refusal still gets CORS, JSON and security headers.
        .wrap_fn(move |req, service| {
            let size: usize = req
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum();
            let answer = if size > max_header_bytes {
                Err(req.error_response(ApiError::HeadersTooLarge))
            } else {
                Ok(service.call(req))
            };
            async move {
                match answer {
                    Ok(call) => Ok(call.await?.map_into_boxed_body()),
                    Err(refusal) => Ok(refusal),
                }
            }
        })
        .wrap(cors(&state.allowed_origin))
        .wrap(ErrorHandlers::new().default_handler(json_error_body))
        .wrap(security_headers())
        // Request id and metrics see every answer, the framework's own errors included.
        .wrap_fn(move |req, service| {
            let started = Instant::now();
            let id = RequestId::for_headers(req.headers());
            req.extensions_mut().insert(id.clone());
            let method = req.method().clone();
            let metrics = Arc::clone(&metrics);
            let answer = service.call(req);
            async move {
                let mut response = answer.await?;
                response
                    .headers_mut()
                    .insert(X_REQUEST_ID.clone(), id.header_value());
                metrics.observe_request(
                    routes::route_label(response.request().path(), response.status()),
                    &method,
                    response.status(),
                    started.elapsed(),
                );
                Ok(response)
            }
        })
        // The path only (%U), never the query: a token there must not reach the log.
        .wrap(
            Logger::new(r#"%a "%{method}xi %U" %s %b %Dms id=%{x-request-id}o"#)
                .custom_request_replace("method", |req| req.method().to_string()),
        )
}

/// Only the paired SPA's origin may read our answers, errors included.
fn cors(origin: &str) -> Cors {
    Cors::default()
        .allowed_origin(origin)
        .allowed_methods(["GET"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(86_400)
}

/// The headers Auth0's samples put on every answer.
fn security_headers() -> DefaultHeaders {
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
fn json_error_body<B: MessageBody + 'static>(
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

/// Installs the process-wide rustls crypto provider (aws-lc-rs) unless one is installed.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// Why the server could not start.
#[derive(Debug, Display, Error)]
pub enum StartupError {
    #[display("server.host/server.port: cannot listen on {address}: {source}")]
    Bind {
        #[error(not(source))]
        address: String,
        source: std::io::Error,
    },
    #[display("metrics.address: cannot listen on {address}: {source}")]
    MetricsBind {
        #[error(not(source))]
        address: String,
        source: std::io::Error,
    },
}

/// A bound, not yet running server with its key refresher and metrics listener.
pub struct Application {
    port: u16,
    server: Server,
    keys: Arc<JwksStore>,
    refresher: JoinHandle<()>,
    management: Option<(u16, ServerHandle)>,
}

impl Application {
    /// Binds the listener and starts the key refresher. Must run inside an actix runtime.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// As [`Application::build`], with the clock the key store reads (tests pass a manual one).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        install_crypto_provider();
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();

        let metrics = Arc::new(Metrics::new());
        let keys = JwksStore::new(&settings.auth, &settings.jwks, clock, Arc::clone(&metrics));
        let cache = settings
            .cache
            .enabled
            .then(|| TokenCache::new(&settings.cache, settings.auth.leeway));
        let authenticator = web::Data::new(Authenticator::new(
            TokenValidator::new(&settings.auth),
            Arc::clone(&keys),
            cache,
            Arc::clone(&metrics),
        ));
        let management = match settings.metrics.address {
            Some(address) => Some(serve_metrics(
                address,
                authenticator.clone(),
                Arc::clone(&metrics),
            )?),
            None => None,
        };
        let refresher = keys.spawn_refresher();
        let state = AppState {
            authenticator,
            metrics,
            allowed_origin: settings.cors.allowed_origin.clone(),
            max_header_bytes: settings.server.max_header_bytes,
        };
        let server = HttpServer::new(move || create_app(state.clone()))
            .workers(settings.server.workers)
            // Whole seconds, rounded up: a fractional timeout must not become a forced stop.
            .shutdown_timeout(settings.server.shutdown_timeout.as_secs_f64().ceil() as u64)
            // actix treats SIGINT as a forced stop; we handle both signals gracefully instead.
            .disable_signals()
            .listen(listener)
            .map_err(|source| StartupError::Bind { address, source })?
            .run();
        log::info!(
            "listening on http://{}:{port} ({} profile); tokens from issuer {} (audience {}); keys from {}",
            settings.server.host,
            settings.environment,
            settings.auth.issuer,
            settings.auth.audience,
            settings.auth.jwks_uri,
        );
        Ok(Self {
            port,
            server,
            keys,
            refresher,
            management,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when metrics are on.
    pub fn metrics_port(&self) -> Option<u16> {
        self.management.as_ref().map(|(port, _)| *port)
    }

    /// The key store, e.g. to trigger a refresh.
    pub fn keys(&self) -> Arc<JwksStore> {
        Arc::clone(&self.keys)
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Stops the server gracefully on SIGTERM or SIGINT (Ctrl-C): for the binary, not for tests.
    /// The handlers are installed before this returns, so no signal can slip past them.
    pub fn stop_on_signals(&self) {
        let handle = self.server.handle();
        let signals = Signals::install();
        actix_web::rt::spawn(async move {
            let signal = signals.recv().await;
            log::info!("{signal} received: finishing in-flight requests, then stopping");
            handle.stop(true).await;
        });
    }

    /// Serves until the server stops (after [`Application::stop_on_signals`], or through its handle): it stops
    /// accepting, lets in-flight requests finish within `server.shutdown_timeout_secs`, then
    /// stops the key refresher and the metrics listener.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.refresher.abort();
        if let Some((_, management)) = self.management {
            management.stop(true).await;
        }
        log::info!("stopped");
        result
    }
}

/// The management listener: `/metrics` only, apart from the public API.
fn serve_metrics(
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
        App::new().route(
            "/metrics",
            web::get().to(move || {
                metrics.set_cached_tokens(authenticator.cached_tokens());
                let text = authenticator.keys().render_metrics();
                async move {
                    HttpResponse::Ok()
                        // prometheus-client encodes OpenMetrics text (# EOF, # UNIT).
                        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
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
    log::info!("metrics on http://{address}/metrics");
    Ok((port, handle))
}

/// SIGTERM and SIGINT handlers.
struct Signals {
    #[cfg(unix)]
    streams: Option<(
        actix_web::rt::signal::unix::Signal,
        actix_web::rt::signal::unix::Signal,
    )>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use actix_web::rt::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => {
                    log::error!("cannot listen for signals; stop the server with SIGKILL");
                    None
                }
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the first signal and names it.
    async fn recv(self) -> &'static str {
        #[cfg(unix)]
        {
            match self.streams {
                Some((mut term, mut int)) => tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                },
                None => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = actix_web::rt::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
