//! Route registration: one scope per security level.

mod health;
mod messages;
mod seed;

use actix_web::{FromRequest, Handler, Resource, Responder, web};

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
