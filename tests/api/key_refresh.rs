//! The key store: fetched once, refreshed in the background, on unknown `kid` with a cooldown
//! and single flight, and resilient to a failing issuer.

use std::time::Duration;

use futures_util::future::join_all;
use hello_world_api::issuer::JwksBehaviour;
use serde_json::json;

use test_support::{TestApp, assert_bad_credentials, key, key_as, metric, scrape, spawn_app};

const PROTECTED: &str = "/api/messages/protected";

#[actix_web::test]
async fn keys_are_fetched_once_at_start_not_per_request() {
    let app = spawn_app().await;
    assert_eq!(app.fetches(), 1);
    for _ in 0..20 {
        let reply = app.get_with_token(PROTECTED, &app.token()).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(app.fetches(), 1);
}

#[actix_web::test]
async fn rotated_key_is_accepted_on_its_first_request() {
    let app = spawn_app().await;
    let old_token = app.token();
    app.pass_cooldown();
    app.issuer.rotate_to(key(1));
    let reply = app.get_with_token(PROTECTED, &app.token()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(app.fetches(), 2);
    // The old key is still published, so its tokens still work.
    assert_eq!(app.get_with_token(PROTECTED, &old_token).await.status, 200);
}

#[actix_web::test]
async fn a_rotation_soon_after_start_is_accepted_on_the_new_keys_first_token() {
    // A deploy and a key rotation close together: the start-up fetch does not start the
    // unknown-kid cooldown, so the first new-key token fetches the keys again.
    for after in [1, 5, 29] {
        let app = spawn_app().await;
        app.clock.advance(Duration::from_secs(after));
        app.issuer.rotate_to(key(1));
        let reply = app.get_with_token(PROTECTED, &app.token()).await;
        assert_eq!(
            reply.status, 200,
            "rotation {after}s after start: {reply:?}"
        );
        assert_eq!(app.fetches(), 2, "rotation {after}s after start");
    }
}

#[actix_web::test]
async fn unknown_kid_flood_right_after_start_causes_one_fetch_per_cooldown() {
    let app = spawn_app().await;
    app.clock.advance(Duration::from_secs(1));
    let tokens = random_kids(&app, "start", 40);
    for round in 0..3 {
        let replies = join_all(tokens.iter().map(|t| app.get_with_token(PROTECTED, t))).await;
        for reply in &replies {
            assert_bad_credentials(reply, "unknown signing key");
        }
        assert_eq!(
            app.fetches(),
            2,
            "round {round}: one fetch beyond the start-up one"
        );
    }
    app.clock.advance(Duration::from_secs(29));
    join_all(tokens.iter().map(|t| app.get_with_token(PROTECTED, t))).await;
    assert_eq!(
        app.fetches(),
        2,
        "30 s after the unknown-kid fetch, not after start"
    );
    app.clock.advance(Duration::from_secs(1));
    join_all(tokens.iter().map(|t| app.get_with_token(PROTECTED, t))).await;
    assert_eq!(app.fetches(), 3);
}

#[actix_web::test]
async fn unknown_kid_while_the_refetch_fails_is_503_with_retry_after() {
    let app = with_slow_retries().await;
    let old_token = app.token();
    app.clock.advance(Duration::from_secs(5));
    app.issuer.rotate_to(key(1));
    app.issuer.set_behaviour(JwksBehaviour::Fail(503));
    let reply = app.get_with_token(PROTECTED, &app.token()).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"message": "Unable to verify credentials"})
    );
    // The retry comes in 60 s; the token may ask for a refetch again when the cooldown
    // ends, in 30 s.
    assert_eq!(reply.header("retry-after"), Some("30"));
    assert!(
        reply.header("www-authenticate").is_none(),
        "not the client's fault"
    );
    assert_eq!(app.fetches(), 2, "the refetch was tried");
    // Known keys still work from the stale-if-error set.
    assert_eq!(app.get_with_token(PROTECTED, &old_token).await.status, 200);
}

#[actix_web::test]
async fn unknown_kid_within_the_cooldown_of_a_failed_refetch_is_503_without_a_fetch() {
    let app = with_slow_retries().await;
    app.clock.advance(Duration::from_secs(5));
    app.issuer.rotate_to(key(1));
    app.issuer.set_behaviour(JwksBehaviour::Fail(503));
    assert_eq!(
        app.get_with_token(PROTECTED, &app.token()).await.status,
        503
    );
    app.clock.advance(Duration::from_secs(10));
    let reply = app.get_with_token(PROTECTED, &app.token()).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(app.fetches(), 2, "the cooldown still bounds the fetches");
}

