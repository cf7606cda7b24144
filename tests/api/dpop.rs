//! DPoP (RFC 9449) at the resource server: a bound token needs a fresh proof from its key on
//! every request, every check of the proof is made (each shown failing), a proof works once,
//! the three modes, server nonces, and the URL behind a proxy.

use std::time::Duration;

use hello_world_api::auth::dpop::ClientKey;
use hello_world_api::auth::dpop::proof::access_token_hash;
use serde_json::{Value, json};
use test_support::{ADMIN_PERMISSION, Reply, TestApp, metric, now, scrape, send, spawn_app};

const PROTECTED: &str = "/api/messages/protected";
const ADMIN: &str = "/api/messages/admin";
/// The default `auth.dpop_algorithms`, as challenges name them.
const ALGS: &str = r#"algs="ES256 RS256 PS256 EdDSA""#;

/// A token of `app`'s issuer bound to `key`, granting the admin permission.
fn bound_token(app: &TestApp, key: &ClientKey) -> String {
    let jkt = key.thumbprint().to_owned();
    app.token_with(|claims| {
        claims["cnf"] = json!({ "jkt": jkt });
        claims["permissions"] = json!([ADMIN_PERMISSION]);
    })
}

/// A fresh, valid proof for `GET path` on `app` with `token`.
fn proof(app: &TestApp, key: &ClientKey, path: &str, token: &str) -> String {
    key.proof(
        "GET",
        &format!("{}{path}", app.address),
        Some(token),
        None,
        now(),
    )
    .unwrap()
}

