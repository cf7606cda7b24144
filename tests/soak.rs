//! Soak: the release binary under load from wrk while its issuer rotates keys and goes down.
//!
//! Not part of `make test` (it is `#[ignore]`d): `make soak` runs it for 60 s, `make
//! soak-short` (in CI) for 10 s; `SOAK_SECS` sets the length. It needs `wrk`, which both
//! targets install when missing. It prints what it measured and fails when a valid token was
//! refused, when any answer was a 5xx, or when the server's memory grew beyond noise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Child;
use std::time::Duration;

use hello_world_api::issuer::{Issuer, JwksBehaviour, SigningKey};

use test_support::load::{self, Counts, counts, script, start_server, wrk};
use test_support::{binary, empty_dir, now, serve_issuer, tokens};

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

    let dir = empty_dir("soak");
    let (server, port) = start_server(
        binary!(),
        &dir,
        &issuer_url,
        &[
            ("APP__JWKS__REFRESH_INTERVAL_SECS", "2"),
            ("APP__JWKS__RETRY_INITIAL_SECS", "1"),
            ("APP__JWKS__RETRY_MAX_SECS", "4"),
            // A rotated key is fetched on its first token, not at the next periodic refresh.
            ("APP__JWKS__UNKNOWN_KID_COOLDOWN_SECS", "0.5"),
        ],
    );
    // The schedule: every rotate_every seconds (in Unix time, which wrk's Lua reads too) a
    // new key is published a second ahead and the loads switch to tokens it signed, except
    // around the outage, when no new key could be fetched. Invalid tokens: a published kid
    // with another key's signature, which never triggers a fetch.
    let run_start = now() + 4;
    let outage_from = Duration::from_secs(seconds) / 2 - outage / 2;
    let (outage_start, outage_end) = (
        run_start + outage_from.as_secs(),
        run_start + (outage_from + outage).as_secs(),
    );
    let mut valid_phases = vec![(0, tokens(&keys[0], &issuer_url, "user", 50, false))];
    let mut admin_phases = vec![(0, tokens(&keys[1], &issuer_url, "admin", 25, true))];
    let mut rotations: Vec<(u64, usize)> = Vec::new();
    let mut at = run_start + rotate_every.as_secs();
    while at < run_start + seconds {
        if at + 1 < outage_start || at > outage_end + 1 {
            let key = 2 + rotations.len() % 5;
            rotations.push((at, key));
            let sub = format!("phase-{at}");
            valid_phases.push((at, tokens(&keys[key], &issuer_url, &sub, 20, false)));
            admin_phases.push((at, tokens(&keys[key], &issuer_url, &sub, 10, true)));
        }
        at += rotate_every.as_secs();
    }
    let impostor = SigningKey::from_pkcs8_pem("soak-0", keys[7].private_pem()).unwrap();
    let invalid = tokens(&impostor, &issuer_url, "forged", 100, true);
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.join("valid.lua"),
        load::phased_script("/api/messages/protected", &valid_phases),
    )
    .unwrap();
    std::fs::write(
        dir.join("admin.lua"),
        load::phased_script("/api/messages/admin", &admin_phases),
    )
    .unwrap();
    std::fs::write(
        dir.join("invalid.lua"),
        script("/api/messages/protected", &invalid),
    )
    .unwrap();
    std::fs::write(
        dir.join("warmup.lua"),
        script("/api/messages/protected", &valid_phases[0].1),
    )
    .unwrap();

    // Warm-up, then the resident memory the run starts from.
    wrk(&dir, "warmup", &base, 8, 2).wait_with_output().unwrap();
    let (rss_start, peak_start) = server.memory_kib();
    let fetches_start = issuer.jwks_fetches();

    // Start the loads on the schedule's first second.
    while now() < run_start {
        std::thread::sleep(Duration::from_millis(20));
    }
    let runs: Vec<(&str, Child)> = ["valid", "admin", "invalid"]
        .into_iter()
        .map(|name| (name, wrk(&dir, name, &base, 8, seconds)))
        .collect();
    let mut down = false;
    let mut outage_fetches = 0;
    let mut published: Vec<String> = Vec::new();
    let mut next_rotation = 0;
    while now() < run_start + seconds {
        std::thread::sleep(Duration::from_millis(50));
        let now = now();
        if !down && now >= outage_start && now < outage_end {
            issuer.set_behaviour(JwksBehaviour::Fail(503));
            outage_fetches = issuer.jwks_fetches();
            down = true;
        } else if down && now >= outage_end {
            issuer.set_behaviour(JwksBehaviour::Serve);
            outage_fetches = issuer.jwks_fetches() - outage_fetches;
            down = false;
        }
        // Publish each rotation's key a second before its tokens are used; keep the two
        // newest rotated keys (tokens of the previous one may still be in flight).
        if let Some(&(at, key)) = rotations.get(next_rotation)
            && now + 1 >= at
        {
            issuer.publish(keys[key].clone());
            published.push(keys[key].kid().to_owned());
            if published.len() > 2 {
                let retired = published.remove(0);
                if !published.contains(&retired) {
                    issuer.unpublish(&retired);
                }
            }
            next_rotation += 1;
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
        "soak: {seconds} s of wrk (3 runs, 1 thread and 8 connections each), {} key rotations (every {} s, tokens of each new key used from its first second), issuer down {} s from {} s",
        rotations.len(),
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

    for name in ["valid", "admin"] {
        let reached = results.iter().find(|(n, _)| *n == name).unwrap().1.phase;
        assert_eq!(
            reached,
            rotations.len() as u64 + 1,
            "{name}: the load used the tokens of every rotated key"
        );
    }
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
