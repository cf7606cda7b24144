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

use actix_web::http::Method;
use actix_web::web;

use crate::auth::policy::{Authorize, Policy};

/// The permission `/api/messages/admin` requires.
pub const READ_ADMIN_MESSAGES: &str = "read:admin-messages";

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

/// The metrics label of the route a request matched, kept in the resource's app data so that
/// a route cannot be served without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLabel(pub &'static str);

/// Registers [`ROUTES`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg, ROUTES);
}

/// Registers `routes`: one resource per path, each method's handler behind its policy. Other
/// methods on a known path get 405 (a method-guarded `Scope::route` would answer 404).
pub fn register(cfg: &mut web::ServiceConfig, routes: &'static [Route]) {
    for (index, first) in routes.iter().enumerate() {
        if routes[..index].iter().any(|r| r.path == first.path) {
            continue;
        }
        let mut resource = web::resource(first.path).app_data(RouteLabel(first.path));
        for route in routes.iter().filter(|r| r.path == first.path) {
            let handler = (route.handler)(web::method(route.method.clone()));
            resource = resource.route(match route.policy {
                Policy::Public => handler,
                policy => handler.wrap(Authorize(policy)),
            });
        }
        cfg.service(resource);
    }
}
