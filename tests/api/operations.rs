//! Operating it: probes, metrics, request ids, bounded stale keys, the issuer steering the
//! refresh period, and a slow issuer slowing nobody down.

use std::time::Duration;

use hello_world_api::issuer::JwksBehaviour;
use serde_json::json;

use test_support::{TestApp, key, now, scrape, send, spawn_app};

const PROTECTED: &str = "/api/messages/protected";
const DAY: Duration = Duration::from_secs(86_400);

#[actix_web::test]
async fn healthz_answers_while_the_process_serves() {
    let app = TestApp::builder()
        .issuer_behaviour(JwksBehaviour::Fail(500))
        .spawn()
        .await;
    let reply = app.get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"status": "ok"}));
}

#[actix_web::test]
async fn readyz_is_200_with_fresh_keys() {
    let app = spawn_app().await;
    let reply = app.get("/readyz").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["status"], "ready");
    assert_eq!(reply.body["keys"], 1);
}

#[actix_web::test]
async fn readyz_is_503_naming_why_before_any_key_arrives() {
    let app = TestApp::builder()
        .issuer_behaviour(JwksBehaviour::Fail(502))
        .spawn()
        .await;
    app.keys.wait_for_attempts(1).await;
    let reply = app.get("/readyz").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(reply.body["status"], "not ready");
    assert_eq!(reply.body["reason"], "no signing keys loaded yet");
    // A fixed vocabulary: the raw fetch error (which can name internal hosts) is logged only.
    assert_eq!(reply.body["key_fetch"], "failing", "{reply:?}");
    assert!(reply.body.get("last_error").is_none(), "{reply:?}");
    let text = reply.body.to_string();
    assert!(
        !text.contains("502") && !text.contains("127.0.0.1"),
        "{text}"
    );
    assert!(reply.body["message"].is_string());
}

#[actix_web::test]
async fn keys_stay_usable_through_an_outage_up_to_max_stale_then_503_then_recover() {
    let app = spawn_app().await;
    let token = app.token_with(|c| c["exp"] = json!(now() + 3 * 86_400));
    app.issuer.set_behaviour(JwksBehaviour::Fail(503));

    app.clock.advance(DAY - Duration::from_secs(60));
    app.keys.refresh_now().await;
    assert_eq!(
        app.get_with_token(PROTECTED, &token).await.status,
        200,
        "within max_stale"
    );
    assert_eq!(app.get("/readyz").await.status, 200);

    app.clock.advance(Duration::from_secs(61));
    let reply = app.get_with_token(PROTECTED, &token).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"message": "Unable to verify credentials"})
    );
    assert!(reply.header("retry-after").is_some());
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.body["reason"]
            .as_str()
            .unwrap()
            .starts_with("signing keys are stale")
    );

    // The issuer returns: the next fetch makes the same keys fresh again, no restart.
    app.issuer.set_behaviour(JwksBehaviour::Serve);
    app.keys.refresh_now().await;
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    assert_eq!(app.get("/readyz").await.status, 200);
}

#[actix_web::test]
async fn max_stale_is_configurable() {
    let app = TestApp::builder()
        .env("APP__JWKS__MAX_STALE_SECS", "120")
        .env("APP__JWKS__REFRESH_INTERVAL_SECS", "60")
        .env("APP__JWKS__MIN_REFRESH_INTERVAL_SECS", "30")
        .env("APP__JWKS__MAX_REFRESH_INTERVAL_SECS", "60")
        .spawn()
        .await;
    app.issuer.set_behaviour(JwksBehaviour::Fail(500));
    app.clock.advance(Duration::from_secs(121));
    assert_eq!(
        app.get_with_token(PROTECTED, &app.token()).await.status,
        503
    );
}

#[actix_web::test]
async fn cache_control_max_age_sets_the_refresh_period_within_bounds() {
    let app = spawn_app().await;
    for (cache_control, expected) in [
        (Some("public, max-age=120"), Duration::from_secs(120)),
        (Some("max-age=5"), Duration::from_secs(60)),
        (Some("max-age=999999999"), DAY / 2),
        (Some("no-cache"), Duration::from_secs(600)),
        (None, Duration::from_secs(600)),
    ] {
        app.issuer.set_cache_control(cache_control);
        app.keys.refresh_now().await;
        assert_eq!(
            app.keys.status().next_attempt_in,
            Some(expected),
            "{cache_control:?}"
        );
    }
}