#[actix_web::test]
async fn unknown_kid_after_a_successful_refetch_that_does_not_list_it_is_401() {
    let app = spawn_app().await;
    app.clock.advance(Duration::from_secs(5));
    let forged = key_as(2, "never-published").sign(&app.claims()).unwrap();
    assert_bad_credentials(
        &app.get_with_token(PROTECTED, &forged).await,
        "unknown signing key",
    );
    assert_eq!(app.fetches(), 2, "it was asked for");
}

#[actix_web::test]
async fn unknown_kid_within_the_cooldown_of_a_successful_refetch_is_401_without_a_fetch() {
    let app = spawn_app().await;
    app.clock.advance(Duration::from_secs(5));
    let forged = key_as(2, "never-published").sign(&app.claims()).unwrap();
    app.get_with_token(PROTECTED, &forged).await;
    // The issuer goes down only after that refetch: within its cooldown the set is current.
    app.clock.advance(Duration::from_secs(20));
    let other = key_as(2, "also-never-published")
        .sign(&app.claims())
        .unwrap();
    assert_bad_credentials(
        &app.get_with_token(PROTECTED, &other).await,
        "unknown signing key",
    );
    assert_eq!(app.fetches(), 2, "no fetch within the cooldown");
}

#[actix_web::test]
async fn a_failed_scheduled_refresh_makes_unknown_kids_unchecked_within_the_cooldown() {
    let app = spawn_app().await;
    app.clock.advance(Duration::from_secs(5));
    let forged = key_as(2, "never-published").sign(&app.claims()).unwrap();
    assert_eq!(app.get_with_token(PROTECTED, &forged).await.status, 401);
    app.issuer.set_behaviour(JwksBehaviour::Fail(500));
    app.keys.refresh_now().await;
    // The issuer is known to be unreachable now: a new kid may be one it published since.
    assert_eq!(app.get_with_token(PROTECTED, &forged).await.status, 503);
}

#[actix_web::test]
async fn readiness_and_metrics_show_suppressed_refetches_and_unchecked_kids() {
    let app = with_slow_retries().await;
    app.clock.advance(Duration::from_secs(5));
    app.issuer.set_behaviour(JwksBehaviour::Fail(503));
    let tokens = random_kids(&app, "outage", 5);
    for token in &tokens {
        assert_eq!(app.get_with_token(PROTECTED, token).await.status, 503);
    }
    app.clock.advance(Duration::from_secs(10));

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "known keys still work: {ready:?}");
    assert_eq!(
        ready.body["unknown_kids"],
        json!({
            "refetch": "suppressed",
            "refetch_in_secs": 20,
            "suppressed": 4,
            "unchecked": 5,
            "last_unchecked_secs_ago": 10,
        })
    );
    let text = scrape(&app).await;
    assert_eq!(
        metric(
            &text,
            r#"jwks_unknown_kid_refetches_total{result="fetched"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"jwks_unknown_kid_refetches_total{result="suppressed"}"#
        ),
        4.0
    );
    assert_eq!(
        metric(&text, "jwks_unknown_kid_refetch_suppressed_seconds"),
        20.0
    );
    assert_eq!(
        metric(
            &text,
            r#"auth_decisions_total{outcome="keys_unavailable",reason="unknown_kid_unchecked"}"#
        ),
        5.0
    );

    // Once the issuer answers again, the count of unchecked kids starts over.
    app.issuer.set_behaviour(JwksBehaviour::Serve);
    app.pass_cooldown();
    app.keys.refresh_now().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.body["unknown_kids"]["refetch"], "allowed");
    assert_eq!(ready.body["unknown_kids"]["unchecked"], 0);
    let text = scrape(&app).await;
    assert_eq!(
        metric(&text, "jwks_unknown_kid_refetch_suppressed_seconds"),
        0.0
    );
}

#[actix_web::test]
async fn unknown_kid_flood_causes_at_most_one_fetch_per_cooldown() {
    let app = spawn_app().await;
    let flood = |round: usize| {
        let tokens = random_kids(&app, &format!("random-{round}"), 40);
        let app = &app;
        async move {
            let replies = join_all(tokens.iter().map(|t| app.get_with_token(PROTECTED, t))).await;
            for reply in replies {
                assert_bad_credentials(&reply, "unknown signing key");
            }
        }
    };
    app.pass_cooldown();
    flood(1).await;
    assert_eq!(app.fetches(), 2);
    flood(2).await;
    assert_eq!(app.fetches(), 2, "still within the cooldown");
    app.clock.advance(Duration::from_secs(29));
    flood(3).await;
    assert_eq!(app.fetches(), 2, "29 s is still within a 30 s cooldown");
    app.clock.advance(Duration::from_secs(2));
    flood(4).await;
    assert_eq!(app.fetches(), 3);
}