/// The claims of a valid proof, to be edited.
fn claims(app: &TestApp, path: &str, token: &str) -> Value {
    json!({
        "jti": format!("jti-{}", rand_suffix()),
        "htm": "GET",
        "htu": format!("{}{path}", app.address),
        "iat": now(),
        "ath": access_token_hash(token),
    })
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `GET path` with `Authorization: DPoP token` and the `proofs` given as `DPoP` headers.
async fn call(app: &TestApp, path: &str, token: &str, proofs: &[&str]) -> Reply {
    let mut request = app
        .request("GET", path)
        .insert_header(("Authorization", format!("DPoP {token}")));
    for proof in proofs {
        request = request.append_header(("DPoP", *proof));
    }
    send(request).await
}

/// Every `WWW-Authenticate` value of `reply`.
fn challenges(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("www-authenticate")
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// A 401 refusing the proof for `reason`, stated in the DPoP challenge.
fn assert_invalid_proof(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, 401, "{reason}: {reply:?}");
    assert_eq!(reply.message(), "Bad credentials", "{reason}");
    assert_eq!(
        reply.body["error"], "invalid_dpop_proof",
        "{reason}: {reply:?}"
    );
    assert_eq!(reply.description(), reason);
    assert_eq!(
        challenges(reply),
        [
            r#"Bearer realm="hello-world-api""#.to_owned(),
            format!(
                r#"DPoP {ALGS}, realm="hello-world-api", error="invalid_dpop_proof", error_description="{reason}""#
            )
        ]
    );
}

fn assert_invalid_token(reply: &Reply, reason: &str) {
    assert_eq!(reply.status, 401, "{reason}: {reply:?}");
    assert_eq!(reply.body["error"], "invalid_token", "{reason}: {reply:?}");
    assert_eq!(reply.description(), reason);
}

#[actix_web::test]
async fn a_bound_token_with_a_fresh_proof_is_served_and_the_same_proof_again_is_a_replay() {
    let app = spawn_app().await;
    let key = ClientKey::generate().unwrap();
    let token = bound_token(&app, &key);
    for path in [PROTECTED, ADMIN] {
        let reply = call(&app, path, &token, &[&proof(&app, &key, path, &token)]).await;
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
    }
    // Served from the verified-token cache now; the proof is still checked every time.
    let once = proof(&app, &key, ADMIN, &token);
    assert_eq!(call(&app, ADMIN, &token, &[&once]).await.status, 200);
    assert_invalid_proof(
        &call(&app, ADMIN, &token, &[&once]).await,
        "DPoP proof replayed",
    );
    // The same jti from another key (with its own token) is another proof.
    let other = ClientKey::generate().unwrap();
    let other_token = bound_token(&app, &other);
    let mut same_jti = claims(&app, ADMIN, &other_token);
    same_jti["jti"] = json!("shared-jti");
    let mut first = claims(&app, ADMIN, &token);
    first["jti"] = json!("shared-jti");
    let first = key.sign(&key.header(), &first).unwrap();
    let same_jti = other.sign(&other.header(), &same_jti).unwrap();
    assert_eq!(call(&app, ADMIN, &token, &[&first]).await.status, 200);
    assert_eq!(
        call(&app, ADMIN, &other_token, &[&same_jti]).await.status,
        200
    );

    let metrics = scrape(&app).await;
    assert_eq!(
        metric(
            &metrics,
            r#"auth_decisions_total{outcome="invalid_dpop_proof",reason="replayed"}"#
        ),
        1.0,
        "{metrics}"
    );
}

/// A change to a proof's claims.
type Edit<'a> = Box<dyn Fn(&mut Value) + 'a>;

#[actix_web::test]
async fn each_claim_of_the_proof_is_checked() {
    let app = spawn_app().await;
    let key = ClientKey::generate().unwrap();
    let token = bound_token(&app, &key);
    let at = |path: &str| format!("{}{path}", app.address);
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let cases: Vec<(&str, Edit<'_>, &str)> = vec![
        (
            "no jti",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("jti"))),
            "DPoP proof without a valid jti claim",
        ),
        (
            "empty jti",
            Box::new(|c| c["jti"] = json!("")),
            "DPoP proof without a valid jti claim",
        ),
        (
            "no htm",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("htm"))),
            "DPoP proof without a valid htm claim",
        ),
        (
            "numeric htm",
            Box::new(|c| c["htm"] = json!(1)),
            "DPoP proof without a valid htm claim",
        ),
        (
            "no htu",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("htu"))),
            "DPoP proof without a valid htu claim",
        ),
        (
            "no iat",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("iat"))),
            "DPoP proof without a valid iat claim",
        ),
        (
            "text iat",
            Box::new(|c| c["iat"] = json!(now().to_string())),
            "DPoP proof without a valid iat claim",
        ),
        (
            "another method",
            Box::new(|c| c["htm"] = json!("POST")),
            "DPoP proof method mismatch",
        ),
        (
            "lower-case method",
            Box::new(|c| c["htm"] = json!("get")),
            "DPoP proof method mismatch",
        ),
        (
            "another path",
            Box::new(move |c| c["htu"] = json!(at(PROTECTED))),
            "DPoP proof URL mismatch",
        ),
        (
            "another host",
            Box::new(move |c| c["htu"] = json!(format!("http://localhost:{port}{ADMIN}"))),
            "DPoP proof URL mismatch",
        ),
        (
            "another port",
            Box::new(|c| c["htu"] = json!(format!("http://127.0.0.1:1{ADMIN}"))),
            "DPoP proof URL mismatch",
        ),
        (
            "https",
            Box::new(|c| {
                let https = c["htu"].as_str().unwrap().replace("http://", "https://");
                c["htu"] = json!(https);
            }),
            "DPoP proof URL mismatch",
        ),
        (
            "an encoded slash",
            Box::new(|c| {
                let encoded = c["htu"]
                    .as_str()
                    .unwrap()
                    .replace("messages/admin", "messages%2Fadmin");
                c["htu"] = json!(encoded);
            }),
            "DPoP proof URL mismatch",
        ),
        (
            "not a URL",
            Box::new(|c| c["htu"] = json!("/api/messages/admin")),
            "DPoP proof URL mismatch",
        ),
        (
            "301 s old",
            Box::new(|c| c["iat"] = json!(now() - 301)),
            "DPoP proof too old",
        ),
        (
            "31 s ahead",
            Box::new(|c| c["iat"] = json!(now() + 31)),
            "DPoP proof issued in the future",
        ),
        (
            "no ath",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("ath"))),
            "DPoP proof access token hash mismatch",
        ),
        (
            "another token's ath",
            Box::new(|c| c["ath"] = json!(access_token_hash("another"))),
            "DPoP proof access token hash mismatch",
        ),
    ];
    for (what, edit, reason) in cases {
        let mut proof_claims = claims(&app, ADMIN, &token);
        edit(&mut proof_claims);
        let proof = key.sign(&key.header(), &proof_claims).unwrap();
        let reply = call(&app, ADMIN, &token, &[&proof]).await;
        assert_eq!(reply.description(), reason, "{what}: {reply:?}");
        assert_invalid_proof(&reply, reason);
    }
    // Within the window both ways, it passes.
    for iat in [now() - 290, now() + 25] {
        let mut proof_claims = claims(&app, ADMIN, &token);
        proof_claims["iat"] = json!(iat);
        let proof = key.sign(&key.header(), &proof_claims).unwrap();
        assert_eq!(
            call(&app, ADMIN, &token, &[&proof]).await.status,
            200,
            "iat {iat}"
        );
    }
}

