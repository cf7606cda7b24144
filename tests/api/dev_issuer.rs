//! The development issuer: its endpoints in process, and `make run`'s whole flow through the
//! real binary with no Auth0 variables.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hello_world_api::auth::dpop::ClientKey;
use hello_world_api::issuer::{Issuer, TokenPolicy, load_or_create_key};
use hello_world_api::settings::DevClient as Client;
use serde_json::{Value, json};

use test_support::{
    ADMIN_PERMISSION, Reply, empty_dir, free_port, key, now, reply, send, wait_for_port,
};

use crate::BINARY;

const DEV_AUDIENCE: &str = "https://hello-world.example.com";

struct DevIssuer {
    url: String,
    client: awc::Client,
}

impl DevIssuer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let clients = vec![
            Client {
                client_id: "admin".into(),
                client_secret: "admin-secret".into(),
                permissions: vec![ADMIN_PERMISSION.into()],
            },
            Client {
                client_id: "user".into(),
                client_secret: "user-secret".into(),
                permissions: vec![],
            },
        ];
        let policy = TokenPolicy {
            issuer_url: url.clone(),
            audience: DEV_AUDIENCE.into(),
            lifetime: Duration::from_secs(86_400),
            clients,
        };
        Issuer::with_token_endpoint(key(0), policy)
            .serve(listener)
            .unwrap();
        Self {
            url,
            client: awc::Client::default(),
        }
    }

    fn token_request(&self) -> awc::ClientRequest {
        self.client.post(format!("{}oauth/token", self.url))
    }

    async fn form(&self, pairs: &[(&str, &str)]) -> Reply {
        reply(self.token_request().send_form(&pairs)).await
    }
}

