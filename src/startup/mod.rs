//! Building and running the server: the [`Application`] binds before it runs so callers (and
//! tests) learn the real port, then serves the app of [`app::create_app`] with its key
//! refresher and metrics listener.

mod app;
pub mod cors;
mod management;
pub mod middleware;
mod signals;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{HttpServer, web};
use derive_more::{Display, Error};
use tokio::task::JoinHandle;

pub use app::{AppState, create_app};
pub use middleware::Admission;

use crate::auth::authenticator::Authenticator;
use crate::auth::cache::TokenCache;
use crate::auth::claims::PermissionsClaim;
use crate::auth::dpop::Dpop;
use crate::auth::store::JwksStore;
use crate::auth::validator::TokenValidator;
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::openapi::{ApiDocument, Context, DocumentError};
use crate::routes::{self, Lifecycle, Route};
use crate::settings::Settings;
use cors::CorsRefusals;
use management::serve_metrics;
use signals::Signals;

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
    #[display(
        "server.host/server.port: cannot listen on {address}: {source} (set PORT to another port, \
         or 0 for a free one; HOST for the interface)"
    )]
    Bind {
        #[error(not(source))]
        address: String,
        source: std::io::Error,
    },
    #[display("docs: cannot describe the API: {_0}")]
    Docs(DocumentError),
    #[display(
        "metrics.address: cannot listen on {address}: {source} (set APP__METRICS__ADDRESS, e.g. \
         127.0.0.1:0 for a free port, or APP__METRICS__ENABLED=false)"
    )]
    MetricsBind {
        #[error(not(source))]
        address: String,
        source: std::io::Error,
    },
}

