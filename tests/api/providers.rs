//! Access tokens as each identity provider issues them, with its keys found by discovery where
//! it publishes them: Auth0 (with and without RBAC, custom domains), Keycloak, Entra ID (v1 and
//! v2), Okta, Cognito and Zitadel. Then discovery itself, where the permissions claim may be
//! and what it may hold, and the RFC 9068 profile.
//!
//! Each provider test configures only the issuer URL (never a JWKS URI) and that provider's
//! settings, and signs claims shaped like the provider's documented access tokens.

use std::time::{Duration, Instant};

use hello_world_api::issuer::{Issuer, JwksBehaviour, Layout};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use test_support::{AUDIENCE, Reply, TestApp, key, now, spawn_issuer_at, tokens};

const PROTECTED: &str = "/api/messages/protected";
const ADMIN: &str = "/api/messages/admin";

// --- the API, an issuer, and what every provider must pass ---------------------------------

/// The API, trusting only the issuers `env` names. The builder's own issuer is not among them,
/// and its wait for that issuer's keys is skipped: callers wait for readiness instead.
async fn start_api(env: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder()
        .env("AUTH0_ISSUER", "")
        .env("AUTH0_AUDIENCE", "")
        .issuer_behaviour(JwksBehaviour::Serve);
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

/// Waits (at most 10 s) until `condition` holds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 10 s) until `/readyz` answers 200.
async fn wait_until_ready(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = app.get("/readyz").await;
        if reply.status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {reply:?}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An issuer laid out like one provider's, and the API trusting it.
struct Provider {
    api: TestApp,
    issuer: Issuer,
    /// The issuer URL exactly as its metadata states it and its tokens carry it in `iss`.
    iss: String,
}

impl Provider {
    /// Serves an issuer with `layout`, and starts the API with its URL in `issuer_variable`
    /// plus `settings`; returns once the API is ready (its keys found by discovery).
    async fn start(layout: Layout, issuer_variable: &str, settings: &[(&str, &str)]) -> Self {
        let issuer = Issuer::new(key(0));
        let iss = spawn_issuer_at(&issuer, layout);
        let mut env = vec![(issuer_variable, iss.as_str())];
        env.extend_from_slice(settings);
        let api = start_api(&env).await;
        wait_until_ready(&api).await;
        Self { api, issuer, iss }
    }

    /// `claims` signed by the issuer (`typ` `JWT`).
    fn token(&self, claims: &Value) -> String {
        self.issuer.sign(claims).expect("sign")
    }

    async fn get(&self, path: &str, claims: &Value) -> Reply {
        self.api.get_with_token(path, &self.token(claims)).await
    }
}

/// The route checks every provider passes: both tokens reach the protected route; only
/// `admin` reaches the admin route, `user` is refused 403 there.
async fn assert_authorizes(provider: &Provider, admin: &Value, user: &Value) {
    for (who, claims) in [("admin", admin), ("user", user)] {
        let reply = provider.get(PROTECTED, claims).await;
        assert_eq!(reply.status, 200, "{who} on {PROTECTED}: {reply:?}");
    }
    let reply = provider.get(ADMIN, admin).await;
    assert_eq!(reply.status, 200, "admin on {ADMIN}: {reply:?}");
    assert_eq!(reply.body["text"], "This is an admin message.");
    let reply = provider.get(ADMIN, user).await;
    assert_insufficient_scope(&reply);
}

fn assert_insufficient_scope(reply: &Reply) {
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.body["error"], "insufficient_scope", "{reply:?}");
}

fn assert_invalid_token(reply: &Reply, why: &str) {
    assert_eq!(reply.status, 401, "{why}: {reply:?}");
    assert_eq!(reply.message(), "Bad credentials", "{why}: {reply:?}");
    assert_eq!(reply.body["error"], "invalid_token", "{why}: {reply:?}");
}

/// Each `(why, claims)` is refused 401 on both routes.
async fn assert_refused(provider: &Provider, cases: &[(&str, Value)]) {
    for (why, claims) in cases {
        for path in [PROTECTED, ADMIN] {
            let reply = provider.get(path, claims).await;
            assert_invalid_token(&reply, &format!("{why} on {path}"));
        }
    }
}

/// `claims` with `edit` applied.
fn with(claims: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut claims = claims.clone();
    edit(&mut claims);
    claims
}

/// `claims` without the claim `name`.
fn without(claims: &Value, name: &str) -> Value {
    with(claims, |c| {
        c.as_object_mut().expect("claims object").remove(name);
    })
}

/// The same issuer URL with its trailing slash added or removed: another issuer, to `iss`.
fn slash_toggled(iss: &str) -> String {
    match iss.strip_suffix('/') {
        Some(bare) => bare.to_owned(),
        None => format!("{iss}/"),
    }
}

/// The issuer URL's origin, `http://127.0.0.1:PORT`.
fn origin(iss: &str) -> String {
    let after_scheme = iss.strip_prefix("http://").expect("http issuer");
    let authority = after_scheme.split('/').next().expect("authority");
    format!("http://{authority}")
}

// --- Auth0 -------------------------------------------------------------------------------

const AUTH0_CLIENT: &str = "aBcDeFgHiJkLmNoPqRsTuVwXyZ012345";

/// An Auth0 tenant: the issuer `http://HOST/` with discovery and keys at Auth0's places.
async fn auth0(settings: &[(&str, &str)]) -> Provider {
    let mut env = vec![("AUTH0_AUDIENCE", AUDIENCE)];
    env.extend_from_slice(settings);
    Provider::start(Layout::default(), "AUTH0_ISSUER", &env).await
}

/// A user's token from Auth0's authorization code flow: the API and `/userinfo` as audiences.
fn auth0_user_claims(iss: &str, scope: &str, permissions: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "sub": "auth0|65f1c0ffee0ddba11f00d123",
        "aud": [AUDIENCE, format!("{iss}userinfo")],
        "iat": now,
        "exp": now + 86_400,
        "scope": scope,
        "azp": AUTH0_CLIENT,
        "permissions": permissions,
    })
}

