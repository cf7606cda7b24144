//! The real binary as a black box: configuration errors, `.env`, and serving against an issuer
//! on loopback.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use hello_world_api::issuer::{Issuer, JwksBehaviour};
use serde_json::json;

use test_support::{
    ADMIN_PERMISSION, AUDIENCE, Running, empty_dir, free_port, key, now, send, spawn_issuer,
};

use crate::BINARY;

fn run(dir: &Path, env: &[(&str, &str)]) -> Output {
    BINARY
        .command(dir, env)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn assert_config_error(output: &Output, starts_with: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with(&format!("configuration error: {starts_with}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn help_and_version_answer_with_exit_0_and_an_unknown_argument_with_exit_2() {
    let dir = empty_dir("help");
    let output = |args: &[&str]| BINARY.command(&dir, &[]).args(args).output().unwrap();
    for flag in ["--help", "-h", "help"] {
        let help = output(&[flag]);
        assert!(help.status.success(), "{flag}");
        let text = String::from_utf8(help.stdout).unwrap();
        for line in [
            "usage: hello-world-api [COMMAND]",
            "  serve (the default)",
            "  token [CLIENT_ID]",
            "  dpop [CLIENT_ID] [URL]",
            "  dpop-proof METHOD URL [TOKEN]",
            "  AUTH0_DOMAIN ",
            "  CLIENT_ORIGIN_URL ",
            "  APP__SECTION__KEY ",
        ] {
            assert!(text.contains(line), "{flag}: {line:?} in {text}");
        }
    }
    let version = output(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap(),
        format!("hello-world-api {}\n", env!("CARGO_PKG_VERSION"))
    );
    let unknown = output(&["--bogus"]);
    assert_eq!(unknown.status.code(), Some(2));
    let text = String::from_utf8(unknown.stderr).unwrap();
    assert!(text.starts_with("hello-world-api "), "{text}");
    assert!(text.contains("usage: hello-world-api [COMMAND]"), "{text}");
    assert!(text.contains("--help"), "{text}");
}

#[test]
fn missing_audience_exits_non_zero_naming_the_key() {
    let dir = empty_dir("no-audience");
    let output = run(&dir, &[("AUTH0_DOMAIN", "example.us.auth0.com")]);
    assert_config_error(
        &output,
        "auth.audience (AUTH0_AUDIENCE or APP__AUTH__AUDIENCE): is required",
    );
}

#[test]
fn missing_domain_exits_non_zero_naming_the_key() {
    let dir = empty_dir("no-domain");
    let output = run(
        &dir,
        &[("AUTH0_AUDIENCE", AUDIENCE), ("APP_ENV", "production")],
    );
    assert_config_error(&output, "auth.domain (AUTH0_DOMAIN or APP__AUTH__DOMAIN)");
}

#[test]
fn bad_values_exit_non_zero_naming_the_key() {
    let dir = empty_dir("bad-values");
    let base = [
        ("AUTH0_DOMAIN", "example.us.auth0.com"),
        ("AUTH0_AUDIENCE", AUDIENCE),
    ];
    for (name, value, key) in [
        ("PORT", "70000", "server.port"),
        (
            "PORT",
            "sixty",
            "PORT (server.port): string \"sixty\" is not an integer",
        ),
        ("CLIENT_ORIGIN_URL", "localhost", "cors.client_origin_url"),
        ("AUTH0_ISSUER", "::not a url::", "auth.issuer"),
        ("AUTH0_JWKS_URI", "jwks.json", "auth.jwks_uri"),
        ("APP_ENV", "staging", "APP_ENV"),
        ("APP__AUTH__ALGORITHMS", "HS256", "auth.algorithms"),
    ] {
        let mut env = base.to_vec();
        env.push((name, value));
        let output = run(&dir, &env);
        assert_config_error(&output, key);
    }
}

#[test]
fn dotenv_file_is_read_and_the_process_environment_wins() {
    let dir = empty_dir("dotenv");
    std::fs::write(
        dir.join(".env"),
        format!("AUTH0_DOMAIN=example.us.auth0.com\nAUTH0_AUDIENCE={AUDIENCE}\nPORT=99999\n"),
    )
    .unwrap();
    let output = run(&dir, &[]);
    assert_config_error(
        &output,
        "server.port (PORT or APP__SERVER__PORT): 99999 is out of range",
    );

    let output = run(&dir, &[("PORT", "88888")]);
    assert_config_error(
        &output,
        "server.port (PORT or APP__SERVER__PORT): 88888 is out of range",
    );
}

#[actix_web::test]
async fn binary_serves_the_contract_against_an_issuer_on_loopback() {
    let issuer = Issuer::new(key(0));
    let issuer_url = spawn_issuer(&issuer);
    let jwks_uri = format!("{issuer_url}.well-known/jwks.json");

    let dir = empty_dir("serve");
    let port = free_port();
    let server = BINARY.start(
        &dir,
        &[
            ("AUTH0_ISSUER", &issuer_url),
            ("AUTH0_JWKS_URI", &jwks_uri),
            ("AUTH0_AUDIENCE", AUDIENCE),
            ("APP__SERVER__WORKERS", "1"),
        ],
        port,
    );
    let client = awc::Client::default();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let claims = json!({"iss": issuer_url, "aud": AUDIENCE, "sub": "u", "exp": now() + 600});
    let user = issuer.sign(&claims).unwrap();
    let mut admin_claims = claims.clone();
    admin_claims["permissions"] = json!([ADMIN_PERMISSION]);
    let admin = issuer.sign(&admin_claims).unwrap();

    let public = send(client.get(url("/api/messages/public"))).await;
    assert_eq!(public.body["text"], "This is a public message.");
    let protected = send(
        client
            .get(url("/api/messages/protected"))
            .bearer_auth(&user),
    )
    .await;
    assert_eq!(protected.status, 200, "{protected:?}");
    let admin_reply = send(client.get(url("/api/messages/admin")).bearer_auth(&admin)).await;
    assert_eq!(admin_reply.body["text"], "This is an admin message.");
    let forbidden = send(client.get(url("/api/messages/admin")).bearer_auth(&user)).await;
    assert_eq!(forbidden.status, 403);
    let anonymous = send(client.get(url("/api/messages/protected"))).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(issuer.jwks_fetches(), 1);

    // A refused token is logged once, with the reason and the request id, never the token.
    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(now() - 3600);
    let expired = issuer.sign(&expired_claims).unwrap();
    let refused = send(
        client
            .get(url("/api/messages/protected"))
            .bearer_auth(&expired)
            .insert_header(("X-Request-Id", "trace-expired-1")),
    )
    .await;
    assert_eq!(refused.status, 401);
    drop(server);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    let line = "refused /api/messages/protected id=trace-expired-1: bad credentials: token expired";
    assert_eq!(log.matches(line).count(), 1, "{log}");
    for token in [&expired, &user, &admin] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token reached the log");
    }
    // The start-up summary says what was understood, in a few lines, without actix-server's.
    for summary in [
        format!("listening on http://127.0.0.1:{port} (local profile, 1 workers)"),
        format!(
            "tokens from {issuer_url} (keys from {jwks_uri}) for audience {AUDIENCE}; DPoP allowed"
        ),
        "browsers may call it from http://localhost:4040 only (CLIENT_ORIGIN_URL)".to_owned(),
        format!(
            "docs on http://127.0.0.1:{port}/docs, the description on http://127.0.0.1:{port}/openapi.json"
        ),
    ] {
        assert_eq!(log.matches(&summary).count(), 1, "{summary:?} in {log}");
    }
    assert!(!log.contains("actix_server"), "{log}");
}

#[actix_web::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_0() {
    signal_lets_an_in_flight_request_finish_then_exits_0("-TERM").await;
}

#[actix_web::test]
async fn sigint_lets_an_in_flight_request_finish_then_exits_0() {
    signal_lets_an_in_flight_request_finish_then_exits_0("-INT").await;
}

#[actix_web::test]
async fn sigterm_turns_readiness_503_while_still_serving_then_exits_0() {
    let issuer = Issuer::new(key(0));
    let issuer_url = spawn_issuer(&issuer);
    let dir = empty_dir("drain");
    let port = free_port();
    let env = [
        ("AUTH0_ISSUER", issuer_url.as_str()),
        ("AUTH0_AUDIENCE", AUDIENCE),
        ("APP__SERVER__DRAIN_SECS", "1.5"),
    ];
    let server = BINARY.start(&dir, &env, port);
    let client = awc::Client::default();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while send(client.get(url("/readyz"))).await.status != 200 {
        assert!(Instant::now() < deadline, "never ready");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let token = issuer
        .sign(&json!({"iss": issuer_url, "aud": AUDIENCE, "exp": now() + 600}))
        .unwrap();
    let mut server = server;
    let signalled = Instant::now();
    server.signal("-TERM");
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;

    // Draining: not ready, yet every request is still served.
    let ready = send(client.get(url("/readyz"))).await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(ready.body["reason"], "shutting down");
    let protected = send(
        client
            .get(url("/api/messages/protected"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(protected.status, 200, "{protected:?}");
    assert_eq!(
        send(client.get(url("/api/messages/public"))).await.status,
        200
    );

    let status = server.exit_within(Duration::from_secs(15)).await;
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(1500),
        "the listener closed before the drain ended: {:?}",
        signalled.elapsed()
    );
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(
        log.contains("SIGTERM received: /readyz answers 503"),
        "{log}"
    );
}

/// The binary against a loopback issuer, with one request stuck behind a key fetch that
/// takes `fetch_delay` (its token names a key the server has yet to fetch).
struct InFlight {
    server: Running,
    dir: PathBuf,
    port: u16,
    request: tokio::task::JoinHandle<Result<u16, String>>,
}

async fn in_flight_request(name: &str, extra: &[(&str, &str)], fetch_delay: Duration) -> InFlight {
    let issuer = Issuer::new(key(0));
    let issuer_url = spawn_issuer(&issuer);
    let dir = empty_dir(name);
    let port = free_port();
    let mut env = vec![
        ("AUTH0_ISSUER", issuer_url.as_str()),
        ("AUTH0_AUDIENCE", AUDIENCE),
        ("APP__JWKS__UNKNOWN_KID_COOLDOWN_SECS", "0"),
        ("APP__SERVER__WORKERS", "1"),
    ];
    env.extend_from_slice(extra);
    let server = BINARY.start(&dir, &env, port);
    while issuer.jwks_fetches() < 1 {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    issuer.rotate_to(key(1));
    issuer.set_delay(fetch_delay);
    let token = issuer
        .sign(&json!({"iss": issuer_url, "aud": AUDIENCE, "exp": now() + 600}))
        .unwrap();
    let request = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
        .get(format!("http://127.0.0.1:{port}/api/messages/protected"))
        .bearer_auth(&token)
        .send();
    let request = actix_web::rt::spawn(async move {
        request
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    });
    while issuer.jwks_fetches() < 2 {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    InFlight {
        server,
        dir,
        port,
        request,
    }
}

impl InFlight {
    /// Sends `signal` and waits (at most `limit`) for the process to exit.
    async fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> std::process::ExitStatus {
        self.server.signal(signal);
        self.server.exit_within(limit).await
    }
}

async fn signal_lets_an_in_flight_request_finish_then_exits_0(signal: &str) {
    let name = format!("signal{signal}");
    let mut fixture = in_flight_request(&name, &[], Duration::from_millis(1500)).await;
    let status = fixture
        .signal_and_wait(signal, Duration::from_secs(15))
        .await;
    let answer = (&mut fixture.request).await.unwrap();
    assert_eq!(answer, Ok(200), "the in-flight request finished");
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(("127.0.0.1", fixture.port)).is_err());
    let log = std::fs::read_to_string(fixture.dir.join("server.log")).unwrap();
    assert!(log.contains("stopped"), "{log}");
}

#[actix_web::test]
async fn binary_listens_while_the_issuer_is_unreachable() {
    let dead_port = free_port();
    let issuer_url = format!("http://127.0.0.1:{dead_port}/");
    let dir = empty_dir("unreachable");
    let port = free_port();
    let _server = BINARY.start(
        &dir,
        &[("AUTH0_ISSUER", &issuer_url), ("AUTH0_AUDIENCE", AUDIENCE)],
        port,
    );
    let client = awc::Client::default();
    let public = send(client.get(format!("http://127.0.0.1:{port}/api/messages/public"))).await;
    assert_eq!(public.status, 200);
    let token = key(0)
        .sign(&json!({"iss": issuer_url, "aud": AUDIENCE, "exp": now() + 600}))
        .unwrap();
    let protected = send(
        client
            .get(format!("http://127.0.0.1:{port}/api/messages/protected"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(protected.status, 503, "{protected:?}");
    assert!(protected.header("retry-after").is_some());

    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    let expected = format!("fetching signing keys from {issuer_url}.well-known/jwks.json failed");
    assert!(log.contains(&expected), "the log names the URL: {log}");
    assert!(!log.contains(&token), "a token reached the log");
}

#[actix_web::test]
async fn rust_log_sets_the_log_level() {
    let issuer_url = format!("http://127.0.0.1:{}/", free_port());
    let env = [
        ("AUTH0_ISSUER", issuer_url.as_str()),
        ("AUTH0_AUDIENCE", AUDIENCE),
    ];
    for (level, info_expected) in [(None, true), (Some("warn"), false)] {
        let dir = empty_dir(&format!("rust-log-{info_expected}"));
        let port = free_port();
        let mut env = env.to_vec();
        if let Some(level) = level {
            env.push(("RUST_LOG", level));
        }
        let server = BINARY.start(&dir, &env, port);
        let reply =
            send(awc::Client::default().get(format!("http://127.0.0.1:{port}/api/public"))).await;
        assert_eq!(reply.status, 200);
        drop(server);
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
        assert_eq!(
            log.contains(" INFO "),
            info_expected,
            "RUST_LOG={level:?}: {log}"
        );
        assert!(
            log.contains(" ERROR "),
            "errors are logged at any level: {log}"
        );
    }
}

#[actix_web::test]
async fn shutdown_gives_up_on_requests_still_running_after_the_timeout() {
    let extra = [
        ("APP__JWKS__FETCH_TIMEOUT_SECS", "30"),
        ("APP__SERVER__SHUTDOWN_TIMEOUT_SECS", "1"),
    ];
    let mut fixture = in_flight_request("shutdown-timeout", &extra, Duration::from_secs(20)).await;
    let signalled = Instant::now();
    let status = fixture
        .signal_and_wait("-TERM", Duration::from_secs(15))
        .await;
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "{:?}",
        signalled.elapsed()
    );
    let answer = (&mut fixture.request).await.unwrap();
    assert!(
        answer.is_err(),
        "the request was cut off, not answered: {answer:?}"
    );
}

#[actix_web::test]
async fn a_cors_refusal_is_logged_once_per_origin_naming_what_is_allowed() {
    let issuer = Issuer::new(key(0));
    let issuer_url = spawn_issuer(&issuer);
    let dir = empty_dir("cors-log");
    let port = free_port();
    let server = BINARY.start(
        &dir,
        &[
            ("AUTH0_ISSUER", &issuer_url),
            ("AUTH0_AUDIENCE", AUDIENCE),
            ("APP__SERVER__WORKERS", "2"),
        ],
        port,
    );
    let client = awc::Client::default();
    let preflight = |origin: &'static str| {
        client
            .request(
                actix_web::http::Method::OPTIONS,
                format!("http://127.0.0.1:{port}/api/messages/protected"),
            )
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "GET"))
    };
    for origin in [
        "http://localhost:3000",
        "http://localhost:3000",
        "http://localhost:3000",
        "https://elsewhere.example",
    ] {
        assert_eq!(send(preflight(origin)).await.status, 400);
    }
    drop(server);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    let line = "refused OPTIONS /api/messages/protected: CORS: the origin http://localhost:3000 may \
                not call this API; it allows http://localhost:4040 only (CLIENT_ORIGIN_URL)";
    assert_eq!(log.matches(line).count(), 1, "{log}");
    assert_eq!(
        log.matches("https://elsewhere.example may not").count(),
        1,
        "{log}"
    );
}

#[actix_web::test]
async fn during_an_outage_the_refusals_are_logged_once_in_a_while_saying_where_to_look() {
    let dir = empty_dir("outage-log");
    let port = free_port();
    let unreachable = format!("http://127.0.0.1:{}/", free_port());
    let server = BINARY.start(
        &dir,
        &[
            ("AUTH0_ISSUER", &unreachable),
            ("AUTH0_AUDIENCE", AUDIENCE),
            ("APP__SERVER__WORKERS", "1"),
        ],
        port,
    );
    let client = awc::Client::default();
    for _ in 0..20 {
        let reply = send(
            client
                .get(format!("http://127.0.0.1:{port}/api/messages/protected"))
                .bearer_auth("a.b.c"),
        )
        .await;
        assert!(matches!(reply.status, 401 | 503), "{reply:?}");
        let reply = send(
            client
                .get(format!("http://127.0.0.1:{port}/api/messages/protected"))
                .bearer_auth(
                    key(0)
                        .sign(&json!({"iss": unreachable, "aud": AUDIENCE, "exp": now() + 60}))
                        .unwrap(),
                ),
        )
        .await;
        assert_eq!(reply.status, 503, "{reply:?}");
    }
    drop(server);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("no fresh signing keys"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("/readyz") && lines[0].contains("failed"),
        "{log}"
    );
}

#[actix_web::test]
async fn a_key_rotated_during_an_outage_is_503_and_logged_once_in_a_while_without_the_token() {
    let issuer = Issuer::new(key(0));
    let issuer_url = spawn_issuer(&issuer);
    let dir = empty_dir("unchecked-log");
    let port = free_port();
    let server = BINARY.start(
        &dir,
        &[
            ("AUTH0_ISSUER", &issuer_url),
            ("AUTH0_AUDIENCE", AUDIENCE),
            ("APP__SERVER__WORKERS", "1"),
        ],
        port,
    );
    let client = awc::Client::default();
    let url = format!("http://127.0.0.1:{port}/api/messages/protected");
    let claims = json!({"iss": issuer_url, "aud": AUDIENCE, "exp": now() + 600});
    let old = key(0).sign(&claims).unwrap();
    assert_eq!(send(client.get(&url).bearer_auth(&old)).await.status, 200);

    issuer.set_behaviour(JwksBehaviour::Fail(503));
    issuer.rotate_to(key(1));
    let new = key(1).sign(&claims).unwrap();
    for _ in 0..20 {
        let reply = send(client.get(&url).bearer_auth(&new)).await;
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(reply.header("retry-after").is_some());
    }
    assert_eq!(send(client.get(&url).bearer_auth(&old)).await.status, 200);
    drop(server);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the issuer could not be asked"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("503, not 401"), "{log}");
    assert!(
        !log.contains(&new) && !log.contains(&new[new.len() - 40..]),
        "{log}"
    );
}

#[test]
fn a_port_in_use_names_the_variable_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = empty_dir("port-in-use");
    let free = free_port().to_string();
    let free_issuer = free_port().to_string();
    let metrics_address = format!("127.0.0.1:{port}");
    for (env, expected) in [
        (
            vec![("PORT", port.as_str())],
            "set PORT to another port, or 0 for a free one",
        ),
        (
            vec![
                ("PORT", free.as_str()),
                ("APP__DEV_ISSUER__PORT", port.as_str()),
            ],
            "set APP__DEV_ISSUER__PORT to another port",
        ),
        (
            vec![
                ("PORT", free.as_str()),
                ("APP__DEV_ISSUER__PORT", free_issuer.as_str()),
                ("APP__METRICS__ADDRESS", metrics_address.as_str()),
            ],
            "set APP__METRICS__ADDRESS, e.g. 127.0.0.1:0 for a free port",
        ),
    ] {
        let output = BINARY.command(&dir, &env).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{env:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
    drop(taken);
}

#[test]
fn a_misspelt_variable_in_dotenv_is_named_with_the_one_meant_and_a_bad_value_names_its_variable() {
    let dir = empty_dir("dotenv-typo");
    std::fs::write(dir.join(".env"), "AUTH0_DOMIAN=example.auth0.com\n").unwrap();
    let (port, issuer_port) = (free_port(), free_port().to_string());
    let server = BINARY.start(
        &dir,
        &[("APP__DEV_ISSUER__PORT", issuer_port.as_str())],
        port,
    );
    drop(server);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(
        log.contains(
            "configuration: AUTH0_DOMIAN is not a variable this service reads, and is ignored; \
             did you mean AUTH0_DOMAIN?"
        ),
        "{log}"
    );

    let output = BINARY.command(&dir, &[("PORT", "abc")]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        r#"configuration error: PORT (server.port): string "abc" is not an integer"#
    );
}