/// A listener on `address` and the port it got (the OS picks one for port 0).
fn bind(address: &str) -> Result<(TcpListener, u16), StartupError> {
    let bind_error = |source| StartupError::Bind {
        address: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    Ok((listener, port))
}

/// What every worker shares: the key store (whose refresher the caller starts), the
/// authenticator with its cache, the metrics, and the description of `routes`.
fn shared_state(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    routes: &'static [Route],
) -> Result<(AppState, Vec<Arc<JwksStore>>), StartupError> {
    let docs = if settings.docs.enabled {
        let document =
            ApiDocument::new(routes, Context::new(settings)).map_err(StartupError::Docs)?;
        Some(web::Data::new(document))
    } else {
        None
    };
    let metrics = Arc::new(Metrics::new());
    let auth = &settings.auth;
    let keys: Vec<Arc<JwksStore>> = auth
        .issuers
        .iter()
        .map(|issuer| {
            JwksStore::new(
                issuer,
                &auth.algorithms,
                &settings.jwks,
                Arc::clone(&clock),
                Arc::clone(&metrics),
            )
        })
        .collect();
    let cache = settings
        .cache
        .enabled
        .then(|| TokenCache::new(&settings.cache, auth.leeway, keys.len()));
    let authenticator = web::Data::new(Authenticator::new(
        TokenValidator::new(auth),
        keys.clone(),
        cache,
        Arc::clone(&metrics),
        (
            PermissionsClaim::new(&auth.permissions_claim),
            auth.admin_permission.clone(),
        ),
        Dpop::new(&auth.dpop, &settings.server),
    ));
    let cors = Arc::new(CorsRefusals::new(
        &settings.cors.allowed_origin,
        Arc::clone(&metrics),
    ));
    let state = AppState {
        authenticator,
        metrics,
        cors,
        admission: Admission {
            max_header_bytes: settings.server.max_header_bytes,
            loopback_only: settings.dev_issuer.is_some(),
        },
        lifecycle: web::Data::new(Lifecycle::default()),
        docs,
    };
    Ok((state, keys))
}

/// A bound, not yet running server with its key refresher and metrics listener.
pub struct Application {
    port: u16,
    server: Server,
    keys: Vec<Arc<JwksStore>>,
    refreshers: Vec<JoinHandle<()>>,
    lifecycle: web::Data<Lifecycle>,
    drain: Duration,
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
        Self::build_with(settings, clock, routes::ROUTES).await
    }

    /// As [`Application::build_with_clock`], serving `routes` instead of [`routes::ROUTES`]
    /// (tests declare routes of their own).
    pub async fn build_with(
        settings: Settings,
        clock: Arc<dyn Clock>,
        routes: &'static [Route],
    ) -> Result<Self, StartupError> {
        install_crypto_provider();
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let (listener, port) = bind(&address)?;
        let (state, keys) = shared_state(&settings, clock, routes)?;
        let lifecycle = state.lifecycle.clone();
        let management = match settings.metrics.address {
            Some(address) => Some(serve_metrics(
                address,
                state.authenticator.clone(),
                Arc::clone(&state.metrics),
            )?),
            None => None,
        };
        let refreshers = keys.iter().map(JwksStore::spawn_refresher).collect();
        let server = HttpServer::new(move || create_app(state.clone(), routes))
            .workers(settings.server.workers)
            // Whole seconds, rounded up: a fractional timeout must not become a forced stop.
            .shutdown_timeout(settings.server.shutdown_timeout.as_secs_f64().ceil() as u64)
            // actix treats SIGINT as a forced stop; we handle both signals gracefully instead.
            .disable_signals()
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .run();
        let sources: Vec<String> = keys
            .iter()
            .map(|store| format!("{} (keys from {})", store.issuer(), store.uri()))
            .collect();
        // The start-up summary: what a newcomer needs to see to know what was understood.
        let base = format!("http://{}:{port}", settings.server.host);
        log::info!(
            "listening on {base} ({} profile, {} workers)",
            settings.environment,
            settings.server.workers
        );
        log::info!(
            "tokens from {} for audience {}; DPoP {}",
            sources.join(", "),
            settings.auth.audiences.join(", "),
            settings.auth.dpop.mode,
        );
        log::info!(
            "browsers may call it from {} only (CLIENT_ORIGIN_URL)",
            settings.cors.allowed_origin
        );
        if settings.docs.enabled {
            log::info!("docs on {base}/docs, the description on {base}/openapi.json");
        }
        Ok(Self {
            port,
            server,
            lifecycle,
            drain: settings.server.drain,
            keys,
            refreshers,
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

    /// The (first) issuer's key store, e.g. to trigger a refresh.
    pub fn keys(&self) -> Arc<JwksStore> {
        Arc::clone(&self.keys[0])
    }

    /// Every issuer's key store, in configuration order.
    pub fn key_stores(&self) -> &[Arc<JwksStore>] {
        &self.keys
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Stops the server gracefully on SIGTERM or SIGINT (Ctrl-C): for the binary, not for tests.
    /// The handlers are installed before this returns, so no signal can slip past them.
    /// With `server.drain_secs`, `/readyz` first answers 503 for that long while requests are
    /// still served, so a balancer stops sending before the listener closes.
    pub fn stop_on_signals(&self) {
        let handle = self.server.handle();
        let signals = Signals::install();
        let lifecycle = self.lifecycle.clone();
        let drain = self.drain;
        actix_web::rt::spawn(async move {
            let signal = signals.recv().await;
            lifecycle.start_draining();
            if !drain.is_zero() {
                log::info!(
                    "{signal} received: /readyz answers 503; still serving for {:.1}s, then \
                     finishing in-flight requests and stopping",
                    drain.as_secs_f64()
                );
                actix_web::rt::time::sleep(drain).await;
            } else {
                log::info!("{signal} received: finishing in-flight requests, then stopping");
            }
            handle.stop(true).await;
        });
    }

    /// The server's lifecycle, e.g. to start draining by hand.
    pub fn lifecycle(&self) -> web::Data<Lifecycle> {
        self.lifecycle.clone()
    }

    /// Serves until the server stops (after [`Application::stop_on_signals`], or through its handle): it stops
    /// accepting, lets in-flight requests finish within `server.shutdown_timeout_secs`, then
    /// stops the key refresher and the metrics listener.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for refresher in &self.refreshers {
            refresher.abort();
        }
        if let Some((_, management)) = self.management {
            management.stop(true).await;
        }
        log::info!("stopped");
        result
    }
}