fn credentials<'a>(id: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("audience", DEV_AUDIENCE),
    ]
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn assert_oauth_error(reply: &Reply, status: u16, error: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.body["error"], error, "{reply:?}");
    assert!(reply.body["error_description"].is_string(), "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[actix_web::test]
async fn token_endpoint_issues_auth0_shaped_tokens_for_a_form_request() {
    let issuer = DevIssuer::start();
    let reply = issuer.form(&credentials("admin", "admin-secret")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.body.as_object().unwrap();
    let mut members: Vec<&str> = body.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["access_token", "expires_in", "token_type"]);
    assert_eq!(reply.body["expires_in"], 86_400);
    assert_eq!(reply.body["token_type"], "Bearer");

    let token = reply.body["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "test-key-0");
    let claims = payload(token);
    assert_eq!(claims["iss"], issuer.url);
    assert_eq!(claims["aud"], DEV_AUDIENCE);
    assert_eq!(claims["sub"], "admin@clients");
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(claims["permissions"], json!([ADMIN_PERMISSION]));
    let iat = claims["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now()) < 5);
    assert_eq!(claims["exp"].as_u64().unwrap(), iat + 86_400);
}

#[actix_web::test]
async fn token_endpoint_accepts_json_and_http_basic_client_authentication() {
    let issuer = DevIssuer::start();
    let json_reply = send(issuer.token_request().content_type("application/json")).await;
    assert_oauth_error(&json_reply, 400, "invalid_request");
    let json_reply = reply(issuer.token_request().send_json(&json!({
        "grant_type": "client_credentials",
        "client_id": "user",
        "client_secret": "user-secret",
        "audience": DEV_AUDIENCE,
    })))
    .await;
    assert_eq!(json_reply.status, 200, "{json_reply:?}");
    assert_eq!(
        payload(json_reply.body["access_token"].as_str().unwrap())["permissions"],
        json!([])
    );

    let basic = format!("Basic {}", STANDARD.encode("user:user-secret"));
    let basic_reply = reply(
        issuer
            .token_request()
            .insert_header(("Authorization", basic.as_str()))
            .send_form(&[
                ("grant_type", "client_credentials"),
                ("audience", DEV_AUDIENCE),
            ]),
    )
    .await;
    assert_eq!(basic_reply.status, 200, "{basic_reply:?}");
    assert_eq!(
        payload(basic_reply.body["access_token"].as_str().unwrap())["sub"],
        "user@clients"
    );

    let both = reply(
        issuer
            .token_request()
            .insert_header(("Authorization", basic.as_str()))
            .send_form(&credentials("user", "user-secret")),
    )
    .await;
    assert_oauth_error(&both, 400, "invalid_request");
}

#[actix_web::test]
async fn a_browser_on_this_machine_may_ask_for_a_token_with_the_audience_in_the_query() {
    // As Swagger UI's Authorize dialog on the API's /docs asks: Basic client authentication,
    // the audience in the token URL's query (its form has no field for it), from a page whose
    // origin is the API's.
    let issuer = DevIssuer::start();
    let basic = format!("Basic {}", STANDARD.encode("admin:admin-secret"));
    let query = serde_urlencoded::to_string([("audience", DEV_AUDIENCE)]).unwrap();
    let url = format!("{}oauth/token?{query}", issuer.url);
    let from = |origin: &'static str| {
        issuer
            .client
            .post(url.as_str())
            .insert_header(("Authorization", basic.as_str()))
            .insert_header(("Origin", origin))
            .insert_header(("X-Requested-With", "XMLHttpRequest"))
    };
    let answer = reply(from("http://localhost:6060").send_form(&[
        ("grant_type", "client_credentials"),
        ("scope", ADMIN_PERMISSION),
    ]))
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://localhost:6060")
    );
    assert_eq!(
        payload(answer.body["access_token"].as_str().unwrap())["aud"],
        DEV_AUDIENCE
    );

    // The preflight the browser sends first, from this machine and from elsewhere.
    let preflight = |origin: &'static str| {
        issuer
            .client
            .request(actix_web::http::Method::OPTIONS, url.as_str())
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header((
                "Access-Control-Request-Headers",
                "authorization,content-type,x-requested-with",
            ))
    };
    for origin in [
        "http://127.0.0.1:6060",
        "http://[::1]:6060",
        "http://localhost:4040",
    ] {
        let answer = send(preflight(origin)).await;
        assert_eq!(answer.status, 200, "{origin}: {answer:?}");
        assert_eq!(answer.header("access-control-allow-origin"), Some(origin));
    }
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example:6060",
        "null",
    ] {
        let answer = send(preflight(origin)).await;
        assert_eq!(
            answer.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
        let answer = send(from(origin)).await;
        assert_eq!(
            answer.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
    }

    // Two different audiences are refused, not resolved one way or the other.
    let mut pairs = credentials("admin", "admin-secret");
    pairs.retain(|(name, _)| *name != "audience");
    pairs.push(("audience", "https://other-api.example.com"));
    let twice = reply(issuer.client.post(url.as_str()).send_form(&pairs)).await;
    assert_oauth_error(&twice, 400, "invalid_request");
}

#[actix_web::test]
async fn token_endpoint_refuses_wrong_clients_secrets_grants_and_audiences() {
    let issuer = DevIssuer::start();
    for (pairs, status, error) in [
        (credentials("admin", "wrong"), 401, "invalid_client"),
        (credentials("admin", ""), 401, "invalid_client"),
        (credentials("nobody", "admin-secret"), 401, "invalid_client"),
        (credentials("user", "admin-secret"), 401, "invalid_client"),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("audience", DEV_AUDIENCE),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "admin"),
                ("client_secret", "admin-secret"),
            ],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", "admin"), ("client_secret", "admin-secret")],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "admin"),
                ("client_secret", "admin-secret"),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "admin"),
                ("client_secret", "admin-secret"),
                ("audience", "https://other-api.example.com"),
            ],
            400,
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            400,
            "invalid_request",
        ),
    ] {
        let reply = issuer.form(&pairs).await;
        assert_oauth_error(&reply, status, error);
        if status == 401 {
            assert_eq!(
                reply.header("www-authenticate"),
                Some(r#"Basic realm="dev-issuer""#)
            );
        }
    }
    let get = send(issuer.client.get(format!("{}oauth/token", issuer.url))).await;
    assert_oauth_error(&get, 405, "invalid_request");
    let unknown = send(issuer.client.get(format!("{}authorize", issuer.url))).await;
    assert_oauth_error(&unknown, 404, "not_found");
    let plain = send(issuer.token_request().content_type("text/plain")).await;
    assert_oauth_error(&plain, 400, "invalid_request");
    let bad_json = reply(
        issuer
            .token_request()
            .content_type("application/json")
            .send_body("{"),
    )
    .await;
    assert_oauth_error(&bad_json, 400, "invalid_request");
}

