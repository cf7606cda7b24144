//! The route table: every route's method, path, policy, answers and handler, declared once in
//! [`ROUTES`]. Registration, the metrics `route` label and the API's OpenAPI description
//! ([`crate::openapi`]) all come from it, so they cannot drift apart.
//!
//! Adding a route that needs a new permission is one [`Route`] here plus its handler:
//!
//! ```ignore
//! Route {
//!     method: Method::GET,
//!     path: "/api/reports",
//!     policy: Policy::Permissions(&["read:reports"]),
//!     summary: "The reports",
//!     answers: &[Answer::ok("The reports", reports::REPORTS)],
//!     handler: |route| route.to(reports::list),
//! },
//! ```

mod docs;
mod health;
mod messages;
mod seed;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web;

use crate::auth::policy::{Authorize, Policy};
use crate::metrics::{Metrics, RouteMetrics};

pub use crate::route::{Answer, Body, Route};
pub use health::Lifecycle;

/// The permission `/api/messages/admin` requires (unless `auth.admin_permission` renames it).
pub use crate::auth::policy::READ_ADMIN_MESSAGES;

/// Every route the API serves.
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/api/messages/public",
        policy: Policy::Public,
        summary: "A message anyone may read",
        answers: &[Answer::ok("The public message", messages::MESSAGE)],
        handler: |route| route.to(messages::public),
    },
    Route {
        method: Method::GET,
        path: "/api/messages/protected",
        policy: Policy::Authenticated,
        summary: "A message for any valid access token",
        answers: &[Answer::ok("The protected message", messages::MESSAGE)],
        handler: |route| route.to(messages::protected),
    },
    Route {
        method: Method::GET,
        path: "/api/messages/admin",
        policy: Policy::Permissions(&[READ_ADMIN_MESSAGES]),
        summary: "A message for tokens granting read:admin-messages",
        answers: &[Answer::ok("The admin message", messages::MESSAGE)],
        handler: |route| route.to(messages::admin),
    },
    // The routes of Auth0's blog seed ("Node.js and Express API authorization").
    Route {
        method: Method::GET,
        path: "/api/public",
        policy: Policy::Public,
        summary: "The blog seed's public status",
        answers: &[Answer::ok("The public status", seed::STATUS)],
        handler: |route| route.to(seed::public),
    },
    Route {
        method: Method::GET,
        path: "/api/private",
        policy: Policy::Authenticated,
        summary: "The verified token's claims",
        answers: &[Answer::ok(
            "The verified token's claims, as the token carries them",
            seed::CLAIMS,
        )],
        handler: |route| route.to(seed::private),
    },
    // Probes, public: they reveal nothing but liveness and readiness.
    Route {
        method: Method::GET,
        path: "/healthz",
        policy: Policy::Public,
        summary: "Liveness: the process answers",
        answers: &[Answer::ok("The process serves requests", health::HEALTHY)],
        handler: |route| route.to(health::healthz),
    },
    Route {
        method: Method::GET,
        path: "/readyz",
        policy: Policy::Public,
        summary: "Readiness: fresh signing keys are loaded",
        answers: &[
            Answer::ok("Every issuer's signing keys are fresh", health::READY),
            Answer {
                status: 503,
                description: "Not ready: no signing keys yet, stale keys, or shutting down",
                body: health::NOT_READY,
            },
        ],
        handler: |route| route.to(health::readyz),
    },
    // Answers 404 unless `docs.enabled`.
    Route {
        method: Method::GET,
        path: "/openapi.json",
        policy: Policy::Public,
        summary: "This description of the API (OpenAPI 3.1)",
        answers: &[Answer::ok("The OpenAPI 3.1 document", docs::DOCUMENT)],
        handler: |route| route.to(docs::openapi),
    },
];

/// The interactive docs (Swagger UI), served with `/openapi.json` when `docs.enabled`: counted
/// like [`ROUTES`], and left out of the description, which they show.
pub static DOCS_PAGES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/docs",
        policy: Policy::Public,
        summary: "Redirects to /docs/",
        answers: &[],
        handler: |route| route.to(docs::redirect),
    },
    Route {
        method: Method::GET,
        path: "/docs/{file:.*}",
        policy: Policy::Public,
        summary: "Swagger UI: the page and its files",
        answers: &[],
        handler: |route| route.to(docs::page),
    },
];

/// Registers [`ROUTES`], counted in metrics of their own: for an app assembled by hand.
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg, ROUTES, &Arc::new(Metrics::new()), READ_ADMIN_MESSAGES);
}

/// Registers `routes`: one resource per path, each method's handler behind its policy, and
/// HEAD beside each GET. Other methods on a known path get 405 (a method-guarded
/// `Scope::route` would answer 404). Each resource keeps its route's [`RouteMetrics`], so a
/// route cannot be served unlabelled. A policy requiring [`READ_ADMIN_MESSAGES`] requires
/// `admin_permission` instead.
pub fn register(
    cfg: &mut web::ServiceConfig,
    routes: &'static [Route],
    metrics: &Arc<Metrics>,
    admin_permission: &str,
) {
    for (index, first) in routes.iter().enumerate() {
        if routes[..index].iter().any(|r| r.path == first.path) {
            continue;
        }
        let mut resource =
            web::resource(first.path).app_data(RouteMetrics::new(Arc::clone(metrics), first.path));
        let on_path: Vec<&Route> = routes.iter().filter(|r| r.path == first.path).collect();
        for route in &on_path {
            // A server that answers GET answers HEAD (RFC 9110 §9.3.2): the same handler and
            // policy, so the same status and headers; the HTTP layer sends no body.
            let head =
                route.method == Method::GET && !on_path.iter().any(|r| r.method == Method::HEAD);
            let methods = [Some(route.method.clone()), head.then_some(Method::HEAD)];
            for method in methods.into_iter().flatten() {
                let handler = (route.handler)(web::method(method));
                resource = resource.route(match route.policy {
                    Policy::Public => handler,
                    policy => {
                        handler.wrap(Authorize(policy.with_admin_permission(admin_permission)))
                    }
                });
            }
        }
        cfg.service(resource);
    }
}
