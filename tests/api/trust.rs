//! The trust boundaries a review found, each tested from outside: where `.env` is read from,
//! where the development issuer may serve, who may address it, the token type, and key sets
//! that must never replace good keys.

use std::process::Stdio;

use jsonwebtoken::Algorithm;
use serde_json::json;
use test_support::{
    AUDIENCE, assert_bad_credentials, empty_dir, forge, free_port, key, raw_get, spawn_app,
    wait_for_port,
};

use crate::BINARY;

const PROTECTED: &str = "/api/messages/protected";

#[test]
fn a_dotenv_in_a_parent_directory_is_never_read() {
    let parent = empty_dir("dotenv-parent");
    // Were it read, it would choose the issuer; the port makes reading it visible at once.
    std::fs::write(
        parent.join(".env"),
        "AUTH0_ISSUER=https://attacker.invalid/\nPORT=99999\n",
    )
    .unwrap();
    let child = parent.join("service");
    std::fs::create_dir_all(&child).unwrap();
    let output = BINARY
        .command(
            &child,
            &[("APP_ENV", "production"), ("AUTH0_AUDIENCE", AUDIENCE)],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("configuration error: auth.domain (AUTH0_DOMAIN"),
        "the parent's .env was read: {stderr}"
    );
}

#[test]
fn the_development_issuer_refuses_to_start_for_a_server_beyond_loopback() {
    let dir = empty_dir("dev-issuer-public-host");
    let issuer_port = free_port().to_string();
    let output = BINARY
        .command(
            &dir,
            &[("HOST", "0.0.0.0"), ("APP__DEV_ISSUER__PORT", &issuer_port)],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("configuration error: server.host (HOST or APP__SERVER__HOST):"),
        "{stderr}"
    );
    assert!(
        lines[0].contains("AUTH0_DOMAIN") && lines[0].contains("AUTH0_ISSUER"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn while_the_development_issuer_runs_requests_for_other_hosts_get_421() {
    let dir = empty_dir("dns-rebinding");
    let (api_port, issuer_port) = (free_port(), free_port());
    let issuer_port_text = issuer_port.to_string();
    let _server = BINARY.start(
        &dir,
        &[
            ("APP__DEV_ISSUER__PORT", issuer_port_text.as_str()),
            ("APP__SERVER__WORKERS", "1"),
        ],
        api_port,
    );
    wait_for_port(issuer_port);

    for (port, path) in [
        (api_port, "/api/messages/public"),
        (issuer_port, "/.well-known/jwks.json"),
    ] {
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            let (status, _) = raw_get(port, path, &format!("{host}:{port}"));
            assert_eq!(status, 200, "{host} on {port}");
        }
        for host in [
            format!("rebound.attacker.example:{port}"),
            "localhost.attacker.example".to_owned(),
            "0.0.0.0".to_owned(),
        ] {
            let (status, body) = raw_get(port, path, &host);
            assert_eq!(status, 421, "{host} on {port}: {body}");
            assert!(body.is_object(), "JSON error shape: {body}");
        }
    }
    let (_, body) = raw_get(api_port, "/api/messages/public", "attacker.example");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Misdirected Request"),
        "{body}"
    );
    let (_, body) = raw_get(issuer_port, "/oauth/token", "attacker.example");
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[actix_web::test]
async fn with_a_real_issuer_any_host_is_served() {
    let app = spawn_app().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let (status, body) = raw_get(port, "/api/messages/public", "api.example.com");
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn only_access_token_types_pass_as_access_tokens() {
    let app = spawn_app().await;
    let claims = app.claims().to_string();
    let with_typ = |typ: &str| {
        let header = json!({"alg": "RS256", "kid": "test-key-0", "typ": typ}).to_string();
        forge(&header, &claims, &key(0), Algorithm::RS256)
    };
    for typ in ["JWT", "at+jwt", "application/at+JWT"] {
        let reply = app.get_with_token(PROTECTED, &with_typ(typ)).await;
        assert_eq!(reply.status, 200, "{typ}: {reply:?}");
    }
    for typ in ["id+jwt", "logout+jwt", "dpop+jwt", "secevent+jwt"] {
        let reply = app.get_with_token(PROTECTED, &with_typ(typ)).await;
        assert_bad_credentials(&reply, "unexpected token type");
    }
}

#[actix_web::test]
async fn a_key_set_of_only_unusable_keys_never_replaces_good_keys() {
    let app = spawn_app().await;
    let token = app.token();
    // The review's toy key, a modulus 8 bits short of 2048, and a short EC point.
    let good = serde_json::to_value(key(1).public_jwk()).unwrap();
    let short = {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let n = URL_SAFE_NO_PAD.decode(good["n"].as_str().unwrap()).unwrap();
        let mut short = good.clone();
        short["kid"] = json!("short");
        short["n"] = json!(URL_SAFE_NO_PAD.encode(&n[1..]));
        short
    };
    app.issuer.unpublish("test-key-0");
    app.issuer.set_extra_entries(vec![
        json!({"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB"}),
        short,
        json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
    ]);
    app.keys.refresh_now().await;

    let status = app.keys.status();
    assert_eq!(status.kids, vec!["test-key-0"], "{status:?}");
    assert!(status.last_error.is_some(), "{status:?}");
    assert_eq!(app.get_with_token(PROTECTED, &token).await.status, 200);
    assert_eq!(app.get("/readyz").await.status, 200);

    // Beside one good key they are skipped: only the good key is loaded.
    app.issuer.publish(key(1));
    app.keys.refresh_now().await;
    assert_eq!(app.keys.status().kids, vec!["test-key-1"]);
}
