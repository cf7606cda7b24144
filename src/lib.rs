//! Auth0's "Hello World API" in Actix-web: public, protected and admin messages behind
//! RS256 access tokens verified against the issuer's JWKS.

// Tests may unwrap; the server itself may not (see `[lints]` in Cargo.toml).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod clock;
pub mod error;
pub mod host;
pub mod issuer;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod route;
pub mod routes;
pub mod settings;
pub mod startup;
