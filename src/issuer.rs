//! A small OAuth 2.0 / OpenID Connect token issuer with real RSA keys: the JWKS endpoint and
//! token signing. The integration tests run it on loopback as the issuer the API trusts, with
//! knobs to rotate, drop, fail and slow down its keys.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use derive_more::{Display, Error};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

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
}

/// An RS256 signing key with its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
    pkcs8_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit RSA key.
    pub fn generate(kid: impl Into<String>) -> Result<Self, IssuerError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| IssuerError::KeyGeneration)?;
        let der = pair.as_der().map_err(|_| IssuerError::KeyGeneration)?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        Self::from_pkcs8_pem(kid, &pem)
    }

    /// A key from its PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(kid: impl Into<String>, pem: &str) -> Result<Self, IssuerError> {
        let kid = kid.into();
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            kid,
            encoding,
            jwk,
            pkcs8_pem: pem.to_owned(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as published in the JWKS.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The private key as PKCS#8 PEM, for keeping it on disk.
    pub fn private_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    /// Signs `claims` as an RS256 JWT with this key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, IssuerError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under a header of the caller's choosing.
    pub fn sign_with_header<T: Serialize>(
        &self,
        header: &Header,
        claims: &T,
    ) -> Result<String, IssuerError> {
        jsonwebtoken::encode(header, claims, &self.encoding)
            .map_err(|e| IssuerError::Signing(e.to_string()))
    }
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

#[derive(Debug)]
struct IssuerState {
    /// The key new tokens are signed with.
    signing: RwLock<SigningKey>,
    /// Every key in the JWKS, in publication order.
    published: RwLock<Vec<SigningKey>>,
    /// Raw entries appended to the JWKS after the keys.
    extra_entries: RwLock<Vec<Value>>,
    behaviour: Mutex<JwksBehaviour>,
    delay: Mutex<Duration>,
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
    /// An issuer publishing and signing with `key`.
    pub fn new(key: SigningKey) -> Self {
        Self {
            state: Arc::new(IssuerState {
                published: RwLock::new(vec![key.clone()]),
                signing: RwLock::new(key),
                extra_entries: RwLock::new(Vec::new()),
                behaviour: Mutex::new(JwksBehaviour::Serve),
                delay: Mutex::new(Duration::ZERO),
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

    /// How many times the JWKS was requested.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Registers the issuer's endpoints.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .route("/.well-known/jwks.json", web::get().to(jwks_endpoint));
    }

    /// Serves the issuer on `listener` (one worker, no signal handling) on the current runtime.
    pub fn serve(&self, listener: TcpListener) -> Result<ServerHandle, IssuerError> {
        let issuer = self.clone();
        let server = HttpServer::new(move || App::new().configure(|cfg| issuer.configure(cfg)))
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

async fn jwks_endpoint(issuer: web::Data<Issuer>) -> HttpResponse {
    issuer.state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *lock(&issuer.state.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let behaviour = *lock(&issuer.state.behaviour);
    match behaviour {
        JwksBehaviour::Serve => HttpResponse::Ok().json(issuer.jwks()),
        JwksBehaviour::Fail(status) => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY))
                .json(json!({"error": "temporarily_unavailable"}))
        }
        JwksBehaviour::Garbage => HttpResponse::Ok()
            .content_type("text/html")
            .body("<html>maintenance</html>"),
    }
}
