//! Configuration: layered files and environment variables in, validated [`Settings`] out.
//!
//! Sources, lowest precedence first:
//! 1. `config/default.toml` — every key, with a comment and a safe default;
//! 2. `config/{APP_ENV}.toml` — `APP_ENV` is `local` (the default) or `production`;
//! 3. the Auth0 samples' flat names: `HOST`, `PORT`, `CLIENT_ORIGIN_URL`, `AUTH0_DOMAIN`,
//!    `AUTH0_AUDIENCE`, `AUTH0_ISSUER`, `AUTH0_JWKS_URI` (from the process or `.env`);
//! 4. `APP__SECTION__KEY` variables, e.g. `APP__JWKS__REFRESH_INTERVAL_SECS=60`; lists are
//!    comma-separated (`APP__AUTH__ALGORITHMS=RS256,PS256`).
//!
//! Empty variables count as unset. Loading is a pure function of a config directory and an
//! environment map, so tests never touch the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::http::Uri;
use derive_more::{Display, Error};
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;

use crate::issuer::Client;

/// The flat variable names of Auth0's samples and the keys they set.
pub const FLAT_NAMES: &[(&str, &str)] = &[
    ("HOST", "server.host"),
    ("PORT", "server.port"),
    ("CLIENT_ORIGIN_URL", "cors.client_origin_url"),
    ("AUTH0_DOMAIN", "auth.domain"),
    ("AUTH0_AUDIENCE", "auth.audience"),
    ("AUTH0_ISSUER", "auth.issuer"),
    ("AUTH0_JWKS_URI", "auth.jwks_uri"),
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
    /// The development issuer to start, when this is a local run with no issuer configured.
    pub dev_issuer: Option<DevIssuerSettings>,
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
    /// Requests with more header bytes (names and values) are refused with 431.
    pub max_header_bytes: usize,
}

/// The verified-token cache.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub enabled: bool,
    pub max_entries: u64,
    /// No entry lives longer, whatever its token's `exp`.
    pub ttl: Duration,
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
    /// The exact `iss` tokens must carry.
    pub issuer: String,
    /// The `aud` tokens must contain.
    pub audience: String,
    /// Where the signing keys are fetched from.
    pub jwks_uri: String,
    /// Accepted signature algorithms; never empty, never HMAC.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Longer bearer tokens are refused before any decoding.
    pub max_token_bytes: usize,
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
    pub clients: Vec<Client>,
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

