//! Property tests: random and mutated tokens and headers thrown at the validator and, over
//! HTTP, at the extractor. Never a panic, never an acceptance of anything not signed by a
//! published key.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hello_world_api::auth::claims::Claims;
use hello_world_api::auth::keys::KeySet;
use hello_world_api::auth::validator::TokenValidator;
use hello_world_api::error::Rejection;
use hello_world_api::issuer::Issuer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use test_support::{
    ADMIN_PERMISSION, AUDIENCE, OFFLINE_ISSUER, key, key_as, now, settings, spawn_app,
};

struct Checker {
    validator: TokenValidator,
    keys: KeySet,
    issuer: Issuer,
}

impl Checker {
    fn new() -> Self {
        let settings = settings([
            ("AUTH0_ISSUER", OFFLINE_ISSUER),
            ("AUTH0_AUDIENCE", AUDIENCE),
        ]);
        let issuer = Issuer::new(key(0));
        let keys = KeySet::parse(
            issuer.jwks().to_string().as_bytes(),
            &settings.auth.algorithms,
        )
        .unwrap();
        Self {
            validator: TokenValidator::new(&settings.auth),
            keys,
            issuer,
        }
    }

    /// The whole validation path the extractor runs, minus HTTP.
    fn check(&self, token: &str) -> Result<Claims, Rejection> {
        let header = self.validator.inspect(token)?;
        let key = self.keys.get(&header.kid).ok_or(Rejection::UnknownKey)?;
        self.validator.verify(token, &header, key)
    }

    fn valid_token(&self) -> String {
        self.issuer
            .sign(
                &json!({"iss": OFFLINE_ISSUER, "aud": AUDIENCE, "sub": "u", "exp": now() + 3600,
                          "permissions": [ADMIN_PERMISSION]}),
            )
            .unwrap()
    }
}

fn mutate(token: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes = token.as_bytes().to_vec();
    for &(at, op, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match op % 4 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 => {
                bytes.remove(at);
            }
            _ => {
                let other = (at * 7 + 3) % bytes.len();
                bytes.swap(at, other);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Characters a token is made of, plus a few that are not.
fn token_chars() -> impl Strategy<Value = u8> {
    prop_oneof![
        8 => prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".to_vec()
        ),
        1 => any::<u8>(),
    ]
}

#[test]
fn the_validator_never_panics_and_accepts_only_the_untouched_token() {
    let checker = Checker::new();
    let original = checker.valid_token();
    assert!(
        checker.check(&original).is_ok(),
        "the reference token is valid"
    );
    let edits = prop::collection::vec((any::<usize>(), any::<u8>(), token_chars()), 1..4);
    let mut runner = TestRunner::new(Config::with_cases(2000));
    runner
        .run(&edits, |edits| {
            let mutated = mutate(&original, &edits);
            if checker.check(&mutated).is_ok() {
                prop_assert_eq!(&mutated, &original, "a mutated token was accepted");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_validator_never_panics_on_arbitrary_text() {
    let checker = Checker::new();
    let mut runner = TestRunner::new(Config::with_cases(2000));
    let texts = prop_oneof![
        any::<String>(),
        prop::collection::vec(token_chars(), 0..400)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    runner
        .run(&texts, |text| {
            prop_assert!(checker.check(&text).is_err());
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_claims_signed_by_an_unpublished_key_are_refused() {
    let checker = Checker::new();
    let impostor = key_as(3, "test-key-0");
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z:/.-]{0,20}".prop_map(|s| json!(s)),
        Just(json!(OFFLINE_ISSUER)),
        Just(json!(AUDIENCE)),
        Just(json!(now() + 3600)),
    ];
    let names = prop::sample::select(vec![
        "iss",
        "aud",
        "exp",
        "nbf",
        "iat",
        "sub",
        "permissions",
        "scope",
        "azp",
    ]);
    let claims = prop::collection::vec((names, leaf), 0..8);
    let mut runner = TestRunner::new(Config::with_cases(500));
    runner
        .run(&claims, |members| {
            let mut object = json!({"iss": OFFLINE_ISSUER, "aud": AUDIENCE, "exp": now() + 3600});
            for (name, value) in members {
                object[name] = value;
            }
            let token = impostor.sign(&object).unwrap();
            prop_assert!(checker.check(&token).is_err());
            Ok(())
        })
        .unwrap();
}

/// Sends one request with `authorization` as raw bytes and returns the status (0 if none).
fn status_for(address: &str, authorization: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request =
        b"GET /api/messages/admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
            .to_vec();
    request.extend_from_slice(authorization);
    request.extend_from_slice(b"\r\n\r\n");
    let _ = stream.write_all(&request);
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn the_extractor_answers_4xx_to_random_and_mutated_authorization_headers() {
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let original = app.admin_token();
    assert_eq!(
        status_for(&address, format!("Bearer {original}").as_bytes()),
        200
    );
    // The one refetch an unknown kid may cause, made here: the blocking requests below run
    // on the thread of the key store's refresher, which could not answer them.
    app.clock.advance(Duration::from_secs(1));
    let stranger = key_as(2, "stranger").sign(&app.claims()).unwrap();
    assert_eq!(
        app.get_with_token("/api/messages/admin", &stranger)
            .await
            .status,
        401
    );
    assert_eq!(app.fetches(), 2);

    // Header bytes a client can send: no CR, LF or NUL.
    let header_byte = any::<u8>().prop_filter("header byte", |b| !matches!(b, b'\r' | b'\n' | 0));
    let random = prop::collection::vec(header_byte, 0..300);
    let mut runner = TestRunner::new(Config::with_cases(200));
    runner
        .run(&random, |value| {
            let status = status_for(&address, &value);
            prop_assert!(matches!(status, 400 | 401), "{status} for {value:?}");
            Ok(())
        })
        .unwrap();

    let edits = prop::collection::vec((any::<usize>(), any::<u8>(), token_chars()), 1..3);
    let mut runner = TestRunner::new(Config::with_cases(200));
    runner
        .run(&edits, |edits| {
            let mutated = mutate(&original, &edits);
            let status = status_for(&address, format!("Bearer {mutated}").as_bytes());
            if mutated != original {
                prop_assert!(matches!(status, 400 | 401), "{status} for {mutated}");
            }
            Ok(())
        })
        .unwrap();
    // The flood of unknown kids fetched nothing more: the cooldown held.
    assert_eq!(app.fetches(), 2);
}