/// A machine-to-machine token (client credentials), with its granted scopes.
fn auth0_m2m_claims(iss: &str, scope: &str, permissions: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "sub": format!("{AUTH0_CLIENT}@clients"),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 86_400,
        "scope": scope,
        "gty": "client-credentials",
        "azp": AUTH0_CLIENT,
        "permissions": permissions,
    })
}

#[actix_web::test]
async fn auth0_tokens_with_rbac_permissions_are_authorized_by_their_permissions_array() {
    let auth0 = auth0(&[]).await;
    let iss = auth0.iss.clone();
    let admin = auth0_m2m_claims(&iss, "read:admin-messages", &["read:admin-messages"]);
    let user = auth0_user_claims(&iss, "openid profile email", &["read:messages"]);
    assert_authorizes(&auth0, &admin, &user).await;
    let admin_user = auth0_user_claims(&iss, "openid profile", &["read:admin-messages"]);
    assert_eq!(auth0.get(ADMIN, &admin_user).await.status, 200);
    // With RBAC, the scope is not where permissions are read.
    let scoped_only = auth0_user_claims(&iss, "openid read:admin-messages", &[]);
    assert_insufficient_scope(&auth0.get(ADMIN, &scoped_only).await);

    assert_refused(
        &auth0,
        &[
            (
                "the issuer without its trailing slash",
                with(&admin, |c| c["iss"] = json!(slash_toggled(&iss))),
            ),
            (
                "another tenant",
                with(&admin, |c| {
                    c["iss"] = json!("https://other-tenant.eu.auth0.com/")
                }),
            ),
            (
                "a token for another API",
                with(&user, |c| {
                    c["aud"] = json!(["https://other-api.example.com", format!("{iss}userinfo")]);
                }),
            ),
            (
                "a token for /userinfo only",
                with(&user, |c| c["aud"] = json!(format!("{iss}userinfo"))),
            ),
        ],
    )
    .await;
}

#[actix_web::test]
async fn auth0_tokens_without_rbac_are_authorized_by_their_scope() {
    let auth0 = auth0(&[("APP__AUTH__PERMISSIONS_CLAIM", "/scope")]).await;
    let iss = auth0.iss.clone();
    let admin = auth0_user_claims(&iss, "openid profile read:admin-messages", &[]);
    let user = auth0_user_claims(&iss, "openid profile email", &[]);
    assert_authorizes(&auth0, &admin, &user).await;
    let m2m = auth0_m2m_claims(&iss, "read:messages read:admin-messages", &[]);
    assert_eq!(auth0.get(ADMIN, &m2m).await.status, 200);
    // The permissions array is not read when the scope is.
    let permissions_only = auth0_user_claims(&iss, "openid", &["read:admin-messages"]);
    assert_insufficient_scope(&auth0.get(ADMIN, &permissions_only).await);

    assert_refused(
        &auth0,
        &[
            (
                "the issuer without its trailing slash",
                with(&admin, |c| c["iss"] = json!(slash_toggled(&iss))),
            ),
            (
                "a token for another API",
                with(&admin, |c| {
                    c["aud"] = json!("https://other-api.example.com")
                }),
            ),
        ],
    )
    .await;
}

#[actix_web::test]
async fn auth0_tokens_from_the_tenant_domain_and_its_custom_domain_are_both_accepted() {
    // One tenant, two names: tokens carry whichever domain the client used, signed by one key.
    let canonical = Issuer::new(key(0));
    let canonical_url = spawn_issuer_at(&canonical, Layout::default());
    let custom = Issuer::new(key(0));
    let custom_url = spawn_issuer_at(&custom, Layout::default());
    let stranger = Issuer::new(key(2));
    let stranger_url = spawn_issuer_at(&stranger, Layout::default());

    let issuers = format!("{canonical_url},{custom_url}");
    let api = start_api(&[
        ("APP__AUTH__ISSUERS", &issuers),
        ("AUTH0_AUDIENCE", AUDIENCE),
    ])
    .await;
    wait_until_ready(&api).await;
    assert!(canonical.discovery_fetches() >= 1 && custom.discovery_fetches() >= 1);

    for (issuer, url) in [(&canonical, &canonical_url), (&custom, &custom_url)] {
        let admin = auth0_m2m_claims(url, "read:admin-messages", &["read:admin-messages"]);
        let user = auth0_user_claims(url, "openid profile", &[]);
        let reply = api
            .get_with_token(PROTECTED, &issuer.sign(&user).unwrap())
            .await;
        assert_eq!(reply.status, 200, "{url}: {reply:?}");
        let reply = api
            .get_with_token(ADMIN, &issuer.sign(&admin).unwrap())
            .await;
        assert_eq!(reply.status, 200, "{url}: {reply:?}");
        let reply = api
            .get_with_token(ADMIN, &issuer.sign(&user).unwrap())
            .await;
        assert_insufficient_scope(&reply);
    }

    // An issuer not listed: refused before anything is asked of it, whatever key signed it.
    let from_stranger = auth0_user_claims(&stranger_url, "openid", &["read:admin-messages"]);
    api.pass_cooldown();
    for (signed_by, token) in [
        ("its own key", stranger.sign(&from_stranger).unwrap()),
        ("the tenant's key", canonical.sign(&from_stranger).unwrap()),
    ] {
        for path in [PROTECTED, ADMIN] {
            let reply = api.get_with_token(path, &token).await;
            assert_invalid_token(&reply, &format!("unlisted issuer, {signed_by}, on {path}"));
        }
    }
    assert_eq!(stranger.discovery_fetches(), 0, "no metadata asked of it");
    assert_eq!(stranger.jwks_fetches(), 0, "no keys asked of it");
}

