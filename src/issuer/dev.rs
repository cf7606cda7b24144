//! The development issuer of `make run`: its key on disk, starting it on loopback, and the
//! client that asks it for a token (`hello-world-api token`).

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

use actix_web::dev::ServerHandle;
use derive_more::{Display, Error};

use super::grant::TokenResponse;
use super::{Issuer, IssuerError, SigningKey, TokenPolicy};
use crate::settings::{DevClient, DevIssuerSettings};

/// Loads the development issuer's key from `path`, creating it (mode 0600) on first start.
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, IssuerError> {
    let file_error = |source| IssuerError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::from_pkcs8_pem_with_thumbprint(&pem).map_err(|e| {
            file_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate("")?;
            write_private(path, key.private_pem()).map_err(file_error)?;
            log::info!(
                "development issuer: new signing key written to {}",
                path.display()
            );
            SigningKey::from_pkcs8_pem_with_thumbprint(key.private_pem())
        }
        Err(e) => Err(file_error(e)),
    }
}

/// Writes a new file at `path` (its folder made if need be) readable by its owner only
/// (0600): the development issuer's key, and the DPoP client's. Never overwrites one.
pub(super) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// Starts the development issuer on `127.0.0.1:{port}` on the current runtime.
pub fn start_dev_issuer(settings: &DevIssuerSettings) -> Result<ServerHandle, IssuerError> {
    start_dev_issuer_on(settings, bind_dev_issuer(settings.port)?)
}

/// A loopback listener for the development issuer; port 0 picks a free one.
pub fn bind_dev_issuer(port: u16) -> Result<TcpListener, IssuerError> {
    let address = format!("127.0.0.1:{port}");
    TcpListener::bind(&address).map_err(|source| IssuerError::Bind { address, source })
}

/// Starts the development issuer on `listener` (see [`bind_dev_issuer`]).
pub fn start_dev_issuer_on(
    settings: &DevIssuerSettings,
    listener: TcpListener,
) -> Result<ServerHandle, IssuerError> {
    let key = load_or_create_key(&settings.key_file)?;
    let address = listener.local_addr().map_or_else(
        |_| format!("127.0.0.1:{}", settings.port),
        |a| a.to_string(),
    );
    let issuer = Issuer::with_token_endpoint(
        key,
        TokenPolicy {
            issuer_url: settings.issuer_url.clone(),
            audience: settings.audience.clone(),
            lifetime: settings.token_lifetime,
            clients: settings.clients.clone(),
        },
    );
    let handle = issuer.serve_loopback_only(listener)?;
    log::warn!(
        "DEVELOPMENT ISSUER at {} (listening on {address}): tokens come from a local stand-in for \
         Auth0, signed with {}. Set AUTH0_DOMAIN and AUTH0_AUDIENCE to use your tenant.",
        settings.issuer_url,
        settings.key_file.display()
    );
    Ok(handle)
}

/// Why `hello-world-api token` got no token.
#[derive(Debug, Display, Error)]
pub enum TokenRequestError {
    #[display("no development issuer at {url} ({reason}); start the API with `make run` first")]
    Unreachable {
        url: String,
        #[error(not(source))]
        reason: String,
    },
    #[display("{url} answered {status}: {body}")]
    Refused {
        url: String,
        #[error(not(source))]
        status: u16,
        #[error(not(source))]
        body: String,
    },
    #[display("unexpected answer from {url}: {reason}")]
    Unexpected {
        url: String,
        #[error(not(source))]
        reason: String,
    },
}

/// Asks a running development issuer for an access token for `client`.
pub async fn request_token(
    settings: &DevIssuerSettings,
    client: &DevClient,
) -> Result<TokenResponse, TokenRequestError> {
    request_token_with(settings, client, None).await
}

/// The token endpoint of the development issuer, as this machine reaches it.
pub fn token_url(settings: &DevIssuerSettings) -> String {
    format!("http://127.0.0.1:{}/oauth/token", settings.port)
}

/// As [`request_token`], with a DPoP proof when given: the token is then bound to its key.
pub async fn request_token_with(
    settings: &DevIssuerSettings,
    client: &DevClient,
    proof: Option<&str>,
) -> Result<TokenResponse, TokenRequestError> {
    let url = token_url(settings);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.client_id.as_str()),
        ("client_secret", client.client_secret.as_str()),
        ("audience", settings.audience.as_str()),
    ];
    let mut request = awc::Client::default().post(&url);
    if let Some(proof) = proof {
        request = request.insert_header(("DPoP", proof));
    }
    let mut response =
        request
            .send_form(&form)
            .await
            .map_err(|e| TokenRequestError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
    let body = response
        .body()
        .await
        .map_err(|e| TokenRequestError::Unexpected {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    if !response.status().is_success() {
        return Err(TokenRequestError::Refused {
            url,
            status: response.status().as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    serde_json::from_slice(&body).map_err(|e| TokenRequestError::Unexpected {
        url,
        reason: e.to_string(),
    })
}
