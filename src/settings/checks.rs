//! From the raw configuration to validated [`Settings`]: each section checked, then the rules
//! that tie keys together.

use std::path::PathBuf;

use crate::host::is_loopback_host;

use super::auth::auth;
use super::raw::{Raw, RawAuth, RawCache, RawDevIssuer, RawDocs, RawJwks, RawMetrics, RawServer};
use super::values::{at_most, non_empty, origin, positive, seconds, seconds_or_zero};
use super::{
    AuthSettings, CacheSettings, CorsSettings, DevClient, DevIssuerSettings, DocsSettings,
    Environment, JwksSettings, MetricsSettings, ServerSettings, Settings, SettingsError,
    TokenEndpoint,
};

pub(super) fn validate(environment: Environment, raw: Raw) -> Result<Settings, SettingsError> {
    let server = server(raw.server)?;
    let dev_issuer = dev_issuer(environment, &raw.auth, raw.dev_issuer)?;
    if dev_issuer.is_some() && !is_loopback_host(&server.host) {
        // Its client secrets are in the repository: it must never serve beyond this machine.
        return Err(SettingsError::new(
            "server.host",
            format!(
                "{:?} is not a loopback address, and no issuer is configured: the development \
                 issuer runs only for a server on 127.0.0.1, ::1 or localhost; set AUTH0_DOMAIN \
                 or AUTH0_ISSUER (and AUTH0_AUDIENCE) to serve on {0:?}",
                server.host
            ),
        ));
    }
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
    // An Auth0 tenant named by its domain has its token endpoint at a known place.
    let auth0_tenant = !raw_auth.domain.trim().is_empty()
        && raw_auth.issuer.trim().is_empty()
        && raw_auth.issuers.iter().all(|i| i.trim().is_empty());
    let auth = auth(raw_auth, environment)?;
    let docs = docs(raw.docs, &auth, dev_issuer.is_some() || auth0_tenant);
    let dev_issuer = dev_issuer.map(|dev| DevIssuerSettings {
        audience: auth.audiences[0].clone(),
        ..dev
    });
    Ok(Settings {
        environment,
        server,
        cors: CorsSettings {
            allowed_origin: origin("cors.client_origin_url", &raw.cors.client_origin_url)?,
        },
        auth,
        jwks: jwks(raw.jwks)?,
        metrics: metrics(raw.metrics)?,
        cache: cache(raw.cache)?,
        docs,
        dev_issuer,
        warnings: Vec::new(),
    })
}

/// The description's settings; its token endpoint is `{issuer}/oauth/token`, known for the
/// development issuer and an Auth0 tenant, assumed for another issuer (the first one).
fn docs(raw: RawDocs, auth: &AuthSettings, known: bool) -> DocsSettings {
    let url = format!("{}/oauth/token", auth.issuer().trim_end_matches('/'));
    DocsSettings {
        enabled: raw.enabled,
        token_endpoint: if known {
            TokenEndpoint::Known(url)
        } else {
            TokenEndpoint::Assumed(url)
        },
    }
}

fn server(raw: RawServer) -> Result<ServerSettings, SettingsError> {
    Ok(ServerSettings {
        host: non_empty("server.host", &raw.host)?.to_owned(),
        port: u16::try_from(raw.port).map_err(|_| {
            SettingsError::new(
                "server.port",
                format!("{} is out of range (0 to 65535)", raw.port),
            )
        })?,
        workers: match raw.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => usize::try_from(n).map_err(|_| {
                SettingsError::new("server.workers", "must be 0 (one per core) or more")
            })?,
        },
        shutdown_timeout: seconds_or_zero(
            "server.shutdown_timeout_secs",
            raw.shutdown_timeout_secs,
        )?,
        drain: seconds_or_zero("server.drain_secs", raw.drain_secs)?,
        max_header_bytes: at_most(
            "server.max_header_bytes",
            positive("server.max_header_bytes", raw.max_header_bytes)?,
            64 << 10,
        )?,
        public_url: match raw.public_url.trim() {
            "" => None,
            url => Some(origin("server.public_url", url)?),
        },
        trust_forwarded_headers: raw.trust_forwarded_headers,
    })
}

fn metrics(raw: RawMetrics) -> Result<MetricsSettings, SettingsError> {
    if !raw.enabled {
        return Ok(MetricsSettings { address: None });
    }
    let address = raw.address.trim().parse().map_err(|_| {
        SettingsError::new(
            "metrics.address",
            format!("{:?} is not an IP:port address", raw.address),
        )
    })?;
    Ok(MetricsSettings {
        address: Some(address),
    })
}

fn cache(raw: RawCache) -> Result<CacheSettings, SettingsError> {
    Ok(CacheSettings {
        enabled: raw.enabled,
        max_entries: at_most(
            "cache.max_entries",
            positive("cache.max_entries", raw.max_entries)?,
            10_000_000,
        )? as u64,
        max_bytes: at_most(
            "cache.max_bytes",
            positive("cache.max_bytes", raw.max_bytes)?,
            16 << 30,
        )? as u64,
        ttl: seconds("cache.ttl_secs", raw.ttl_secs)?,
    })
}

fn jwks(raw: RawJwks) -> Result<JwksSettings, SettingsError> {
    let jwks = JwksSettings {
        refresh_interval: seconds("jwks.refresh_interval_secs", raw.refresh_interval_secs)?,
        fetch_timeout: seconds("jwks.fetch_timeout_secs", raw.fetch_timeout_secs)?,
        max_response_bytes: at_most(
            "jwks.max_response_bytes",
            positive("jwks.max_response_bytes", raw.max_response_bytes)?,
            64 << 20,
        )?,
        unknown_kid_cooldown: seconds_or_zero(
            "jwks.unknown_kid_cooldown_secs",
            raw.unknown_kid_cooldown_secs,
        )?,
        retry_initial: seconds("jwks.retry_initial_secs", raw.retry_initial_secs)?,
        retry_max: seconds("jwks.retry_max_secs", raw.retry_max_secs)?,
        max_stale: seconds("jwks.max_stale_secs", raw.max_stale_secs)?,
        min_refresh_interval: seconds(
            "jwks.min_refresh_interval_secs",
            raw.min_refresh_interval_secs,
        )?,
        max_refresh_interval: seconds(
            "jwks.max_refresh_interval_secs",
            raw.max_refresh_interval_secs,
        )?,
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
    Ok(jwks)
}

/// The development issuer runs only in the local profile, only when enabled, and only when no
/// real issuer (`auth.domain` or `auth.issuer`) is configured. Production never runs it.
fn dev_issuer(
    environment: Environment,
    auth: &RawAuth,
    raw: RawDevIssuer,
) -> Result<Option<DevIssuerSettings>, SettingsError> {
    let issuer_configured = !auth.domain.trim().is_empty()
        || !auth.issuer.trim().is_empty()
        || auth.issuers.iter().any(|i| !i.trim().is_empty());
    if environment != Environment::Local || !raw.enabled || issuer_configured {
        return Ok(None);
    }
    // 0 picks a free port: the binary binds it, then settles the settings with the one it got.
    let port = u16::try_from(raw.port).map_err(|_| {
        SettingsError::new(
            "dev_issuer.port",
            format!("{} is not a port (0 to 65535)", raw.port),
        )
    })?;
    if raw.clients.is_empty() {
        return Err(SettingsError::new("dev_issuer.clients", "lists no client"));
    }
    let mut clients: Vec<DevClient> = Vec::with_capacity(raw.clients.len());
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
        clients.push(client);
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
