//! What a route declaration is: its method, path, policy, answers and handler. The table of
//! them is [`crate::routes::ROUTES`]; registration ([`crate::routes`]) and the description
//! ([`crate::openapi`]) both read it, so this module sits below both.

use actix_web::http::Method;
use utoipa::openapi::schema::Schema;

use crate::auth::policy::Policy;

/// One route: what it answers, who may call it, and the handler.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub policy: Policy,
    /// One line for the API's description.
    pub summary: &'static str,
    /// What the handler itself answers, for the API's description. The policy's refusals
    /// (401, 403, 503) and the framework's (404, 405, 431) are added there from the policy.
    pub answers: &'static [Answer],
    /// Attaches the handler: `|route| route.to(handler)`.
    pub handler: fn(actix_web::Route) -> actix_web::Route,
}

/// One answer of a handler: its status, what it means, and its JSON body.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub body: Body,
}

impl Answer {
    /// A 200 answer with this body.
    pub const fn ok(description: &'static str, body: Body) -> Self {
        Answer {
            status: 200,
            description,
            body,
        }
    }
}

/// A JSON body as the API's description names it: a reusable schema under `name`.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    /// The name of its schema among the description's components (`#/components/schemas/…`).
    pub name: &'static str,
    pub schema: fn() -> Schema,
}
