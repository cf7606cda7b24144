//! Route registration: one scope per security level.

mod messages;
mod seed;

use actix_web::web;

/// Registers every route. Public, protected and admin routes live in scopes of their own, so
/// the security level of a path is visible here and in each handler's extractor.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .service(
                web::scope("/messages")
                    .service(web::scope("/public").route("", web::get().to(messages::public)))
                    .service(web::scope("/protected").route("", web::get().to(messages::protected)))
                    .service(web::scope("/admin").route("", web::get().to(messages::admin))),
            )
            // The routes of Auth0's blog seed ("Node.js and Express API authorization").
            .route("/public", web::get().to(seed::public))
            .route("/private", web::get().to(seed::private)),
    );
}