/// `auth.audience (AUTH0_AUDIENCE or APP__AUTH__AUDIENCE)`: the key and every variable that sets it.
pub fn describe_key(key: &str) -> String {
    let scoped = format!("APP__{}", key.replace('.', "__").to_uppercase());
    match FLAT_NAMES.iter().find(|(_, k)| *k == key) {
        Some((flat, _)) => format!("{key} ({flat} or {scoped})"),
        None if key.contains('.') => format!("{key} ({scoped})"),
        None => key.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    server: RawServer,
    cors: RawCors,
    auth: RawAuth,
    jwks: RawJwks,
    metrics: RawMetrics,
    cache: RawCache,
    dev_issuer: RawDevIssuer,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    enabled: bool,
    max_entries: i64,
    ttl_secs: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    enabled: bool,
    address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevIssuer {
    enabled: bool,
    port: i64,
    audience: String,
    token_lifetime_secs: f64,
    key_file: String,
    clients: Vec<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    client_id: String,
    client_secret: String,
    permissions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: String,
    port: i64,
    workers: i64,
    shutdown_timeout_secs: f64,
    max_header_bytes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCors {
    client_origin_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    domain: String,
    audience: String,
    issuer: String,
    jwks_uri: String,
    algorithms: Vec<String>,
    leeway_secs: i64,
    max_token_bytes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwks {
    refresh_interval_secs: f64,
    fetch_timeout_secs: f64,
    max_response_bytes: i64,
    unknown_kid_cooldown_secs: f64,
    retry_initial_secs: f64,
    retry_max_secs: f64,
    max_stale_secs: f64,
    min_refresh_interval_secs: f64,
    max_refresh_interval_secs: f64,
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
    let flat: config::Map<String, String> = FLAT_NAMES
        .iter()
        .filter_map(|(name, key)| {
            let value = env.get(*name)?;
            Some((key.replace('.', "__"), value.clone()))
        })
        .collect();
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
                .source(Some(scoped)),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| SettingsError {
            key: "config".to_owned(),
            problem: one_line(&e.to_string()),
        })?;

    validate(environment, raw)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn validate(environment: Environment, raw: Raw) -> Result<Settings, SettingsError> {
    let server = ServerSettings {
        host: non_empty("server.host", &raw.server.host)?.to_owned(),
        port: u16::try_from(raw.server.port).map_err(|_| {
            SettingsError::new(
                "server.port",
                format!("{} is out of range (0 to 65535)", raw.server.port),
            )
        })?,
        workers: match raw.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => usize::try_from(n).map_err(|_| {
                SettingsError::new("server.workers", "must be 0 (one per core) or more")
            })?,
        },
        shutdown_timeout: seconds_or_zero(
            "server.shutdown_timeout_secs",
            raw.server.shutdown_timeout_secs,
        )?,
        max_header_bytes: at_most(
            "server.max_header_bytes",
            positive("server.max_header_bytes", raw.server.max_header_bytes)?,
            64 << 10,
        )?,
    };
    let metrics = MetricsSettings {
        address: if raw.metrics.enabled {
            Some(raw.metrics.address.trim().parse().map_err(|_| {
                SettingsError::new(
                    "metrics.address",
                    format!("{:?} is not an IP:port address", raw.metrics.address),
                )
            })?)
        } else {
            None
        },
    };

    let cors = CorsSettings {
        allowed_origin: origin("cors.client_origin_url", &raw.cors.client_origin_url)?,
    };

    let dev_issuer = dev_issuer(environment, &raw.auth, raw.dev_issuer)?;
    let mut raw_auth = raw.auth;
    if let Some(dev) = &dev_issuer {
        raw_auth.issuer = dev.issuer_url.clone();
        if raw_auth.jwks_uri.trim().is_empty() {
            // Fetched over loopback by address: no name resolution, no IPv6 surprise.
            raw_auth.jwks_uri = format!("http://127.0.0.1:{}/.well-known/jwks.json", dev.port);
        }
        if raw_auth.audience.trim().is_empty() {
            raw_auth.audience = dev.audience.clone();
        }
    }
    let auth = validate_auth(raw_auth)?;
    let dev_issuer = dev_issuer.map(|dev| DevIssuerSettings {
        audience: auth.audience.clone(),
        ..dev
    });
    let jwks = JwksSettings {
        refresh_interval: seconds("jwks.refresh_interval_secs", raw.jwks.refresh_interval_secs)?,
        fetch_timeout: seconds("jwks.fetch_timeout_secs", raw.jwks.fetch_timeout_secs)?,
        max_response_bytes: at_most(
            "jwks.max_response_bytes",
            positive("jwks.max_response_bytes", raw.jwks.max_response_bytes)?,
            64 << 20,
        )?,
        unknown_kid_cooldown: seconds_or_zero(
            "jwks.unknown_kid_cooldown_secs",
            raw.jwks.unknown_kid_cooldown_secs,
        )?,
        retry_initial: seconds("jwks.retry_initial_secs", raw.jwks.retry_initial_secs)?,
        retry_max: seconds("jwks.retry_max_secs", raw.jwks.retry_max_secs)?,
        max_stale: seconds("jwks.max_stale_secs", raw.jwks.max_stale_secs)?,
        min_refresh_interval: seconds(
            "jwks.min_refresh_interval_secs",
            raw.jwks.min_refresh_interval_secs,
        )?,
        max_refresh_interval: seconds(
            "jwks.max_refresh_interval_secs",
            raw.jwks.max_refresh_interval_secs,
        )?,
    };
    let cache = CacheSettings {
        enabled: raw.cache.enabled,
        max_entries: at_most(
            "cache.max_entries",
            positive("cache.max_entries", raw.cache.max_entries)?,
            10_000_000,
        )? as u64,
        ttl: seconds("cache.ttl_secs", raw.cache.ttl_secs)?,
    };
    // Keys must be refetched well within the time they may be used, or they would go stale
    // (and /readyz fail) between two healthy fetches.
    for (key, interval) in [
        ("jwks.refresh_interval_secs", jwks.refresh_interval),
        ("jwks.max_refresh_interval_secs", jwks.max_refresh_interval),
    ] {
        if interval > jwks.max_stale / 2 {
            return Err(SettingsError::new(
                key,
                "must be at most half of jwks.max_stale_secs",
            ));
        }
    }
    if jwks.max_refresh_interval < jwks.min_refresh_interval {
        return Err(SettingsError::new(
            "jwks.max_refresh_interval_secs",
            "must not be smaller than jwks.min_refresh_interval_secs",
        ));
    }
    if jwks.retry_max < jwks.retry_initial {
        return Err(SettingsError::new(
            "jwks.retry_max_secs",
            "must not be smaller than jwks.retry_initial_secs",
        ));
    }

    Ok(Settings {
        environment,
        server,
        cors,
        auth,
        jwks,
        metrics,
        cache,
        dev_issuer,
    })
}

/// The development issuer runs only in the local profile, only when enabled, and only when no
/// real issuer (`auth.domain` or `auth.issuer`) is configured. Production never runs it.
fn dev_issuer(
    environment: Environment,
    auth: &RawAuth,
    raw: RawDevIssuer,
) -> Result<Option<DevIssuerSettings>, SettingsError> {
    let issuer_configured = !auth.domain.trim().is_empty() || !auth.issuer.trim().is_empty();
    if environment != Environment::Local || !raw.enabled || issuer_configured {
        return Ok(None);
    }
    let port = u16::try_from(raw.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            SettingsError::new(
                "dev_issuer.port",
                format!("{} is not a port (1 to 65535)", raw.port),
            )
        })?;
    if raw.clients.is_empty() {
        return Err(SettingsError::new("dev_issuer.clients", "lists no client"));
    }
    let mut clients: Vec<Client> = Vec::with_capacity(raw.clients.len());
    for client in raw.clients {
        if client.client_id.is_empty() || client.client_secret.is_empty() {
            return Err(SettingsError::new(
                "dev_issuer.clients",
                "every client needs a client_id and a client_secret",
            ));
        }
        if clients.iter().any(|c| c.client_id == client.client_id) {
            return Err(SettingsError::new(
                "dev_issuer.clients",
                format!("client_id {:?} appears twice", client.client_id),
            ));
        }
        clients.push(Client {
            client_id: client.client_id,
            client_secret: client.client_secret,
            permissions: client.permissions,
        });
    }
    Ok(Some(DevIssuerSettings {
        port,
        issuer_url: format!("http://localhost:{port}/"),
        audience: non_empty("dev_issuer.audience", &raw.audience)?.to_owned(),
        token_lifetime: seconds("dev_issuer.token_lifetime_secs", raw.token_lifetime_secs)?,
        key_file: PathBuf::from(non_empty("dev_issuer.key_file", &raw.key_file)?),
        clients,
    }))
}

fn validate_auth(raw: RawAuth) -> Result<AuthSettings, SettingsError> {
    let audience = raw.audience.trim();
    if audience.is_empty() {
        return Err(SettingsError::new(
            "auth.audience",
            "is required: set it to your API identifier (the audience tokens are issued for)",
        ));
    }

    let issuer = match (raw.issuer.trim(), raw.domain.trim()) {
        ("", "") => {
            return Err(SettingsError::new(
                "auth.domain",
                "is required: set AUTH0_DOMAIN to your tenant (e.g. example.us.auth0.com) \
                 or AUTH0_ISSUER to the full issuer URL",
            ));
        }
        ("", domain) => {
            let url = format!("https://{domain}/");
            let parsed = url.parse::<Uri>().ok();
            let bare = !domain.contains("://")
                && !domain.contains('/')
                && !domain.contains('@')
                && parsed.as_ref().is_some_and(|u| u.path() == "/");
            if !bare {
                return Err(SettingsError::new(
                    "auth.domain",
                    format!("{domain:?} is not a bare host name like example.us.auth0.com"),
                ));
            }
            url
        }
        (issuer, _) => {
            http_url("auth.issuer", issuer)?;
            issuer.to_owned()
        }
    };

    let jwks_uri = match raw.jwks_uri.trim() {
        "" if issuer.ends_with('/') => format!("{issuer}.well-known/jwks.json"),
        "" => format!("{issuer}/.well-known/jwks.json"),
        uri => uri.to_owned(),
    };
    http_url("auth.jwks_uri", &jwks_uri)?;

    if raw.algorithms.is_empty() {
        return Err(SettingsError::new(
            "auth.algorithms",
            "must list at least one algorithm",
        ));
    }
    let mut algorithms = Vec::with_capacity(raw.algorithms.len());
    for name in &raw.algorithms {
        let name = name.trim();
        let algorithm = name.parse::<Algorithm>().map_err(|_| {
            SettingsError::new(
                "auth.algorithms",
                format!("{name:?} is not a JWS signature algorithm"),
            )
        })?;
        if algorithm.family() == AlgorithmFamily::Hmac {
            return Err(SettingsError::new(
                "auth.algorithms",
                format!("{name} is a shared-secret algorithm and is never accepted for JWKS keys"),
            ));
        }
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }

    let leeway = u64::try_from(raw.leeway_secs)
        .ok()
        .filter(|s| *s <= 300)
        .ok_or_else(|| {
            SettingsError::new("auth.leeway_secs", "must be between 0 and 300 seconds")
        })?;
    let max_token_bytes = at_most(
        "auth.max_token_bytes",
        positive("auth.max_token_bytes", raw.max_token_bytes)?,
        64 << 10,
    )?;

    Ok(AuthSettings {
        issuer,
        audience: audience.to_owned(),
        jwks_uri,
        algorithms,
        leeway: Duration::from_secs(leeway),
        max_token_bytes,
    })
}

fn non_empty<'a>(key: &str, value: &'a str) -> Result<&'a str, SettingsError> {
    match value.trim() {
        "" => Err(SettingsError::new(key, "must not be empty")),
        v => Ok(v),
    }
}

