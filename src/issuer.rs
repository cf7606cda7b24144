//! A small OAuth 2.0 / OpenID Connect token issuer with real RSA keys, imitating the parts of an
//! Auth0 tenant the samples use: discovery, the JWKS, and `client_credentials` tokens.
//!
//! One implementation, two uses: `make run` starts it as the development issuer (see
//! [`start_dev_issuer`]), and the integration tests run it on loopback as the issuer the API
//! trusts, with knobs to rotate, drop, fail and slow down its keys.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use derive_more::{Display, Error};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::settings::DevIssuerSettings;

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

    /// A key from its PKCS#8 PEM, identified by its RFC 7638 thumbprint: the same key always
    /// gets the same `kid`.
    pub fn from_pkcs8_pem_with_thumbprint(pem: &str) -> Result<Self, IssuerError> {
        let key = Self::from_pkcs8_pem("", pem)?;
        let kid = key
            .jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| IssuerError::InvalidKey(e.to_string()))?;
        Self::from_pkcs8_pem(kid, pem)
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

/// A client allowed to get tokens with the `client_credentials` grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub client_secret: String,
    /// Copied into the `permissions` claim of its tokens.
    pub permissions: Vec<String>,
}

/// What the token endpoint issues, and to whom.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// The `iss` of issued tokens, with its trailing slash; discovery URLs derive from it.
    pub issuer_url: String,
    /// The only audience tokens are issued for.
    pub audience: String,
    pub lifetime: Duration,
    pub clients: Vec<Client>,
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
        JwksBehaviour::Serve => {
            let mut response = HttpResponse::Ok();
            if let Some(value) = lock(&issuer.state.cache_control).clone() {
                response.insert_header((header::CACHE_CONTROL, value));
            }
            response.json(issuer.jwks())
        }
        JwksBehaviour::Fail(status) => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY))
                .json(json!({"error": "temporarily_unavailable"}))
        }
        JwksBehaviour::Garbage => HttpResponse::Ok()
            .content_type("text/html")
            .body("<html>maintenance</html>"),
    }
}

/// A resource with one route; other methods get a 405 in the OAuth error shape.
fn endpoint(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| async {
            oauth_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "method not allowed",
            )
        }))
}

async fn discovery_endpoint(issuer: web::Data<Issuer>) -> HttpResponse {
    let Some(policy) = &issuer.state.tokens else {
        return oauth_error(StatusCode::NOT_FOUND, "not_found", "no discovery document");
    };
    let base = &policy.issuer_url;
    HttpResponse::Ok().json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}.well-known/jwks.json"),
        "token_endpoint": format!("{base}oauth/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="dev-issuer""#));
    }
    response.json(json!({ "error": error, "error_description": description }))
}

/// The token request's parameters, as a form or as JSON (Auth0 takes both).
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    audience: Option<String>,
}

struct OAuthError(StatusCode, &'static str, String);

impl OAuthError {
    fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, error, description.into())
    }

    fn invalid_client() -> Self {
        Self(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong client secret".to_owned(),
        )
    }
}

/// The token response, exactly the three members Auth0 returns for this grant.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
}

async fn token_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    issuer: web::Data<Issuer>,
) -> HttpResponse {
    let Some(policy) = &issuer.state.tokens else {
        return oauth_error(StatusCode::NOT_FOUND, "not_found", "no token endpoint");
    };
    match issue_token(&issuer, policy, &req, &body) {
        Ok(token) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(token),
        Err(OAuthError(status, error, description)) => oauth_error(status, error, &description),
    }
}

