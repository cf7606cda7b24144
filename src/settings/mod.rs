//! Configuration: layered files and environment variables in, validated [`Settings`] out.
//!
//! Sources, lowest precedence first:
//! 1. `config/default.toml` — every key, with a comment and a safe default;
//! 2. `config/{APP_ENV}.toml` — `APP_ENV` is `local` (the default) or `production`;
//! 3. the Auth0 samples' flat names: `HOST`, `PORT`, `CLIENT_ORIGIN_URL`, `AUTH0_DOMAIN`,
//!    `AUTH0_AUDIENCE`, `AUTH0_ISSUER`, `AUTH0_JWKS_URI`, and below them the names of Auth0's
//!    Node SDK, `ISSUER_BASE_URL` and `AUDIENCE` (from the process or `.env`);
//! 4. `APP__SECTION__KEY` variables, e.g. `APP__JWKS__REFRESH_INTERVAL_SECS=60`; lists are
//!    comma-separated (`APP__AUTH__ALGORITHMS=RS256,PS256`).
//!
//! Empty variables count as unset. Loading is a pure function of a config directory and an
//! environment map, so tests never touch the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use derive_more::{Display, Error};
use jsonwebtoken::Algorithm;
use serde::Deserialize;

mod auth;
mod checks;
mod dpop;
mod raw;
mod values;
mod variables;

use raw::Raw;

/// The flat variable names and the keys they set, highest precedence first: the names of
/// Auth0's samples, then those of Auth0's Node SDK (express-oauth2-jwt-bearer).
pub const FLAT_NAMES: &[(&str, &str)] = &[
    ("HOST", "server.host"),
    ("PORT", "server.port"),
    ("CLIENT_ORIGIN_URL", "cors.client_origin_url"),
    ("AUTH0_DOMAIN", "auth.domain"),
    ("AUTH0_AUDIENCE", "auth.audience"),
    ("AUTH0_ISSUER", "auth.issuer"),
    ("AUTH0_JWKS_URI", "auth.jwks_uri"),
    ("ISSUER_BASE_URL", "auth.issuer"),
    ("AUDIENCE", "auth.audience"),
];

/// Which profile's file is layered over `default.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display)]
pub enum Environment {
    #[display("local")]
    Local,
    #[display("production")]
    Production,
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub cors: CorsSettings,
    pub auth: AuthSettings,
    pub jwks: JwksSettings,
    pub metrics: MetricsSettings,
    pub cache: CacheSettings,
    pub docs: DocsSettings,
    /// The development issuer to start, when this is a local run with no issuer configured.
    pub dev_issuer: Option<DevIssuerSettings>,
    /// What looked wrong but is not fatal (a variable we do not read), to be logged.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: String,
    /// 0 asks the OS for a free port (tests use this).
    pub port: u16,
    /// HTTP worker threads; never 0.
    pub workers: usize,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// After SIGTERM/SIGINT, how long `/readyz` answers 503 before the listener closes.
    pub drain: Duration,
    /// Requests with more header bytes (names and values) are refused with 431.
    pub max_header_bytes: usize,
    /// How clients reach this server (`scheme://host[:port]`), for a DPoP proof's `htu`.
    pub public_url: Option<String>,
    /// Whether `X-Forwarded-Proto` and `X-Forwarded-Host` name the request's URL.
    pub trust_forwarded_headers: bool,
}

/// The verified-token cache.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub enabled: bool,
    pub max_entries: u64,
    /// Bound on the memory of all entries, each weighed by its token and claims size.
    pub max_bytes: u64,
    /// No entry lives longer, whatever its token's `exp`.
    pub ttl: Duration,
}

/// The API's OpenAPI description at `GET /openapi.json`.
#[derive(Debug, Clone)]
pub struct DocsSettings {
    /// Whether it is served (404 otherwise).
    pub enabled: bool,
    /// The token endpoint it announces for the client-credentials flow.
    pub token_endpoint: TokenEndpoint,
}

/// Where a client gets a token: `{issuer}/oauth/token`, Auth0's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// The development issuer's, or an Auth0 tenant's (`auth.domain`).
    Known(String),
    /// Another issuer's, assumed to follow Auth0's layout: a placeholder until its discovery
    /// document names the real one.
    Assumed(String),
    /// The `token_endpoint` of the issuer's discovery document (found at run time).
    Discovered(String),
}