fn positive(key: &str, value: i64) -> Result<usize, SettingsError> {
    usize::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| SettingsError::new(key, format!("{value} must be a positive number")))
}

fn at_most(key: &str, value: usize, max: usize) -> Result<usize, SettingsError> {
    if value > max {
        return Err(SettingsError::new(
            key,
            format!("{value} is more than {max}"),
        ));
    }
    Ok(value)
}

fn seconds(key: &str, value: f64) -> Result<Duration, SettingsError> {
    seconds_or_zero(key, value).and_then(|d| {
        if d.is_zero() {
            Err(SettingsError::new(key, "must be more than 0 seconds"))
        } else {
            Ok(d)
        }
    })
}

/// Every duration is bounded, so no deadline computed from one can overflow.
const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

fn seconds_or_zero(key: &str, value: f64) -> Result<Duration, SettingsError> {
    if !(0.0..=MAX_SECONDS).contains(&value) {
        return Err(SettingsError::new(
            key,
            format!("{value} is not a number of seconds between 0 and {MAX_SECONDS}"),
        ));
    }
    Duration::try_from_secs_f64(value)
        .map_err(|_| SettingsError::new(key, format!("{value} is not a number of seconds")))
}

/// An absolute `http` or `https` URL with a host and no credentials.
fn http_url(key: &str, value: &str) -> Result<Uri, SettingsError> {
    let invalid = || SettingsError::new(key, format!("{value:?} is not an http(s) URL"));
    let uri = value.parse::<Uri>().map_err(|_| invalid())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let host_ok = uri
        .authority()
        .is_some_and(|a| !a.host().is_empty() && !a.as_str().contains('@'));
    if scheme_ok && host_ok {
        Ok(uri)
    } else {
        Err(invalid())
    }
}

