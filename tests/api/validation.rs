//! Token validation rules, and attacks in the spirit of RFC 8725 and known JWT CVEs.

use hello_world_api::issuer::Issuer;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use test_support::{
    AUDIENCE, TestApp, assert_bad_credentials, b64, forge, header_json, key, key_as, now,
    spawn_app, spawn_issuer,
};

const PROTECTED: &str = "/api/messages/protected";

async fn refused(app: &TestApp, token: &str, reason: &str) {
    let reply = app.get_with_token(PROTECTED, token).await;
    assert_bad_credentials(&reply, reason);
}

async fn accepted(app: &TestApp, token: &str) {
    let reply = app.get_with_token(PROTECTED, token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

// --- time claims -------------------------------------------------------------------------

#[actix_web::test]
async fn expired_token_is_refused() {
    let app = spawn_app().await;
    let token = app.token_with(|c| c["exp"] = json!(now() - 120));
    refused(&app, &token, "token expired").await;
}

#[actix_web::test]
async fn token_expired_within_the_leeway_is_accepted() {
    let app = spawn_app().await;
    accepted(&app, &app.token_with(|c| c["exp"] = json!(now() - 10))).await;
}

#[actix_web::test]
async fn leeway_is_configurable() {
    let app = TestApp::builder()
        .env("APP__AUTH__LEEWAY_SECS", "0")
        .spawn()
        .await;
    let token = app.token_with(|c| c["exp"] = json!(now() - 3));
    refused(&app, &token, "token expired").await;
}

#[actix_web::test]
async fn token_not_yet_valid_is_refused() {
    let app = spawn_app().await;
    let token = app.token_with(|c| c["nbf"] = json!(now() + 3600));
    refused(&app, &token, "token not yet valid").await;
    accepted(&app, &app.token_with(|c| c["nbf"] = json!(now() + 5))).await;
    accepted(&app, &app.token_with(|c| c["nbf"] = json!(now() - 60))).await;
}

// --- audience and issuer -----------------------------------------------------------------

#[actix_web::test]
async fn audience_may_be_a_string_or_an_array_containing_ours() {
    let app = spawn_app().await;
    accepted(&app, &app.token_with(|c| c["aud"] = json!(AUDIENCE))).await;
    accepted(&app, &app.token_with(|c| c["aud"] = json!(["x", AUDIENCE]))).await;
}

#[actix_web::test]
async fn wrong_audience_is_refused() {
    let app = spawn_app().await;
    for aud in [
        json!("https://other-api.example.com"),
        json!(["a", "b"]),
        json!([]),
        json!(format!("{AUDIENCE}/")),
    ] {
        let token = app.token_with(|c| c["aud"] = aud.clone());
        refused(&app, &token, "wrong audience").await;
    }
}

#[actix_web::test]
async fn issuer_must_match_exactly() {
    let app = spawn_app().await;
    let without_slash = app.issuer_url.trim_end_matches('/').to_owned();
    let upper = app.issuer_url.to_uppercase();
    for iss in [
        "https://evil.example.com/",
        without_slash.as_str(),
        upper.as_str(),
    ] {
        let token = app.token_with(|c| c["iss"] = json!(iss));
        refused(&app, &token, "wrong issuer").await;
    }
}

#[actix_web::test]
async fn exp_iss_and_aud_are_required() {
    let app = spawn_app().await;
    for claim in ["exp", "iss", "aud"] {
        let token = app.token_with(|c| {
            c.as_object_mut().unwrap().remove(claim);
        });
        refused(&app, &token, &format!("missing {claim} claim")).await;
        let token = app.token_with(|c| c[claim] = json!(null));
        refused(&app, &token, &format!("missing {claim} claim")).await;
    }
}

#[actix_web::test]
async fn registered_claims_of_the_wrong_type_are_refused_not_ignored() {
    let app = spawn_app().await;
    let issuer = app.issuer_url.clone();
    for (claim, value) in [
        ("iss", json!([issuer])),
        ("iss", json!({"url": issuer})),
        ("aud", json!(42)),
        ("aud", json!([42])),
        ("exp", json!(format!("{}", now() + 3600))),
        ("exp", json!(-1)),
        ("nbf", json!("0")),
        ("iat", json!("yesterday")),
        ("sub", json!(["a"])),
    ] {
        let token = app.token_with(|c| c[claim] = value.clone());
        refused(&app, &token, "malformed claims").await;
    }
}

#[actix_web::test]
async fn claims_that_are_not_an_object_are_refused() {
    let app = spawn_app().await;
    let token = forge(
        &header_json("RS256", "test-key-0"),
        "[1,2,3]",
        &key(0),
        Algorithm::RS256,
    );
    refused(&app, &token, "malformed claims").await;
}

#[actix_web::test]
async fn duplicate_claims_are_refused() {
    let app = spawn_app().await;
    let payload = format!(
        r#"{{"iss":"{}","aud":"https://evil.example.com","aud":"{AUDIENCE}","exp":{}}}"#,
        app.issuer_url,
        now() + 3600
    );
    let token = forge(
        &header_json("RS256", "test-key-0"),
        &payload,
        &key(0),
        Algorithm::RS256,
    );
    refused(&app, &token, "malformed claims").await;
}

// --- algorithms ----------------------------------------------------------------------------

#[actix_web::test]
async fn alg_none_is_refused() {
    let app = spawn_app().await;
    let payload = app.claims().to_string();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = header_json(alg, "test-key-0");
        let unsigned = format!("{}.{}.", b64(&header), b64(&payload));
        refused(&app, &unsigned, "malformed token").await;
        let with_signature = format!("{}.{}.c2ln", b64(&header), b64(&payload));
        refused(&app, &with_signature, "algorithm not allowed").await;
    }
}

#[actix_web::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    // CVE-2015-9235 style algorithm confusion: HS256 keyed with the RSA public key.
    let app = spawn_app().await;
    let jwk = serde_json::to_value(app.issuer.signing_key().public_jwk()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-key-0".into());
    for secret in [
        jwk["n"].as_str().unwrap().as_bytes(),
        jwk.to_string().as_bytes(),
    ] {
        let token = jsonwebtoken::encode(&header, &app.claims(), &EncodingKey::from_secret(secret))
            .unwrap();
        refused(&app, &token, "algorithm not allowed").await;
    }
}

#[actix_web::test]
async fn algorithms_outside_the_allow_list_are_refused() {
    let app = spawn_app().await;
    for alg in [Algorithm::RS512, Algorithm::PS256] {
        let mut header = Header::new(alg);
        header.kid = Some("test-key-0".into());
        let token = key(0).sign_with_header(&header, &app.claims()).unwrap();
        refused(&app, &token, "algorithm not allowed").await;
    }
}

#[actix_web::test]
async fn algorithm_must_match_the_key() {
    let app = TestApp::builder()
        .env("APP__AUTH__ALGORITHMS", "RS256,RS512,ES256")
        .spawn()
        .await;
    // Several key families in the allow-list do not get in the way of a valid token.
    accepted(&app, &app.token()).await;
    // The JWK declares RS256: an RS512 signature by the same key is refused.
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some("test-key-0".into());
    let token = key(0).sign_with_header(&header, &app.claims()).unwrap();
    refused(&app, &token, "algorithm does not match key").await;
    // An EC algorithm naming an RSA key is refused before any signature check.
    let forged = format!(
        "{}.{}.c2ln",
        b64(&header_json("ES256", "test-key-0")),
        b64(&app.claims().to_string())
    );
    refused(&app, &forged, "algorithm does not match key").await;
}

#[actix_web::test]
async fn a_jwk_without_alg_accepts_any_allowed_algorithm_of_its_family() {
    let app = TestApp::builder()
        .env("APP__AUTH__ALGORITHMS", "RS256,RS512")
        .spawn()
        .await;
    let mut jwk = serde_json::to_value(key(1).public_jwk()).unwrap();
    jwk.as_object_mut().unwrap().remove("alg");
    app.issuer.set_extra_entries(vec![jwk]);
    app.keys.refresh_now().await;
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some("test-key-1".into());
    accepted(
        &app,
        &key(1).sign_with_header(&header, &app.claims()).unwrap(),
    )
    .await;
}

// --- keys: kid and key-carrying headers ------------------------------------------------------

#[actix_web::test]
async fn token_without_kid_is_refused() {
    let app = spawn_app().await;
    let token = key(0)
        .sign_with_header(&Header::new(Algorithm::RS256), &app.claims())
        .unwrap();
    refused(&app, &token, "missing key id").await;
    let token = forge(
        &json!({"alg": "RS256", "kid": ""}).to_string(),
        &app.claims().to_string(),
        &key(0),
        Algorithm::RS256,
    );
    refused(&app, &token, "missing key id").await;
}

#[actix_web::test]
async fn a_non_string_kid_is_malformed() {
    let app = spawn_app().await;
    let token = forge(
        &json!({"alg": "RS256", "kid": 0}).to_string(),
        &app.claims().to_string(),
        &key(0),
        Algorithm::RS256,
    );
    refused(&app, &token, "malformed token").await;
}

#[actix_web::test]
async fn a_published_kid_signed_by_another_key_is_refused() {
    let app = spawn_app().await;
    let impostor = key_as(3, "test-key-0");
    refused(
        &app,
        &impostor.sign(&app.claims()).unwrap(),
        "invalid signature",
    )
    .await;
}

#[actix_web::test]
async fn kid_injection_finds_no_key() {
    let app = spawn_app().await;
    for kid in [
        "../../../../../../dev/null",
        "' OR '1'='1",
        "test-key-0\u{0000}",
        "test-key-0 ",
        "TEST-KEY-0",
        "test-key-0\nlevel=ERROR forged log line",
        "/.well-known/jwks.json",
    ] {
        let token = key_as(0, kid).sign(&app.claims()).unwrap();
        refused(&app, &token, "unknown signing key").await;
    }
    assert_eq!(app.keys.status().kids, vec!["test-key-0"]);
}

#[actix_web::test]
async fn embedded_jwk_header_is_never_trusted() {
    // CVE-2018-0114 style: the attacker ships its own public key in the header.
    let app = spawn_app().await;
    let attacker = key_as(3, "attacker");
    for kid in ["attacker", "test-key-0"] {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let mut jwk = attacker.public_jwk().clone();
        jwk.common.key_id = Some(kid.into());
        header.jwk = Some(jwk);
        let token = attacker
            .sign_with_header(&header, &app.admin_claims())
            .unwrap();
        let reply = app.get_with_token("/api/messages/admin", &token).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        let expected = if kid == "attacker" {
            "unknown signing key"
        } else {
            "invalid signature"
        };
        assert_eq!(reply.description(), expected);
    }
}

#[actix_web::test]
async fn jku_and_x5u_headers_are_never_fetched() {
    let app = spawn_app().await;
    let attacker_key = key_as(3, "attacker");
    let attacker = Issuer::new(attacker_key.clone());
    let url = format!("{}.well-known/jwks.json", spawn_issuer(&attacker));
    app.pass_cooldown();

    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("attacker".into());
    header.jku = Some(url.clone());
    header.x5u = Some(url);
    header.x5c = Some(vec!["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".into()]);
    let token = attacker_key
        .sign_with_header(&header, &app.claims())
        .unwrap();
    refused(&app, &token, "unknown signing key").await;
    assert_eq!(attacker.jwks_fetches(), 0, "the attacker's URL was fetched");
}

#[actix_web::test]
async fn critical_header_extensions_are_refused() {
    let app = spawn_app().await;
    for header in [
        json!({"alg": "RS256", "kid": "test-key-0", "crit": ["exp"], "exp": 1}),
        json!({"alg": "RS256", "kid": "test-key-0", "crit": ["b64"], "b64": false}),
        json!({"alg": "RS256", "kid": "test-key-0", "crit": []}),
        json!({"alg": "RS256", "kid": "test-key-0", "crit": null}),
    ] {
        let token = forge(
            &header.to_string(),
            &app.claims().to_string(),
            &key(0),
            Algorithm::RS256,
        );
        refused(&app, &token, "unsupported critical header").await;
    }
}

#[actix_web::test]
async fn duplicate_header_members_are_refused() {
    let app = spawn_app().await;
    for header in [
        r#"{"alg":"RS256","alg":"none","kid":"test-key-0"}"#,
        r#"{"alg":"RS256","kid":"test-key-0","kid":"other"}"#,
        r#"{"alg":"RS256","kid":"test-key-0","typ":"JWT","typ":"at+jwt"}"#,
        r#"{"alg":"RS256","kid":"test-key-0","foo":1,"foo":2}"#,
    ] {
        let token = forge(header, &app.claims().to_string(), &key(0), Algorithm::RS256);
        refused(&app, &token, "malformed token").await;
    }
}

#[actix_web::test]
async fn standard_header_members_of_the_wrong_type_are_a_malformed_token() {
    let app = spawn_app().await;
    for header in [
        json!({"alg": "RS256", "kid": "test-key-0", "typ": 5}),
        json!({"alg": "RS256", "kid": "test-key-0", "jwk": "not a key"}),
        json!({"alg": "RS256", "kid": "test-key-0", "x5c": "not a chain"}),
    ] {
        let token = forge(
            &header.to_string(),
            &app.claims().to_string(),
            &key(0),
            Algorithm::RS256,
        );
        refused(&app, &token, "malformed token").await;
    }
}

// --- tampering and malformed tokens ------------------------------------------------------------

#[actix_web::test]
async fn tampered_payload_is_refused() {
    let app = spawn_app().await;
    let token = app.token();
    let parts: Vec<&str> = token.split('.').collect();
    let elevated = b64(&app.admin_claims().to_string());
    let tampered = format!("{}.{}.{}", parts[0], elevated, parts[2]);
    let reply = app.get_with_token("/api/messages/admin", &tampered).await;
    assert_bad_credentials(&reply, "invalid signature");
}

#[actix_web::test]
async fn tampered_signature_is_refused() {
    let app = spawn_app().await;
    let token = app.token();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = signature.as_bytes().to_vec();
    bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{message}.{}", String::from_utf8(bytes).unwrap());
    refused(&app, &tampered, "invalid signature").await;
    // Another valid token's signature does not fit this payload either.
    let other = app.token_with(|c| c["sub"] = json!("someone-else"));
    let spliced = format!("{message}.{}", other.rsplit_once('.').unwrap().1);
    refused(&app, &spliced, "invalid signature").await;
}

#[actix_web::test]
async fn malformed_segments_are_refused() {
    let app = spawn_app().await;
    let token = app.token();
    let parts: Vec<&str> = token.split('.').collect();
    let cases = [
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        "..".to_owned(),
        format!("{}..{}", parts[0], parts[2]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64("[]"), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":256,"kid":"test-key-0"}"#),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            b64(r#"{"kid":"test-key-0"}"#),
            parts[1],
            parts[2]
        ),
        format!("{}+.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", &parts[0][1..], parts[1], parts[2]),
    ];
    for case in cases {
        refused(&app, &case, "malformed token").await;
    }
    // Padding inside the token is not even a bearer token (RFC 6750 b64token).
    let padded = format!("{}=.{}.{}", parts[0], parts[1], parts[2]);
    refused(&app, &padded, "malformed authorization header").await;
}

#[actix_web::test]
async fn oversized_token_is_refused_before_decoding() {
    let app = spawn_app().await;
    let fetches = app.fetches();
    app.pass_cooldown();
    let huge = app.token_with(|c| c["padding"] = json!("x".repeat(9000)));
    refused(&app, &huge, "token too large").await;
    assert_eq!(app.fetches(), fetches);
}
