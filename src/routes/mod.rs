//! Route registration: one scope per security level.

mod health;
mod messages;
mod seed;

use actix_web::{FromRequest, Handler, Resource, Responder, web};

/// Every route's path, as the `route` label of request metrics.
pub const ROUTES: &[&str] = &[
    "/api/messages/public",
    "/api/messages/protected",
    "/api/messages/admin",
    "/api/public",
    "/api/private",
    "/healthz",
    "/readyz",
];

/// The metrics label for a request to `path` answered with `status`: its route, or
/// `unmatched` (a bounded set, whatever paths clients send).
pub fn route_label(path: &str, status: actix_web::http::StatusCode) -> &'static str {
    match ROUTES.iter().find(|route| **route == path) {
        Some(route) if status != actix_web::http::StatusCode::NOT_FOUND => route,
        _ => "unmatched",
    }
}

/// Registers every route. Public, protected and admin routes live in scopes of their own, so
/// the security level of a path is visible here and in each handler's extractor.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Probes, public: they reveal nothing but liveness and key freshness.
    cfg.service(get("/healthz", health::healthz))
        .service(get("/readyz", health::readyz));
    cfg.service(
        web::scope("/api")
            .service(
                web::scope("/messages")
                    .service(web::scope("/public").service(get("", messages::public)))
                    .service(web::scope("/protected").service(get("", messages::protected)))
                    .service(web::scope("/admin").service(get("", messages::admin))),
            )
            // The routes of Auth0's blog seed ("Node.js and Express API authorization").
            .service(get("/public", seed::public))
            .service(get("/private", seed::private)),
    );
}

/// A resource answering GET with `handler`. Other methods get 405, where a method-guarded
/// `Scope::route` would answer 404.
fn get<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path).route(web::get().to(handler))
}
