//! CORS for the paired SPA, and the security headers on every answer.

use test_support::{Reply, SPA_ORIGIN, TestApp, metric, scrape, send, spawn_app};

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

#[actix_web::test]
async fn a_refusal_says_what_was_refused_and_what_is_allowed_and_is_counted() {
    let app = spawn_app().await;
    let wrong_port = "http://localhost:3000";
    let origin_refused = format!(
        "CORS: the origin {wrong_port} may not call this API; it allows {SPA_ORIGIN} only \
         (CLIENT_ORIGIN_URL)"
    );
    let preflight_reply = send(preflight(&app, wrong_port)).await;
    let actual = send(
        app.request("GET", "/api/messages/public")
            .insert_header(("Origin", wrong_port)),
    )
    .await;
    assert_eq!(preflight_reply.status, 400, "{preflight_reply:?}");
    assert_eq!(preflight_reply.message(), origin_refused);
    assert_eq!(preflight_reply.header("access-control-allow-origin"), None);
    assert_eq!(
        preflight_reply.header("content-type"),
        Some("application/json")
    );
    assert_security_headers(&preflight_reply);
    // A simple request is served as to curl, without the header that would let a page read
    // it; it is counted as a refusal all the same.
    assert_eq!(actual.status, 200, "{actual:?}");
    assert_eq!(actual.header("access-control-allow-origin"), None);

    let method = send(
        app.request("OPTIONS", "/api/messages/protected")
            .insert_header(("Origin", SPA_ORIGIN))
            .insert_header(("Access-Control-Request-Method", "DELETE")),
    )
    .await;
    assert_eq!(method.status, 400, "{method:?}");
    assert_eq!(
        method.message(),
        format!("CORS: the method DELETE is not allowed from {SPA_ORIGIN}; allowed: GET")
    );
    let headers = send(
        app.request("OPTIONS", "/api/messages/protected")
            .insert_header(("Origin", SPA_ORIGIN))
            .insert_header(("Access-Control-Request-Method", "GET"))
            .insert_header(("Access-Control-Request-Headers", "authorization, x-debug")),
    )
    .await;
    assert_eq!(headers.status, 400, "{headers:?}");
    assert_eq!(
        headers.message(),
        format!(
            "CORS: the request headers authorization, x-debug are not all allowed from \
             {SPA_ORIGIN}; allowed: authorization, content-type, dpop"
        )
    );

    // A DPoP client on the SPA's origin may send its proof and read the nonce and challenge.
    let dpop = send(
        app.request("OPTIONS", "/api/messages/protected")
            .insert_header(("Origin", SPA_ORIGIN))
            .insert_header(("Access-Control-Request-Method", "GET"))
            .insert_header(("Access-Control-Request-Headers", "authorization, dpop")),
    )
    .await;
    assert_eq!(dpop.status, 200, "{dpop:?}");
    let exposed = send(
        app.request("GET", "/api/messages/protected")
            .insert_header(("Origin", SPA_ORIGIN)),
    )
    .await;
    let exposed = exposed
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"),
        "{exposed}"
    );

    let metrics = scrape(&app).await;
    for (reason, count) in [("origin", 2.0), ("method", 1.0), ("headers", 1.0)] {
        assert_eq!(
            metric(
                &metrics,
                &format!(r#"cors_refusals_total{{reason="{reason}"}}"#)
            ),
            count,
            "{reason}: {metrics}"
        );
    }
}
