//! The configuration as the files and variables spell it, before any check.

use serde::Deserialize;

use super::DevClient;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) server: RawServer,
    pub(super) cors: RawCors,
    pub(super) auth: RawAuth,
    pub(super) jwks: RawJwks,
    pub(super) metrics: RawMetrics,
    pub(super) cache: RawCache,
    pub(super) docs: RawDocs,
    pub(super) dev_issuer: RawDevIssuer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocs {
    pub(super) enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub(super) enabled: bool,
    pub(super) max_entries: i64,
    pub(super) max_bytes: i64,
    pub(super) ttl_secs: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) enabled: bool,
    pub(super) address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDevIssuer {
    pub(super) enabled: bool,
    pub(super) port: i64,
    pub(super) audience: String,
    pub(super) token_lifetime_secs: f64,
    pub(super) key_file: String,
    pub(super) clients: Vec<DevClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) host: String,
    pub(super) port: i64,
    pub(super) workers: i64,
    pub(super) shutdown_timeout_secs: f64,
    pub(super) drain_secs: f64,
    pub(super) max_header_bytes: i64,
    pub(super) public_url: String,
    pub(super) trust_forwarded_headers: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    pub(super) client_origin_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) domain: String,
    pub(super) audience: String,
    pub(super) issuer: String,
    pub(super) issuers: Vec<String>,
    pub(super) jwks_uri: String,
    pub(super) audience_claim: String,
    pub(super) required_claims: Vec<String>,
    pub(super) permissions_claim: String,
    pub(super) admin_permission: String,
    pub(super) profile: String,
    pub(super) algorithms: Vec<String>,
    pub(super) leeway_secs: i64,
    pub(super) max_token_bytes: i64,
    pub(super) dpop: String,
    pub(super) dpop_algorithms: Vec<String>,
    pub(super) dpop_proof_max_age_secs: f64,
    pub(super) dpop_proof_max_future_secs: f64,
    pub(super) dpop_replay_capacity: i64,
    pub(super) dpop_nonce: bool,
    pub(super) dpop_nonce_key: String,
    pub(super) dpop_nonce_key_file: String,
    pub(super) dpop_nonce_rotation_secs: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwks {
    pub(super) refresh_interval_secs: f64,
    pub(super) fetch_timeout_secs: f64,
    pub(super) max_response_bytes: i64,
    pub(super) unknown_kid_cooldown_secs: f64,
    pub(super) retry_initial_secs: f64,
    pub(super) retry_max_secs: f64,
    pub(super) max_stale_secs: f64,
    pub(super) min_refresh_interval_secs: f64,
    pub(super) max_refresh_interval_secs: f64,
}
