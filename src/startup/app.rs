//! The one app factory, used by [`Application`](super::Application) and by tests.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, Logger};
use actix_web::{App, web};

use crate::auth::authenticator::Authenticator;
use crate::auth::front::FrontCache;
use crate::metrics::Metrics;
use crate::openapi::ApiDocument;
use crate::routes::{self, Route};
use crate::startup::cors::{CorsRefusals, cors};
use crate::startup::middleware::{Admission, Envelope};

/// What every worker's app shares.
#[derive(Clone)]
pub struct AppState {
    pub authenticator: web::Data<Authenticator>,
    pub metrics: Arc<Metrics>,
    /// The one browser origin allowed, and how refusals of others are explained.
    pub cors: Arc<CorsRefusals>,
    /// What a request must satisfy before it is routed.
    pub admission: Admission,
    /// Whether the server is draining (read by `/readyz`).
    pub lifecycle: web::Data<routes::Lifecycle>,
    /// The API's description, when `docs.enabled` (else `/openapi.json` answers 404).
    pub docs: Option<web::Data<ApiDocument>>,
}

/// The app serving `routes` ([`routes::ROUTES`] in production; tests may declare their own)
/// behind every middleware.
pub fn create_app(
    state: AppState,
    routes: &'static [Route],
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let AppState {
        authenticator,
        metrics,
        cors: refusals,
        admission,
        lifecycle,
        docs,
    } = state;
    let admin_permission = authenticator.admin_permission().to_owned();
    let front = authenticator.caches_tokens().then(FrontCache::new);
    let mut app = App::new().app_data(authenticator).app_data(lifecycle);
    // The factory runs once per worker: each worker gets its own front.
    if let Some(front) = front {
        app = app.app_data(front);
    }
    let docs_pages: &'static [Route] = if docs.is_some() {
        routes::DOCS_PAGES
    } else {
        &[]
    };
    if let Some(docs) = docs {
        app = app.app_data(docs);
    }
    app.configure(|cfg| routes::register(cfg, routes, &metrics, &admin_permission))
        .configure(|cfg| routes::register(cfg, docs_pages, &metrics, &admin_permission))
        .app_data(web::Data::from(metrics))
        // Every answer, the framework's own errors included.
        .wrap(Envelope {
            admission,
            cors: cors(refusals.allowed()),
            refusals,
        })
        // actix's Logger renders its fields (peer address, method, …) for every request even
        // when its line is filtered out: it is installed only when its lines are enabled.
        .wrap(Condition::new(
            log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info),
            // The path only (%U), never the query: a token there must not reach the log.
            Logger::new(r#"%a "%{method}xi %U" %s %b %Dms id=%{x-request-id}o"#)
                .custom_request_replace("method", |req| req.method().to_string()),
        ))
}