#[actix_web::test]
async fn discovery_document_names_the_issuer_keys_and_token_endpoint() {
    let issuer = DevIssuer::start();
    let reply = send(
        issuer
            .client
            .get(format!("{}.well-known/openid-configuration", issuer.url)),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["issuer"], issuer.url);
    assert_eq!(
        reply.body["jwks_uri"],
        format!("{}.well-known/jwks.json", issuer.url)
    );
    assert_eq!(
        reply.body["token_endpoint"],
        format!("{}oauth/token", issuer.url)
    );
    let jwks = send(
        issuer
            .client
            .get(format!("{}.well-known/jwks.json", issuer.url)),
    )
    .await;
    assert_eq!(jwks.body["keys"][0]["kid"], "test-key-0");
    assert_eq!(jwks.body["keys"][0]["use"], "sig");
    assert!(
        jwks.body["keys"][0].get("d").is_none(),
        "no private parts published"
    );
}

#[test]
fn signing_key_is_created_once_and_kept_private() {
    let dir = empty_dir("key-file");
    let path = dir.join(".dev/dev-issuer-key.pem");
    let first = load_or_create_key(&path).unwrap();
    let again = load_or_create_key(&path).unwrap();
    assert_eq!(first.kid(), again.kid(), "the same key after a restart");
    assert_eq!(first.kid().len(), 43, "an RFC 7638 SHA-256 thumbprint");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(&path, "not a key").unwrap();
    let error = load_or_create_key(&path).unwrap_err().to_string();
    assert!(error.starts_with("dev_issuer.key_file: "), "{error}");
}

// --- the binary, as `make run` starts it -------------------------------------------------

fn token_from(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    token
}

