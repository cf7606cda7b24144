//! The `auth` section's checks: the issuers (each a secure URL, found by discovery or with its
//! key set's URL), the audiences, the claims read and required, and the algorithms.

use std::time::Duration;

use actix_web::http::Uri;
use jsonwebtoken::{Algorithm, AlgorithmFamily};

use crate::host::is_loopback_host;

use super::raw::RawAuth;
use super::values::{at_most, http_url, non_empty, positive};
use super::{
    AuthSettings, Environment, IssuerSettings, KeySource, Profile, SettingsError, describe_key,
};

/// An issuer or key URL: `http(s)`, and in production `https` unless the host is loopback,
/// since whoever can intercept a plain-text key fetch could inject signing keys.
fn secure_url(key: &str, value: &str, environment: Environment) -> Result<Uri, SettingsError> {
    let uri = http_url(key, value)?;
    let loopback = uri.host().is_some_and(is_loopback_host);
    if environment == Environment::Production && uri.scheme_str() != Some("https") && !loopback {
        return Err(SettingsError::new(
            key,
            format!("{value:?} is not https: production fetches keys over TLS only"),
        ));
    }
    Ok(uri)
}

pub(super) fn auth(raw: RawAuth, environment: Environment) -> Result<AuthSettings, SettingsError> {
    let audiences = list(&raw.audience);
    if audiences.is_empty() {
        return Err(SettingsError::new(
            "auth.audience",
            "is required: set it to your API identifier (the audience tokens are issued for)",
        ));
    }
    let issuers = issuers(&raw, environment)?;
    let audience_claim = raw.audience_claim.trim();
    if audience_claim.is_empty() {
        return Err(SettingsError::new(
            "auth.audience_claim",
            "must name a claim, such as aud or client_id",
        ));
    }
    let mut required_claims = Vec::with_capacity(raw.required_claims.len());
    for entry in &raw.required_claims {
        match entry.trim().split_once('=') {
            Some((name, value)) if !name.trim().is_empty() && !value.trim().is_empty() => {
                required_claims.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            _ => {
                return Err(SettingsError::new(
                    "auth.required_claims",
                    format!("{entry:?} is not a name=value pair, such as token_use=access"),
                ));
            }
        }
    }
    let permissions_claim = raw.permissions_claim.trim();
    json_pointer("auth.permissions_claim", permissions_claim)?;
    let admin_permission = non_empty("auth.admin_permission", &raw.admin_permission)?;
    let profile = match raw.profile.trim() {
        "auth0" => Profile::Auth0,
        "rfc9068" => Profile::Rfc9068,
        other => {
            return Err(SettingsError::new(
                "auth.profile",
                format!("{other:?} is not a profile; use \"auth0\" or \"rfc9068\""),
            ));
        }
    };
    let algorithms = algorithms(&raw.algorithms)?;
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
        issuers,
        audiences,
        audience_claim: audience_claim.to_owned(),
        required_claims,
        permissions_claim: permissions_claim.to_owned(),
        admin_permission: admin_permission.trim().to_owned(),
        profile,
        algorithms,
        leeway: Duration::from_secs(leeway),
        max_token_bytes,
        dpop: super::dpop::dpop(&raw)?,
    })
}

/// The non-empty entries of a comma-separated value, trimmed.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The trusted issuers: `auth.issuers`, or the one of `auth.issuer` or `auth.domain`.
fn issuers(raw: &RawAuth, environment: Environment) -> Result<Vec<IssuerSettings>, SettingsError> {
    let require_https = environment == Environment::Production;
    let several: Vec<String> = raw.issuers.iter().flat_map(|entry| list(entry)).collect();
    let jwks_uri = raw.jwks_uri.trim();
    if !several.is_empty() {
        for key in ["auth.issuer", "auth.domain", "auth.jwks_uri"] {
            let set = match key {
                "auth.issuer" => &raw.issuer,
                "auth.domain" => &raw.domain,
                _ => &raw.jwks_uri,
            };
            if !set.trim().is_empty() {
                return Err(SettingsError::new(
                    "auth.issuers",
                    format!(
                        "lists several issuers (each found by discovery): leave {} unset",
                        describe_key(key)
                    ),
                ));
            }
        }
        let mut issuers: Vec<IssuerSettings> = Vec::with_capacity(several.len());
        for issuer in several {
            issuer_url("auth.issuers", &issuer, environment)?;
            // Both forms share one metadata URL, so one of them could never be ready.
            let same =
                |i: &IssuerSettings| i.issuer.trim_end_matches('/') == issuer.trim_end_matches('/');
            if issuers.iter().any(same) {
                return Err(SettingsError::new(
                    "auth.issuers",
                    format!("{issuer:?} appears twice (with or without its trailing slash)"),
                ));
            }
            issuers.push(IssuerSettings {
                issuer,
                keys: KeySource::Discovery,
                require_https,
            });
        }
        return Ok(issuers);
    }
    let (issuer, derived) = match (raw.issuer.trim(), raw.domain.trim()) {
        ("", "") => {
            return Err(SettingsError::new(
                "auth.domain",
                "is required: set AUTH0_DOMAIN to your tenant (e.g. example.us.auth0.com), \
                 AUTH0_ISSUER (or ISSUER_BASE_URL) to the full issuer URL, or \
                 APP__AUTH__ISSUERS to several",
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
            // An Auth0 tenant's keys are at a known place: no discovery needed.
            let keys = format!("{url}.well-known/jwks.json");
            (url, Some(keys))
        }
        (issuer, _) => {
            issuer_url("auth.issuer", issuer, environment)?;
            (issuer.to_owned(), None)
        }
    };
    let keys = match (jwks_uri, derived) {
        ("", None) => KeySource::Discovery,
        ("", Some(uri)) => KeySource::Jwks(uri),
        (uri, _) => {
            secure_url("auth.jwks_uri", uri, environment)?;
            KeySource::Jwks(uri.to_owned())
        }
    };
    Ok(vec![IssuerSettings {
        issuer,
        keys,
        require_https,
    }])
}

/// An issuer identifier: a secure URL (see [`secure_url`]) without query or fragment
/// (RFC 8414 §2, OIDC Discovery §4: its metadata URL is built from it).
fn issuer_url(key: &str, value: &str, environment: Environment) -> Result<(), SettingsError> {
    let uri = secure_url(key, value, environment)?;
    if uri.query().is_some() || value.contains('#') {
        return Err(SettingsError::new(
            key,
            format!("{value:?}: an issuer URL has no query or fragment"),
        ));
    }
    Ok(())
}

/// An RFC 6901 JSON Pointer into the claims: `/`-separated tokens (so never empty: the whole
/// claims set is not a permission list) where `~` is only `~0` or `~1`.
fn json_pointer(key: &str, pointer: &str) -> Result<(), SettingsError> {
    if !pointer.starts_with('/') {
        return Err(SettingsError::new(
            key,
            format!("{pointer:?} is not a JSON Pointer: it must start with /, as in /permissions"),
        ));
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(SettingsError::new(
                key,
                format!("{pointer:?}: in a JSON Pointer, ~ is written ~0 and / inside a name ~1"),
            ));
        }
    }
    Ok(())
}

/// The accepted signature algorithms: at least one, never HMAC, each once.
fn algorithms(names: &[String]) -> Result<Vec<Algorithm>, SettingsError> {
    if names.is_empty() {
        return Err(SettingsError::new(
            "auth.algorithms",
            "must list at least one algorithm",
        ));
    }
    let mut algorithms = Vec::with_capacity(names.len());
    for name in names {
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

    Ok(algorithms)
}
