//! Where an issuer's keys are: the `jwks_uri` of its metadata, found by OpenID Connect
//! Discovery (`{issuer}/.well-known/openid-configuration`) or, when that is not there, by
//! RFC 8414 (`/.well-known/oauth-authorization-server{issuer path}`). The same document's
//! `token_endpoint`, when it passes the same checks, is where the API's description sends a
//! client for a token.
//!
//! The document must name exactly the configured issuer (OIDC Discovery §4.3, RFC 8414 §3.3):
//! otherwise a document served elsewhere on the host could point us at keys of its choosing.
//! It is fetched with the key set's rules (timeout, size limit, no redirects) by the key
//! store's refresher, never on a request's path.

use actix_web::http::Uri;
use serde_json::Value;

use crate::auth::fetch::{FetchError, get};
use crate::host::is_loopback_host;
use crate::settings::{IssuerSettings, JwksSettings};

/// The metadata URLs to try, in order: OpenID Connect Discovery, then RFC 8414.
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{trimmed}/.well-known/openid-configuration")];
    if let Ok(uri) = issuer.parse::<Uri>()
        && let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority())
    {
        let path = uri.path().trim_end_matches('/');
        urls.push(format!(
            "{scheme}://{authority}/.well-known/oauth-authorization-server{path}"
        ));
    }
    urls
}

/// The key set's conventional place when an issuer publishes no metadata: what this service
/// derived before it did discovery, and where Auth0 serves it.
pub fn conventional_jwks_uri(issuer: &str) -> String {
    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
}

/// Whether a discovery failure means the metadata could not be had at all (none published, or
/// the issuer unreachable), rather than that it was wrong: then the conventional JWKS URL is
/// worth a try. A document that names another issuer or no usable `jwks_uri` never is.
pub fn metadata_missing(error: &FetchError) -> bool {
    matches!(error, FetchError::Discovery { missing: true, .. })
}

/// What this service uses of an issuer's metadata, each URL checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub jwks_uri: String,
    /// `None` when the document names none, or one that fails the checks `jwks_uri` must pass
    /// (it is not needed to check tokens, so it never fails discovery).
    pub token_endpoint: Option<String>,
}

/// The issuer's metadata, checked.
pub async fn discover(
    client: &awc::Client,
    issuer: &IssuerSettings,
    settings: &JwksSettings,
) -> Result<Metadata, FetchError> {
    let urls = metadata_urls(&issuer.issuer);
    let mut last = None;
    for url in &urls {
        match get(client, url, settings).await {
            Ok((body, _)) => {
                return metadata(&body, issuer).map_err(|reason| FetchError::Discovery {
                    url: url.clone(),
                    reason,
                    missing: false,
                });
            }
            // Not there: the next kind of metadata may be.
            Err(FetchError::Status(404)) => last = Some((url, FetchError::Status(404))),
            Err(error) => {
                let missing = matches!(error, FetchError::Request(_) | FetchError::Timeout(_));
                return Err(FetchError::Discovery {
                    url: url.clone(),
                    reason: error.to_string(),
                    missing,
                });
            }
        }
    }
    let (url, error) = last.map_or_else(
        || (issuer.issuer.clone(), "no metadata URL".to_owned()),
        |(url, error)| (url.clone(), error.to_string()),
    );
    Err(FetchError::Discovery {
        url,
        reason: error,
        missing: true,
    })
}

/// The checked `jwks_uri` and `token_endpoint` of a metadata document.
fn metadata(body: &[u8], issuer: &IssuerSettings) -> Result<Metadata, String> {
    let document: Value =
        serde_json::from_slice(body).map_err(|_| "the metadata is not JSON".to_owned())?;
    let Some(members) = document.as_object() else {
        return Err("the metadata is not a JSON object".to_owned());
    };
    match members.get("issuer") {
        Some(Value::String(named)) if *named == issuer.issuer => {}
        Some(Value::String(named)) => {
            return Err(format!(
                "the metadata names issuer {:?}, not the configured {:?}",
                truncate(named),
                issuer.issuer
            ));
        }
        _ => return Err("the metadata has no issuer".to_owned()),
    }
    let Some(Value::String(uri)) = members.get("jwks_uri") else {
        return Err("the metadata has no jwks_uri".to_owned());
    };
    let jwks_uri = checked_url("jwks_uri", uri, issuer)?;
    let token_endpoint = match members.get("token_endpoint") {
        Some(Value::String(url)) => checked_url("token_endpoint", url, issuer)
            .map_err(|reason| log::debug!("issuer {}: {reason}; ignored", issuer.issuer))
            .ok(),
        _ => None,
    };
    Ok(Metadata {
        jwks_uri,
        token_endpoint,
    })
}

