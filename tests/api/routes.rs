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

/// One raw HTTP/1.1 exchange: the status line and headers (lower-case names), and the bytes
/// after the head.
fn exchange(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
) -> (String, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .collect();
    (status, headers, answer[end + 4..].to_vec())
}

#[actix_web::test]
async fn head_is_answered_on_every_get_route_with_the_get_status_and_headers_and_no_body() {
    use hello_world_api::routes::DOCS_PAGES;
    let app = spawn_app().await;
    let admin = app.admin_token();
    let gets = ROUTES
        .iter()
        .chain(DOCS_PAGES)
        .filter(|r| r.method == Method::GET);
    let mut checked = 0;
    for route in gets {
        let path = route.path.replace("{file:.*}", "swagger-ui.css");
        for token in [admin.as_str(), "not-a-token"] {
            let (get_status, get_headers, get_body) = exchange(&app.address, "GET", &path, token);
            let (status, headers, body) = exchange(&app.address, "HEAD", &path, token);
            assert_eq!(status, get_status, "HEAD {path}");
            assert_eq!(headers, get_headers, "HEAD {path}");
            assert!(body.is_empty(), "HEAD {path} sent a body: {body:?}");
            assert!(
                !get_body.is_empty() || get_status.contains(" 308 "),
                "GET {path}: {get_status}"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "every GET route, the docs pages included: {checked}"
    );
    // Methods nobody declared still get 405.
    let (status, _, _) = exchange(&app.address, "DELETE", "/api/messages/public", &admin);
    assert!(status.contains(" 405 "), "{status}");
}
