//! Micro-benchmarks of the validation path (`cargo bench`): bearer parsing, a full RS256
//! validation, and a verified-token cache hit, on one core, with real keys and tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use criterion::{Criterion, criterion_group, criterion_main};
use hello_world_api::auth::bearer::bearer_token;
use hello_world_api::auth::cache::{Hit, TokenCache};
use hello_world_api::auth::keys::KeySet;
use hello_world_api::auth::validator::TokenValidator;
use hello_world_api::issuer::{Issuer, SigningKey};
use serde_json::json;
use test_support::{ADMIN_PERMISSION, AUDIENCE, OFFLINE_ISSUER, now, settings};

fn validation(c: &mut Criterion) {
    let settings = settings([
        ("AUTH0_ISSUER", OFFLINE_ISSUER),
        ("AUTH0_AUDIENCE", AUDIENCE),
    ]);
    let issuer = Issuer::new(SigningKey::generate("bench-key").unwrap());
    let keys = KeySet::parse(
        issuer.jwks().to_string().as_bytes(),
        &settings.auth.algorithms,
    )
    .unwrap();
    let validator = TokenValidator::new(&settings.auth);
    let token = issuer
        .sign(
            &json!({"iss": OFFLINE_ISSUER, "aud": AUDIENCE, "sub": "auth0|user",
                    "exp": now() + 3600, "iat": now(), "permissions": [ADMIN_PERMISSION]}),
        )
        .unwrap();

    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    c.bench_function("bearer header parsing", |b| {
        b.iter(|| bearer_token(black_box(&headers)).unwrap().len())
    });

    c.bench_function("full RS256 validation (header, signature, claims)", |b| {
        b.iter(|| {
            let header = validator.inspect(black_box(&token)).unwrap();
            let key = keys.get(&header.kid).unwrap();
            validator.verify(&token, &header, key).unwrap()
        })
    });

    let cache = TokenCache::new(&settings.cache, Duration::from_secs(30), 1);
    let claims = {
        let header = validator.inspect(&token).unwrap();
        Arc::new(
            validator
                .verify(&token, &header, keys.get(&header.kid).unwrap())
                .unwrap(),
        )
    };
    let weight = TokenCache::weigh(token.len(), &claims);
    // As the server does: a lookup tells the cache of key-set generation 1 before the insert
    // (a newer generation seen later drops every entry).
    let _ = cache.get(&token, 0.0, |_| 1, |_| Some(1));
    cache.insert(&token, claims, (0, 1), weight);
    c.bench_function(
        "cache hit (hash, lookup by the whole token, exp re-check)",
        |b| {
            b.iter(|| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                match cache.get(black_box(&token), now, |_| 1, |_| Some(1)) {
                    Hit::Valid(entry) => Arc::clone(&entry.claims),
                    other => panic!("{other:?}"),
                }
            })
        },
    );
}

criterion_group!(benches, validation);
criterion_main!(benches);
