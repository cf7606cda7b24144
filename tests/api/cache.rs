//! The verified-token cache: faster, and exactly as strict.

use std::time::Duration;

use futures_util::future::join_all;
use hello_world_api::issuer::JwksBehaviour;
use serde_json::json;

use test_support::{TestApp, assert_bad_credentials, key, key_as, metric, now, scrape, spawn_app};

const PROTECTED: &str = "/api/messages/protected";
const VERIFICATIONS: &str = "token_verifications_total";
const HITS: &str = r#"token_cache_lookups_total{result="hit"}"#;
const ENTRIES: &str = "token_cache_entries";

#[actix_web::test]
async fn a_hit_skips_the_signature_check() {
    let app = spawn_app().await;
    let token = app.token();
    for _ in 0..10 {
        assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    }
    let text = scrape(&app).await;
    assert_eq!(metric(&text, VERIFICATIONS), 1.0, "{text}");
    assert_eq!(metric(&text, HITS), 9.0, "{text}");
    assert_eq!(metric(&text, ENTRIES), 1.0, "{text}");
}

#[actix_web::test]
async fn a_cached_token_still_needs_the_permission() {
    let app = spawn_app().await;
    let token = app.token();
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    assert_eq!(
        app.get_with_token("/api/messages/admin", &token)
            .await
            .status,
        403
    );
    assert_eq!(metric(&scrape(&app).await, VERIFICATIONS), 1.0);
}

#[actix_web::test]
async fn an_expired_cached_token_is_refused() {
    let app = no_leeway().await;
    refused_once_expired(&app, 2).await;
    let text = scrape(&app).await;
    assert_eq!(
        metric(&text, r#"token_cache_lookups_total{result="expired"}"#),
        1.0,
        "{text}"
    );
}

#[actix_web::test]
async fn a_token_whose_key_was_removed_is_refused_after_the_refresh() {
    refused_once_its_key_is_removed(2).await;
}

/// A token served `times` times, then its key removed from the issuer's set.
async fn refused_once_its_key_is_removed(times: usize) {
    let app = spawn_app().await;
    let token = app.token();
    served(&app, &token, times).await;
    app.issuer.rotate_to(key(1));
    app.issuer.unpublish("test-key-0");
    app.keys.refresh_now().await;
    assert_bad_credentials(
        &app.get_with_token(PROTECTED, &token).await,
        "unknown signing key",
    );
}

#[actix_web::test]
async fn a_kid_reused_for_another_key_does_not_keep_old_tokens_valid() {
    refused_once_its_kid_is_reused(1).await;
}

/// A token served `times` times, then the key behind its `kid` replaced.
async fn refused_once_its_kid_is_reused(times: usize) {
    let app = spawn_app().await;
    let token = app.token();
    served(&app, &token, times).await;
    // Same kid, other key material: the issuer replaced the key behind "test-key-0".
    app.issuer.unpublish("test-key-0");
    app.issuer.rotate_to(key_as(1, "test-key-0"));
    app.keys.refresh_now().await;
    assert_bad_credentials(
        &app.get_with_token(PROTECTED, &token).await,
        "invalid signature",
    );
}

#[actix_web::test]
async fn a_refresh_with_the_same_keys_keeps_the_cache() {
    let app = spawn_app().await;
    let token = app.token();
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    app.keys.refresh_now().await;
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    assert_eq!(metric(&scrape(&app).await, VERIFICATIONS), 1.0);
}

#[actix_web::test]
async fn stale_keys_are_not_bypassed_by_the_cache() {
    let app = spawn_app().await;
    let token = app.token_with(|c| c["exp"] = json!(now() + 3 * 86_400));
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    app.issuer.set_behaviour(JwksBehaviour::Fail(503));
    app.clock.advance(Duration::from_secs(86_401));
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 503);
}

#[actix_web::test]
async fn refused_tokens_are_never_cached() {
    let app = spawn_app().await;
    let forged = key_as(3, "test-key-0").sign(&app.claims()).unwrap();
    for _ in 0..5 {
        assert_bad_credentials(
            &app.get_with_token(PROTECTED, &forged).await,
            "invalid signature",
        );
    }
    let text = scrape(&app).await;
    assert_eq!(
        metric(&text, VERIFICATIONS),
        5.0,
        "every attempt is checked in full"
    );
    assert_eq!(metric(&text, ENTRIES), 0.0);
}