#[actix_web::test]
async fn make_run_serves_real_tokens_from_the_development_issuer() {
    let dir = empty_dir("make-run");
    let (api_port, issuer_port) = (free_port(), free_port());
    let issuer_port_text = issuer_port.to_string();
    let env = [
        ("APP__DEV_ISSUER__PORT", issuer_port_text.as_str()),
        ("APP__SERVER__WORKERS", "1"),
    ];
    let server = BINARY.start(&dir, &env, api_port);
    wait_for_port(issuer_port);

    let client = awc::Client::default();
    let api = |path: &str| format!("http://127.0.0.1:{api_port}{path}");
    let token_url = format!("http://127.0.0.1:{issuer_port}/oauth/token");
    let get_token = |id: &'static str, secret: &'static str| {
        let request = client.post(token_url.as_str()).send_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("audience", DEV_AUDIENCE),
        ]);
        async move {
            let reply = reply(request).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let admin = get_token("hello-world-admin", "dev-admin-secret").await;
    let user = get_token("hello-world-user", "dev-user-secret").await;
    assert_eq!(
        payload(&admin)["iss"],
        format!("http://localhost:{issuer_port}/")
    );

    let public = send(client.get(api("/api/messages/public"))).await;
    assert_eq!(public.body, json!({"text": "This is a public message."}));
    for token in [&admin, &user] {
        let protected = send(
            client
                .get(api("/api/messages/protected"))
                .bearer_auth(token),
        )
        .await;
        assert_eq!(
            protected.body,
            json!({"text": "This is a protected message."})
        );
    }
    let admin_reply = send(client.get(api("/api/messages/admin")).bearer_auth(&admin)).await;
    assert_eq!(
        admin_reply.body,
        json!({"text": "This is an admin message."})
    );
    let forbidden = send(client.get(api("/api/messages/admin")).bearer_auth(&user)).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.message(), "Permission denied");

    let wrong = reply(client.post(token_url.as_str()).send_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "hello-world-admin"),
        ("client_secret", "guess"),
        ("audience", DEV_AUDIENCE),
    ]))
    .await;
    assert_oauth_error(&wrong, 401, "invalid_client");

    // `make token` asks the running issuer; the first client is the admin.
    let made = token_from(
        BINARY
            .command(&dir, &env)
            .arg("token")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(payload(&made)["sub"], "hello-world-admin@clients");
    let made_user = token_from(
        BINARY
            .command(&dir, &env)
            .args(["token", "hello-world-user"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    let forbidden = send(
        client
            .get(api("/api/messages/admin"))
            .bearer_auth(&made_user),
    )
    .await;
    assert_eq!(forbidden.status, 403);

    // The key is kept in .dev/: a restarted server accepts the tokens it issued before.
    drop(server);
    assert!(dir.join(".dev/dev-issuer-key.pem").is_file());
    let _server = BINARY.start(&dir, &env, api_port);
    wait_for_port(issuer_port);
    // A new client: the old one's pooled connections died with the first server.
    let after_restart = send(
        awc::Client::default()
            .get(api("/api/messages/admin"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(after_restart.status, 200, "{after_restart:?}");
}

#[test]
fn token_command_names_the_problem_when_no_issuer_runs() {
    let dir = empty_dir("token-no-issuer");
    let port = free_port().to_string();
    let output = BINARY
        .command(&dir, &[("APP__DEV_ISSUER__PORT", &port)])
        .args(["token", "nobody"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no client \"nobody\""), "{stderr}");

    let output = BINARY
        .command(&dir, &[("APP__DEV_ISSUER__PORT", &port)])
        .arg("token")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("start the API with `make run` first"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_the_api_and_the_development_issuer_together() {
    let dir = empty_dir("ctrl-c");
    let (api_port, issuer_port) = (free_port(), free_port());
    let issuer_port_text = issuer_port.to_string();
    let mut server = BINARY.start(
        &dir,
        &[("APP__DEV_ISSUER__PORT", issuer_port_text.as_str())],
        api_port,
    );
    wait_for_port(issuer_port);
    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGINT");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(("127.0.0.1", api_port)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", issuer_port)).is_err());
}

#[test]
fn production_profile_never_starts_the_development_issuer() {
    let dir = empty_dir("production");
    let (api_port, issuer_port) = (free_port(), free_port());
    let dead = format!("http://127.0.0.1:{}/", free_port());
    let issuer_port_text = issuer_port.to_string();
    let env = [
        ("APP_ENV", "production"),
        ("HOST", "127.0.0.1"),
        ("AUTH0_ISSUER", dead.as_str()),
        ("AUTH0_AUDIENCE", DEV_AUDIENCE),
        ("APP__DEV_ISSUER__ENABLED", "true"),
        ("APP__DEV_ISSUER__PORT", issuer_port_text.as_str()),
    ];
    let _server = BINARY.start(&dir, &env, api_port);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(("127.0.0.1", issuer_port)).is_err(),
        "dev issuer listening"
    );
    assert!(!dir.join(".dev").exists(), "dev issuer key created");

    // Without an issuer, production refuses to start instead of falling back to it.
    let output = BINARY
        .command(
            &dir,
            &[
                ("APP_ENV", "production"),
                ("APP__DEV_ISSUER__ENABLED", "true"),
            ],
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("auth.audience"));
}

// --- DPoP ------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_token_request_with_a_dpop_proof_gets_a_token_bound_to_the_proofs_key() {
    let issuer = DevIssuer::start();
    let key = ClientKey::generate().unwrap();
    let url = format!("{}oauth/token", issuer.url);
    let with_proof = |proof: String| {
        reply(
            issuer
                .token_request()
                .insert_header(("DPoP", proof))
                .send_form(&credentials("admin", "admin-secret")),
        )
    };
    let bound = with_proof(key.proof("POST", &url, None, None, now()).unwrap()).await;
    assert_eq!(bound.status, 200, "{bound:?}");
    assert_eq!(bound.body["token_type"], "DPoP");
    let claims = payload(bound.body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"], json!({ "jkt": key.thumbprint() }));

    for (what, proof) in [
        (
            "for GET",
            key.proof("GET", &url, None, None, now()).unwrap(),
        ),
        (
            "for another URL",
            key.proof("POST", &format!("{}token", issuer.url), None, None, now())
                .unwrap(),
        ),
        (
            "an hour old",
            key.proof("POST", &url, None, None, now() - 3600).unwrap(),
        ),
        ("not a JWT", "junk".to_owned()),
    ] {
        let refused = with_proof(proof).await;
        assert_oauth_error(&refused, 400, "invalid_dpop_proof");
        assert!(
            !refused.body["error_description"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{what}"
        );
    }
    // Without a proof, a bearer token as before.
    let plain = issuer.form(&credentials("admin", "admin-secret")).await;
    assert_eq!(plain.body["token_type"], "Bearer");
    assert!(
        payload(plain.body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

#[actix_web::test]
async fn make_run_and_its_dpop_client_make_a_real_dpop_call() {
    let dir = empty_dir("make-run-dpop");
    let (api_port, issuer_port) = (free_port(), free_port());
    let issuer_port_text = issuer_port.to_string();
    let api_port_text = api_port.to_string();
    let env = [
        ("APP__DEV_ISSUER__PORT", issuer_port_text.as_str()),
        ("APP__SERVER__WORKERS", "1"),
    ];
    let _server = BINARY.start(&dir, &env, api_port);
    wait_for_port(issuer_port);
    let client_env = [
        ("APP__DEV_ISSUER__PORT", issuer_port_text.as_str()),
        ("PORT", api_port_text.as_str()),
    ];
    let run = |args: &[&str]| {
        let output = BINARY
            .command(&dir, &client_env)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };

    let exchange = run(&["dpop"]);
    assert!(exchange.contains("token_type DPoP"), "{exchange}");
    assert!(exchange.contains("a fresh DPoP proof: 200"), "{exchange}");
    assert!(
        exchange.contains(r#"{"text":"This is an admin message."}"#),
        "{exchange}"
    );
    // The key was made once and is kept for the next call.
    let key_file = dir.join(".dev/dpop-client-key.pem");
    let key = ClientKey::from_pem(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert!(exchange.contains(key.thumbprint()), "{exchange}");
    let user = run(&["dpop", "hello-world-user"]);
    assert!(user.contains("a fresh DPoP proof: 403"), "{user}");

    // What curl would do: a bound token, and a proof per request.
    let token = run(&["dpop-token"]).trim().to_owned();
    let url = format!("http://localhost:{api_port}/api/messages/protected");
    let proof = run(&["dpop-proof", "GET", &url, &token]).trim().to_owned();
    let request = awc::Client::default()
        .get(url.as_str())
        .insert_header(("Authorization", format!("DPoP {token}")))
        .insert_header(("DPoP", proof.as_str()));
    let answer = reply(request.send()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // The same proof twice is refused.
    let again = awc::Client::default()
        .get(url.as_str())
        .insert_header(("Authorization", format!("DPoP {token}")))
        .insert_header(("DPoP", proof.as_str()));
    let answer = reply(again.send()).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error_description"], "DPoP proof replayed");
}

#[actix_web::test]
async fn the_development_issuer_logs_each_outcome_with_its_reason_and_no_secret() {
    let dir = empty_dir("dev-issuer-log");
    let (api_port, issuer_port) = (free_port(), free_port());
    let issuer_port_text = issuer_port.to_string();
    let server = BINARY.start(
        &dir,
        &[("APP__DEV_ISSUER__PORT", issuer_port_text.as_str())],
        api_port,
    );
    wait_for_port(issuer_port);
    let url = format!("http://127.0.0.1:{issuer_port}/oauth/token");
    let ask = |secret: &'static str| {
        reply(awc::Client::default().post(url.as_str()).send_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "hello-world-admin"),
            ("client_secret", secret),
            ("audience", DEV_AUDIENCE),
        ]))
    };
    assert_eq!(ask("a-wrong-secret-4821").await.status, 401);
    let granted = ask("dev-admin-secret").await;
    assert_eq!(granted.status, 200);
    drop(server);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(
        log.contains(
            "development issuer: token request refused, 401 invalid_client: unknown client or \
             wrong client secret"
        ),
        "{log}"
    );
    assert!(
        log.contains("development issuer: bearer token issued to hello-world-admin"),
        "{log}"
    );
    let token = granted.body["access_token"].as_str().unwrap();
    for secret in [
        "a-wrong-secret-4821",
        "dev-admin-secret",
        token.rsplit('.').next().unwrap(),
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

#[actix_web::test]
async fn a_second_copy_picks_free_ports_for_its_side_listeners_and_says_which() {
    let mut copies = Vec::new();
    for name in ["copy-one", "copy-two"] {
        let dir = empty_dir(name);
        let port = free_port();
        let server = BINARY.start(&dir, &[("APP__DEV_ISSUER__PORT", "0")], port);
        // The summary names the ports picked.
        let deadline = Instant::now() + Duration::from_secs(10);
        let issuer_port = loop {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
            let picked = log
                .split("DEVELOPMENT ISSUER at http://localhost:")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .and_then(|p| p.parse::<u16>().ok());
            if let (Some(picked), true) = (picked, log.contains("metrics on http://127.0.0.1:")) {
                assert!(!log.contains("metrics on http://127.0.0.1:0/"), "{log}");
                break picked;
            }
            assert!(Instant::now() < deadline, "{log}");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_ne!(issuer_port, 0);
        copies.push((server, port, issuer_port));
    }
    assert_ne!(copies[0].2, copies[1].2);
    for (_, port, issuer_port) in &copies {
        let token = reply(
            awc::Client::default()
                .post(format!("http://127.0.0.1:{issuer_port}/oauth/token"))
                .send_form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "hello-world-admin"),
                    ("client_secret", "dev-admin-secret"),
                    ("audience", DEV_AUDIENCE),
                ]),
        )
        .await;
        let token = token.body["access_token"].as_str().unwrap().to_owned();
        let answer = send(
            awc::Client::default()
                .get(format!("http://127.0.0.1:{port}/api/messages/admin"))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
}
