//! The API in the test's own runtime, built by the same app factory and settings loader as
//! production, on port 0, against an issuer on port 0.

use std::sync::Arc;
use std::time::Duration;

use awc::ClientRequest;
use hello_world_api::auth::store::JwksStore;
use hello_world_api::clock::ManualClock;
use hello_world_api::issuer::{Issuer, JwksBehaviour};
use hello_world_api::routes::{ROUTES, Route};
use hello_world_api::startup::Application;
use serde_json::Value;

use crate::config::settings;
use crate::constants::AUDIENCE;
use crate::http::{Reply, send};
use crate::issuer::spawn_issuer;
use crate::keys::key;
use crate::tokens::{admin_claims, user_claims};

/// A running API, its issuer, and what the tests steer or inspect.
pub struct TestApp {
    /// The API, e.g. `http://127.0.0.1:PORT`.
    pub address: String,
    /// The management listener, e.g. `http://127.0.0.1:PORT`.
    pub metrics_address: Option<String>,
    pub issuer: Issuer,
    /// The issuer, e.g. `http://127.0.0.1:PORT/`.
    pub issuer_url: String,
    pub keys: Arc<JwksStore>,
    /// The key store's clock, which only the test moves.
    pub clock: Arc<ManualClock>,
    pub client: awc::Client,
}

/// A [`TestApp`] to be: settings and issuer behaviour before it starts.
pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    behaviour: JwksBehaviour,
    wait_for_keys: bool,
    routes: &'static [Route],
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

    /// Serves `routes` instead of the API's own.
    pub fn routes(mut self, routes: &'static [Route]) -> Self {
        self.routes = routes;
        self
    }

    /// Starts the issuer and the API; waits for the first key fetch unless the issuer was
    /// given a behaviour.
    pub async fn spawn(self) -> TestApp {
        let issuer = Issuer::new(key(0));
        issuer.set_behaviour(self.behaviour);
        let issuer_url = spawn_issuer(&issuer);

        let defaults = [
            ("AUTH0_ISSUER", issuer_url.as_str()),
            ("AUTH0_AUDIENCE", AUDIENCE),
            ("PORT", "0"),
            ("APP__SERVER__WORKERS", "1"),
            ("APP__METRICS__ADDRESS", "127.0.0.1:0"),
            ("APP__JWKS__FETCH_TIMEOUT_SECS", "2"),
            ("APP__JWKS__RETRY_INITIAL_SECS", "0.05"),
            ("APP__JWKS__RETRY_MAX_SECS", "0.2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let settings = settings(defaults.into_iter().chain(self.env));

        let clock = Arc::new(ManualClock::new());
        let app = Application::build_with(settings, clock.clone(), self.routes)
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

impl TestApp {
    /// An API with a healthy issuer and the test settings, to be changed before `spawn`.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: Vec::new(),
            behaviour: JwksBehaviour::Serve,
            wait_for_keys: true,
            routes: ROUTES,
        }
    }

    /// A request to `path` on the API.
    pub fn request(&self, method: &str, path: &str) -> ClientRequest {
        let method = method.parse().expect("method");
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    /// `GET path` without credentials.
    pub async fn get(&self, path: &str) -> Reply {
        send(self.request("GET", path)).await
    }

    /// `GET path` with `token` as the bearer token.
    pub async fn get_with_token(&self, path: &str, token: &str) -> Reply {
        send(self.request("GET", path).bearer_auth(token)).await
    }

    /// `GET path` with `value` as the whole `Authorization` header.
    pub async fn get_with_authorization(&self, path: &str, value: &str) -> Reply {
        send(
            self.request("GET", path)
                .insert_header(("Authorization", value)),
        )
        .await
    }

    /// Valid claims for a user without permissions.
    pub fn claims(&self) -> Value {
        user_claims(&self.issuer_url)
    }

    /// Valid claims that grant the admin permission.
    pub fn admin_claims(&self) -> Value {
        admin_claims(&self.issuer_url)
    }

    /// A valid token for a user without permissions, signed by the issuer's current key.
    pub fn token(&self) -> String {
        self.issuer.sign(&self.claims()).expect("sign")
    }

    /// A valid token that grants the admin permission.
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

    /// How many times the API fetched the issuer's JWKS.
    pub fn fetches(&self) -> u64 {
        self.issuer.jwks_fetches()
    }
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