#[actix_web::test]
async fn each_of_several_issuers_is_trusted_only_with_its_own_keys() {
    let first = Issuer::new(key(0));
    let first_url = spawn_issuer_at(&first, Layout::default());
    let second = Issuer::new(key(1));
    let second_url = spawn_issuer_at(&second, Layout::default());
    let issuers = format!("{first_url},{second_url}");
    let api = start_api(&[("APP__AUTH__ISSUERS", &issuers), ("AUDIENCE", AUDIENCE)]).await;
    wait_until_ready(&api).await;

    let first_claims = auth0_user_claims(&first_url, "openid", &[]);
    let second_claims = auth0_user_claims(&second_url, "openid", &[]);
    for token in [first.sign(&first_claims), second.sign(&second_claims)] {
        let reply = api.get_with_token(PROTECTED, &token.unwrap()).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    api.pass_cooldown();
    for (why, token) in [
        (
            "the first's iss, the second's key",
            second.sign(&first_claims),
        ),
        (
            "the second's iss, the first's key",
            first.sign(&second_claims),
        ),
    ] {
        let reply = api.get_with_token(PROTECTED, &token.unwrap()).await;
        assert_invalid_token(&reply, why);
    }
}

#[actix_web::test]
async fn one_issuer_down_does_not_affect_the_tokens_of_another() {
    let up = Issuer::new(key(0));
    let up_url = spawn_issuer_at(&up, Layout::default());
    // Nothing listens there: its metadata and keys never arrive.
    let down_url = format!("http://127.0.0.1:{}/", test_support::free_port());
    let issuers = format!("{down_url},{up_url}");
    let api = start_api(&[("APP__AUTH__ISSUERS", &issuers), ("AUDIENCE", AUDIENCE)]).await;
    let from_up = up.sign(&auth0_user_claims(&up_url, "openid", &[])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = api.get_with_token(PROTECTED, &from_up).await;
        if reply.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never accepted: {reply:?}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }

    let from_down = up
        .sign(&auth0_user_claims(&down_url, "openid", &[]))
        .unwrap();
    let reply = api.get_with_token(PROTECTED, &from_down).await;
    assert_eq!(
        reply.status, 503,
        "the unreachable issuer's token: {reply:?}"
    );
    assert!(reply.header("retry-after").is_some());
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["issuers_not_ready"], json!([down_url]));
    assert_eq!(
        api.get_with_token(PROTECTED, &from_up).await.status,
        200,
        "still served"
    );
}

// --- Keycloak ----------------------------------------------------------------------------

const KEYCLOAK_CLIENT: &str = "hello-world-api";

fn keycloak_layout() -> Layout {
    Layout {
        path: "/realms/demo".to_owned(),
        trailing_slash: false,
        jwks_path: "/realms/demo/protocol/openid-connect/certs".to_owned(),
        ..Layout::default()
    }
}

/// A Keycloak realm whose admin role is read at `permissions_claim`.
async fn keycloak(permissions_claim: &str) -> Provider {
    Provider::start(
        keycloak_layout(),
        "APP__AUTH__ISSUER",
        &[
            ("APP__AUTH__AUDIENCE", AUDIENCE),
            ("APP__AUTH__PERMISSIONS_CLAIM", permissions_claim),
            ("APP__AUTH__ADMIN_PERMISSION", "admin-messages-reader"),
        ],
    )
    .await
}

/// A Keycloak access token: the API added to `aud` by an audience mapper beside `account`,
/// realm roles and client roles, `typ` `Bearer` in the payload.
fn keycloak_claims(iss: &str, realm_roles: &[&str], client_roles: &[&str]) -> Value {
    let now = now();
    let mut realm = vec!["offline_access", "uma_authorization", "default-roles-demo"];
    realm.extend_from_slice(realm_roles);
    json!({
        "exp": now + 300,
        "iat": now,
        "auth_time": now - 5,
        "jti": "onrtac:1f0e7c1c-6a86-4cf2-bb4e-4b3f8e0c6d51",
        "iss": iss,
        "aud": [AUDIENCE, "account"],
        "sub": "8c3a1f4e-2b6d-4f0a-9e7c-5d1b2a3c4e5f",
        "typ": "Bearer",
        "azp": "hello-world-spa",
        "sid": "b2d6c1a0-7e3f-4c5d-8a9b-0c1d2e3f4a5b",
        "acr": "1",
        "allowed-origins": ["http://localhost:4040"],
        "realm_access": {"roles": realm},
        "resource_access": {
            KEYCLOAK_CLIENT: {"roles": client_roles},
            "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]},
        },
        "scope": "openid email profile",
        "email_verified": true,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "given_name": "Alice",
        "family_name": "Liddell",
        "email": "alice@example.com",
    })
}

#[actix_web::test]
async fn keycloak_tokens_are_authorized_by_a_realm_role() {
    let keycloak = keycloak("/realm_access/roles").await;
    let iss = keycloak.iss.clone();
    let admin = keycloak_claims(&iss, &["admin-messages-reader"], &[]);
    let user = keycloak_claims(&iss, &[], &["admin-messages-reader"]);
    assert_authorizes(&keycloak, &admin, &user).await;
    assert_refused(
        &keycloak,
        &[
            (
                "the issuer with a trailing slash",
                with(&admin, |c| c["iss"] = json!(slash_toggled(&iss))),
            ),
            (
                "the pre-Quarkus /auth path",
                with(&admin, |c| {
                    c["iss"] = json!(format!("{}/auth/realms/demo", origin(&iss)));
                }),
            ),
            (
                "another realm",
                with(&admin, |c| {
                    c["iss"] = json!(format!("{}/realms/master", origin(&iss)));
                }),
            ),
            (
                "no audience mapper: only account",
                with(&admin, |c| c["aud"] = json!("account")),
            ),
        ],
    )
    .await;
}

#[actix_web::test]
async fn keycloak_tokens_are_authorized_by_a_client_role() {
    let keycloak = keycloak("/resource_access/hello-world-api/roles").await;
    let iss = keycloak.iss.clone();
    let admin = keycloak_claims(&iss, &[], &["admin-messages-reader"]);
    let user = keycloak_claims(&iss, &["admin-messages-reader"], &["messages-reader"]);
    assert_authorizes(&keycloak, &admin, &user).await;
    let no_client_roles = with(&admin, |c| {
        c["resource_access"]
            .as_object_mut()
            .unwrap()
            .remove(KEYCLOAK_CLIENT);
    });
    assert_eq!(keycloak.get(PROTECTED, &no_client_roles).await.status, 200);
    assert_insufficient_scope(&keycloak.get(ADMIN, &no_client_roles).await);
    assert_refused(
        &keycloak,
        &[
            (
                "another realm",
                with(&admin, |c| {
                    c["iss"] = json!(format!("{}/realms/master", origin(&iss)));
                }),
            ),
            (
                "no audience mapper: only account",
                with(&admin, |c| c["aud"] = json!(["account"])),
            ),
        ],
    )
    .await;
}

