//! Bearer-token authentication: header parsing, token validation, the signing-key store and
//! the request extractors that put them together.

pub mod bearer;
pub mod cache;
pub mod claims;
pub mod extractor;
pub mod json;
pub mod keys;
pub mod store;
pub mod validator;
