//! The two routes of Auth0's blog seed, for SPAs written against it.

use actix_web::web::Json;
use serde::Serialize;

use crate::auth::claims::Claims;
use crate::auth::extractor::Authenticated;
use crate::openapi::schemas::{claims, object, string};
use crate::route::Body;

/// `{"status": "success", "msg": …}`, the blog seed's public answer.
pub const STATUS: Body = Body {
    name: "Status",
    schema: || {
        object(
            [
                ("status", string("Always success")),
                ("msg", string("A greeting")),
            ],
            &["status", "msg"],
        )
    },
};

/// The verified token's claims: registered claims typed as RFC 7519 says, any others as sent.
pub const CLAIMS: Body = Body {
    name: "Claims",
    schema: claims,
};

#[derive(Serialize)]
pub struct Status {
    status: &'static str,
    msg: &'static str,
}

/// `GET /api/public`: anyone.
pub async fn public() -> Json<Status> {
    Json(Status {
        status: "success",
        msg: "Hello from a public endpoint! You don't need to be authenticated to see this.",
    })
}

/// `GET /api/private`: the verified token's claims.
pub async fn private(Authenticated(claims): Authenticated) -> Json<Claims> {
    Json(Claims::clone(&claims))
}