// --- Microsoft Entra ID ------------------------------------------------------------------

const TENANT: &str = "3c2a9b1e-0f4d-4e7a-9c61-5b8d2e7f4a10";
/// The API's application (client) ID: the audience of v2 tokens.
const ENTRA_API_CLIENT: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
/// The API's application ID URI: the audience of v1 tokens.
const ENTRA_API_URI: &str = "api://hello-world-api";
/// Microsoft Graph, whose tokens must never pass for ours.
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";

/// Tokens of the v1 endpoint: the issuer `https://sts.windows.net/{tenant}/`.
fn entra_v1_layout() -> Layout {
    Layout {
        path: format!("/{TENANT}"),
        trailing_slash: true,
        jwks_path: "/common/discovery/keys".to_owned(),
        ..Layout::default()
    }
}

/// Tokens of the v2 endpoint: the issuer `https://login.microsoftonline.com/{tenant}/v2.0`.
fn entra_v2_layout() -> Layout {
    Layout {
        path: format!("/{TENANT}/v2.0"),
        trailing_slash: false,
        jwks_path: format!("/{TENANT}/discovery/v2.0/keys"),
        ..Layout::default()
    }
}

/// A v1 access token for a signed-in user: app roles in `roles`, delegated scopes in `scp`.
fn entra_v1_claims(iss: &str, roles: Option<&[&str]>, scp: &str) -> Value {
    let now = now();
    let mut claims = json!({
        "aud": ENTRA_API_URI,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + 3_900,
        "acr": "1",
        "aio": "AVQAq/8TAAAA4cP0ezZ1Vr4kQ2rC0gX9lN3u4uB3GdDjz1o=",
        "amr": ["pwd", "mfa"],
        "appid": "a3f5c1d2-7b8e-4f90-a1b2-c3d4e5f60718",
        "appidacr": "0",
        "family_name": "Liddell",
        "given_name": "Alice",
        "idp": iss,
        "ipaddr": "203.0.113.7",
        "name": "Alice Liddell",
        "oid": "0d9c7b3a-5e2f-4a1b-8c6d-7e8f9a0b1c2d",
        "rh": "0.AQEAHpsqPE0PekqcYVuNLn9KEA.",
        "scp": scp,
        "sub": "q0W3xZ8kR7vU2mN5pL1oI4uY6tE9rQ3wS2aD5fG8hJk",
        "tid": TENANT,
        "unique_name": "alice@contoso.example",
        "upn": "alice@contoso.example",
        "uti": "Xw8qv7kK0E6bQ3yT1rZ9AA",
        "ver": "1.0",
    });
    if let Some(roles) = roles {
        claims["roles"] = json!(roles);
    }
    claims
}

/// A v2 access token for a signed-in user: the API's client ID as audience, scopes in `scp`.
fn entra_v2_claims(iss: &str, scp: &str) -> Value {
    let now = now();
    json!({
        "aud": ENTRA_API_CLIENT,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + 3_900,
        "aio": "AWQAm/8TAAAAk1Jm0Ue0Xw7bZz8nC1wR2qE3tY4uI5oP6aS7dF8gH9j=",
        "azp": "a3f5c1d2-7b8e-4f90-a1b2-c3d4e5f60718",
        "azpacr": "0",
        "name": "Alice Liddell",
        "oid": "0d9c7b3a-5e2f-4a1b-8c6d-7e8f9a0b1c2d",
        "preferred_username": "alice@contoso.example",
        "rh": "0.AQEAHpsqPE0PekqcYVuNLn9KECsXdG5WvkNIn_TmajmwEuMBAA.",
        "scp": scp,
        "sid": "00a8f3c2-4b1d-4e6f-9a8b-7c6d5e4f3a2b",
        "sub": "YwR9p3XkL2mN8vB5cZ1qT7sJ4hG6fD0aE3rU9iO2wQ",
        "tid": TENANT,
        "uti": "kP2rY8sT4vW6xZ0aB1cD3e",
        "ver": "2.0",
    })
}

#[actix_web::test]
async fn entra_id_v1_tokens_are_authorized_by_an_app_role() {
    let entra = Provider::start(
        entra_v1_layout(),
        "AUTH0_ISSUER",
        &[
            ("AUDIENCE", ENTRA_API_URI),
            ("APP__AUTH__PERMISSIONS_CLAIM", "/roles"),
            ("APP__AUTH__ADMIN_PERMISSION", "AdminMessages.Read"),
        ],
    )
    .await;
    let iss = entra.iss.clone();
    assert!(iss.ends_with(&format!("/{TENANT}/")), "{iss}");
    let admin = entra_v1_claims(&iss, Some(&["AdminMessages.Read"]), "user_impersonation");
    let user = entra_v1_claims(&iss, None, "user_impersonation AdminMessages.Read");
    assert_authorizes(&entra, &admin, &user).await;
    assert_refused(
        &entra,
        &[
            (
                "the same tenant's v2 issuer",
                with(&admin, |c| {
                    c["iss"] = json!(format!("{}/{TENANT}/v2.0", origin(&iss)));
                }),
            ),
            (
                "another tenant",
                with(&admin, |c| {
                    c["iss"] = json!(format!(
                        "{}/72f988bf-86f1-41af-91ab-2d7cd011db47/",
                        origin(&iss)
                    ));
                }),
            ),
            (
                "a Microsoft Graph token",
                with(&admin, |c| c["aud"] = json!(GRAPH)),
            ),
        ],
    )
    .await;
}

