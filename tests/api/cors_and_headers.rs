//! CORS for the paired SPA, and the security headers on every answer.

use test_support::{Reply, SPA_ORIGIN, TestApp, send, spawn_app};

fn preflight(app: &TestApp, origin: &str) -> awc::ClientRequest {
    app.request("OPTIONS", "/api/messages/protected")
        .insert_header(("Origin", origin))
        .insert_header(("Access-Control-Request-Method", "GET"))
        .insert_header((
            "Access-Control-Request-Headers",
            "authorization, content-type",
        ))
}

#[actix_web::test]
async fn preflight_from_the_spa_is_allowed_without_a_token() {
    let app = spawn_app().await;
    let reply = send(preflight(&app, SPA_ORIGIN)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(SPA_ORIGIN)
    );
    assert_eq!(reply.header("access-control-allow-methods"), Some("GET"));
    let headers = reply
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert_eq!(reply.header("access-control-max-age"), Some("86400"));
}

#[actix_web::test]
async fn preflight_from_another_origin_is_not_allowed() {
    let app = spawn_app().await;
    let reply = send(preflight(&app, "https://evil.example.com")).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );
    assert!(reply.status >= 400, "{reply:?}");
    assert!(reply.body["message"].is_string(), "{reply:?}");
}

#[actix_web::test]
async fn preflight_asking_for_another_method_is_not_allowed() {
    let app = spawn_app().await;
    let request = app
        .request("OPTIONS", "/api/messages/protected")
        .insert_header(("Origin", SPA_ORIGIN))
        .insert_header(("Access-Control-Request-Method", "DELETE"));
    let reply = send(request).await;
    assert!(reply.status >= 400, "{reply:?}");
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[actix_web::test]
async fn answers_to_the_spa_carry_cors_headers() {
    let app = spawn_app().await;
    let reply = send(
        app.request("GET", "/api/messages/public")
            .insert_header(("Origin", SPA_ORIGIN)),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(SPA_ORIGIN)
    );
    assert!(
        reply
            .header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("origin"))
    );
}

#[actix_web::test]
async fn error_answers_to_the_spa_carry_cors_headers_so_it_can_read_the_message() {
    let app = spawn_app().await;
    let token = app.token();
    let requests = [
        app.request("GET", "/api/messages/protected"),
        app.request("GET", "/api/messages/protected")
            .bearer_auth("x.y.z"),
        app.request("GET", "/api/messages/admin")
            .bearer_auth(&token),
        app.request("GET", "/api/nothing-here"),
    ];
    for (request, status) in requests.into_iter().zip([401, 401, 403, 404]) {
        let reply = send(request.insert_header(("Origin", SPA_ORIGIN))).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(SPA_ORIGIN),
            "{reply:?}"
        );
        assert!(reply.body["message"].is_string());
    }
}

#[actix_web::test]
async fn another_origin_gets_no_allow_origin_header() {
    let app = spawn_app().await;
    for origin in [
        "https://evil.example.com",
        "http://localhost:4041",
        "null",
        "http://localhost:4040.evil.com",
    ] {
        let reply = send(
            app.request("GET", "/api/messages/public")
                .insert_header(("Origin", origin)),
        )
        .await;
        assert_eq!(
            reply.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
}

#[actix_web::test]
async fn the_allowed_origin_is_configurable() {
    let app = TestApp::builder()
        .env("CLIENT_ORIGIN_URL", "https://spa.example.com/")
        .spawn()
        .await;
    let allowed = send(
        app.request("GET", "/api/messages/public")
            .insert_header(("Origin", "https://spa.example.com")),
    )
    .await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://spa.example.com")
    );
    let default = send(
        app.request("GET", "/api/messages/public")
            .insert_header(("Origin", SPA_ORIGIN)),
    )
    .await;
    assert_eq!(default.header("access-control-allow-origin"), None);
}

fn assert_security_headers(reply: &Reply) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "deny"),
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'",
        ),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        (
            "cache-control",
            "no-cache, no-store, max-age=0, must-revalidate",
        ),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(reply.header(name), Some(value), "{name} on {reply:?}");
    }
}

#[actix_web::test]
async fn security_headers_are_on_every_answer() {
    let app = spawn_app().await;
    let token = app.token();
    let replies = [
        app.get("/api/messages/public").await,
        app.get_with_token("/api/messages/protected", &token).await,
        app.get("/api/messages/protected").await,
        app.get_with_token("/api/messages/admin", &token).await,
        app.get("/missing").await,
        send(app.request("POST", "/api/messages/public")).await,
        send(preflight(&app, SPA_ORIGIN)).await,
        send(preflight(&app, "https://evil.example.com")).await,
    ];
    for reply in &replies {
        assert_security_headers(reply);
    }
}

#[actix_web::test]
async fn answers_without_an_origin_skip_cors_but_still_vary_with_origin() {
    let app = spawn_app().await;
    for path in ["/api/messages/public", "/api/messages/protected", "/nope"] {
        let reply = app.get(path).await;
        assert_eq!(
            reply.header("vary"),
            Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            "{path}: {reply:?}"
        );
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{path}: {reply:?}"
        );
    }
}