#[actix_web::test]
async fn the_proofs_header_key_and_signature_are_checked() {
    let app = spawn_app().await;
    let key = ClientKey::generate().unwrap();
    let token = bound_token(&app, &key);
    let header = key.header();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut h = header.clone();
        edit(&mut h);
        key.sign(&h, &claims(&app, ADMIN, &token)).unwrap()
    };
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let valid = with(&|_| {});
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut tampered_claims = claims(&app, ADMIN, &token);
    tampered_claims["htm"] = json!("GET");
    tampered_claims["jti"] = json!("tampered");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no typ",
            with(&|h| drop(h.as_object_mut().unwrap().remove("typ"))),
            "DPoP proof type is not dpop+jwt",
        ),
        (
            "typ JWT",
            with(&|h| h["typ"] = json!("JWT")),
            "DPoP proof type is not dpop+jwt",
        ),
        (
            "alg none",
            format!(
                "{}.{payload}.",
                b64(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}))
            ),
            "DPoP proof algorithm not allowed",
        ),
        (
            "alg HS256",
            format!(
                "{}.{payload}.{signature}",
                b64(&json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.jwk()}))
            ),
            "DPoP proof algorithm not allowed",
        ),
        (
            "alg ES384, not listed",
            with(&|h| h["alg"] = json!("ES384")),
            "DPoP proof algorithm not allowed",
        ),
        (
            "alg RS256 with an EC key",
            with(&|h| h["alg"] = json!("RS256")),
            "DPoP proof key unusable",
        ),
        (
            "a private key",
            with(&|h| h["jwk"]["d"] = json!("c2VjcmV0")),
            "DPoP proof key is not a public key",
        ),
        (
            "a symmetric key",
            with(&|h| h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"})),
            "DPoP proof key is not a public key",
        ),
        (
            "no jwk",
            with(&|h| drop(h.as_object_mut().unwrap().remove("jwk"))),
            "DPoP proof key unusable",
        ),
        (
            "a short EC point",
            with(&|h| h["jwk"]["x"] = json!("AAAA")),
            "DPoP proof key unusable",
        ),
        (
            "crit",
            with(&|h| h["crit"] = json!(["exp"])),
            "malformed DPoP proof",
        ),
        (
            "another key's signature",
            {
                let other = ClientKey::generate().unwrap();
                other.sign(&header, &claims(&app, ADMIN, &token)).unwrap()
            },
            "DPoP proof signature invalid",
        ),
        (
            "a changed payload",
            format!("{head}.{}.{signature}", b64(&tampered_claims)),
            "DPoP proof signature invalid",
        ),
        (
            "no signature",
            format!("{head}.{payload}."),
            "DPoP proof signature invalid",
        ),
        ("not a JWT", "not-a-jwt".to_owned(), "malformed DPoP proof"),
        ("four parts", format!("{valid}.x"), "malformed DPoP proof"),
        (
            "too large",
            format!("{}.{payload}.{signature}", "A".repeat(9000)),
            "DPoP proof too large",
        ),
    ];
    for (what, proof, reason) in cases {
        let reply = call(&app, ADMIN, &token, &[&proof]).await;
        assert_eq!(reply.description(), reason, "{what}: {reply:?}");
        assert_invalid_proof(&reply, reason);
    }
    assert_invalid_proof(&call(&app, ADMIN, &token, &[]).await, "missing DPoP proof");
    let (one, two) = (
        proof(&app, &key, ADMIN, &token),
        proof(&app, &key, ADMIN, &token),
    );
    assert_invalid_proof(
        &call(&app, ADMIN, &token, &[&one, &two]).await,
        "more than one DPoP proof",
    );
    // None of the refused proofs took room in the replay store: this one is still fresh.
    assert_eq!(call(&app, ADMIN, &token, &[&valid]).await.status, 200);
}

