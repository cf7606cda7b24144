//! A small OAuth 2.0 / OpenID Connect token issuer with real RSA keys, imitating the parts of an
//! Auth0 tenant the samples use: discovery, the JWKS, and `client_credentials` tokens.
//!
//! One implementation, two uses: `make run` starts it as the development issuer (see
//! [`start_dev_issuer`]), and the integration tests run it on loopback as the issuer the API
//! trusts, with knobs to rotate, drop, fail and slow down its keys, and to publish its
//! metadata and keys where another provider would (see [`Layout`]).

mod dev;
pub mod dpop;
mod endpoints;
mod grant;
mod key;

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use derive_more::{Display, Error};
use serde::Serialize;
use serde_json::{Value, json};

pub use dev::{
    TokenRequestError, bind_dev_issuer, load_or_create_key, request_token, request_token_with,
    start_dev_issuer, start_dev_issuer_on, token_url,
};
pub use grant::TokenResponse;
pub use key::SigningKey;

use crate::settings::DevClient;
use endpoints::{dispatch, endpoint};
use grant::{token_cors, token_endpoint};

/// Why a key could not be made or used.
#[derive(Debug, Display, Error)]
pub enum IssuerError {
    #[display("RSA key generation failed")]
    KeyGeneration,
    #[display("invalid private key: {_0}")]
    InvalidKey(#[error(not(source))] String),
    #[display("signing failed: {_0}")]
    Signing(#[error(not(source))] String),
    #[display("cannot serve: {_0}")]
    Serve(std::io::Error),
    #[display("dev_issuer.key_file: {path}: {source}")]
    KeyFile {
        #[error(not(source))]
        path: String,
        source: std::io::Error,
    },
    #[display(
        "dev_issuer.port: cannot listen on {address}: {source} (set APP__DEV_ISSUER__PORT to \
         another port, e.g. for a second copy of the API)"
    )]
    Bind {
        #[error(not(source))]
        address: String,
        source: std::io::Error,
    },
}

/// How the JWKS endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksBehaviour {
    /// Serve the published keys.
    Serve,
    /// Answer with this status and no keys.
    Fail(u16),
    /// Answer 200 with a body that is not JSON.
    Garbage,
}

/// Where the issuer publishes its metadata and keys, shaped like a given provider's.
///
/// The issuer URL of a request is `http://{Host}{path}`, plus `/` when `trailing_slash`, with
/// the `Host` header as the client sent it (see [`Layout::issuer_url`]):
///
/// | provider | `path` | `trailing_slash` | `jwks_path` as the provider has it |
/// |---|---|---|---|
/// | Auth0 (the default) | `""` | yes | `/.well-known/jwks.json` |
/// | Zitadel | `""` | no | `/oauth/v2/keys` |
/// | Keycloak | `/realms/demo` | no | `/realms/demo/protocol/openid-connect/certs` |
/// | Okta | `/oauth2/default` | no | `/oauth2/default/v1/keys` |
/// | Entra ID v1 | `/TENANT` | yes | `/common/discovery/keys` |
/// | Entra ID v2 | `/TENANT/v2.0` | no | `/TENANT/discovery/v2.0/keys` |
/// | Cognito | `/us-east-1_Pool` | no | `/us-east-1_Pool/.well-known/jwks.json` |
///
/// Changing it with [`Issuer::set_layout`] takes effect on the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The issuer URL's path without a trailing slash: `""` (Auth0, Zitadel), `/realms/demo`
    /// (Keycloak), `/oauth2/default` (Okta), `/TENANT/v2.0` (Entra ID v2), `/us-east-1_Pool`
    /// (Cognito).
    pub path: String,
    /// Whether the issuer identifier ends with `/` (Auth0 and Entra ID v1 do; Keycloak, Okta,
    /// Cognito, Entra ID v2 and Zitadel do not). With `path` `""` and no trailing slash the
    /// issuer is the bare origin, `http://HOST`.
    pub trailing_slash: bool,
    /// Serves OpenID Connect discovery at `{path}/.well-known/openid-configuration`.
    pub oidc: bool,
    /// Serves RFC 8414 metadata at `/.well-known/oauth-authorization-server{path}`.
    pub rfc8414: bool,
    /// Where the JWKS is served, and only there: `/.well-known/jwks.json` by default,
    /// `/realms/demo/protocol/openid-connect/certs` for Keycloak.
    pub jwks_path: String,
    /// When set, the metadata's `issuer` says this instead of the real issuer URL (to test a
    /// mismatch).
    pub advertised_issuer: Option<String>,
}

