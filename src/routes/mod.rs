//! The route table: every route's method, path, policy and handler, declared once in
//! [`ROUTES`]. Registration, the metrics `route` label and the API's description all come from
//! it, so they cannot drift apart.
//!
//! Adding a route that needs a new permission is one [`Route`] here plus its handler:
//!
//! ```ignore
//! Route {
//!     method: Method::GET,
//!     path: "/api/reports",
//!     policy: Policy::Permissions(&["read:reports"]),
//!     summary: "The reports",
//!     handler: |route| route.to(reports::list),
//! },
//! ```

mod health;
mod messages;
mod seed;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::web;

use crate::auth::policy::{Authorize, Policy};
use crate::metrics::{Metrics, RouteMetrics};

/// The permission `/api/messages/admin` requires (unless `auth.admin_permission` renames it).
pub use crate::auth::policy::READ_ADMIN_MESSAGES;

/// One route: what it answers, who may call it, and the handler.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub policy: Policy,
    /// One line for the API's description.
    pub summary: &'static str,
    /// Attaches the handler: `|route| route.to(handler)`.
    pub handler: fn(actix_web::Route) -> actix_web::Route,
}

/// Every route the API serves.
pub static ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/api/messages/public",
        policy: Policy::Public,
        summary: "A message anyone may read",
        handler: |route| route.to(messages::public),
    },
    Route {
        method: Method::GET,
        path: "/api/messages/protected",
        policy: Policy::Authenticated,
        summary: "A message for any valid access token",
        handler: |route| route.to(messages::protected),
    },
    Route {
        method: Method::GET,
        path: "/api/messages/admin",
        policy: Policy::Permissions(&[READ_ADMIN_MESSAGES]),
        summary: "A message for tokens granting read:admin-messages",
        handler: |route| route.to(messages::admin),
    },
    // The routes of Auth0's blog seed ("Node.js and Express API authorization").
    Route {
        method: Method::GET,
        path: "/api/public",
        policy: Policy::Public,
        summary: "The blog seed's public status",
        handler: |route| route.to(seed::public),
    },
    Route {
        method: Method::GET,
        path: "/api/private",
        policy: Policy::Authenticated,
        summary: "The verified token's claims",
        handler: |route| route.to(seed::private),
    },
    // Probes, public: they reveal nothing but liveness and readiness.
    Route {
        method: Method::GET,
        path: "/healthz",
        policy: Policy::Public,
        summary: "Liveness: the process answers",
        handler: |route| route.to(health::healthz),
    },
    Route {
        method: Method::GET,
        path: "/readyz",
        policy: Policy::Public,
        summary: "Readiness: fresh signing keys are loaded",
        handler: |route| route.to(health::readyz),
    },
];

/// Registers [`ROUTES`], counted in metrics of their own: for an app assembled by hand.
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg, ROUTES, &Arc::new(Metrics::new()), READ_ADMIN_MESSAGES);
}

/// Registers `routes`: one resource per path, each method's handler behind its policy. Other
/// methods on a known path get 405 (a method-guarded `Scope::route` would answer 404). Each
/// resource keeps its route's [`RouteMetrics`], so a route cannot be served unlabelled. A
/// policy requiring [`READ_ADMIN_MESSAGES`] requires `admin_permission` instead.
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
        for route in routes.iter().filter(|r| r.path == first.path) {
            let handler = (route.handler)(web::method(route.method.clone()));
            resource = resource.route(match route.policy {
                Policy::Public => handler,
                policy => handler.wrap(Authorize(policy.with_admin_permission(admin_permission))),
            });
        }
        cfg.service(resource);
    }
}