#[actix_web::test]
async fn entra_id_v2_tokens_are_authorized_by_a_delegated_scope() {
    let entra = Provider::start(
        entra_v2_layout(),
        "ISSUER_BASE_URL",
        &[
            ("APP__AUTH__AUDIENCE", ENTRA_API_CLIENT),
            ("APP__AUTH__PERMISSIONS_CLAIM", "/scp"),
            ("APP__AUTH__ADMIN_PERMISSION", "admin.read"),
        ],
    )
    .await;
    let iss = entra.iss.clone();
    assert!(iss.ends_with(&format!("/{TENANT}/v2.0")), "{iss}");
    let admin = entra_v2_claims(&iss, "Messages.Read admin.read");
    let user = entra_v2_claims(&iss, "Messages.Read");
    assert_authorizes(&entra, &admin, &user).await;
    assert_insufficient_scope(
        &entra
            .get(
                ADMIN,
                &entra_v2_claims(&iss, "Messages.Read admin.read.all"),
            )
            .await,
    );
    assert_refused(
        &entra,
        &[
            (
                "the same tenant's v1 issuer",
                with(&admin, |c| {
                    c["iss"] = json!(format!("{}/{TENANT}/", origin(&iss)));
                }),
            ),
            (
                "the issuer with a trailing slash",
                with(&admin, |c| c["iss"] = json!(slash_toggled(&iss))),
            ),
            (
                "the API's application ID URI, which v2 tokens never carry",
                with(&admin, |c| c["aud"] = json!(ENTRA_API_URI)),
            ),
            (
                "a Microsoft Graph token",
                with(&admin, |c| c["aud"] = json!(GRAPH)),
            ),
        ],
    )
    .await;
}

// --- Okta --------------------------------------------------------------------------------

const OKTA_AUDIENCE: &str = "api://default";

fn okta_layout() -> Layout {
    Layout {
        path: "/oauth2/default".to_owned(),
        trailing_slash: false,
        jwks_path: "/oauth2/default/v1/keys".to_owned(),
        ..Layout::default()
    }
}

/// An access token of Okta's default custom authorization server: scopes as an array in `scp`.
fn okta_claims(iss: &str, scp: &[&str]) -> Value {
    let now = now();
    json!({
        "ver": 1,
        "jti": "AT.3pYtq9mF2kL8vN0cX4bZ1wR7sT5uJ6hG9dE2aQ8yW0",
        "iss": iss,
        "aud": OKTA_AUDIENCE,
        "iat": now,
        "exp": now + 3_600,
        "cid": "0oa8f4kz2bXq7Yw9r5d7",
        "uid": "00u8f4m1xqZ3vR6tP5d7",
        "scp": scp,
        "auth_time": now - 30,
        "sub": "alice@example.com",
        "groups": ["Everyone"],
    })
}

#[actix_web::test]
async fn okta_tokens_are_authorized_by_a_scope_in_their_scp_array() {
    let okta = Provider::start(
        okta_layout(),
        "ISSUER_BASE_URL",
        &[
            ("AUDIENCE", OKTA_AUDIENCE),
            ("APP__AUTH__PERMISSIONS_CLAIM", "/scp"),
        ],
    )
    .await;
    let iss = okta.iss.clone();
    let admin = okta_claims(&iss, &["openid", "profile", "read:admin-messages"]);
    let user = okta_claims(&iss, &["openid", "profile", "email"]);
    assert_authorizes(&okta, &admin, &user).await;
    assert_refused(
        &okta,
        &[
            (
                "the org authorization server",
                with(&admin, |c| c["iss"] = json!(origin(&iss))),
            ),
            (
                "another custom authorization server",
                with(&admin, |c| {
                    c["iss"] = json!(format!("{}/oauth2/aus8f4kz2bXq7Yw9r5d7", origin(&iss)));
                }),
            ),
            (
                "a token for another API",
                with(&admin, |c| c["aud"] = json!("api://payments")),
            ),
        ],
    )
    .await;
}

// --- Amazon Cognito ----------------------------------------------------------------------

const COGNITO_POOL: &str = "us-east-1_AbCdEf123";
const COGNITO_CLIENT: &str = "5r6fdc0ffee1example2abc3d4";

fn cognito_layout() -> Layout {
    Layout {
        path: format!("/{COGNITO_POOL}"),
        trailing_slash: false,
        jwks_path: format!("/{COGNITO_POOL}/.well-known/jwks.json"),
        ..Layout::default()
    }
}

/// A user pool access token: no `aud`, the app client in `client_id`, groups, `token_use`.
fn cognito_access_claims(iss: &str, groups: &[&str]) -> Value {
    let now = now();
    json!({
        "sub": "a1b2c3d4-e5f6-7a8b-9c0d-e1f2a3b4c5d6",
        "cognito:groups": groups,
        "iss": iss,
        "version": 2,
        "client_id": COGNITO_CLIENT,
        "origin_jti": "f0e1d2c3-b4a5-4968-8776-655443322110",
        "event_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "token_use": "access",
        "scope": "openid email",
        "auth_time": now - 10,
        "exp": now + 3_600,
        "iat": now,
        "jti": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "username": "alice",
    })
}

/// The ID token of the same sign-in: the client in `aud`, `token_use` `id`.
fn cognito_id_claims(iss: &str, groups: &[&str]) -> Value {
    let now = now();
    json!({
        "sub": "a1b2c3d4-e5f6-7a8b-9c0d-e1f2a3b4c5d6",
        "cognito:groups": groups,
        "email_verified": true,
        "iss": iss,
        "cognito:username": "alice",
        "origin_jti": "f0e1d2c3-b4a5-4968-8776-655443322110",
        "aud": COGNITO_CLIENT,
        "event_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "token_use": "id",
        "auth_time": now - 10,
        "exp": now + 3_600,
        "iat": now,
        "jti": "7d6c5b4a-3f2e-4d1c-0b9a-8f7e6d5c4b3a",
        "email": "alice@example.com",
    })
}

