//! `hello-world-api dpop`: a DPoP client for people trying the API. Its key on disk, a token
//! bound to it from the development issuer, and a call with a fresh proof, retried once with
//! the server's nonce when it asks for one.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use derive_more::{Display, Error};

use super::dev::TokenRequestError;
use super::grant::TokenResponse;
use crate::auth::dpop::{ClientKey, ClientKeyError};
use crate::settings::{DevClient, DevIssuerSettings};

/// Where `hello-world-api dpop` keeps its client key (git-ignored with the issuer's).
pub const CLIENT_KEY_FILE: &str = ".dev/dpop-client-key.pem";

/// Why the DPoP client stopped.
#[derive(Debug, Display, Error)]
pub enum DpopClientError {
    #[display("{path}: {source}")]
    KeyFile {
        #[error(not(source))]
        path: String,
        source: std::io::Error,
    },
    #[display("{path}: {source}")]
    Key {
        #[error(not(source))]
        path: String,
        source: ClientKeyError,
    },
    #[display("{_0}")]
    Token(TokenRequestError),
    #[display("{url}: {reason}")]
    Call {
        #[error(not(source))]
        url: String,
        #[error(not(source))]
        reason: String,
    },
}

/// The client key at `path`, created (mode 0600) on first use.
pub fn load_or_create_client_key(path: &Path) -> Result<ClientKey, DpopClientError> {
    let file_error = |source| DpopClientError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    let key_error = |source| DpopClientError::Key {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => ClientKey::from_pem(&pem).map_err(key_error),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ClientKey::generate().map_err(key_error)?;
            super::dev::write_private(path, &key.to_pem()).map_err(file_error)?;
            Ok(key)
        }
        Err(e) => Err(file_error(e)),
    }
}

/// Unix seconds now, for a proof's `iat`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token for `client` bound to `key`: the token request carries a proof (RFC 9449 §5).
pub async fn bound_token(
    settings: &DevIssuerSettings,
    client: &DevClient,
    key: &ClientKey,
) -> Result<TokenResponse, DpopClientError> {
    let url = super::dev::token_url(settings);
    let proof = key
        .proof("POST", &url, None, None, unix_now())
        .map_err(|source| DpopClientError::Key {
            path: "the client key".to_owned(),
            source,
        })?;
    super::dev::request_token_with(settings, client, Some(&proof))
        .await
        .map_err(DpopClientError::Token)
}

/// One call of the API as it went.
#[derive(Debug)]
pub struct Exchange {
    pub status: u16,
    pub body: String,
    /// The nonce the server asked for, when the first attempt was refused for want of one.
    pub nonce: Option<String>,
}

/// `GET url` with `token` and a fresh proof; once more with the server's nonce if it asks.
pub async fn call(url: &str, token: &str, key: &ClientKey) -> Result<Exchange, DpopClientError> {
    let client = awc::Client::default();
    let mut nonce: Option<String> = None;
    loop {
        let failed = |reason: String| DpopClientError::Call {
            url: url.to_owned(),
            reason,
        };
        let proof = key
            .proof("GET", url, Some(token), nonce.as_deref(), unix_now())
            .map_err(|e| failed(e.to_string()))?;
        let mut response = client
            .get(url)
            .insert_header(("Authorization", format!("DPoP {token}")))
            .insert_header(("DPoP", proof))
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let body = response.body().await.map_err(|e| failed(e.to_string()))?;
        let offered = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = response.status().as_u16();
        if status == 401 && nonce.is_none() && offered.is_some() {
            nonce = offered;
            continue;
        }
        return Ok(Exchange {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            nonce,
        });
    }
}
