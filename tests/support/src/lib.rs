//! What every test crate and bench of hello-world-api shares: loopback ports, the binary as a
//! child process, issuers on port 0, the suite's keys, token and claims builders, constants,
//! the in-process API, and the wrk load runner.
//!
//! Only integration tests and benches may use it: it links the API's library as a dependency,
//! which unit tests inside `src/` would see as a second, different copy of their own crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod config;
mod constants;
mod http;
mod issuer;
mod keys;
pub mod load;
mod ports;
mod process;
mod time;
mod tokens;

pub use app::{TestApp, TestAppBuilder, metric, scrape, spawn_app};
pub use config::settings;
pub use constants::{ADMIN_PERMISSION, AUDIENCE, OFFLINE_ISSUER, SPA_ORIGIN};
pub use http::{Reply, assert_bad_credentials, raw_get, reply, send};
pub use issuer::{serve_issuer, spawn_issuer, spawn_issuer_at};
pub use keys::{key, key_as};
pub use ports::{free_port, wait_for_port};
pub use process::{Binary, Running, empty_dir};
pub use time::now;
pub use tokens::{admin_claims, b64, forge, header_json, subject_claims, tokens, user_claims};