#[actix_web::test]
async fn concurrent_requests_for_a_new_key_share_one_fetch() {
    let app = TestApp::builder()
        .env("APP__SERVER__WORKERS", "2")
        .spawn()
        .await;
    app.pass_cooldown();
    app.issuer.rotate_to(key(1));
    app.issuer.set_delay(Duration::from_millis(300));
    let token = app.token();
    let replies = join_all((0..24).map(|_| app.get_with_token(PROTECTED, &token))).await;
    for reply in &replies {
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(app.fetches(), 2, "one shared fetch for all 24 requests");
}

#[actix_web::test]
async fn dropped_key_is_refused_after_the_next_refresh() {
    let app = spawn_app().await;
    let old_token = app.token();
    app.issuer.rotate_to(key(1));
    app.issuer.unpublish("test-key-0");
    assert_eq!(
        app.get_with_token(PROTECTED, &old_token).await.status,
        200,
        "until the refresh"
    );
    app.keys.refresh_now().await;
    let reply = app.get_with_token(PROTECTED, &old_token).await;
    assert_bad_credentials(&reply, "unknown signing key");
    assert_eq!(
        app.get_with_token(PROTECTED, &app.token()).await.status,
        200
    );
}

#[actix_web::test]
async fn failed_refresh_keeps_the_old_keys() {
    let app = spawn_app().await;
    let token = app.token();
    for behaviour in [
        JwksBehaviour::Fail(500),
        JwksBehaviour::Fail(404),
        JwksBehaviour::Garbage,
    ] {
        app.issuer.set_behaviour(behaviour);
        let attempts = app.keys.status().attempts;
        app.keys.refresh_now().await;
        let status = app.keys.status();
        assert_eq!(status.attempts, attempts + 1);
        assert!(status.last_error.is_some(), "{behaviour:?}");
        assert_eq!(status.kids, vec!["test-key-0"]);
        assert_eq!(
            app.get_with_token(PROTECTED, &token).await.status,
            200,
            "{behaviour:?}"
        );
    }
}

#[actix_web::test]
async fn a_key_set_without_usable_keys_never_replaces_a_good_one() {
    let app = spawn_app().await;
    let token = app.token();
    app.issuer.unpublish("test-key-0");
    app.issuer
        .set_extra_entries(vec![json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})]);
    app.keys.refresh_now().await;
    let status = app.keys.status();
    assert_eq!(
        status.last_error.as_deref(),
        Some("JWKS has no usable signing key")
    );
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
}

#[actix_web::test]
async fn unusable_jwks_entries_are_skipped_and_the_rest_used() {
    let app = spawn_app().await;
    let mut enc = serde_json::to_value(key(1).public_jwk()).unwrap();
    enc["use"] = json!("enc");
    app.issuer.set_extra_entries(vec![
        enc,
        json!({"kty": "RSA", "kid": "broken", "n": "!", "e": "AQAB"}),
        json!(42),
    ]);
    app.keys.refresh_now().await;
    assert_eq!(app.keys.status().kids, vec!["test-key-0"]);
    assert_eq!(
        app.get_with_token(PROTECTED, &app.token()).await.status,
        200
    );
    app.pass_cooldown();
    let encryption_key_token = key(1).sign(&app.claims()).unwrap();
    assert_bad_credentials(
        &app.get_with_token(PROTECTED, &encryption_key_token).await,
        "unknown signing key",
    );
}

#[actix_web::test]
async fn oversized_key_set_is_refused() {
    let app = TestApp::builder()
        .env("APP__JWKS__MAX_RESPONSE_BYTES", "200")
        .issuer_behaviour(JwksBehaviour::Serve)
        .spawn()
        .await;
    app.keys.wait_for_attempts(1).await;
    let status = app.keys.status();
    assert!(status.kids.is_empty());
    assert_eq!(
        status.last_error.as_deref(),
        Some("response is larger than 200 bytes")
    );
}

