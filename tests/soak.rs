//! Soak: the release binary under load from wrk while its issuer rotates keys and goes down.
//!
//! Not part of `make test` (it is `#[ignore]`d): `make soak` runs it for 60 s, `make
//! soak-short` (in CI) for 10 s; `SOAK_SECS` sets the length. It needs `wrk`, which both
//! targets install when missing. It prints what it measured and fails when a valid token was
//! refused, when any answer was a 5xx, or when the server's memory grew beyond noise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "load/mod.rs"]
mod load;

use std::process::Child;
use std::time::{Duration, Instant};

use hello_world_api::issuer::{Issuer, JwksBehaviour, SigningKey};

use load::{Counts, Server, counts, script, serve_issuer, tokens, work_dir, wrk};

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
    let issuer_url = serve_issuer(&issuer);

    let dir = work_dir("soak");
    let (server, port) = Server::start(
        &dir,
        &issuer_url,
        &[
            ("APP__JWKS__REFRESH_INTERVAL_SECS", "2"),
            ("APP__JWKS__RETRY_INITIAL_SECS", "1"),
            ("APP__JWKS__RETRY_MAX_SECS", "4"),
        ],
    );
    let mut valid = tokens(&keys[0], &issuer_url, "user", 50, false);
    valid.extend(tokens(&keys[1], &issuer_url, "user-b", 50, false));
    let mut admin = tokens(&keys[0], &issuer_url, "admin", 25, true);
    admin.extend(tokens(&keys[1], &issuer_url, "admin-b", 25, true));
    // Published kid, unpublished key: a bad signature, which never triggers a fetch.
    let impostor = SigningKey::from_pkcs8_pem("soak-0", keys[7].private_pem()).unwrap();
    let invalid = tokens(&impostor, &issuer_url, "forged", 100, true);
    let base = format!("http://127.0.0.1:{port}");
    for (name, path, tokens) in [
        ("valid", "/api/messages/protected", &valid),
        ("admin", "/api/messages/admin", &admin),
        ("invalid", "/api/messages/protected", &invalid),
    ] {
        std::fs::write(dir.join(format!("{name}.lua")), script(path, tokens)).unwrap();
    }

    // Warm-up, then the resident memory the run starts from.
    wrk(&dir, "valid", &base, 8, 2).wait_with_output().unwrap();
    let (rss_start, peak_start) = server.memory_kib();
    let fetches_start = issuer.jwks_fetches();

    let started = Instant::now();
    let runs: Vec<(&str, Child)> = ["valid", "admin", "invalid"]
        .into_iter()
        .map(|name| (name, wrk(&dir, name, &base, 8, seconds)))
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
    let (rss_end, rss_peak) = server.memory_kib();

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
            c.per_second(),
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
