//! HTTP-level tests: the API and a real token issuer on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod cache;
mod contract;
mod cors_and_headers;
mod dev_issuer;
mod docs_page;
mod dpop;
mod hostile;
mod key_refresh;
mod openapi;
mod operations;
mod properties;
mod providers;
mod routes;
mod trust;
mod validation;

/// The binary Cargo built for these tests.
const BINARY: test_support::Binary = test_support::binary!();