/// `url` if it is an http(s) URL without userinfo, and https when the issuer requires it.
fn checked_url(name: &str, url: &str, issuer: &IssuerSettings) -> Result<String, String> {
    let parsed = url
        .parse::<Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
        .filter(|u| !u.authority().is_some_and(|a| a.as_str().contains('@')))
        .ok_or_else(|| format!("{name} {:?} is not an http(s) URL", truncate(url)))?;
    // Plain http to loopback is for an issuer that is itself on loopback: a remote document
    // must not aim our fetches at this machine's own services.
    let issuer_on_loopback = issuer
        .issuer
        .parse::<Uri>()
        .ok()
        .and_then(|u| u.host().map(is_loopback_host))
        .unwrap_or(false);
    let loopback = issuer_on_loopback && parsed.host().is_some_and(is_loopback_host);
    if issuer.require_https && parsed.scheme_str() != Some("https") && !loopback {
        return Err(format!(
            "{name} {:?} is not https: production talks to issuers over TLS only",
            truncate(url)
        ));
    }
    Ok(url.to_owned())
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::KeySource;

    fn jwks_uri(body: &[u8], issuer: &IssuerSettings) -> Result<String, String> {
        metadata(body, issuer).map(|m| m.jwks_uri)
    }

    fn issuer(url: &str, require_https: bool) -> IssuerSettings {
        IssuerSettings {
            issuer: url.to_owned(),
            keys: KeySource::Discovery,
            require_https,
        }
    }

    #[test]
    fn metadata_urls_follow_oidc_discovery_then_rfc_8414() {
        assert_eq!(
            metadata_urls("https://kc.example.com/realms/demo"),
            [
                "https://kc.example.com/realms/demo/.well-known/openid-configuration",
                "https://kc.example.com/.well-known/oauth-authorization-server/realms/demo",
            ]
        );
        assert_eq!(
            metadata_urls("https://tenant.auth0.com/"),
            [
                "https://tenant.auth0.com/.well-known/openid-configuration",
                "https://tenant.auth0.com/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn the_document_must_name_exactly_the_configured_issuer() {
        let ok = br#"{"issuer":"https://a.example/","jwks_uri":"https://a.example/keys"}"#;
        assert_eq!(
            jwks_uri(ok, &issuer("https://a.example/", true)).unwrap(),
            "https://a.example/keys"
        );
        // Without the trailing slash it is another issuer.
        assert!(jwks_uri(ok, &issuer("https://a.example", true)).is_err());
        for bad in [
            &br#"{"jwks_uri":"https://a.example/keys"}"#[..],
            br#"{"issuer":7,"jwks_uri":"https://a.example/keys"}"#,
            br#"{"issuer":"https://a.example/"}"#,
            br#"{"issuer":"https://a.example/","jwks_uri":"file:///etc/passwd"}"#,
            br#"[]"#,
            b"<html>",
        ] {
            assert!(jwks_uri(bad, &issuer("https://a.example/", false)).is_err());
        }
    }

    #[test]
    fn production_wants_https_keys_except_from_a_loopback_issuer() {
        let plain = br#"{"issuer":"https://a.example/","jwks_uri":"http://a.example/keys"}"#;
        assert!(jwks_uri(plain, &issuer("https://a.example/", true)).is_err());
        assert!(jwks_uri(plain, &issuer("https://a.example/", false)).is_ok());
        // A remote issuer's document cannot aim a plain fetch at this machine.
        let local = br#"{"issuer":"https://a.example/","jwks_uri":"http://127.0.0.1:9/keys"}"#;
        assert!(jwks_uri(local, &issuer("https://a.example/", true)).is_err());
        let both = br#"{"issuer":"http://127.0.0.1:8/","jwks_uri":"http://127.0.0.1:9/keys"}"#;
        assert!(jwks_uri(both, &issuer("http://127.0.0.1:8/", true)).is_ok());
        let userinfo =
            br#"{"issuer":"https://a.example/","jwks_uri":"https://a.example@b.example/"}"#;
        assert!(jwks_uri(userinfo, &issuer("https://a.example/", false)).is_err());
    }

    #[test]
    fn the_token_endpoint_is_kept_only_when_it_passes_the_checks_of_jwks_uri() {
        let with = |endpoint: &str| {
            format!(
                r#"{{"issuer":"https://a.example/","jwks_uri":"https://a.example/keys","token_endpoint":{endpoint}}}"#
            )
        };
        let endpoint = |body: String, https: bool| {
            metadata(body.as_bytes(), &issuer("https://a.example/", https))
                .unwrap()
                .token_endpoint
        };
        assert_eq!(
            endpoint(with(r#""https://a.example/oauth2/token""#), true).as_deref(),
            Some("https://a.example/oauth2/token")
        );
        // Wrong ones are dropped without failing discovery: tokens are checked all the same.
        assert_eq!(endpoint(with(r#""http://a.example/token""#), true), None);
        assert_eq!(endpoint(with(r#""javascript:alert(1)""#), false), None);
        assert_eq!(endpoint(with(r#""https://u@b.example/""#), false), None);
        assert_eq!(endpoint(with("7"), false), None);
        let none = br#"{"issuer":"https://a.example/","jwks_uri":"https://a.example/keys"}"#;
        assert_eq!(
            metadata(none, &issuer("https://a.example/", true)).unwrap(),
            Metadata {
                jwks_uri: "https://a.example/keys".to_owned(),
                token_endpoint: None
            }
        );
    }
}