#[actix_web::test]
async fn slow_issuer_is_cut_off_at_the_fetch_timeout() {
    let app = TestApp::builder()
        .env("APP__JWKS__FETCH_TIMEOUT_SECS", "0.2")
        .spawn()
        .await;
    app.issuer.set_delay(Duration::from_secs(3));
    let started = std::time::Instant::now();
    app.keys.refresh_now().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let status = app.keys.status();
    assert_eq!(
        status.last_error.as_deref(),
        Some("no complete answer within 200ms")
    );
    assert_eq!(
        app.get_with_token(PROTECTED, &app.token()).await.status,
        200
    );
}

#[actix_web::test]
async fn issuer_down_at_start_answers_503_then_recovers_without_restart() {
    let app = TestApp::builder()
        .issuer_behaviour(JwksBehaviour::Fail(503))
        .spawn()
        .await;
    app.keys.wait_for_attempts(1).await;
    assert_eq!(app.get("/api/messages/public").await.status, 200);

    let reply = app.get_with_token(PROTECTED, &app.token()).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.body,
        json!({"message": "Unable to verify credentials"})
    );
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert!(
        reply.header("www-authenticate").is_none(),
        "not the client's fault"
    );
    assert_eq!(
        app.get_with_token("/api/messages/admin", &app.admin_token())
            .await
            .status,
        503
    );

    // The refresher keeps retrying with backoff; once the issuer is back, keys arrive.
    app.issuer.set_behaviour(JwksBehaviour::Serve);
    let attempts = app.keys.status().attempts;
    app.keys.wait_for_attempts(attempts + 1).await;
    let reply = app.get_with_token(PROTECTED, &app.token()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[actix_web::test]
async fn issuer_unreachable_at_start_answers_503_not_401() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://{}/.well-known/jwks.json",
        closed.local_addr().unwrap()
    );
    drop(closed);
    let app = TestApp::builder()
        .env("AUTH0_JWKS_URI", &dead)
        .issuer_behaviour(JwksBehaviour::Serve)
        .spawn()
        .await;
    app.keys.wait_for_attempts(1).await;
    let reply = app.get_with_token(PROTECTED, &app.token()).await;
    assert_eq!(reply.status, 503);
    assert!(
        app.keys
            .status()
            .last_error
            .unwrap()
            .starts_with("request failed")
    );
}

#[actix_web::test]
async fn keys_are_refreshed_periodically() {
    let app = TestApp::builder()
        .env("APP__JWKS__REFRESH_INTERVAL_SECS", "0.1")
        .spawn()
        .await;
    // The clock is not moved: an unknown kid cannot trigger a fetch, only the timer can.
    app.issuer.rotate_to(key(1));
    let attempts = app.keys.status().attempts;
    app.keys.wait_for_attempts(attempts + 2).await;
    assert_eq!(
        app.get_with_token(PROTECTED, &app.token()).await.status,
        200
    );
    assert!(app.fetches() >= 3);
}

#[actix_web::test]
async fn unknown_kid_flood_during_an_outage_causes_at_most_one_fetch_per_cooldown() {
    let app = TestApp::builder()
        .issuer_behaviour(JwksBehaviour::Fail(500))
        .env("APP__JWKS__RETRY_INITIAL_SECS", "60")
        .env("APP__JWKS__RETRY_MAX_SECS", "60")
        .spawn()
        .await;
    app.keys.wait_for_attempts(1).await;
    app.clock.advance(Duration::from_secs(1));
    let tokens = random_kids(&app, "outage", 30);
    for round in 0..2 {
        let replies = join_all(tokens.iter().map(|t| app.get_with_token(PROTECTED, t))).await;
        for reply in &replies {
            assert_eq!(reply.status, 503, "{reply:?}");
        }
        assert_eq!(
            app.fetches(),
            2,
            "round {round}: one fetch beyond the start-up one, then the cooldown"
        );
    }
    app.pass_cooldown();
    join_all(tokens.iter().map(|t| app.get_with_token(PROTECTED, t))).await;
    assert_eq!(app.fetches(), 3, "one fetch for the whole flood");
}

/// An API whose refresher, after a failed fetch, waits a minute before trying again: the
/// fetches a test counts are then the ones the requests caused.
async fn with_slow_retries() -> TestApp {
    TestApp::builder()
        .env("APP__JWKS__RETRY_INITIAL_SECS", "60")
        .env("APP__JWKS__RETRY_MAX_SECS", "60")
        .spawn()
        .await
}

/// `count` tokens signed by a key the issuer never published, each with its own `kid`.
fn random_kids(app: &TestApp, prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            key_as(2, &format!("{prefix}-{i}"))
                .sign(&app.claims())
                .unwrap()
        })
        .collect()
}