impl TokenEndpoint {
    pub fn url(&self) -> &str {
        match self {
            TokenEndpoint::Known(url)
            | TokenEndpoint::Assumed(url)
            | TokenEndpoint::Discovered(url) => url,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// `None` when metrics are switched off.
    pub address: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct CorsSettings {
    /// The single allowed origin, normalised to `scheme://host[:port]`.
    pub allowed_origin: String,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The issuers whose tokens are accepted; never empty.
    pub issuers: Vec<IssuerSettings>,
    /// A token must carry at least one of these in `audience_claim`; never empty.
    pub audiences: Vec<String>,
    /// The top-level claim holding the audience: `aud`, or e.g. `client_id` (Cognito).
    pub audience_claim: String,
    /// Claims that must be present with exactly this string value.
    pub required_claims: Vec<(String, String)>,
    /// Where the permissions are: an RFC 6901 JSON Pointer into the claims.
    pub permissions_claim: String,
    /// What `/api/messages/admin` requires.
    pub admin_permission: String,
    pub profile: Profile,
    /// Accepted signature algorithms; never empty, never HMAC.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Longer bearer tokens are refused before any decoding.
    pub max_token_bytes: usize,
    pub dpop: DpopSettings,
}

/// DPoP (RFC 9449): which tokens are accepted, and how proofs are checked.
#[derive(Debug, Clone)]
pub struct DpopSettings {
    pub mode: DpopMode,
    /// Algorithms a proof may use; never empty, never HMAC.
    pub algorithms: Vec<Algorithm>,
    /// How old a proof's `iat` may be.
    pub max_age: Duration,
    /// How far in the future a proof's `iat` may be.
    pub max_future: Duration,
    /// Proofs remembered against replay at most.
    pub replay_capacity: usize,
    /// Server-provided nonces, when on.
    pub nonce: Option<NonceSettings>,
}

impl Default for DpopSettings {
    /// The defaults of `config/default.toml`.
    fn default() -> Self {
        Self {
            mode: DpopMode::Allowed,
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::EdDSA,
            ],
            max_age: Duration::from_secs(300),
            max_future: Duration::from_secs(30),
            replay_capacity: 500_000,
            nonce: None,
        }
    }
}

/// Whether tokens may, must or must not be DPoP-bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display)]
pub enum DpopMode {
    #[display("allowed")]
    Allowed,
    #[display("required")]
    Required,
    #[display("disabled")]
    Disabled,
}

/// Stateless DPoP nonces: derived from the time window and this key.
#[derive(Clone)]
pub struct NonceSettings {
    pub key: [u8; 32],
    /// How long a nonce is current (it is accepted one period more).
    pub rotation: Duration,
}

impl std::fmt::Debug for NonceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSettings")
            .field("key", &"<redacted>")
            .field("rotation", &self.rotation)
            .finish()
    }
}

impl AuthSettings {
    /// The first (usually the only) issuer.
    pub fn issuer(&self) -> &str {
        self.issuers.first().map_or("", |i| i.issuer.as_str())
    }

    /// The first issuer's configured JWKS URL; empty when its keys are found by discovery.
    pub fn jwks_uri(&self) -> &str {
        match self.issuers.first().map(|i| &i.keys) {
            Some(KeySource::Jwks(uri)) => uri,
            _ => "",
        }
    }

    /// The audiences, comma-separated as configured.
    pub fn audience(&self) -> String {
        self.audiences.join(",")
    }
}

/// One trusted issuer and where its keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// The exact `iss` its tokens carry.
    pub issuer: String,
    pub keys: KeySource,
    /// Whether URLs found by discovery must be `https` (production, except loopback).
    pub require_https: bool,
}

/// Where an issuer's signing keys are fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A configured JWKS URL (or one derived from an Auth0 domain).
    Jwks(String),
    /// The `jwks_uri` of the issuer's metadata (OpenID Connect discovery, else RFC 8414).
    Discovery,
}

/// Which claims an access token must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display)]
pub enum Profile {
    /// `iss`, `aud`, `exp`; `typ` absent, `JWT` or `at+jwt`.
    #[display("auth0")]
    Auth0,
    /// RFC 9068: `typ` `at+jwt`, and `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`.
    #[display("rfc9068")]
    Rfc9068,
}

#[derive(Debug, Clone)]
pub struct JwksSettings {
    pub refresh_interval: Duration,
    pub fetch_timeout: Duration,
    pub max_response_bytes: usize,
    /// Minimum time between two refreshes caused by an unknown `kid`, counted from the last attempt.
    pub unknown_kid_cooldown: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Keys are used at most this long after the last successful fetch.
    pub max_stale: Duration,
    /// Bounds for a `Cache-Control: max-age` the issuer sends.
    pub min_refresh_interval: Duration,
    pub max_refresh_interval: Duration,
}

