//! Soak: the release binary under load from wrk while its issuer rotates keys and goes down.
//!
//! Not part of `make test` (it is `#[ignore]`d): `make soak` runs it for 60 s, `make
//! soak-short` (in CI) for 10 s; `SOAK_SECS` sets the length. It needs `wrk`, which both
//! targets install when missing. It prints what it measured and fails when a valid token was
//! refused, when any answer was a 5xx, or when the server's memory grew beyond noise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hello_world_api::issuer::{Issuer, JwksBehaviour, SigningKey};
use serde_json::json;

const AUDIENCE: &str = "https://hello-world.example.com";
const BINARY: &str = env!("CARGO_BIN_EXE_hello-world-api");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Resident and peak resident memory of `pid`, in KiB, from /proc.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A wrk script cycling through `tokens` on `path`, reporting its own counts in one line.
fn script(path: &str, tokens: &[String]) -> String {
    let mut lua = String::from("local tokens = {\n");
    for token in tokens {
        let _ = writeln!(lua, "  \"{token}\",");
    }
    let _ = write!(
        lua,
        r#"}}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) i = 0; non2xx = 0; server_errors = 0 end
function request()
  i = i + 1
  return wrk.format("GET", "{path}", {{ ["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1] }})
end
function response(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1 end
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local non2xx, server_errors = 0, 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("non2xx")
    server_errors = server_errors + t:get("server_errors")
  end
  local e = summary.errors
  io.write(string.format("SOAK requests=%d non2xx=%d server_errors=%d socket_errors=%d p99_us=%d\n",
    summary.requests, non2xx, server_errors, e.connect + e.read + e.write + e.timeout,
    latency:percentile(99)))
end
"#
    );
    lua
}

struct Counts {
    requests: u64,
    non2xx: u64,
    server_errors: u64,
    socket_errors: u64,
    p99_us: u64,
}

fn counts(output: &Output) -> Counts {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("SOAK "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no summary:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let value = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Counts {
        requests: value("requests"),
        non2xx: value("non2xx"),
        server_errors: value("server_errors"),
        socket_errors: value("socket_errors"),
        p99_us: value("p99_us"),
    }
}

fn wrk(dir: &Path, name: &str, url: &str, seconds: u64) -> Child {
    Command::new("wrk")
        .args([
            "-t1",
            "-c8",
            &format!("-d{seconds}s"),
            "--timeout",
            "5s",
            "-s",
        ])
        .arg(dir.join(format!("{name}.lua")))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk is installed (make soak installs it)")
}

fn wait_until_serving(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs wrk and a release build: run with make soak"]
fn soak_through_rotation_and_an_issuer_outage() {
    let seconds: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let outage = Duration::from_secs((seconds / 3).min(20));
    let rotate_every = Duration::from_secs((seconds / 6).clamp(1, 5));

    // The issuer, on its own runtime thread; this thread steers it.
    let keys: Vec<SigningKey> = (0..8)
        .map(|i| SigningKey::generate(format!("soak-{i}")).unwrap())
        .collect();
    let issuer = Issuer::new(keys[0].clone());
    issuer.publish(keys[1].clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer_url = format!("http://{}/", listener.local_addr().unwrap());
    let serving = issuer.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let _handle = serving.serve(listener).unwrap();
            std::future::pending::<()>().await;
        });
    });

    let port = free_port();
    let dir = std::env::temp_dir().join(format!("hello-world-api-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server(
        Command::new(BINARY)
            .env_clear()
            .current_dir(&dir)
            .envs([
                ("AUTH0_ISSUER", issuer_url.as_str()),
                ("AUTH0_AUDIENCE", AUDIENCE),
                ("PORT", &port.to_string()),
                ("RUST_LOG", "warn"),
                ("APP__METRICS__ADDRESS", "127.0.0.1:0"),
                ("APP__JWKS__REFRESH_INTERVAL_SECS", "2"),
                ("APP__JWKS__RETRY_INITIAL_SECS", "1"),
                ("APP__JWKS__RETRY_MAX_SECS", "4"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until_serving(port);
    let pid = server.0.id();

    let claims = |sub: String, admin: bool| {
        let mut c = json!({"iss": issuer_url, "aud": AUDIENCE, "sub": sub, "exp": now() + 3600});
        if admin {
            c["permissions"] = json!(["read:admin-messages"]);
        }
        c
    };
    let valid: Vec<String> = (0..100)
        .map(|i| {
            keys[i % 2]
                .sign(&claims(format!("user-{i}"), false))
                .unwrap()
        })
        .collect();
    let admin: Vec<String> = (0..50)
        .map(|i| {
            keys[i % 2]
                .sign(&claims(format!("admin-{i}"), true))
                .unwrap()
        })
        .collect();
    // Published kid, unpublished key: a bad signature, which never triggers a fetch.
    let impostor = SigningKey::from_pkcs8_pem("soak-0", keys[7].private_pem()).unwrap();
    let invalid: Vec<String> = (0..100)
        .map(|i| impostor.sign(&claims(format!("forged-{i}"), true)).unwrap())
        .collect();
    let base = format!("http://127.0.0.1:{port}");
    for (name, path, tokens) in [
        ("valid", "/api/messages/protected", &valid),
        ("admin", "/api/messages/admin", &admin),
        ("invalid", "/api/messages/protected", &invalid),
    ] {
        std::fs::write(dir.join(format!("{name}.lua")), script(path, tokens)).unwrap();
    }

    // Warm-up, then the resident memory the run starts from.
    wrk(&dir, "valid", &base, 2).wait_with_output().unwrap();
    let (rss_start, peak_start) = memory_kib(pid);
    let fetches_start = issuer.jwks_fetches();

    let started = Instant::now();
    let runs: Vec<(&str, Child)> = ["valid", "admin", "invalid"]
        .into_iter()
        .map(|name| (name, wrk(&dir, name, &base, seconds)))
        .collect();
    let outage_from = Duration::from_secs(seconds) / 2 - outage / 2;
    let mut next_key = 2;
    let mut extra: Option<String> = None;
    let mut down = false;
    let mut outage_fetches = 0;
    let mut last_rotation = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(100));
        let at = started.elapsed();
        if !down && at >= outage_from && at < outage_from + outage {
            issuer.set_behaviour(JwksBehaviour::Fail(503));
            outage_fetches = issuer.jwks_fetches();
            down = true;
        } else if down && at >= outage_from + outage {
            issuer.set_behaviour(JwksBehaviour::Serve);
            outage_fetches = issuer.jwks_fetches() - outage_fetches;
            down = false;
        }
        if last_rotation.elapsed() >= rotate_every {
            last_rotation = Instant::now();
            // Rotate: publish a new key, retire the previous extra one.
            let key = keys[next_key].clone();
            next_key = if next_key == 6 { 2 } else { next_key + 1 };
            if let Some(kid) = extra.replace(key.kid().to_owned()) {
                issuer.unpublish(&kid);
            }
            issuer.publish(key);
        }
    }
    issuer.set_behaviour(JwksBehaviour::Serve);
    let results: Vec<(&str, Counts)> = runs
        .into_iter()
        .map(|(name, child)| (name, counts(&child.wait_with_output().unwrap())))
        .collect();
    let fetches = issuer.jwks_fetches() - fetches_start;
    let (rss_end, rss_peak) = memory_kib(pid);

    println!();
    println!(
        "soak: {seconds} s of wrk (3 runs, 1 thread and 8 connections each), a key rotation every {} s, issuer down {} s from {} s",
        rotate_every.as_secs(),
        outage.as_secs(),
        outage_from.as_secs()
    );
    println!(
        "{:<8} {:>10} {:>9} {:>8} {:>5} {:>13} {:>9}",
        "tokens", "requests", "req/s", "non-2xx", "5xx", "socket errors", "p99 ms"
    );
    for (name, c) in &results {
        println!(
            "{:<8} {:>10} {:>9.0} {:>8} {:>5} {:>13} {:>9.1}",
            name,
            c.requests,
            c.requests as f64 / seconds as f64,
            c.non2xx,
            c.server_errors,
            c.socket_errors,
            c.p99_us as f64 / 1000.0
        );
    }
    let served: u64 = results.iter().map(|(_, c)| c.requests).sum();
    let valid_refused: u64 = results
        .iter()
        .filter(|(n, _)| *n != "invalid")
        .map(|(_, c)| c.non2xx)
        .sum();
    let server_errors: u64 = results.iter().map(|(_, c)| c.server_errors).sum();
    println!("requests served: {served}");
    println!("non-2xx for valid tokens: {valid_refused}");
    println!("5xx: {server_errors}");
    println!("JWKS fetches: {fetches} ({outage_fetches} during the outage)");
    println!(
        "server memory: resident {:.1} MiB at start, {:.1} MiB at end; peak {:.1} MiB at start, {:.1} MiB at end",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        peak_start as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );

    assert_eq!(valid_refused, 0, "valid tokens were refused");
    assert_eq!(server_errors, 0, "the server answered 5xx");
    let invalid = &results.iter().find(|(n, _)| *n == "invalid").unwrap().1;
    assert_eq!(
        invalid.non2xx, invalid.requests,
        "a forged token was accepted"
    );
    assert!(
        results.iter().all(|(_, c)| c.socket_errors == 0),
        "socket errors"
    );
    assert!(
        fetches >= 2 && outage_fetches >= 1,
        "the issuer was polled through the run"
    );
    // Noise allowance: allocator caches and per-connection buffers settle within a few MiB.
    assert!(
        rss_end <= rss_start + rss_start / 5 + 4096
            && rss_peak <= peak_start + peak_start / 5 + 4096,
        "memory grew: resident {rss_start} -> {rss_end} KiB, peak {peak_start} -> {rss_peak} KiB"
    );
}