#[actix_web::test]
async fn cognito_access_tokens_are_checked_by_client_id_and_token_use_and_authorized_by_group() {
    let cognito = Provider::start(
        cognito_layout(),
        "APP__AUTH__ISSUER",
        &[
            ("APP__AUTH__AUDIENCE", COGNITO_CLIENT),
            ("APP__AUTH__AUDIENCE_CLAIM", "client_id"),
            ("APP__AUTH__REQUIRED_CLAIMS", "token_use=access"),
            ("APP__AUTH__PERMISSIONS_CLAIM", "/cognito:groups"),
            ("APP__AUTH__ADMIN_PERMISSION", "admin-readers"),
        ],
    )
    .await;
    let iss = cognito.iss.clone();
    let admin = cognito_access_claims(&iss, &["admin-readers", "users"]);
    let user = cognito_access_claims(&iss, &["users"]);
    assert_authorizes(&cognito, &admin, &user).await;
    let no_groups = without(&user, "cognito:groups");
    assert_eq!(cognito.get(PROTECTED, &no_groups).await.status, 200);
    assert_insufficient_scope(&cognito.get(ADMIN, &no_groups).await);
    assert_refused(
        &cognito,
        &[
            (
                "the ID token of the same sign-in",
                cognito_id_claims(&iss, &["admin-readers"]),
            ),
            (
                "an access token saying token_use id",
                with(&admin, |c| c["token_use"] = json!("id")),
            ),
            ("no token_use", without(&admin, "token_use")),
            (
                "token_use not a string",
                with(&admin, |c| c["token_use"] = json!(["access"])),
            ),
            ("no client_id", without(&admin, "client_id")),
            (
                "another app client",
                with(&admin, |c| {
                    c["client_id"] = json!("7h8g9f0e1d2c3b4a5z6y7x8w9v")
                }),
            ),
            (
                "our client in aud but another in client_id",
                with(&admin, |c| {
                    c["aud"] = json!(COGNITO_CLIENT);
                    c["client_id"] = json!("7h8g9f0e1d2c3b4a5z6y7x8w9v");
                }),
            ),
            (
                "another user pool",
                with(&admin, |c| {
                    c["iss"] = json!(format!("{}/us-east-1_ZyXwVu987", origin(&iss)));
                }),
            ),
            (
                "the issuer with a trailing slash",
                with(&admin, |c| c["iss"] = json!(slash_toggled(&iss))),
            ),
        ],
    )
    .await;
}

// --- Zitadel -----------------------------------------------------------------------------

const ZITADEL_PROJECT: &str = "259254398765432105";
const ZITADEL_CLIENT: &str = "259254412345678905@hello-world";
/// The organisation that granted the roles.
const ZITADEL_ORG: &str = "259254300000000001";
const ZITADEL_ROLES: &str = "urn:zitadel:iam:org:project:roles";

fn zitadel_layout() -> Layout {
    Layout {
        path: String::new(),
        trailing_slash: false,
        jwks_path: "/oauth/v2/keys".to_owned(),
        ..Layout::default()
    }
}

/// A JWT access token of a Zitadel instance: project and client in `aud`, project roles as an
/// object of role → {organisation ID → organisation domain}.
fn zitadel_claims(iss: &str, roles: Value) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "sub": "259254500987654321",
        "aud": [ZITADEL_PROJECT, ZITADEL_CLIENT],
        "exp": now + 43_200,
        "iat": now,
        "nbf": now,
        "client_id": ZITADEL_CLIENT,
        "jti": "259254601234567890",
        ZITADEL_ROLES: roles,
        format!("urn:zitadel:iam:org:project:{ZITADEL_PROJECT}:roles"): roles,
        "urn:zitadel:iam:user:resourceowner:id": ZITADEL_ORG,
        "urn:zitadel:iam:user:resourceowner:name": "Example",
        "urn:zitadel:iam:user:resourceowner:primary_domain": "org.example",
    })
}

#[actix_web::test]
async fn zitadel_tokens_are_authorized_by_a_project_role_object() {
    let zitadel = Provider::start(
        zitadel_layout(),
        "APP__AUTH__ISSUER",
        &[
            ("APP__AUTH__AUDIENCE", ZITADEL_PROJECT),
            (
                "APP__AUTH__PERMISSIONS_CLAIM",
                "/urn:zitadel:iam:org:project:roles",
            ),
            ("APP__AUTH__ADMIN_PERMISSION", "admin-reader"),
        ],
    )
    .await;
    let iss = zitadel.iss.clone();
    assert!(!iss.ends_with('/'), "{iss}");
    let admin = zitadel_claims(
        &iss,
        json!({
            "admin-reader": {ZITADEL_ORG: "org.example"},
            "reader": {ZITADEL_ORG: "org.example"},
        }),
    );
    let user = zitadel_claims(&iss, json!({"reader": {ZITADEL_ORG: "org.example"}}));
    assert_authorizes(&zitadel, &admin, &user).await;
    // The organisation is a value, not a role.
    let org_named_like_the_role =
        zitadel_claims(&iss, json!({"reader": {ZITADEL_ORG: "admin-reader"}}));
    assert_insufficient_scope(&zitadel.get(ADMIN, &org_named_like_the_role).await);
    assert_refused(
        &zitadel,
        &[
            (
                "the issuer with a trailing slash",
                with(&admin, |c| c["iss"] = json!(slash_toggled(&iss))),
            ),
            (
                "another project",
                with(&admin, |c| {
                    c["aud"] = json!(["259254398765439999", "259254412345679999@other"]);
                }),
            ),
        ],
    )
    .await;
}

// --- discovery ---------------------------------------------------------------------------

/// The API trusting the Auth0-shaped issuer at `url`, not waiting for it to be ready.
async fn start_api_for(url: &str) -> TestApp {
    start_api(&[("AUTH0_ISSUER", url), ("AUTH0_AUDIENCE", AUDIENCE)]).await
}

async fn assert_unavailable(app: &TestApp, token: &str) {
    for path in [PROTECTED, ADMIN] {
        let reply = app.get_with_token(path, token).await;
        assert_eq!(reply.status, 503, "{path}: {reply:?}");
        assert_eq!(reply.message(), "Unable to verify credentials", "{reply:?}");
        let retry_after: u64 = reply
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("Retry-After in seconds");
        assert!(retry_after >= 1, "{reply:?}");
    }
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
}

#[actix_web::test]
async fn metadata_naming_another_issuer_keeps_the_api_unready_until_it_names_ours() {
    let issuer = Issuer::new(key(0));
    let url = spawn_issuer_at(&issuer, Layout::default());
    // The issuer URL without its trailing slash: close, and not the same.
    issuer.set_layout(Layout {
        advertised_issuer: Some(slash_toggled(&url)),
        ..Layout::default()
    });
    let app = start_api_for(&url).await;
    eventually("discovery tried twice", || issuer.discovery_fetches() >= 2).await;
    let token = issuer
        .sign(&auth0_user_claims(&url, "openid", &[]))
        .unwrap();
    assert_unavailable(&app, &token).await;
    assert_eq!(
        issuer.jwks_fetches(),
        0,
        "keys named by metadata for another issuer are never fetched"
    );

    issuer.set_layout(Layout::default());
    wait_until_ready(&app).await;
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
}

