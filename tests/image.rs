//! The container image as it is meant to run: `make image-test` starts it with a read-only
//! root filesystem, every capability dropped and the non-root user 65532, against an issuer
//! on the host's loopback (host network, production profile: plain http is allowed to
//! loopback only), and checks the contract, readiness, a SIGTERM stop within the shutdown
//! timeout, that nothing was written outside tmpfs, and the image's size.
//!
//! `#[ignore]`d: it needs podman and the image (`make image`). `IMAGE` names another one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hello_world_api::issuer::{Issuer, SigningKey};
use serde_json::Value;

use test_support::{AUDIENCE, admin_claims, free_port, serve_issuer, user_claims};

/// The image must stay within this (the target).
const MAX_IMAGE_BYTES: u64 = 25 << 20;
const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// podman with the project's settings (see deploy/containers.conf).
fn podman(args: &[&str]) -> Output {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/containers.conf");
    Command::new("podman")
        .env("CONTAINERS_CONF", conf)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Removes the container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

/// GET `path` on loopback `port`, with an optional bearer token: the status and JSON body.
fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, Value)> {
    let mut args = vec![
        "-s".to_owned(),
        "-o".to_owned(),
        "-".to_owned(),
        "-w".to_owned(),
        "\n%{http_code}".to_owned(),
        format!("http://127.0.0.1:{port}{path}"),
    ];
    if let Some(token) = token {
        args.push("-H".to_owned());
        args.push(format!("Authorization: Bearer {token}"));
    }
    let output = Command::new("curl").args(&args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (body, status) = text.rsplit_once('\n')?;
    Some((
        status.trim().parse().ok()?,
        serde_json::from_str(body).unwrap_or(Value::Null),
    ))
}

#[test]
#[ignore = "needs podman and the image: run with make image-test"]
fn the_image_serves_read_only_unprivileged_and_stops_on_sigterm() {
    let image =
        std::env::var("IMAGE").unwrap_or_else(|_| "localhost/hello-world-api:latest".into());
    let size: u64 = ok(&podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        &image,
    ]))
    .parse()
    .unwrap();
    println!("image {image}: {:.1} MB", size as f64 / 1e6);
    assert!(size <= MAX_IMAGE_BYTES, "{size} bytes");

    let key = SigningKey::generate("image-0").unwrap();
    let issuer = Issuer::new(key.clone());
    let issuer_url = serve_issuer(&issuer);
    let (port, metrics_port) = (free_port(), free_port());
    let name = format!("hello-world-api-test-{}", std::process::id());
    let env = [
        format!("AUTH0_ISSUER={issuer_url}"),
        format!("AUTH0_AUDIENCE={AUDIENCE}"),
        format!("PORT={port}"),
        "HOST=127.0.0.1".to_owned(),
        format!("APP__METRICS__ADDRESS=127.0.0.1:{metrics_port}"),
        format!("APP__SERVER__SHUTDOWN_TIMEOUT_SECS={SHUTDOWN_TIMEOUT_SECS}"),
    ];
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &name,
        "--read-only",
        "--cap-drop=ALL",
        "--user",
        "65532",
        "--security-opt",
        "no-new-privileges",
        "--network",
        "host",
    ];
    for variable in &env {
        args.extend(["-e", variable.as_str()]);
    }
    args.push(&image);
    ok(&podman(&args));
    let container = Container(name);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((200, body)) = get(port, "/readyz", None) {
            assert_eq!(body["status"], "ready");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {}",
            String::from_utf8_lossy(&podman(&["logs", &container.0]).stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let user = issuer.sign(&user_claims(&issuer_url)).unwrap();
    let admin = issuer.sign(&admin_claims(&issuer_url)).unwrap();
    assert_eq!(get(port, "/api/messages/public", None).unwrap().0, 200);
    assert_eq!(get(port, "/api/messages/protected", None).unwrap().0, 401);
    let protected = get(port, "/api/messages/protected", Some(&user)).unwrap();
    assert_eq!(protected.0, 200);
    assert_eq!(protected.1["text"], "This is a protected message.");
    assert_eq!(
        get(port, "/api/messages/admin", Some(&user)).unwrap().0,
        403
    );
    assert_eq!(
        get(port, "/api/messages/admin", Some(&admin)).unwrap().0,
        200
    );
    assert_eq!(get(metrics_port, "/metrics", None).map(|r| r.0), Some(200));

    // Runs as 65532 with no capability at all.
    let inspect = ok(&podman(&[
        "inspect",
        "--format",
        "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.EffectiveCaps}}",
        &container.0,
    ]));
    assert_eq!(
        inspect, "65532 true []",
        "user, read-only root, capabilities"
    );

    let stopping = Instant::now();
    ok(&podman(&["kill", "--signal", "TERM", &container.0]));
    let exit = ok(&podman(&["wait", &container.0]));
    let took = stopping.elapsed();
    println!("SIGTERM to exit: {took:?}, exit status {exit}");
    assert_eq!(exit, "0", "exit status after SIGTERM");
    assert!(
        took < Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 2),
        "stopped after {took:?}"
    );
    let logs = podman(&["logs", &container.0]);
    let logs = String::from_utf8_lossy(&logs.stderr);
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(
        !logs.contains(user.rsplit('.').next().unwrap()),
        "a token reached the log"
    );
    // Nothing written to the container's own layer but what podman itself creates before the
    // process starts: the mount points of /tmp and /var/tmp, and /etc's bind mounts (hosts,
    // resolv.conf). Any write by the server would fail on the read-only root anyway.
    let engine = ["C /etc", "A /tmp", "A /var", "A /var/tmp"];
    let diff = ok(&podman(&["diff", &container.0]));
    let written: Vec<&str> = diff.lines().filter(|l| !engine.contains(l)).collect();
    assert!(written.is_empty(), "files written: {written:?}");
}