/// A browser origin (`scheme://host[:port]`), accepting one trailing slash.
fn origin(key: &str, value: &str) -> Result<String, SettingsError> {
    let uri = http_url(key, value.trim())?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(SettingsError::new(
            key,
            format!("{value:?} is not an origin: use scheme://host[:port] without a path"),
        ));
    }
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    Ok(format!("{scheme}://{authority}").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AUTH0_DOMAIN", "example.us.auth0.com"),
            ("AUTH0_AUDIENCE", "https://hello-world.example.com"),
        ]
    }

    fn load_with(extra: &[(&'static str, &'static str)]) -> Result<Settings, SettingsError> {
        let mut pairs = minimal();
        pairs.extend_from_slice(extra);
        load(&config_dir(), &env(&pairs))
    }

    #[test]
    fn defaults_follow_the_auth0_samples() {
        let s = load_with(&[]).unwrap();
        assert_eq!(s.environment, Environment::Local);
        assert_eq!(s.server.port, 6060);
        assert_eq!(s.cors.allowed_origin, "http://localhost:4040");
        assert_eq!(s.auth.issuer, "https://example.us.auth0.com/");
        assert_eq!(
            s.auth.jwks_uri,
            "https://example.us.auth0.com/.well-known/jwks.json"
        );
        assert_eq!(s.auth.algorithms, vec![Algorithm::RS256]);
        assert!(s.auth.leeway <= Duration::from_secs(60));
        assert_eq!(s.auth.max_token_bytes, 8192);
        assert_eq!(s.jwks.refresh_interval, Duration::from_secs(600));
        assert_eq!(s.jwks.fetch_timeout, Duration::from_secs(5));
        assert_eq!(s.jwks.max_response_bytes, 1024 * 1024);
        assert_eq!(s.jwks.unknown_kid_cooldown, Duration::from_secs(30));
        assert!(s.jwks.retry_initial <= Duration::from_secs(10));
    }

    #[test]
    fn flat_names_set_their_keys() {
        let s = load_with(&[
            ("PORT", "7070"),
            ("HOST", "0.0.0.0"),
            ("CLIENT_ORIGIN_URL", "https://App.Example.com/"),
            ("AUTH0_ISSUER", "http://127.0.0.1:9000/"),
            ("AUTH0_JWKS_URI", "http://127.0.0.1:9000/keys"),
        ])
        .unwrap();
        assert_eq!(s.server.port, 7070);
        assert_eq!(s.server.host, "0.0.0.0");
        assert_eq!(s.cors.allowed_origin, "https://app.example.com");
        assert_eq!(s.auth.issuer, "http://127.0.0.1:9000/");
        assert_eq!(s.auth.jwks_uri, "http://127.0.0.1:9000/keys");
    }

    #[test]
    fn issuer_overrides_domain_and_derives_the_jwks_uri() {
        let s = load_with(&[("AUTH0_ISSUER", "http://127.0.0.1:9000/")]).unwrap();
        assert_eq!(s.auth.issuer, "http://127.0.0.1:9000/");
        assert_eq!(
            s.auth.jwks_uri,
            "http://127.0.0.1:9000/.well-known/jwks.json"
        );
    }

    #[test]
    fn scoped_variables_beat_flat_names_which_beat_files() {
        let s = load_with(&[("PORT", "7070")]).unwrap();
        assert_eq!(s.server.port, 7070, "flat name beats default.toml");
        let s = load_with(&[("PORT", "7070"), ("APP__SERVER__PORT", "8080")]).unwrap();
        assert_eq!(s.server.port, 8080, "APP__ beats the flat name");
        let s = load_with(&[("APP_ENV", "production")]).unwrap();
        assert_eq!(s.environment, Environment::Production);
        assert_eq!(
            s.server.host, "0.0.0.0",
            "production.toml beats default.toml"
        );
        let s = load_with(&[("APP_ENV", "production"), ("HOST", "127.0.0.2")]).unwrap();
        assert_eq!(
            s.server.host, "127.0.0.2",
            "a flat name beats production.toml"
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let s = load_with(&[("PORT", ""), ("AUTH0_ISSUER", "")]).unwrap();
        assert_eq!(s.server.port, 6060);
        assert_eq!(s.auth.issuer, "https://example.us.auth0.com/");
    }

    #[test]
    fn scoped_lists_and_durations_parse() {
        let s = load_with(&[
            ("APP__AUTH__ALGORITHMS", "RS256,PS256"),
            ("APP__JWKS__REFRESH_INTERVAL_SECS", "0.25"),
            ("APP__JWKS__UNKNOWN_KID_COOLDOWN_SECS", "0"),
        ])
        .unwrap();
        assert_eq!(s.auth.algorithms, vec![Algorithm::RS256, Algorithm::PS256]);
        assert_eq!(s.jwks.refresh_interval, Duration::from_millis(250));
        assert_eq!(s.jwks.unknown_kid_cooldown, Duration::ZERO);
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        load(&config_dir(), &env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn a_local_run_without_an_issuer_uses_the_development_issuer() {
        let s = load(&config_dir(), &env(&[])).unwrap();
        let dev = s.dev_issuer.expect("dev issuer in the local profile");
        assert_eq!(dev.port, 6061);
        assert_eq!(s.auth.issuer, "http://localhost:6061/");
        assert_eq!(
            s.auth.jwks_uri,
            "http://127.0.0.1:6061/.well-known/jwks.json"
        );
        assert_eq!(s.auth.audience, "https://hello-world.example.com");
        assert_eq!(dev.audience, s.auth.audience);
        assert!(
            dev.clients
                .iter()
                .any(|c| c.permissions.iter().any(|p| p == "read:admin-messages"))
        );
        assert!(dev.clients.iter().any(|c| c.permissions.is_empty()));
    }

    #[test]
    fn the_development_issuer_follows_its_port_and_the_audience() {
        let s = load(
            &config_dir(),
            &env(&[
                ("APP__DEV_ISSUER__PORT", "7001"),
                ("AUTH0_AUDIENCE", "https://api.local"),
            ]),
        )
        .unwrap();
        assert_eq!(s.auth.issuer, "http://localhost:7001/");
        assert_eq!(s.dev_issuer.unwrap().audience, "https://api.local");
    }

    #[test]
    fn a_configured_tenant_switches_the_development_issuer_off() {
        let s = load_with(&[]).unwrap();
        assert!(s.dev_issuer.is_none());
        let s = load(
            &config_dir(),
            &env(&[
                ("AUTH0_ISSUER", "http://127.0.0.1:9000/"),
                ("AUTH0_AUDIENCE", "x"),
            ]),
        )
        .unwrap();
        assert!(s.dev_issuer.is_none());
        assert_eq!(s.auth.issuer, "http://127.0.0.1:9000/");
    }

    #[test]
    fn production_never_starts_the_development_issuer() {
        let e = error_of(&[
            ("APP_ENV", "production"),
            ("APP__DEV_ISSUER__ENABLED", "true"),
        ]);
        assert!(
            e.starts_with("auth.audience") || e.starts_with("auth.domain"),
            "{e}"
        );
        let s = load(
            &config_dir(),
            &env(&[
                ("APP_ENV", "production"),
                ("APP__DEV_ISSUER__ENABLED", "true"),
                ("AUTH0_AUDIENCE", "x"),
                ("AUTH0_ISSUER", "https://issuer.example.com/"),
            ]),
        )
        .unwrap();
        assert!(s.dev_issuer.is_none());
    }

    #[test]
    fn the_development_issuer_can_be_switched_off() {
        let e = error_of(&[
            ("APP__DEV_ISSUER__ENABLED", "false"),
            ("AUTH0_AUDIENCE", "x"),
        ]);
        assert!(e.starts_with("auth.domain"), "{e}");
    }

    #[test]
    fn missing_audience_names_the_key() {
        let e = error_of(&[("AUTH0_DOMAIN", "example.us.auth0.com")]);
        assert!(
            e.starts_with("auth.audience (AUTH0_AUDIENCE or APP__AUTH__AUDIENCE): is required"),
            "{e}"
        );
    }

    #[test]
    fn missing_domain_and_issuer_names_the_key() {
        let e = error_of(&[("AUTH0_AUDIENCE", "x"), ("APP_ENV", "production")]);
        assert!(e.starts_with("auth.domain (AUTH0_DOMAIN"), "{e}");
    }

    #[test]
    fn domain_given_as_a_url_is_refused() {
        let e = load_with(&[("AUTH0_DOMAIN", "https://example.us.auth0.com/")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("auth.domain"), "{e}");
    }

    #[test]
    fn unparseable_urls_and_origins_name_their_keys() {
        for (var, value, key) in [
            ("AUTH0_ISSUER", "not a url", "auth.issuer"),
            ("AUTH0_ISSUER", "ftp://example.com/", "auth.issuer"),
            ("AUTH0_JWKS_URI", "/relative/jwks.json", "auth.jwks_uri"),
            (
                "CLIENT_ORIGIN_URL",
                "localhost:4040",
                "cors.client_origin_url",
            ),
            (
                "CLIENT_ORIGIN_URL",
                "http://localhost:4040/app",
                "cors.client_origin_url",
            ),
            (
                "CLIENT_ORIGIN_URL",
                "http://user@localhost:4040",
                "cors.client_origin_url",
            ),
        ] {
            let e = load_with(&[(var, value)]).unwrap_err().to_string();
            assert!(e.starts_with(key), "{var}={value}: {e}");
        }
    }

    #[test]
    fn port_out_of_range_names_the_key() {
        let e = load_with(&[("PORT", "70000")]).unwrap_err().to_string();
        assert_eq!(
            e,
            "server.port (PORT or APP__SERVER__PORT): 70000 is out of range (0 to 65535)"
        );
        let e = load_with(&[("PORT", "-1")]).unwrap_err().to_string();
        assert!(e.starts_with("server.port"), "{e}");
    }

    #[test]
    fn non_numeric_port_names_the_key_on_one_line() {
        let e = load_with(&[("PORT", "http")]).unwrap_err().to_string();
        assert!(e.contains("server.port"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn hmac_and_unknown_algorithms_are_refused() {
        for algs in ["HS256", "none", "RS256,HS512", ""] {
            let e = load_with(&[("APP__AUTH__ALGORITHMS", algs)]);
            if algs.is_empty() {
                // An empty variable is unset: the default list stays.
                assert!(e.is_ok());
                continue;
            }
            let e = e.unwrap_err().to_string();
            assert!(e.starts_with("auth.algorithms"), "{algs}: {e}");
        }
    }

    #[test]
    fn unknown_environment_and_unknown_keys_are_refused() {
        let e = load_with(&[("APP_ENV", "staging")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("APP_ENV: unknown environment"), "{e}");
        let e = load_with(&[("APP__SERVER__PROT", "1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("prot"), "{e}");
    }

    #[test]
    fn durations_and_sizes_are_bounded() {
        for (name, value, key) in [
            (
                "APP__JWKS__REFRESH_INTERVAL_SECS",
                "1e19",
                "jwks.refresh_interval_secs",
            ),
            ("APP__JWKS__RETRY_MAX_SECS", "700000", "jwks.retry_max_secs"),
            (
                "APP__JWKS__FETCH_TIMEOUT_SECS",
                "-1",
                "jwks.fetch_timeout_secs",
            ),
            (
                "APP__JWKS__FETCH_TIMEOUT_SECS",
                "NaN",
                "jwks.fetch_timeout_secs",
            ),
            (
                "APP__JWKS__UNKNOWN_KID_COOLDOWN_SECS",
                "inf",
                "jwks.unknown_kid_cooldown_secs",
            ),
            (
                "APP__JWKS__MAX_RESPONSE_BYTES",
                "1000000000",
                "jwks.max_response_bytes",
            ),
            ("APP__AUTH__MAX_TOKEN_BYTES", "0", "auth.max_token_bytes"),
        ] {
            let e = load_with(&[(name, value)]).unwrap_err().to_string();
            assert!(e.starts_with(key), "{name}={value}: {e}");
        }
    }

    #[test]
    fn metrics_listen_on_loopback_by_default_and_can_be_switched_off() {
        let s = load_with(&[]).unwrap();
        assert_eq!(s.metrics.address, Some("127.0.0.1:9464".parse().unwrap()));
        let s = load_with(&[("APP__METRICS__ENABLED", "false")]).unwrap();
        assert_eq!(s.metrics.address, None);
        let e = load_with(&[("APP__METRICS__ADDRESS", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("metrics.address"), "{e}");
    }

    #[test]
    fn outage_and_refresh_bounds_have_safe_defaults() {
        let s = load_with(&[]).unwrap();
        assert_eq!(s.jwks.max_stale, Duration::from_secs(86_400));
        assert_eq!(s.jwks.min_refresh_interval, Duration::from_secs(60));
        assert_eq!(s.jwks.max_refresh_interval, Duration::from_secs(43_200));
        assert_eq!(s.server.shutdown_timeout, Duration::from_secs(30));
        let e = load_with(&[("APP__JWKS__MIN_REFRESH_INTERVAL_SECS", "100000")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("jwks.max_refresh_interval_secs"), "{e}");
        let e = load_with(&[("APP__JWKS__MAX_STALE_SECS", "600")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("jwks.refresh_interval_secs"), "{e}");
        let e = load_with(&[("APP__JWKS__MAX_REFRESH_INTERVAL_SECS", "86400")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("jwks.max_refresh_interval_secs"), "{e}");
        assert!(
            e.contains("must be at most half of jwks.max_stale_secs"),
            "{e}"
        );
    }

    #[test]
    fn leeway_is_bounded() {
        let e = load_with(&[("APP__AUTH__LEEWAY_SECS", "3600")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("auth.leeway_secs"), "{e}");
    }

    #[test]
    fn missing_config_directory_names_it() {
        let e = load(Path::new("/nonexistent"), &env(&minimal()))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("config: /nonexistent/default.toml not found"),
            "{e}"
        );
    }
}
