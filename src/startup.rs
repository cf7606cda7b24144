//! Building and running the server: the one app factory, CORS, security headers, and the
//! [`Application`] that binds before it runs so callers (and tests) learn the real port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, ErrorHandlerResponse, ErrorHandlers, Logger};
use actix_web::{App, HttpServer, web};
use derive_more::{Display, Error};
use tokio::task::JoinHandle;

use crate::auth::extractor::Authenticator;
use crate::auth::store::JwksStore;
use crate::auth::validator::TokenValidator;
use crate::clock::{Clock, SystemClock};
use crate::error::{ErrorBody, message_for_status, mime_json};
use crate::routes;
use crate::settings::Settings;

/// What every worker's app shares.
#[derive(Clone)]
pub struct AppState {
    pub authenticator: web::Data<Authenticator>,
    pub allowed_origin: String,
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
    App::new()
        .app_data(state.authenticator)
        .configure(routes::configure)
        .wrap(cors(&state.allowed_origin))
        .wrap(ErrorHandlers::new().default_handler(json_error_body))
        .wrap(security_headers())
        // The path only (%U), never the query: a token there must not reach the log.
        .wrap(
            Logger::new(r#"%a "%{method}xi %U" %s %b %Dms"#)
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
}

/// A bound, not yet running server with its key refresher.
pub struct Application {
    port: u16,
    server: Server,
    keys: Arc<JwksStore>,
    refresher: JoinHandle<()>,
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

        let keys = JwksStore::new(&settings.auth, &settings.jwks, clock);
        let refresher = keys.spawn_refresher();
        let state = AppState {
            authenticator: web::Data::new(Authenticator::new(
                TokenValidator::new(&settings.auth),
                Arc::clone(&keys),
            )),
            allowed_origin: settings.cors.allowed_origin.clone(),
        };
        let server = HttpServer::new(move || create_app(state.clone()))
            .workers(settings.server.workers)
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
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The key store, e.g. to trigger a refresh.
    pub fn keys(&self) -> Arc<JwksStore> {
        Arc::clone(&self.keys)
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (on SIGINT/SIGTERM or through its handle).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.refresher.abort();
        result
    }
}
