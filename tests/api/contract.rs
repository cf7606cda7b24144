//! Every row of the HTTP contract.

use serde_json::json;

use test_support::{ADMIN_PERMISSION, assert_bad_credentials, send, spawn_app};

#[actix_web::test]
async fn public_message_is_served_to_anyone() {
    let app = spawn_app().await;
    let reply = app.get("/api/messages/public").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"text": "This is a public message."}));
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[actix_web::test]
async fn protected_message_is_served_with_a_valid_token() {
    let app = spawn_app().await;
    let reply = app
        .get_with_token("/api/messages/protected", &app.token())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"text": "This is a protected message."}));
}

#[actix_web::test]
async fn admin_message_is_served_with_the_admin_permission() {
    let app = spawn_app().await;
    let reply = app
        .get_with_token("/api/messages/admin", &app.admin_token())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"text": "This is an admin message."}));
}

#[actix_web::test]
async fn seed_public_route_answers_like_the_blog_seed() {
    let app = spawn_app().await;
    let reply = app.get("/api/public").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({
            "status": "success",
            "msg": "Hello from a public endpoint! You don't need to be authenticated to see this."
        })
    );
}

#[actix_web::test]
async fn seed_private_route_returns_the_verified_claims() {
    let app = spawn_app().await;
    let claims = app.admin_claims();
    let token = app.issuer.sign(&claims).unwrap();
    let reply = app.get_with_token("/api/private", &token).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, claims);
}

#[actix_web::test]
async fn seed_private_route_requires_a_token() {
    let app = spawn_app().await;
    let reply = app.get("/api/private").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.message(), "Requires authentication");
}

#[actix_web::test]
async fn protected_returns_401_requires_authentication_without_a_token() {
    let app = spawn_app().await;
    for path in ["/api/messages/protected", "/api/messages/admin"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(reply.body, json!({"message": "Requires authentication"}));
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer realm="hello-world-api""#),
            "no error code without credentials (RFC 6750 §3.1)"
        );
    }
}

#[actix_web::test]
async fn protected_returns_401_requires_authentication_for_another_scheme() {
    let app = spawn_app().await;
    let reply = app
        .get_with_authorization("/api/messages/protected", "Basic dXNlcjpwYXNzd29yZA==")
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.message(), "Requires authentication");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="hello-world-api""#)
    );
}

#[actix_web::test]
async fn protected_returns_401_bad_credentials_for_a_malformed_bearer_header() {
    let app = spawn_app().await;
    for value in ["Bearer", "Bearer ", "Bearer a b c", "Bearer {\"json\":1}"] {
        let reply = app
            .get_with_authorization("/api/messages/protected", value)
            .await;
        assert_bad_credentials(&reply, "malformed authorization header");
    }
}

#[actix_web::test]
async fn protected_returns_401_bad_credentials_for_several_authorization_headers() {
    let app = spawn_app().await;
    let token = app.token();
    let request = app
        .request("GET", "/api/messages/protected")
        .append_header(("Authorization", format!("Bearer {token}")))
        .append_header(("Authorization", format!("Bearer {token}")));
    assert_bad_credentials(&send(request).await, "malformed authorization header");
}

#[actix_web::test]
async fn protected_returns_401_bad_credentials_for_a_token_that_is_not_a_jwt() {
    let app = spawn_app().await;
    let reply = app
        .get_with_token("/api/messages/protected", "not-a-jwt")
        .await;
    assert_bad_credentials(&reply, "malformed token");
}

#[actix_web::test]
async fn admin_returns_403_without_permission() {
    let app = spawn_app().await;
    for permissions in [
        None,
        Some(json!([])),
        Some(json!(ADMIN_PERMISSION)),
        Some(json!({ADMIN_PERMISSION: true})),
        Some(json!(["read:messages", "write:admin-messages"])),
    ] {
        let token = app.token_with(|c| {
            if let Some(p) = permissions.clone() {
                c["permissions"] = p;
            }
        });
        let reply = app.get_with_token("/api/messages/admin", &token).await;
        assert_eq!(reply.status, 403, "{permissions:?}");
        assert_eq!(reply.message(), "Permission denied");
        assert_eq!(reply.body["error"], "insufficient_scope");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(
                r#"Bearer realm="hello-world-api", error="insufficient_scope", scope="read:admin-messages""#
            )
        );
    }
}

#[actix_web::test]
async fn admin_returns_401_not_403_for_an_invalid_token_granting_the_permission() {
    let app = spawn_app().await;
    let token = app.token_with(|c| {
        c["permissions"] = json!([ADMIN_PERMISSION]);
        c["exp"] = json!(1_000_000_000);
    });
    let reply = app.get_with_token("/api/messages/admin", &token).await;
    assert_bad_credentials(&reply, "token expired");
}

#[actix_web::test]
async fn protected_message_does_not_need_any_permission() {
    let app = spawn_app().await;
    let token = app.token_with(|c| c["permissions"] = json!([]));
    let reply = app.get_with_token("/api/messages/protected", &token).await;
    assert_eq!(reply.status, 200);
}

#[actix_web::test]
async fn unknown_path_returns_404_json() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/api",
        "/api/messages",
        "/api/messages/secret",
        "/api/messages/public/x",
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body, json!({"message": "Not Found"}), "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
}

#[actix_web::test]
async fn wrong_method_returns_405_json() {
    let app = spawn_app().await;
    for (method, path) in [
        ("POST", "/api/messages/public"),
        ("DELETE", "/api/messages/protected"),
        ("PUT", "/api/messages/admin"),
        ("POST", "/api/private"),
    ] {
        let reply = send(app.request(method, path)).await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.body, json!({"message": "Method Not Allowed"}));
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
}

#[actix_web::test]
async fn every_answer_is_json() {
    let app = spawn_app().await;
    let token = app.token();
    let replies = [
        app.get("/api/messages/public").await,
        app.get("/api/public").await,
        app.get_with_token("/api/messages/protected", &token).await,
        app.get_with_token("/api/messages/admin", &token).await,
        app.get_with_token("/api/private", &token).await,
        app.get("/api/messages/protected").await,
        app.get_with_token("/api/messages/protected", "x.y.z").await,
        app.get("/nope").await,
        send(app.request("PATCH", "/api/public")).await,
    ];
    for reply in replies {
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{reply:?}"
        );
        assert!(reply.body.is_object(), "{reply:?}");
        if reply.status >= 400 {
            assert!(reply.body["message"].is_string(), "{reply:?}");
        }
    }
}

#[actix_web::test]
async fn a_fault_of_ours_answers_500_json() {
    // An app assembled without the Authenticator in its data is our bug, not the client's.
    let app = actix_web::test::init_service(
        actix_web::App::new().configure(hello_world_api::routes::configure),
    )
    .await;
    let request = actix_web::test::TestRequest::get()
        .uri("/api/messages/protected")
        .insert_header(("Authorization", "Bearer a.b.c"))
        .to_request();
    let response = actix_web::test::call_service(&app, request).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json"
    );
    let body = actix_web::test::read_body(response).await;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        json!({"message": "Internal server error"})
    );
}