#[actix_web::test]
async fn the_binding_is_checked_both_ways() {
    let app = spawn_app().await;
    let key = ClientKey::generate().unwrap();
    let token = bound_token(&app, &key);
    // A bound token is not a bearer token: whoever stole it lacks the key.
    let reply = app.get_with_token(ADMIN, &token).await;
    assert_invalid_token(&reply, "DPoP-bound token used as a bearer token");
    assert_eq!(
        challenges(&reply),
        [
            r#"Bearer realm="hello-world-api", error="invalid_token", error_description="DPoP-bound token used as a bearer token""#.to_owned(),
            format!(r#"DPoP {ALGS}, realm="hello-world-api""#),
        ]
    );
    // A proof from another key.
    let thief = ClientKey::generate().unwrap();
    let reply = call(&app, ADMIN, &token, &[&proof(&app, &thief, ADMIN, &token)]).await;
    assert_invalid_token(&reply, "token bound to another key");
    // The DPoP scheme with an unbound token.
    let plain = app.admin_token();
    let reply = call(&app, ADMIN, &plain, &[&proof(&app, &key, ADMIN, &plain)]).await;
    assert_invalid_token(&reply, "token is not DPoP-bound");
    // A cnf that cannot be read is no excuse to skip the check.
    let odd = app.token_with(|c| c["cnf"] = json!({"jkt": 7}));
    assert_invalid_token(
        &app.get_with_token(PROTECTED, &odd).await,
        "malformed claims",
    );
    // An unbound token as bearer is as before, with a DPoP challenge beside it.
    let reply = app.get_with_token(ADMIN, &plain).await;
    assert_eq!(reply.status, 200);
    let reply = app.get(ADMIN).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        challenges(&reply),
        [
            r#"Bearer realm="hello-world-api""#.to_owned(),
            format!(r#"DPoP {ALGS}, realm="hello-world-api""#),
        ]
    );
    // The permission check still applies, stated in the DPoP challenge.
    let user = {
        let jkt = key.thumbprint().to_owned();
        app.token_with(|c| c["cnf"] = json!({ "jkt": jkt }))
    };
    let reply = call(&app, ADMIN, &user, &[&proof(&app, &key, ADMIN, &user)]).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        challenges(&reply)[1],
        format!(
            r#"DPoP {ALGS}, realm="hello-world-api", error="insufficient_scope", scope="read:admin-messages""#
        )
    );
}