impl Default for Layout {
    /// Auth0's: the issuer is `http://HOST/`, discovery at `/.well-known/openid-configuration`,
    /// keys at `/.well-known/jwks.json`.
    fn default() -> Self {
        Self {
            path: String::new(),
            trailing_slash: true,
            oidc: true,
            rfc8414: false,
            jwks_path: "/.well-known/jwks.json".to_owned(),
            advertised_issuer: None,
        }
    }
}

impl Layout {
    /// The issuer URL when reached at `authority` (`host:port`): `http://{authority}{path}`,
    /// plus `/` when `trailing_slash`.
    pub fn issuer_url(&self, authority: &str) -> String {
        let slash = if self.trailing_slash { "/" } else { "" };
        format!("http://{authority}{}{slash}", self.path)
    }

    /// Where OpenID Connect discovery is served (whether or not `oidc` is on).
    pub fn oidc_path(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.path)
    }

    /// Where RFC 8414 metadata is served (whether or not `rfc8414` is on).
    pub fn rfc8414_path(&self) -> String {
        format!("/.well-known/oauth-authorization-server{}", self.path)
    }
}

/// What the token endpoint issues, and to whom.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// The `iss` of issued tokens, with its trailing slash; discovery URLs derive from it.
    pub issuer_url: String,
    /// The only audience tokens are issued for.
    pub audience: String,
    pub lifetime: Duration,
    pub clients: Vec<DevClient>,
}

#[derive(Debug)]
struct IssuerState {
    /// The token endpoint answers only when set; discovery then states this policy's issuer.
    tokens: Option<TokenPolicy>,
    /// Where metadata and keys are served.
    layout: RwLock<Layout>,
    /// The key new tokens are signed with.
    signing: RwLock<SigningKey>,
    /// Every key in the JWKS, in publication order.
    published: RwLock<Vec<SigningKey>>,
    /// Raw entries appended to the JWKS after the keys.
    extra_entries: RwLock<Vec<Value>>,
    behaviour: Mutex<JwksBehaviour>,
    delay: Mutex<Duration>,
    cache_control: Mutex<Option<String>>,
    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
}

