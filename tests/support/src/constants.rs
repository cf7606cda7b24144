//! The values the tests and the API's test configuration agree on.

/// The API's audience in every test configuration.
pub const AUDIENCE: &str = "https://hello-world.example.com";

/// The origin of the single-page application the API allows (the configured default).
pub const SPA_ORIGIN: &str = "http://localhost:4040";

/// The permission the admin route requires.
pub const ADMIN_PERMISSION: &str = "read:admin-messages";

/// An issuer URL nothing is asked for: for validation without HTTP, where keys come from an
/// `Issuer` in process.
pub const OFFLINE_ISSUER: &str = "https://issuer.example.com/";