fn issue_token(
    issuer: &Issuer,
    policy: &TokenPolicy,
    req: &HttpRequest,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let request: TokenRequest = if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| OAuthError::bad_request("invalid_request", format!("bad form: {e}")))?
    } else if content_type.starts_with("application/json") {
        serde_json::from_slice(body)
            .map_err(|e| OAuthError::bad_request("invalid_request", format!("bad JSON: {e}")))?
    } else {
        return Err(OAuthError::bad_request(
            "invalid_request",
            "send application/x-www-form-urlencoded or application/json",
        ));
    };

    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        None => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "grant_type is required",
            ));
        }
        Some(_) => {
            return Err(OAuthError::bad_request(
                "unsupported_grant_type",
                "only client_credentials is supported",
            ));
        }
    }

    let (client_id, client_secret) = client_credentials(req, &request)?;
    let client = policy
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .filter(|c| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                c.client_secret.as_bytes(),
                client_secret.as_bytes(),
            )
            .is_ok()
        })
        .ok_or_else(OAuthError::invalid_client)?;

    match request.audience.as_deref() {
        Some(audience) if audience == policy.audience => {}
        None | Some("") => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "audience is required",
            ));
        }
        Some(other) => {
            return Err(OAuthError::bad_request(
                "invalid_target",
                format!(
                    "unknown audience {other:?}; this issuer serves {:?}",
                    policy.audience
                ),
            ));
        }
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = json!({
        "iss": policy.issuer_url,
        "sub": format!("{}@clients", client.client_id),
        "aud": policy.audience,
        "iat": now,
        "exp": now + policy.lifetime.as_secs(),
        "gty": "client-credentials",
        "azp": client.client_id,
        "permissions": client.permissions,
    });
    let access_token = issuer.sign(&claims).map_err(|e| {
        log::error!("development issuer could not sign a token: {e}");
        OAuthError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not sign".to_owned(),
        )
    })?;
    log::info!("development issuer: token issued to {}", client.client_id);
    Ok(TokenResponse {
        access_token,
        expires_in: policy.lifetime.as_secs(),
        token_type: "Bearer".to_owned(),
    })
}

/// The client's credentials, from HTTP Basic or the body, but not both (RFC 6749 §2.3.1).
fn client_credentials(
    req: &HttpRequest,
    request: &TokenRequest,
) -> Result<(String, String), OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| {
            let value = value.to_str().unwrap_or("");
            let encoded = value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
                .ok_or_else(OAuthError::invalid_client)?;
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(OAuthError::invalid_client)?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(OAuthError::invalid_client)?;
            Ok((id.to_owned(), secret.to_owned()))
        })
        .transpose()?;
    match (basic, &request.client_id, &request.client_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::bad_request(
            "invalid_request",
            "use one client authentication method, not two",
        )),
        (Some((id, secret)), _, None) => Ok((id, secret)),
        (None, Some(id), Some(secret)) => Ok((id.clone(), secret.clone())),
        (None, _, _) => Err(OAuthError::invalid_client()),
    }
}

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
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(file_error)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(file_error)?;
            file.write_all(key.private_pem().as_bytes())
                .map_err(file_error)?;
            log::info!(
                "development issuer: new signing key written to {}",
                path.display()
            );
            SigningKey::from_pkcs8_pem_with_thumbprint(key.private_pem())
        }
        Err(e) => Err(file_error(e)),
    }
}

/// Starts the development issuer on `127.0.0.1:{port}` on the current runtime.
pub fn start_dev_issuer(settings: &DevIssuerSettings) -> Result<ServerHandle, IssuerError> {
    let key = load_or_create_key(&settings.key_file)?;
    let address = format!("127.0.0.1:{}", settings.port);
    let listener = TcpListener::bind(&address).map_err(|source| IssuerError::Bind {
        address: address.clone(),
        source,
    })?;
    let issuer = Issuer::with_token_endpoint(
        key,
        TokenPolicy {
            issuer_url: settings.issuer_url.clone(),
            audience: settings.audience.clone(),
            lifetime: settings.token_lifetime,
            clients: settings.clients.clone(),
        },
    );
    let handle = issuer.serve(listener)?;
    log::warn!(
        "DEVELOPMENT ISSUER at {} (listening on {address}): tokens come from a local stand-in for \
         Auth0, signed with {}. Set AUTH0_DOMAIN and AUTH0_AUDIENCE to use your tenant.",
        settings.issuer_url,
        settings.key_file.display()
    );
    Ok(handle)
}

/// Asks a running development issuer for an access token for `client`.
pub async fn request_token(
    settings: &DevIssuerSettings,
    client: &Client,
) -> Result<TokenResponse, String> {
    let url = format!("http://127.0.0.1:{}/oauth/token", settings.port);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.client_id.as_str()),
        ("client_secret", client.client_secret.as_str()),
        ("audience", settings.audience.as_str()),
    ];
    let mut response = awc::Client::default()
        .post(&url)
        .send_form(&form)
        .await
        .map_err(|e| {
            format!("no development issuer at {url} ({e}); start the API with `make run` first")
        })?;
    let body = response
        .body()
        .await
        .map_err(|e| format!("reading the answer of {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "{url} answered {}: {}",
            response.status(),
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("unexpected answer from {url}: {e}"))
}