#[actix_web::test]
async fn the_bound_holds_and_invalid_tokens_cannot_evict_valid_ones() {
    let app = TestApp::builder()
        .env("APP__CACHE__MAX_ENTRIES", "10")
        .spawn()
        .await;
    let tokens: Vec<String> = (0..40)
        .map(|i| app.token_with(|c| c["sub"] = json!(format!("user-{i}"))))
        .collect();
    for token in &tokens {
        assert_eq!(app.get_with_token(PROTECTED, token).await.status, 200);
    }
    let entries = metric(&scrape(&app).await, ENTRIES);
    assert!(entries <= 10.0 && entries > 0.0, "{entries}");

    let forged: Vec<String> = (0..50)
        .map(|i| key_as(3, "test-key-0").sign(&json!({"sub": i})).unwrap())
        .collect();
    join_all(forged.iter().map(|t| app.get_with_token(PROTECTED, t))).await;
    assert_eq!(metric(&scrape(&app).await, ENTRIES), entries);
}

#[actix_web::test]
async fn the_cache_can_be_turned_off() {
    let app = TestApp::builder()
        .env("APP__CACHE__ENABLED", "false")
        .spawn()
        .await;
    let token = app.token();
    for _ in 0..3 {
        assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    }
    let text = scrape(&app).await;
    assert_eq!(metric(&text, VERIFICATIONS), 3.0);
    assert_eq!(metric(&text, HITS), 0.0);
}

#[actix_web::test]
async fn entries_are_dropped_when_the_key_set_changes() {
    let app = spawn_app().await;
    let tokens: Vec<String> = (0..5)
        .map(|i| app.token_with(|c| c["sub"] = json!(format!("user-{i}"))))
        .collect();
    for token in &tokens {
        assert_eq!(app.get_with_token(PROTECTED, token).await.status, 200);
    }
    assert_eq!(metric(&scrape(&app).await, ENTRIES), 5.0);
    app.issuer.rotate_to(key(1));
    app.keys.refresh_now().await;
    assert_eq!(
        app.get_with_token(PROTECTED, &app.token()).await.status,
        200
    );
    assert_eq!(
        metric(&scrape(&app).await, ENTRIES),
        1.0,
        "only the new token's entry is left"
    );
}

/// Often enough for each worker to hold its own copy of a token (the front cache copies a
/// token at its second hit in the shared cache).
const FROM_THE_FRONT: usize = 4;

async fn served(app: &TestApp, token: &str, times: usize) {
    for _ in 0..times {
        assert_eq!(app.get_with_token(PROTECTED, token).await.status, 200);
    }
}

async fn no_leeway() -> TestApp {
    TestApp::builder()
        .env("APP__AUTH__LEEWAY_SECS", "0")
        .spawn()
        .await
}

/// A token expiring in 60 s, served `times` times, then refused 61 s later.
async fn refused_once_expired(app: &TestApp, times: usize) {
    let token = app.token_with(|c| c["exp"] = json!(now() + 60));
    served(app, &token, times).await;
    app.clock.advance(Duration::from_secs(61));
    let reply = app.get_with_token(PROTECTED, &token).await;
    assert_bad_credentials(&reply, "token expired");
}

#[actix_web::test]
async fn a_workers_copy_of_a_token_whose_key_was_removed_is_refused_after_the_refresh() {
    refused_once_its_key_is_removed(FROM_THE_FRONT).await;
}

#[actix_web::test]
async fn a_workers_copy_does_not_outlive_a_kid_reused_for_another_key() {
    refused_once_its_kid_is_reused(FROM_THE_FRONT).await;
}

#[actix_web::test]
async fn a_workers_copy_of_an_expired_token_is_refused() {
    refused_once_expired(&no_leeway().await, FROM_THE_FRONT).await;
}

#[actix_web::test]
async fn a_workers_copy_does_not_bypass_stale_keys_or_the_permission() {
    let app = spawn_app().await;
    let token = app.token_with(|c| c["exp"] = json!(now() + 3 * 86_400));
    served(&app, &token, FROM_THE_FRONT).await;
    assert_eq!(
        app.get_with_token("/api/messages/admin", &token)
            .await
            .status,
        403
    );
    let text = scrape(&app).await;
    assert_eq!(metric(&text, VERIFICATIONS), 1.0, "{text}");
    assert_eq!(metric(&text, HITS), 4.0, "{text}");
    app.issuer.set_behaviour(JwksBehaviour::Fail(503));
    app.clock.advance(Duration::from_secs(86_401));
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 503);
}