#[actix_web::test]
async fn rfc_8414_metadata_is_used_when_there_is_no_openid_configuration() {
    let layout = Layout {
        path: "/tenant".to_owned(),
        trailing_slash: false,
        oidc: false,
        rfc8414: true,
        jwks_path: "/tenant/jwks".to_owned(),
        advertised_issuer: None,
    };
    let as_metadata =
        Provider::start(layout, "AUTH0_ISSUER", &[("AUTH0_AUDIENCE", AUDIENCE)]).await;
    let iss = as_metadata.iss.clone();
    assert!(iss.ends_with("/tenant"), "{iss}");
    let admin = auth0_m2m_claims(&iss, "read:admin-messages", &["read:admin-messages"]);
    let user = auth0_user_claims(&iss, "openid", &[]);
    assert_authorizes(&as_metadata, &admin, &user).await;
    assert!(as_metadata.issuer.jwks_fetches() >= 1);
}

#[actix_web::test]
async fn issuer_without_metadata_at_start_answers_503_then_recovers_without_restart() {
    let issuer = Issuer::new(key(0));
    // No metadata of either kind, and no keys at the conventional /.well-known/jwks.json.
    let url = spawn_issuer_at(
        &issuer,
        Layout {
            oidc: false,
            rfc8414: false,
            jwks_path: "/keys".to_owned(),
            ..Layout::default()
        },
    );
    let app = start_api_for(&url).await;
    eventually("discovery tried twice", || issuer.discovery_fetches() >= 2).await;
    let token = issuer
        .sign(&auth0_m2m_claims(
            &url,
            "read:admin-messages",
            &["read:admin-messages"],
        ))
        .unwrap();
    assert_unavailable(&app, &token).await;
    assert_eq!(app.get("/api/messages/public").await.status, 200);

    // The metadata appears: the refresher's retries find it, no restart.
    issuer.set_layout(Layout::default());
    wait_until_ready(&app).await;
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    assert_eq!(app.get_with_token(ADMIN, &token).await.status, 200);
}

#[actix_web::test]
async fn a_changed_jwks_uri_is_followed_on_the_next_refresh() {
    let auth0 = auth0(&[]).await;
    let old_token = auth0.token(&auth0_user_claims(&auth0.iss, "openid", &[]));
    let discovered = auth0.issuer.discovery_fetches();

    // The keys move, and a new key signs from now on; only the metadata says where.
    auth0.issuer.set_layout(Layout {
        jwks_path: "/keys/2026".to_owned(),
        ..Layout::default()
    });
    auth0.issuer.rotate_to(key(1));
    auth0.api.keys.refresh_now().await;
    assert!(auth0.issuer.discovery_fetches() > discovered);

    let new_token = auth0.token(&auth0_user_claims(&auth0.iss, "openid", &[]));
    let reply = auth0.api.get_with_token(PROTECTED, &new_token).await;
    assert_eq!(
        reply.status, 200,
        "the new key, from the new place: {reply:?}"
    );
    let reply = auth0.api.get_with_token(PROTECTED, &old_token).await;
    assert_eq!(
        reply.status, 200,
        "the old key is still published: {reply:?}"
    );
    assert_eq!(auth0.api.get("/readyz").await.status, 200);
}

