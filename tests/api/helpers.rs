//! Test harness: a real issuer with real RSA keys on loopback, and the API started through the
//! same app factory and settings loader as production, on port 0.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::HeaderMap;
use awc::ClientRequest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hello_world_api::auth::store::JwksStore;
use hello_world_api::clock::ManualClock;
use hello_world_api::issuer::{Issuer, JwksBehaviour, SigningKey};
use hello_world_api::settings;
use hello_world_api::startup::Application;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

pub const AUDIENCE: &str = "https://hello-world.example.com";
pub const SPA_ORIGIN: &str = "http://localhost:4040";
pub const ADMIN_PERMISSION: &str = "read:admin-messages";

/// RSA keys are slow to generate: the whole suite shares a few.
static KEYS: LazyLock<Vec<SigningKey>> = LazyLock::new(|| {
    (0..4)
        .map(|i| SigningKey::generate(format!("test-key-{i}")).expect("RSA key generation"))
        .collect()
});

/// The `n`th shared test key (0 to 3).
pub fn key(n: usize) -> SigningKey {
    KEYS[n].clone()
}

/// A key with another `kid` but the same key material as `key(n)`.
pub fn key_as(n: usize, kid: &str) -> SigningKey {
    SigningKey::from_pkcs8_pem(kid, KEYS[n].private_pem()).expect("re-read key")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub struct TestApp {
    pub address: String,
    /// The management listener, e.g. `http://127.0.0.1:PORT`.
    pub metrics_address: Option<String>,
    pub issuer: Issuer,
    pub issuer_url: String,
    pub keys: Arc<JwksStore>,
    pub clock: Arc<ManualClock>,
    pub client: awc::Client,
}

pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    behaviour: JwksBehaviour,
    wait_for_keys: bool,
}

impl TestAppBuilder {
    /// Sets a configuration variable, as the process environment would.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The issuer's JWKS endpoint behaves like this from the start.
    pub fn issuer_behaviour(mut self, behaviour: JwksBehaviour) -> Self {
        self.behaviour = behaviour;
        self.wait_for_keys = false;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let issuer = Issuer::new(key(0));
        issuer.set_behaviour(self.behaviour);
        let issuer_listener = TcpListener::bind("127.0.0.1:0").expect("bind issuer");
        let issuer_port = issuer_listener.local_addr().expect("issuer addr").port();
        issuer.serve(issuer_listener).expect("serve issuer");
        let issuer_url = format!("http://127.0.0.1:{issuer_port}/");

        let mut env: HashMap<String, String> = [
            ("AUTH0_ISSUER", issuer_url.as_str()),
            ("AUTH0_AUDIENCE", AUDIENCE),
            ("PORT", "0"),
            ("APP__SERVER__WORKERS", "1"),
            ("APP__METRICS__ADDRESS", "127.0.0.1:0"),
            ("APP__JWKS__FETCH_TIMEOUT_SECS", "2"),
            ("APP__JWKS__RETRY_INITIAL_SECS", "0.05"),
            ("APP__JWKS__RETRY_MAX_SECS", "0.2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(self.env);
        let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let settings = settings::load(&config_dir, &env).expect("test settings");

        let clock = Arc::new(ManualClock::new());
        let app = Application::build_with_clock(settings, clock.clone())
            .await
            .expect("build app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
        let keys = app.keys();
        actix_web::rt::spawn(app.run_until_stopped());
        if self.wait_for_keys {
            keys.wait_for_attempts(1).await;
            assert!(!keys.status().kids.is_empty(), "keys loaded at start");
        }
        TestApp {
            address,
            metrics_address,
            issuer,
            issuer_url,
            keys,
            clock,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(10))
                .finish(),
        }
    }
}

/// An API with its keys loaded from a healthy issuer.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

/// An answer, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }

    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or("")
    }
}

pub async fn send(request: ClientRequest) -> Reply {
    reply(request.send()).await
}

/// Awaits a sent request (`send`, `send_form`, `send_json`) and reads its answer.
pub async fn reply(
    sent: impl std::future::Future<Output = Result<awc::ClientResponse, awc::error::SendRequestError>>,
) -> Reply {
    let mut response = sent.await.expect("request");
    let raw = response.body().limit(1 << 20).await.expect("body").to_vec();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: Vec::new(),
            behaviour: JwksBehaviour::Serve,
            wait_for_keys: true,
        }
    }

    pub fn request(&self, method: &str, path: &str) -> ClientRequest {
        let method = method.parse().expect("method");
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.request("GET", path)).await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Reply {
        send(self.request("GET", path).bearer_auth(token)).await
    }

    pub async fn get_with_authorization(&self, path: &str, value: &str) -> Reply {
        send(
            self.request("GET", path)
                .insert_header(("Authorization", value)),
        )
        .await
    }

    /// Valid claims for a user without permissions.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.issuer_url,
            "sub": "auth0|user-1",
            "aud": [AUDIENCE, format!("{}userinfo", self.issuer_url)],
            "iat": now,
            "exp": now + 3600,
            "scope": "openid profile",
        })
    }

    /// Valid claims that grant the admin permission.
    pub fn admin_claims(&self) -> Value {
        let mut claims = self.claims();
        claims["permissions"] = json!([ADMIN_PERMISSION]);
        claims
    }

    /// A valid token for a user without permissions, signed by the issuer's current key.
    pub fn token(&self) -> String {
        self.issuer.sign(&self.claims()).expect("sign")
    }

    pub fn admin_token(&self) -> String {
        self.issuer.sign(&self.admin_claims()).expect("sign")
    }

    /// A token with the default claims changed by `edit`.
    pub fn token_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        self.issuer.sign(&claims).expect("sign")
    }

    /// Moves the key store's clock past the unknown-`kid` cooldown.
    pub fn pass_cooldown(&self) {
        self.clock.advance(Duration::from_secs(31));
    }

    pub fn fetches(&self) -> u64 {
        self.issuer.jwks_fetches()
    }
}

/// Builds a JWS from raw header and payload JSON text, signed by `key` with `alg`: for tokens
/// no well-behaved library would produce.
pub fn forge(header: &str, payload: &str, key: &SigningKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key.encoding_key(), alg)
        .expect("sign forged token");
    format!("{message}.{signature}")
}

pub fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// The JSON text of a header naming `alg` and `kid`.
pub fn header_json(alg: &str, kid: &str) -> String {
    json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string()
}

/// Asserts the RFC 6750 invalid-token answer with `reason` as its description.
pub fn assert_bad_credentials(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.message(), "Bad credentials", "{reply:?}");
    assert_eq!(reply.description(), reason, "{reply:?}");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer realm="hello-world-api", error="invalid_token", error_description="{reason}""#
            )
            .as_str()
        ),
        "{reply:?}"
    );
}

/// The metrics text of `app`'s management listener.
pub async fn scrape(app: &TestApp) -> String {
    let url = format!(
        "{}/metrics",
        app.metrics_address.as_ref().expect("metrics on")
    );
    let mut response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
}

/// The value of the series `series` (name and labels, exactly as exposed), 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