/// The development issuer: a stand-in for an Auth0 tenant on loopback.
#[derive(Debug, Clone)]
pub struct DevIssuerSettings {
    /// Listens on `127.0.0.1:{port}` only.
    pub port: u16,
    /// `http://localhost:{port}/`: the `iss` of its tokens.
    pub issuer_url: String,
    /// The `aud` of its tokens (the API's audience).
    pub audience: String,
    pub token_lifetime: Duration,
    /// Its RSA signing key (PKCS#8 PEM), created on first start.
    pub key_file: PathBuf,
    pub clients: Vec<DevClient>,
}

/// A client the development issuer gives tokens to with the `client_credentials` grant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevClient {
    pub client_id: String,
    pub client_secret: String,
    /// Copied into the `permissions` claim of its tokens.
    pub permissions: Vec<String>,
}

/// A configuration problem, printed as one line naming the key.
#[derive(Debug, Display, Error, PartialEq, Eq)]
#[display("{key}: {problem}")]
pub struct SettingsError {
    #[error(not(source))]
    pub key: String,
    #[error(not(source))]
    pub problem: String,
}

impl SettingsError {
    fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            key: describe_key(key),
            problem: problem.into(),
        }
    }
}

/// `auth.audience (AUTH0_AUDIENCE or APP__AUTH__AUDIENCE)`: the key, its Auth0 sample name
/// (the first of [`FLAT_NAMES`] that sets it) and its scoped variable.
pub fn describe_key(key: &str) -> String {
    let scoped = format!("APP__{}", key.replace('.', "__").to_uppercase());
    match FLAT_NAMES.iter().find(|(_, k)| *k == key) {
        Some((flat, _)) => format!("{key} ({flat} or {scoped})"),
        None if key.contains('.') => format!("{key} ({scoped})"),
        None => key.to_owned(),
    }
}

/// Loads and validates the settings from `config_dir` and the variables in `env`.
pub fn load(config_dir: &Path, env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
    let environment = match env.get("APP_ENV").map(|s| s.trim()) {
        None | Some("") | Some("local") => Environment::Local,
        Some("production") => Environment::Production,
        Some(other) => {
            return Err(SettingsError::new(
                "APP_ENV",
                format!("unknown environment {other:?}; use \"local\" or \"production\""),
            ));
        }
    };

    let default_file = config_dir.join("default.toml");
    if !default_file.is_file() {
        return Err(SettingsError::new(
            "config",
            format!("{} not found (set APP_CONFIG_DIR)", default_file.display()),
        ));
    }
    // A variable that looks meant for us but is not ours: an APP__ one would be refused below
    // naming a key; say which variable, and what it was probably meant to be.
    let known = variables::known(&default_file);
    let mut warnings = Vec::new();
    for (name, suggestion) in variables::unknown(env, &known) {
        let hint = suggestion.map_or_else(String::new, |s| format!("; did you mean {s}?"));
        if name.starts_with("APP__") {
            return Err(SettingsError {
                key: name.to_owned(),
                problem: format!("not a setting{hint}"),
            });
        }
        warnings.push(format!(
            "{name} is not a variable this service reads, and is ignored{hint}"
        ));
    }
    // The first name set (and not empty) wins for its key: FLAT_NAMES is in precedence order.
    let mut flat: config::Map<String, String> = config::Map::new();
    for (name, key) in FLAT_NAMES {
        if let Some(value) = env.get(*name).filter(|v| !v.trim().is_empty()) {
            flat.entry(key.replace('.', "__"))
                .or_insert_with(|| value.clone());
        }
    }
    let scoped: config::Map<String, String> = env
        .iter()
        .filter(|(name, _)| name.starts_with("APP__"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();

    let raw: Raw = config::Config::builder()
        .add_source(config::File::from(default_file))
        .add_source(
            config::File::from(config_dir.join(format!("{environment}.toml"))).required(false),
        )
        .add_source(
            config::Environment::default()
                .separator("__")
                .ignore_empty(true)
                .source(Some(flat)),
        )
        .add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .ignore_empty(true)
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("auth.algorithms")
                .with_list_parse_key("auth.dpop_algorithms")
                .with_list_parse_key("auth.issuers")
                .with_list_parse_key("auth.required_claims")
                .source(Some(scoped)),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|error| match error {
            // A value of the wrong type: name the variable that set it, else the key.
            config::ConfigError::Type {
                key: Some(key),
                unexpected,
                expected,
                ..
            } => SettingsError {
                key: variables::setter(&key, env)
                    .map_or_else(|| describe_key(&key), |name| format!("{name} ({key})")),
                problem: format!("{unexpected} is not {expected}"),
            },
            other => SettingsError {
                key: "config".to_owned(),
                problem: one_line(&other.to_string()),
            },
        })?;

    let mut settings = checks::validate(environment, raw)?;
    settings.warnings = warnings;
    Ok(settings)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
