//! One JWKS (or issuer metadata) fetch over HTTP: bounded in time and size, no redirects, and
//! the issuer's `Cache-Control: max-age`.

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use awc::error::PayloadError;
use derive_more::{Display, Error};
use jsonwebtoken::Algorithm;

use crate::auth::keys::{KeySet, KeySetError};
use crate::settings::JwksSettings;

/// Why a fetch gave no key set.
#[derive(Debug, Display, Error)]
pub enum FetchError {
    #[display("request failed: {_0}")]
    Request(#[error(not(source))] String),
    #[display("issuer answered HTTP {_0}")]
    Status(#[error(not(source))] u16),
    #[display("response is larger than {_0} bytes")]
    TooLarge(#[error(not(source))] usize),
    #[display("reading the response failed: {_0}")]
    Body(#[error(not(source))] String),
    #[display("no complete answer within {_0:?}")]
    Timeout(#[error(not(source))] Duration),
    #[display("{_0}")]
    KeySet(KeySetError),
    /// The issuer's metadata could not be had or used: the URL, and why.
    #[display("discovery at {url}: {reason}")]
    Discovery {
        #[error(not(source))]
        url: String,
        #[error(not(source))]
        reason: String,
        /// No metadata could be had (none published, or no answer), as opposed to a wrong one.
        missing: bool,
    },
}

impl FetchError {
    /// Whether it was the issuer's metadata, rather than its key set, that failed.
    pub fn is_discovery(&self) -> bool {
        matches!(self, FetchError::Discovery { .. })
    }
}

/// A fetched key set and the refresh period the issuer asked for.
pub type Fetched = (KeySet, Option<Duration>);

/// The client every fetch of one store uses. `awc::Client` is `!Send`: build it in the task
/// that uses it.
pub fn client(settings: &JwksSettings) -> awc::Client {
    awc::Client::builder()
        .disable_redirects()
        // Our own timeout below covers the whole fetch, body included; awc's only backs it up.
        .timeout(
            settings
                .fetch_timeout
                .saturating_add(Duration::from_secs(1)),
        )
        .add_default_header((
            header::USER_AGENT,
            concat!("hello-world-api/", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}

/// Fetches and parses the key set at `uri` within `settings.fetch_timeout`, with the
/// `Cache-Control: max-age` the issuer sent.
pub async fn fetch(
    client: &awc::Client,
    uri: &str,
    settings: &JwksSettings,
    algorithms: &[Algorithm],
) -> Result<Fetched, FetchError> {
    let (body, max_age) = get(client, uri, settings).await?;
    let set = KeySet::parse(&body, algorithms).map_err(FetchError::KeySet)?;
    Ok((set, max_age))
}

/// The body of a successful GET of `uri` (at most `settings.max_response_bytes`, within
/// `settings.fetch_timeout`) and the `Cache-Control: max-age` it came with.
pub async fn get(
    client: &awc::Client,
    uri: &str,
    settings: &JwksSettings,
) -> Result<(Bytes, Option<Duration>), FetchError> {
    let limit = settings.max_response_bytes;
    let request = async {
        let mut response = client
            .get(uri)
            .insert_header((header::ACCEPT, "application/json"))
            .send()
            .await
            .map_err(|e| FetchError::Request(e.to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = response.body().limit(limit).await.map_err(|e| match e {
            PayloadError::Overflow => FetchError::TooLarge(limit),
            other => FetchError::Body(other.to_string()),
        })?;
        Ok((body, max_age))
    };
    tokio::time::timeout(settings.fetch_timeout, request)
        .await
        .unwrap_or(Err(FetchError::Timeout(settings.fetch_timeout)))
}

/// The `max-age` of a `Cache-Control` value, if it has a valid one.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        value
            .trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("max-age=120"), Some(Duration::from_secs(120)));
        assert_eq!(
            max_age("public, Max-Age = 7, must-revalidate"),
            Some(Duration::from_secs(7))
        );
        assert_eq!(max_age("max-age=\"30\""), Some(Duration::from_secs(30)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=-1"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age("s-maxage=5"), None);
    }
}