#[actix_web::test]
async fn the_urls_proof_is_compared_after_normalisation_and_behind_a_proxy_only_as_configured() {
    let key = ClientKey::generate().unwrap();
    let app = TestApp::builder()
        .env("APP__SERVER__PUBLIC_URL", "https://api.example.com")
        .spawn()
        .await;
    let token = bound_token(&app, &key);
    let with_htu = |htu: &str| {
        let mut c = claims(&app, ADMIN, &token);
        c["htu"] = json!(htu);
        key.sign(&key.header(), &c).unwrap()
    };
    for htu in [
        "https://api.example.com/api/messages/admin",
        "HTTPS://API.Example.COM:443/api/messages/admin",
        "https://api.example.com/api/./x/../messages/admin",
        "https://api.example.com/api/messages/%61dmin",
        "https://api.example.com/api/messages/admin?page=2",
        "https://api.example.com/api/messages/admin#top",
    ] {
        let reply = call(&app, ADMIN, &token, &[&with_htu(htu)]).await;
        assert_eq!(reply.status, 200, "{htu}: {reply:?}");
    }
    for htu in [
        "http://api.example.com/api/messages/admin",
        "https://api.example.com:8443/api/messages/admin",
        "https://other.example.com/api/messages/admin",
        // The server's own address is not the public one.
        &format!("{}{ADMIN}", app.address),
    ] {
        assert_invalid_proof(
            &call(&app, ADMIN, &token, &[&with_htu(htu)]).await,
            "DPoP proof URL mismatch",
        );
    }

    // Forwarded headers name the URL only when trusted, and only with one plain value each.
    let forwarded = |app: &TestApp, proto: &[&str], host: &[&str], htu: &str| {
        let token = bound_token(app, &key);
        let mut c = claims(app, ADMIN, &token);
        c["htu"] = json!(htu);
        let proof = key.sign(&key.header(), &c).unwrap();
        let mut request = app
            .request("GET", ADMIN)
            .insert_header(("Authorization", format!("DPoP {token}")))
            .insert_header(("DPoP", proof));
        for value in proto {
            request = request.append_header(("X-Forwarded-Proto", *value));
        }
        for value in host {
            request = request.append_header(("X-Forwarded-Host", *value));
        }
        send(request)
    };
    let external = "https://api.example.com/api/messages/admin";
    let untrusting = spawn_app().await;
    let reply = forwarded(&untrusting, &["https"], &["api.example.com"], external).await;
    assert_invalid_proof(&reply, "DPoP proof URL mismatch");
    let trusting = TestApp::builder()
        .env("APP__SERVER__TRUST_FORWARDED_HEADERS", "true")
        .spawn()
        .await;
    let reply = forwarded(&trusting, &["https"], &["api.example.com"], external).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    for (proto, host) in [
        (&["https", "http"][..], &["api.example.com"][..]),
        (&["https"], &["api.example.com", "evil.example"]),
        (&["https, http"], &["api.example.com"]),
        (&["gopher"], &["api.example.com"]),
        (&["https"], &["api.example.com/x"]),
    ] {
        let reply = forwarded(&trusting, proto, host, external).await;
        assert_invalid_proof(&reply, "DPoP proof URL mismatch");
    }
}