#[actix_web::test]
async fn a_slow_issuer_slows_neither_public_nor_known_key_requests() {
    let app = TestApp::builder()
        .env("APP__JWKS__FETCH_TIMEOUT_SECS", "5")
        .spawn()
        .await;
    app.issuer.set_delay(Duration::from_secs(3));
    let keys = app.keys.clone();
    let attempts = keys.status().attempts;
    let refresh = actix_web::rt::spawn(async move { keys.refresh_now().await });
    // Let the refresher start its fetch.
    while app.fetches() < 2 {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..5 {
        assert_eq!(app.get("/api/messages/public").await.status, 200);
        assert_eq!(
            app.get_with_token(PROTECTED, &app.token()).await.status,
            200
        );
    }
    assert_eq!(
        app.keys.status().attempts,
        attempts,
        "answered while the fetch was in flight"
    );
    refresh.abort();
}

#[actix_web::test]
async fn answers_carry_a_request_id_and_keep_a_sane_incoming_one() {
    let app = spawn_app().await;
    let first = app.get("/api/messages/public").await;
    let second = app.get("/api/messages/protected").await;
    let a = first.header("x-request-id").unwrap();
    let b = second.header("x-request-id").unwrap();
    assert_ne!(a, b);
    let kept = send(
        app.request("GET", "/nope")
            .insert_header(("X-Request-Id", "trace-42")),
    )
    .await;
    assert_eq!(kept.header("x-request-id"), Some("trace-42"));
    let replaced = send(
        app.request("GET", "/nope")
            .insert_header(("X-Request-Id", "bad id!")),
    )
    .await;
    assert_ne!(replaced.header("x-request-id"), Some("bad id!"));
}

#[actix_web::test]
async fn metrics_count_requests_decisions_and_fetches_on_their_own_listener() {
    let app = spawn_app().await;
    app.get("/api/messages/public").await;
    app.get_with_token(PROTECTED, &app.token()).await;
    app.get(PROTECTED).await;
    app.get_with_token(PROTECTED, &app.token_with(|c| c["exp"] = json!(1)))
        .await;
    app.get_with_token("/api/messages/admin", &app.token())
        .await;
    app.get("/no/such/path").await;

    let text = scrape(&app).await;
    for line in [
        r#"http_requests_total{route="/api/messages/public",method="GET",status="200"} 1"#,
        r#"http_requests_total{route="/api/messages/protected",method="GET",status="401"} 2"#,
        r#"http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        r#"auth_decisions_total{outcome="allowed",reason=""} 1"#,
        r#"auth_decisions_total{outcome="missing_token",reason=""} 1"#,
        r#"auth_decisions_total{outcome="invalid_token",reason="token_expired"} 1"#,
        r#"auth_decisions_total{outcome="insufficient_permission",reason=""} 1"#,
        r#"jwks_fetches_total{result="success"} 1"#,
        "jwks_keys_loaded 1",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{le="#),
        "{text}"
    );
    assert!(text.contains("jwks_since_last_success_seconds "), "{text}");

    // Not exposed with the public API.
    assert_eq!(app.get("/metrics").await.status, 404);
}

#[actix_web::test]
async fn metrics_count_failed_fetches_and_unavailable_keys() {
    let app = TestApp::builder()
        .issuer_behaviour(JwksBehaviour::Fail(500))
        .env("APP__JWKS__RETRY_INITIAL_SECS", "60")
        .env("APP__JWKS__RETRY_MAX_SECS", "60")
        .spawn()
        .await;
    app.keys.wait_for_attempts(1).await;
    // Past the minimum gap: the token asks the issuer once more (and that fails too).
    app.clock.advance(Duration::from_secs(1));
    app.get_with_token(PROTECTED, &app.token()).await;
    let text = scrape(&app).await;
    assert!(
        text.contains(r#"jwks_fetches_total{result="error"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"auth_decisions_total{outcome="keys_unavailable",reason=""} 1"#),
        "{text}"
    );
    assert!(
        text.contains("jwks_since_last_success_seconds -1"),
        "{text}"
    );
    assert!(text.contains("jwks_keys_loaded 0"), "{text}");
}

#[actix_web::test]
async fn the_metrics_listener_lists_its_endpoints_and_answers_other_paths_with_the_json_404() {
    let app = spawn_app().await;
    let base = app.metrics_address.clone().expect("metrics on");
    let index = send(app.client.get(format!("{base}/"))).await;
    assert_eq!(index.status, 200, "{index:?}");
    assert!(index.body["endpoints"]["/metrics"].is_string(), "{index:?}");
    for path in ["/healthz", "/nothing", "/metrics/x"] {
        let reply = send(app.client.get(format!("{base}{path}"))).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body, json!({"message": "Not Found"}), "{path}");
    }
    assert_eq!(
        send(app.client.get(format!("{base}/metrics"))).await.status,
        200
    );
}

#[actix_web::test]
async fn metrics_can_be_switched_off() {
    let app = TestApp::builder()
        .env("APP__METRICS__ENABLED", "false")
        .spawn()
        .await;
    assert!(app.metrics_address.is_none());
    assert_eq!(app.get("/api/messages/public").await.status, 200);
}

#[actix_web::test]
async fn a_rotated_key_during_an_outage_is_503_not_401_and_old_keys_still_work() {
    let app = spawn_app().await;
    let old = app.token();
    app.issuer.set_behaviour(JwksBehaviour::Fail(503));
    app.pass_cooldown();
    let new = key(1).sign(&app.claims()).unwrap();
    // The service could not learn the new key: it does not know the token is bad.
    let reply = app.get_with_token(PROTECTED, &new).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"message": "Unable to verify credentials"})
    );
    assert!(reply.header("retry-after").is_some());
    assert!(reply.header("www-authenticate").is_none());
    assert_eq!(app.get_with_token(PROTECTED, &old).await.status, 200);
}
