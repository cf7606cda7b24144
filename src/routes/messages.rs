//! The three messages of Auth0's "Hello World API" contract.

use actix_web::web::Json;
use serde::Serialize;

use crate::auth::extractor::Authenticated;
use crate::openapi::schemas::{object, string};
use crate::route::Body;

/// `{"text": …}`, the body of every message.
pub const MESSAGE: Body = Body {
    name: "Message",
    schema: || object([("text", string("The message"))], &["text"]),
};

#[derive(Serialize)]
pub struct Message {
    text: &'static str,
}

/// `GET /api/messages/public`: anyone.
pub async fn public() -> Json<Message> {
    Json(Message {
        text: "This is a public message.",
    })
}

/// `GET /api/messages/protected`: any valid access token.
pub async fn protected(_: Authenticated) -> Json<Message> {
    Json(Message {
        text: "This is a protected message.",
    })
}

/// `GET /api/messages/admin`: a valid token granting `read:admin-messages` (see its policy).
pub async fn admin(_: Authenticated) -> Json<Message> {
    Json(Message {
        text: "This is an admin message.",
    })
}
