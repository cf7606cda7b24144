//! A small OAuth 2.0 / OpenID Connect token issuer with real RSA keys, imitating the parts of an
//! Auth0 tenant the samples use: discovery, the JWKS, and `client_credentials` tokens.
//!
//! One implementation, two uses: `make run` starts it as the development issuer (see
//! [`start_dev_issuer`]), and the integration tests run it on loopback as the issuer the API
//! trusts, with knobs to rotate, drop, fail and slow down its keys.

mod dev;
mod endpoints;
mod grant;
mod key;

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpServer, web};
use derive_more::{Display, Error};
use serde::Serialize;
use serde_json::{Value, json};

pub use dev::{TokenRequestError, load_or_create_key, request_token, start_dev_issuer};
pub use grant::TokenResponse;
pub use key::SigningKey;

use crate::settings::DevClient;
use endpoints::{discovery_endpoint, endpoint, jwks_endpoint, oauth_error};
use grant::token_endpoint;

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
    #[display("dev_issuer.port: cannot listen on {address}: {source}")]
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
    /// Discovery and the token endpoint answer only when set.
    tokens: Option<TokenPolicy>,
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
        Self {
            state: Arc::new(IssuerState {
                tokens,
                published: RwLock::new(vec![key.clone()]),
                signing: RwLock::new(key),
                extra_entries: RwLock::new(Vec::new()),
                behaviour: Mutex::new(JwksBehaviour::Serve),
                delay: Mutex::new(Duration::ZERO),
                cache_control: Mutex::new(None),
                jwks_fetches: AtomicU64::new(0),
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

    /// How many times the JWKS was requested.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Registers the issuer's endpoints.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(web::PayloadConfig::new(16 * 1024))
            .service(endpoint(
                "/.well-known/jwks.json",
                web::get().to(jwks_endpoint),
            ))
            .service(endpoint(
                "/.well-known/openid-configuration",
                web::get().to(discovery_endpoint),
            ))
            .service(endpoint("/oauth/token", web::post().to(token_endpoint)))
            .default_service(web::to(|| async {
                oauth_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
            }));
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
