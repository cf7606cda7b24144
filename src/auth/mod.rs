//! Access-token authentication (bearer and DPoP): header parsing, token validation, the signing-key store, the
//! route policies and the request extractor that put them together.

pub mod authenticator;
pub mod bearer;
pub mod cache;
pub mod claims;
pub mod discovery;
pub mod dpop;
pub mod extractor;
pub mod fetch;
pub mod front;
pub mod json;
pub mod keys;
pub mod policy;
pub mod refresh;
pub mod store;
pub mod validator;
