//! Routes declare their policy in one table: a route needing a new permission is one
//! declaration plus a handler, it cannot be reached without the permission, and it is counted
//! under its own label with nothing else to register.

use actix_web::HttpResponse;
use actix_web::http::Method;
use hello_world_api::auth::extractor::Authenticated;
use hello_world_api::auth::policy::Policy;
use hello_world_api::openapi::schemas::object;
use hello_world_api::routes::{Answer, Body, ROUTES, Route};
use serde_json::json;
use test_support::{TestApp, metric, scrape, spawn_app};

/// A handler that takes no extractor: only the route's policy stands between it and a caller.
async fn reports() -> HttpResponse {
    HttpResponse::Ok().json(json!({"reports": []}))
}

/// A handler on a public route that still asks for claims.
async fn whoami(Authenticated(claims): Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(json!({"sub": claims.sub}))
}

/// `{"reports": […]}` or `{"sub": …}`: bodies these tests do not check against the description.
const ANY: Body = Body {
    name: "TestBody",
    schema: || object([], &[]),
};

static TEST_ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/api/reports",
        policy: Policy::Permissions(&["read:reports"]),
        summary: "Reports",
        answers: &[Answer::ok("Reports", ANY)],
        handler: |route| route.to(reports),
    },
    Route {
        method: Method::GET,
        path: "/api/reports/edit",
        policy: Policy::Permissions(&["read:reports", "write:reports"]),
        summary: "Reports to edit",
        answers: &[Answer::ok("Reports", ANY)],
        handler: |route| route.to(reports),
    },
    Route {
        method: Method::GET,
        path: "/api/whoami",
        policy: Policy::Public,
        summary: "Who the token names",
        answers: &[Answer::ok("Who", ANY)],
        handler: |route| route.to(whoami),
    },
];

async fn spawn_with_test_routes() -> TestApp {
    TestApp::builder().routes(TEST_ROUTES).spawn().await
}

fn granting(app: &TestApp, permissions: &[&str]) -> String {
    app.token_with(|claims| claims["permissions"] = json!(permissions))
}

#[actix_web::test]
async fn a_route_needing_a_new_permission_refuses_callers_without_it() {
    let app = spawn_with_test_routes().await;

    let anonymous = app.get("/api/reports").await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(anonymous.message(), "Requires authentication");

    for token in [
        app.token(),
        app.admin_token(),
        granting(&app, &["read:report"]),
    ] {
        let refused = app.get_with_token("/api/reports", &token).await;
        assert_eq!(refused.status, 403, "{refused:?}");
        assert_eq!(refused.message(), "Permission denied");
        assert_eq!(
            refused.header("www-authenticate"),
            Some(
                r#"Bearer realm="hello-world-api", error="insufficient_scope", scope="read:reports""#
            )
        );
        assert_eq!(
            refused.description(),
            "requires the read:reports permission"
        );
    }
}

#[actix_web::test]
async fn a_route_needing_a_new_permission_serves_a_token_granting_it() {
    let app = spawn_with_test_routes().await;
    let token = granting(&app, &["read:admin-messages", "read:reports"]);
    let reply = app.get_with_token("/api/reports", &token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, json!({"reports": []}));
}

#[actix_web::test]
async fn a_route_needing_two_permissions_wants_both() {
    let app = spawn_with_test_routes().await;
    let one = app
        .get_with_token("/api/reports/edit", &granting(&app, &["read:reports"]))
        .await;
    assert_eq!(one.status, 403, "{one:?}");
    assert_eq!(
        one.header("www-authenticate"),
        Some(
            r#"Bearer realm="hello-world-api", error="insufficient_scope", scope="read:reports write:reports""#
        )
    );
    let both = granting(&app, &["write:reports", "read:reports"]);
    assert_eq!(
        app.get_with_token("/api/reports/edit", &both).await.status,
        200
    );
}

#[actix_web::test]
async fn a_handler_asking_for_claims_on_a_public_route_gets_only_verified_ones() {
    let app = spawn_with_test_routes().await;
    assert_eq!(app.get("/api/whoami").await.status, 401);
    let forged = format!("{}x", app.token());
    assert_eq!(app.get_with_token("/api/whoami", &forged).await.status, 401);
    let reply = app.get_with_token("/api/whoami", &app.token()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, json!({"sub": "auth0|user-1"}));
}

#[actix_web::test]
async fn a_declared_route_is_counted_under_its_own_label_with_nothing_else_to_register() {
    let app = spawn_with_test_routes().await;
    app.get("/api/reports").await;
    app.get_with_token("/api/reports", &granting(&app, &["read:reports"]))
        .await;
    app.request("POST", "/api/reports").send().await.unwrap();
    app.get("/api/reports/nope").await;
    let text = scrape(&app).await;
    for (series, count) in [
        (
            r#"http_requests_total{route="/api/reports",method="GET",status="401"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{route="/api/reports",method="GET",status="200"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{route="/api/reports",method="POST",status="405"}"#,
            1.0,
        ),
        (
            r#"http_requests_total{route="unmatched",method="GET",status="404"}"#,
            1.0,
        ),
    ] {
        assert_eq!(metric(&text, series), count, "{series}\n{text}");
    }
}

#[actix_web::test]
async fn every_route_of_the_api_answers_by_its_policy_and_is_labelled() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    for route in ROUTES {
        let anonymous = app.get(route.path).await;
        let expected = match route.policy {
            Policy::Public => 200,
            Policy::Authenticated | Policy::Permissions(_) => 401,
        };
        assert_eq!(anonymous.status, expected, "{} {anonymous:?}", route.path);
        let granted = app.get_with_token(route.path, &admin).await;
        assert_eq!(granted.status, 200, "{} {granted:?}", route.path);
    }
    let text = scrape(&app).await;
    for route in ROUTES {
        let series = format!(
            r#"http_requests_total{{route="{}",method="GET",status="200"}}"#,
            route.path
        );
        assert!(metric(&text, &series) >= 1.0, "{series}\n{text}");
    }
    assert_eq!(
        metric(
            &text,
            r#"http_requests_total{route="unmatched",method="GET",status="200"}"#
        ),
        0.0
    );
}