#[actix_web::test]
async fn requests_never_cause_a_discovery_or_key_fetch() {
    let auth0 = auth0(&[]).await;
    let discovered = auth0.issuer.discovery_fetches();
    let fetched = auth0.issuer.jwks_fetches();
    for token in tokens(&key(0), &auth0.iss, "walk", 50, false) {
        let reply = auth0.api.get_with_token(PROTECTED, &token).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(auth0.issuer.discovery_fetches(), discovered);
    assert_eq!(auth0.issuer.jwks_fetches(), fetched);
}

// --- where permissions are, and what they may be -------------------------------------------

/// An Auth0 tenant whose permissions are read at `pointer`, with `extra` settings.
async fn permissions_at(pointer: &str, extra: &[(&str, &str)]) -> Provider {
    let mut settings = vec![("APP__AUTH__PERMISSIONS_CLAIM", pointer)];
    settings.extend_from_slice(extra);
    auth0(&settings).await
}

/// Auth0 user claims with `set` applied: the permissions placed where a test wants them.
fn claims_with(provider: &Provider, set: impl FnOnce(&mut Value)) -> Value {
    let mut claims = auth0_user_claims(&provider.iss, "openid", &[]);
    claims.as_object_mut().unwrap().remove("permissions");
    set(&mut claims);
    claims
}

/// `claims` reach the protected route, and the admin route answers `admin_status`.
async fn assert_admin_status(provider: &Provider, what: &str, claims: &Value, admin_status: u16) {
    let reply = provider.get(PROTECTED, claims).await;
    assert_eq!(reply.status, 200, "{what} on {PROTECTED}: {reply:?}");
    let reply = provider.get(ADMIN, claims).await;
    assert_eq!(reply.status, admin_status, "{what} on {ADMIN}: {reply:?}");
    if admin_status == 403 {
        assert_insufficient_scope(&reply);
    }
}

#[actix_web::test]
async fn permissions_may_be_an_array_a_space_separated_string_or_the_keys_of_an_object() {
    let app = permissions_at("/authz/permissions", &[]).await;
    for (what, value, admin_status) in [
        (
            "an array",
            json!(["read:messages", "read:admin-messages"]),
            200,
        ),
        ("a string", json!("read:messages read:admin-messages"), 200),
        ("a string of one", json!("read:admin-messages"), 200),
        (
            "an object's keys",
            json!({"read:messages": {}, "read:admin-messages": {"granted": "2026-01-01"}}),
            200,
        ),
        ("an array without it", json!(["read:messages"]), 403),
        ("a string without it", json!("read:messages"), 403),
        (
            "an object holding it as a value only",
            json!({"read:messages": "read:admin-messages"}),
            403,
        ),
        ("an empty array", json!([]), 403),
        ("an empty string", json!(""), 403),
        ("an empty object", json!({}), 403),
    ] {
        let claims = claims_with(&app, |c| c["authz"] = json!({"permissions": value}));
        assert_admin_status(&app, what, &claims, admin_status).await;
    }
}

#[actix_web::test]
async fn hostile_permission_claims_grant_nothing_and_break_nothing() {
    let app = permissions_at("/authz/permissions", &[]).await;
    let cases: Vec<(&str, Value)> = vec![
        ("no authz claim", json!(null)),
        ("authz a number", json!(42)),
        ("authz a string", json!("read:admin-messages")),
        (
            "authz an array",
            json!([{"permissions": ["read:admin-messages"]}]),
        ),
        ("permissions a number", json!({"permissions": 42})),
        ("permissions a float", json!({"permissions": 1.5e300})),
        ("permissions null", json!({"permissions": null})),
        ("permissions true", json!({"permissions": true})),
        (
            "nested arrays",
            json!({"permissions": [["read:admin-messages"]]}),
        ),
        (
            "an array of objects",
            json!({"permissions": [{"read:admin-messages": true}]}),
        ),
        (
            "a longer permission",
            json!({"permissions": ["read:admin-messages:all"]}),
        ),
        (
            "a prefix of it",
            json!({"permissions": "read:admin read:admin-message"}),
        ),
        (
            "another case",
            json!({"permissions": ["READ:ADMIN-MESSAGES"]}),
        ),
        (
            "comma-separated",
            json!({"permissions": "read:messages,read:admin-messages"}),
        ),
        (
            "with a NUL",
            json!({"permissions": ["read:admin-messages\u{0000}"]}),
        ),
        (
            "deeply nested objects",
            (0..64).fold(
                json!("read:admin-messages"),
                |inner, _| json!({"permissions": inner}),
            ),
        ),
    ];
    for (what, authz) in cases {
        let claims = claims_with(&app, |c| {
            if !authz.is_null() {
                c["authz"] = authz;
            }
        });
        assert_admin_status(&app, what, &claims, 403).await;
    }
    // Only the configured place counts: the default claim is not read beside it.
    let default_claim = claims_with(&app, |c| c["permissions"] = json!(["read:admin-messages"]));
    assert_admin_status(&app, "the default claim only", &default_claim, 403).await;
}

#[actix_web::test]
async fn a_five_thousand_element_permissions_array_is_read_without_failing() {
    let app = permissions_at(
        "/permissions",
        &[
            ("APP__AUTH__MAX_TOKEN_BYTES", "65536"),
            ("APP__SERVER__MAX_HEADER_BYTES", "65536"),
        ],
    )
    .await;
    let many: Vec<String> = (0..5_000).map(|i| format!("p{i}")).collect();
    let claims = claims_with(&app, |c| c["permissions"] = json!(many));
    assert!(
        app.token(&claims).len() > 8_192,
        "larger than the default limit"
    );
    assert_admin_status(&app, "5,000 permissions without it", &claims, 403).await;
}

#[actix_web::test]
async fn json_pointer_escapes_reach_claim_names_with_slashes_and_tildes() {
    // Auth0's namespaced custom claims: "https://hello-world.example.com/roles".
    let app = permissions_at("/https:~1~1hello-world.example.com~1roles", &[]).await;
    let namespaced = claims_with(&app, |c| {
        c["https://hello-world.example.com/roles"] = json!(["read:admin-messages"]);
    });
    assert_admin_status(&app, "the namespaced claim", &namespaced, 200).await;
    let unescaped_path = claims_with(&app, |c| {
        c["https:"] = json!({"": {"hello-world.example.com": {"roles": ["read:admin-messages"]}}});
    });
    assert_admin_status(&app, "the path read without ~1", &unescaped_path, 403).await;

    // "~01" is "~1", not "/": ~1 is decoded before ~0.
    let app = permissions_at("/perm~0s~01", &[]).await;
    let right = claims_with(&app, |c| c["perm~s~1"] = json!(["read:admin-messages"]));
    assert_admin_status(&app, "the claim perm~s~1", &right, 200).await;
    for wrong in ["perm~s/", "perm~0s~01", "perm~s~01"] {
        let claims = claims_with(&app, |c| c[wrong] = json!(["read:admin-messages"]));
        assert_admin_status(&app, wrong, &claims, 403).await;
    }
}

// --- RFC 9068 ----------------------------------------------------------------------------

/// A token signed by `provider`'s key under a header with `typ` (none when `None`).
fn typed_token(provider: &Provider, typ: Option<&str>, claims: &Value) -> String {
    let key = provider.issuer.signing_key();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    header.typ = typ.map(str::to_owned);
    key.sign_with_header(&header, claims).expect("sign")
}

/// RFC 9068 §2.2's example access token, with this issuer and audience.
fn rfc9068_claims(iss: &str) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "exp": now + 3_600,
        "aud": AUDIENCE,
        "sub": "5ba552d67",
        "client_id": "s6BhdRkqt3",
        "iat": now,
        "jti": "dbe39bf3a3ba4238a513f51d6e1691c4",
        "scope": "openid profile reademail",
        "auth_time": now - 60,
        "acr": "urn:mace:incommon:iap:silver",
    })
}

#[actix_web::test]
async fn the_rfc_9068_profile_requires_its_type_and_all_its_claims() {
    let app = auth0(&[("APP__AUTH__PROFILE", "rfc9068")]).await;
    let claims = rfc9068_claims(&app.iss);
    for typ in ["at+jwt", "application/at+jwt"] {
        let reply = app
            .api
            .get_with_token(PROTECTED, &typed_token(&app, Some(typ), &claims))
            .await;
        assert_eq!(reply.status, 200, "typ {typ}: {reply:?}");
    }
    for typ in [Some("JWT"), None, Some("id+jwt")] {
        let reply = app
            .api
            .get_with_token(PROTECTED, &typed_token(&app, typ, &claims))
            .await;
        assert_invalid_token(&reply, &format!("typ {typ:?}"));
    }
    for missing in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let token = typed_token(&app, Some("at+jwt"), &without(&claims, missing));
        let reply = app.api.get_with_token(PROTECTED, &token).await;
        assert_invalid_token(&reply, &format!("without {missing}"));
    }
}