/// A token issuer. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Issuer {
    state: Arc<IssuerState>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Issuer {
    /// An issuer publishing and signing with `key`, serving only its JWKS.
    pub fn new(key: SigningKey) -> Self {
        Self::build(key, None)
    }

    /// An issuer that also serves discovery and a `client_credentials` token endpoint.
    pub fn with_token_endpoint(key: SigningKey, policy: TokenPolicy) -> Self {
        Self::build(key, Some(policy))
    }

    fn build(key: SigningKey, tokens: Option<TokenPolicy>) -> Self {
        // Without a token endpoint it publishes no metadata until given a layout: an issuer
        // that serves only its JWKS at the conventional place.
        let layout = Layout {
            oidc: tokens.is_some(),
            ..Layout::default()
        };
        Self {
            state: Arc::new(IssuerState {
                tokens,
                layout: RwLock::new(layout),
                published: RwLock::new(vec![key.clone()]),
                signing: RwLock::new(key),
                extra_entries: RwLock::new(Vec::new()),
                behaviour: Mutex::new(JwksBehaviour::Serve),
                delay: Mutex::new(Duration::ZERO),
                cache_control: Mutex::new(None),
                jwks_fetches: AtomicU64::new(0),
                discovery_fetches: AtomicU64::new(0),
            }),
        }
    }

    /// The JWKS document as served.
    pub fn jwks(&self) -> Value {
        let mut keys: Vec<Value> = read(&self.state.published)
            .iter()
            .filter_map(|k| serde_json::to_value(k.public_jwk()).ok())
            .collect();
        keys.extend(read(&self.state.extra_entries).iter().cloned());
        json!({ "keys": keys })
    }

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> SigningKey {
        read(&self.state.signing).clone()
    }

    /// Signs `claims` with the current signing key.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, IssuerError> {
        read(&self.state.signing).sign(claims)
    }

    /// Publishes `key` and signs new tokens with it; older keys stay published.
    pub fn rotate_to(&self, key: SigningKey) {
        self.publish(key.clone());
        *write(&self.state.signing) = key;
    }

    /// Adds `key` to the JWKS without signing with it.
    pub fn publish(&self, key: SigningKey) {
        let mut published = write(&self.state.published);
        published.retain(|k| k.kid() != key.kid());
        published.push(key);
    }

    /// Removes the key `kid` from the JWKS.
    pub fn unpublish(&self, kid: &str) {
        write(&self.state.published).retain(|k| k.kid() != kid);
    }

    /// Appends raw entries (malformed or unusable JWKs) to the JWKS.
    pub fn set_extra_entries(&self, entries: Vec<Value>) {
        *write(&self.state.extra_entries) = entries;
    }

    pub fn set_behaviour(&self, behaviour: JwksBehaviour) {
        *lock(&self.state.behaviour) = behaviour;
    }

    /// Delays every JWKS answer by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.state.delay) = delay;
    }

    /// Sends this `Cache-Control` with the JWKS.
    pub fn set_cache_control(&self, value: Option<&str>) {
        *lock(&self.state.cache_control) = value.map(str::to_owned);
    }

    /// How many times the JWKS was requested (with `GET`, at the layout's `jwks_path`).
    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Publishes metadata and keys where `layout` says, from the next request on.
    pub fn set_layout(&self, layout: Layout) {
        *write(&self.state.layout) = layout;
    }

    /// Where metadata and keys are published now.
    pub fn layout(&self) -> Layout {
        read(&self.state.layout).clone()
    }

    /// How many times metadata was requested: any request for an OpenID Connect discovery
    /// document (`…/.well-known/openid-configuration`) or RFC 8414 metadata
    /// (`/.well-known/oauth-authorization-server…`), at any path, whether served or not.
    pub fn discovery_fetches(&self) -> u64 {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Registers the issuer's endpoints: the token endpoint, then metadata and keys where the
    /// current [`Layout`] puts them, looked up on every request.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(web::PayloadConfig::new(16 * 1024))
            .service(endpoint("/oauth/token", web::post().to(token_endpoint)).wrap(token_cors()))
            .default_service(web::to(dispatch));
    }

    /// Serves the issuer on `listener` (one worker, no signal handling) on the current runtime.
    pub fn serve(&self, listener: TcpListener) -> Result<ServerHandle, IssuerError> {
        self.serve_on(listener, false)
    }

    /// As [`Issuer::serve`], answering only requests addressed to a loopback host, so a web
    /// page cannot reach it through DNS rebinding (its client secrets are public).
    pub fn serve_loopback_only(&self, listener: TcpListener) -> Result<ServerHandle, IssuerError> {
        self.serve_on(listener, true)
    }

    fn serve_on(
        &self,
        listener: TcpListener,
        loopback_only: bool,
    ) -> Result<ServerHandle, IssuerError> {
        let issuer = self.clone();
        let server = HttpServer::new(move || {
            App::new().configure(|cfg| issuer.configure(cfg)).wrap(
                actix_web::middleware::Condition::new(
                    loopback_only,
                    actix_web::middleware::from_fn(endpoints::loopback_only),
                ),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .map_err(IssuerError::Serve)?
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(handle)
    }
}
