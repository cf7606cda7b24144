//! The interactive docs at `/docs`: Swagger UI served from the binary itself, under a policy of
//! its own, showing the description with the token endpoint the issuer really has. (That the
//! page renders and works in a browser is tests/browser.rs.)

use std::time::{Duration, Instant};

use hello_world_api::issuer::{Issuer, Layout};
use serde_json::{Value, json};
use test_support::{AUDIENCE, TestApp, key, send, spawn_app, spawn_issuer_at};

/// The API's policy, on every answer but the page's.
const API_POLICY: &str = "default-src 'self'; frame-ancestors 'none'";

/// The page's policy when the token endpoint is at `origin`.
fn page_policy(origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self' \
         'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; \
         connect-src 'self' {origin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// `GET path` as raw bytes: status, content type, CSP and body.
async fn fetch(app: &TestApp, path: &str) -> (u16, String, String, Vec<u8>) {
    let mut response = app.request("GET", path).send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, policy) = (header("content-type"), header("content-security-policy"));
    let status = response.status().as_u16();
    let body = response.body().limit(8 << 20).await.unwrap().to_vec();
    (status, content_type, policy, body)
}

#[actix_web::test]
async fn docs_redirects_to_the_page_which_loads_only_its_own_files_under_its_own_policy() {
    let app = spawn_app().await;
    let issuer_origin = app.issuer_url.trim_end_matches('/').to_owned();

    let no_redirects = awc::Client::builder().disable_redirects().finish();
    let redirect = send(no_redirects.get(format!("{}/docs", app.address))).await;
    assert_eq!(redirect.status, 308, "{redirect:?}");
    assert_eq!(redirect.header("location"), Some("/docs/"));
    assert_eq!(redirect.header("content-security-policy"), Some(API_POLICY));

    let (status, content_type, policy, body) = fetch(&app, "/docs/").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert_eq!(policy, page_policy(&issuer_origin));
    let page = String::from_utf8(body).unwrap();
    // Every file it loads is relative, that is from this server.
    for file in [
        "./swagger-ui.css",
        "index.css",
        "./swagger-ui-bundle.js",
        "./swagger-ui-standalone-preset.js",
        "./swagger-initializer.js",
    ] {
        assert!(page.contains(&format!("\"{file}\"")), "{file} in {page}");
    }
    assert!(!page.contains("//"), "no absolute URL in the page: {page}");

    for (file, kind) in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui-standalone-preset.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("index.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ] {
        let (status, content_type, policy, body) = fetch(&app, &format!("/docs/{file}")).await;
        assert_eq!(status, 200, "{file}");
        assert!(content_type.contains(kind), "{file}: {content_type}");
        assert_eq!(policy, page_policy(&issuer_origin), "{file}");
        assert!(!body.is_empty(), "{file}");
    }

    // The page shows the description; it is not part of it.
    let document = app.get("/openapi.json").await.body;
    let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    assert!(!paths.iter().any(|p| p.starts_with("/docs")), "{paths:?}");

    // The API's routes keep the strict policy.
    let public = app.get("/api/messages/public").await;
    assert_eq!(public.header("content-security-policy"), Some(API_POLICY));
}

#[actix_web::test]
async fn the_page_shows_our_description_asks_for_tokens_with_our_audience_and_loads_no_badge() {
    let app = spawn_app().await;
    let (status, content_type, _, body) = fetch(&app, "/docs/swagger-initializer.js").await;
    assert_eq!(status, 200);
    assert!(content_type.contains("javascript"), "{content_type}");
    let script = String::from_utf8(body).unwrap();
    assert!(script.contains(r#""url": "/openapi.json""#), "{script}");
    // Without this, Swagger UI shows a badge loaded from validator.swagger.io.
    assert!(script.contains(r#""validatorUrl": "none""#), "{script}");
    assert!(script.contains("ui.initOAuth("), "{script}");
    assert!(
        script.contains(&format!(r#""audience": "{AUDIENCE}""#)),
        "the token request carries the audience: {script}"
    );
}

#[actix_web::test]
async fn files_the_page_does_not_have_and_other_methods_get_the_json_errors() {
    let app = spawn_app().await;
    for path in [
        "/docs/nothing.js",
        "/docs/..%2FCargo.toml",
        "/docs/../Cargo.toml",
        "/docs/dist/index.html",
        "/docsx",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.body, json!({"message": "Not Found"}), "{path}");
    }
    let reply = Value::from(
        app.request("POST", "/docs/")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    );
    assert_eq!(reply, 405);
}

#[actix_web::test]
async fn with_docs_off_neither_the_page_nor_its_files_are_served() {
    let app = TestApp::builder()
        .env("APP__DOCS__ENABLED", "false")
        .spawn()
        .await;
    for path in [
        "/docs",
        "/docs/",
        "/docs/swagger-ui-bundle.js",
        "/openapi.json",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert_eq!(reply.body, json!({"message": "Not Found"}), "{path}");
    }
}

#[actix_web::test]
async fn the_token_endpoint_the_issuers_discovery_names_replaces_the_placeholder() {
    // A Keycloak-shaped issuer: its token endpoint is not `{issuer}/oauth/token`.
    let issuer = Issuer::new(key(0));
    let iss = spawn_issuer_at(
        &issuer,
        Layout {
            path: "/realms/demo".to_owned(),
            trailing_slash: false,
            jwks_path: "/realms/demo/protocol/openid-connect/certs".to_owned(),
            ..Layout::default()
        },
    );
    let discovered = format!("{}/oauth/token", iss.trim_end_matches("/realms/demo"));
    let app = TestApp::builder()
        .env("AUTH0_ISSUER", &iss)
        .env("AUTH0_AUDIENCE", AUDIENCE)
        .spawn()
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let token_url = loop {
        let document = app.get("/openapi.json").await.body;
        let url = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
            ["tokenUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        if url != format!("{iss}/oauth/token") || Instant::now() > deadline {
            break url;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        token_url, discovered,
        "the placeholder was {iss}/oauth/token"
    );
    let description = app.get("/openapi.json").await.body["components"]["securitySchemes"]
        ["oauth2"]["description"]
        .clone();
    assert!(
        description
            .as_str()
            .unwrap()
            .contains("discovery document names"),
        "{description}"
    );
    let (_, _, policy, _) = fetch(&app, "/docs/").await;
    let origin = discovered.trim_end_matches("/oauth/token");
    assert_eq!(policy, page_policy(origin));
}