#[actix_web::test]
async fn each_mode_takes_the_schemes_it_says() {
    let key = ClientKey::generate().unwrap();

    let disabled = TestApp::builder()
        .env("APP__AUTH__DPOP", "disabled")
        .spawn()
        .await;
    let token = bound_token(&disabled, &key);
    let reply = call(
        &disabled,
        ADMIN,
        &token,
        &[&proof(&disabled, &key, ADMIN, &token)],
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.message(), "Requires authentication");
    assert_eq!(challenges(&reply), [r#"Bearer realm="hello-world-api""#]);
    assert_eq!(
        disabled
            .get_with_token(ADMIN, &disabled.admin_token())
            .await
            .status,
        200
    );
    // Even with DPoP off, a bound token is not taken as a bearer token.
    assert_invalid_token(
        &disabled.get_with_token(ADMIN, &token).await,
        "DPoP-bound token used as a bearer token",
    );

    let required = TestApp::builder()
        .env("APP__AUTH__DPOP", "required")
        .spawn()
        .await;
    let reply = required
        .get_with_token(ADMIN, &required.admin_token())
        .await;
    assert_invalid_token(&reply, "bearer tokens are not accepted: use DPoP");
    assert_eq!(
        challenges(&reply),
        [format!(
            r#"DPoP {ALGS}, realm="hello-world-api", error="invalid_token", error_description="bearer tokens are not accepted: use DPoP""#
        )]
    );
    assert_eq!(
        challenges(&required.get(ADMIN).await),
        [format!(r#"DPoP {ALGS}, realm="hello-world-api""#)]
    );
    let token = bound_token(&required, &key);
    let reply = call(
        &required,
        ADMIN,
        &token,
        &[&proof(&required, &key, ADMIN, &token)],
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");

    let limited = TestApp::builder()
        .env("APP__AUTH__DPOP_ALGORITHMS", "EdDSA,PS256")
        .spawn()
        .await;
    let token = bound_token(&limited, &key);
    let reply = call(
        &limited,
        ADMIN,
        &token,
        &[&proof(&limited, &key, ADMIN, &token)],
    )
    .await;
    assert_eq!(reply.description(), "DPoP proof algorithm not allowed");
    assert!(
        challenges(&reply)[1].starts_with(r#"DPoP algs="EdDSA PS256""#),
        "{reply:?}"
    );
}

#[actix_web::test]
async fn with_nonces_on_a_proof_needs_a_current_one_from_this_servers_key() {
    let key = ClientKey::generate().unwrap();
    let shared = "c2hhcmVkLW5vbmNlLWtleS1vZi1hdC1sZWFzdC0zMi1ieXRlcw";
    let start = |key_text: &'static str| {
        TestApp::builder()
            .env("APP__AUTH__DPOP_NONCE", "true")
            .env("APP__AUTH__DPOP_NONCE_KEY", key_text)
            .spawn()
    };
    let (app, replica) = (start(shared).await, start(shared).await);
    let stranger = start("YW5vdGhlci1ub25jZS1rZXktb2YtYXQtbGVhc3QtMzItYnl0ZXM").await;
    let token = bound_token(&app, &key);
    let url = format!("{}{ADMIN}", app.address);

    let reply = call(&app, ADMIN, &token, &[&proof(&app, &key, ADMIN, &token)]).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.body["error"], "use_dpop_nonce");
    let nonce = reply.header("dpop-nonce").expect("DPoP-Nonce").to_owned();
    assert!(
        challenges(&reply)[1].contains(r#"error="use_dpop_nonce""#),
        "{reply:?}"
    );

    let with_nonce = |app: &TestApp, nonce: &str| {
        key.proof(
            "GET",
            &format!("{}{ADMIN}", app.address),
            Some(&token),
            Some(nonce),
            now(),
        )
        .unwrap()
    };
    assert_eq!(
        call(&app, ADMIN, &token, &[&with_nonce(&app, &nonce)])
            .await
            .status,
        200
    );
    // A replica with the same key takes it; a server with another key does not.
    let replica_token = bound_token(&replica, &key);
    let proof = key
        .proof(
            "GET",
            &format!("{}{ADMIN}", replica.address),
            Some(&replica_token),
            Some(&nonce),
            now(),
        )
        .unwrap();
    assert_eq!(
        call(&replica, ADMIN, &replica_token, &[&proof])
            .await
            .status,
        200
    );
    let stranger_token = bound_token(&stranger, &key);
    let proof = key
        .proof(
            "GET",
            &format!("{}{ADMIN}", stranger.address),
            Some(&stranger_token),
            Some(&nonce),
            now(),
        )
        .unwrap();
    let reply = call(&stranger, ADMIN, &stranger_token, &[&proof]).await;
    assert_eq!(reply.body["error"], "use_dpop_nonce", "{reply:?}");
    assert_ne!(reply.header("dpop-nonce"), Some(nonce.as_str()));

    // Two rotation periods later (60 s each by default) the nonce is stale.
    app.clock.advance(Duration::from_secs(121));
    let stale = call(&app, ADMIN, &token, &[&with_nonce(&app, &nonce)]).await;
    assert_eq!(stale.body["error"], "use_dpop_nonce", "{stale:?}");
    let fresh = stale.header("dpop-nonce").unwrap().to_owned();
    assert_ne!(fresh, nonce);
    let proof = key
        .proof("GET", &url, Some(&token), Some(&fresh), now() + 121)
        .unwrap();
    assert_eq!(call(&app, ADMIN, &token, &[&proof]).await.status, 200);
}

#[actix_web::test]
async fn a_full_replay_store_answers_503_and_still_refuses_a_replay() {
    // 64 shards of one entry each: a few dozen distinct proofs fill it.
    let app = TestApp::builder()
        .env("APP__AUTH__DPOP_REPLAY_CAPACITY", "64")
        .spawn()
        .await;
    let key = ClientKey::generate().unwrap();
    let token = bound_token(&app, &key);
    let first = proof(&app, &key, ADMIN, &token);
    assert_eq!(call(&app, ADMIN, &token, &[&first]).await.status, 200);
    let mut unchecked = None;
    for _ in 0..400 {
        let reply = call(&app, ADMIN, &token, &[&proof(&app, &key, ADMIN, &token)]).await;
        match reply.status {
            200 => {}
            503 => {
                unchecked = Some(reply);
                break;
            }
            other => panic!("{other}: {reply:?}"),
        }
    }
    let reply = unchecked.expect("the store filled up");
    assert_eq!(reply.message(), "Unable to verify credentials");
    assert_eq!(reply.header("retry-after"), Some("1"));
    // The flood evicted nothing: the first proof is still known.
    assert_invalid_proof(
        &call(&app, ADMIN, &token, &[&first]).await,
        "DPoP proof replayed",
    );
    // Once the proofs' window has passed, there is room again.
    app.clock.advance(Duration::from_secs(331));
    let mut claims_later = claims(&app, ADMIN, &token);
    claims_later["iat"] = json!(now() + 330);
    let later_proof = key.sign(&key.header(), &claims_later).unwrap();
    assert_eq!(call(&app, ADMIN, &token, &[&later_proof]).await.status, 200);
}

#[actix_web::test]
async fn random_and_mutated_proofs_never_pass() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let app = spawn_app().await;
    let key = ClientKey::generate().unwrap();
    let token = bound_token(&app, &key);
    let valid = proof(&app, &key, ADMIN, &token);
    let runtime_app = &app;
    // Byte edits of a valid proof (a proof's characters and a few others).
    let edits = prop::collection::vec(
        (
            any::<usize>(),
            prop::sample::select(b"AZaz09-_.=+/ ".to_vec()),
        ),
        1..4,
    );
    let cases = std::cell::RefCell::new(Vec::new());
    let mut runner = TestRunner::new(Config::with_cases(150));
    runner
        .run(&edits, |edits| {
            let mut bytes = valid.clone().into_bytes();
            for (at, byte) in &edits {
                let at = at % bytes.len();
                bytes[at] = *byte;
            }
            cases.borrow_mut().push(String::from_utf8(bytes).unwrap());
            Ok(())
        })
        .unwrap();
    let mut runner = TestRunner::new(Config::with_cases(100));
    runner
        .run(
            &prop::collection::vec(
                any::<u8>().prop_filter("header byte", |b| b.is_ascii_graphic()),
                0..400,
            ),
            |bytes| {
                cases.borrow_mut().push(String::from_utf8(bytes).unwrap());
                Ok(())
            },
        )
        .unwrap();
    for case in cases.into_inner() {
        if case == valid {
            continue;
        }
        let reply = call(runtime_app, ADMIN, &token, &[&case]).await;
        assert!(
            matches!(reply.status, 400 | 401),
            "{} for {case:?}: {reply:?}",
            reply.status
        );
    }
    // The valid proof still works: nothing above burned it.
    assert_eq!(call(&app, ADMIN, &token, &[&valid]).await.status, 200);
}
