//! The load benchmark behind `make bench`: the release binary against a loopback issuer,
//! driven by wrk (1 thread, 32 connections, 10 s after a 2 s warm-up) route by route in one
//! run, with every figure also written as JSON under `target/bench/`.
//!
//! Speed is reported as ratios to the public route measured in the same run; the targets are
//! printed with the table, not asserted (this machine is shared and noisy). The run fails
//! only on wrong answers: a refused valid token, a 5xx, or a JWKS fetch during the load.
//! `BENCH_SECS` and `BENCH_CONNECTIONS` change the length and the connection count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hello_world_api::issuer::{Issuer, SigningKey};
use serde_json::json;

use test_support::load::{Counts, counts, script, start_server, wrk};
use test_support::{binary, empty_dir, now, serve_issuer, tokens};

struct Scenario {
    name: &'static str,
    path: &'static str,
    tokens: Vec<String>,
    /// Expected share of public's req/s, and whether its answers are refusals.
    target: f64,
    refusals: bool,
}

#[test]
#[ignore = "needs wrk and a release build: run with make bench"]
fn load_benchmark() {
    let seconds: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let connections: u32 = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let key = SigningKey::generate("bench-0").unwrap();
    let issuer = Issuer::new(key.clone());
    let issuer_url = serve_issuer(&issuer);
    let dir = empty_dir("bench");
    let (server, port) = start_server(binary!(), &dir, &issuer_url, &[]);
    let impostor =
        SigningKey::from_pkcs8_pem("bench-0", SigningKey::generate("x").unwrap().private_pem())
            .unwrap();
    let scenarios = [
        Scenario {
            name: "public",
            path: "/api/messages/public",
            tokens: vec![],
            target: 1.0,
            refusals: false,
        },
        Scenario {
            name: "protected, 1 token",
            path: "/api/messages/protected",
            tokens: tokens(&key, &issuer_url, "one", 1, false),
            target: 0.9,
            refusals: false,
        },
        Scenario {
            name: "protected, 1000 tokens",
            path: "/api/messages/protected",
            tokens: tokens(&key, &issuer_url, "many", 1000, false),
            target: 0.85,
            refusals: false,
        },
        Scenario {
            name: "admin",
            path: "/api/messages/admin",
            tokens: tokens(&key, &issuer_url, "admin", 100, true),
            target: 0.85,
            refusals: false,
        },
        Scenario {
            name: "invalid signature",
            path: "/api/messages/protected",
            tokens: tokens(&impostor, &issuer_url, "forged", 100, false),
            target: 0.3,
            refusals: true,
        },
    ];
    let base = format!("http://127.0.0.1:{port}");
    let mut results: Vec<(Counts, u64, u64)> = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let name = format!("scenario-{index}");
        std::fs::write(
            dir.join(format!("{name}.lua")),
            script(scenario.path, &scenario.tokens),
        )
        .unwrap();
        wrk(&dir, &name, &base, connections, 2)
            .wait_with_output()
            .unwrap();
        let fetches = issuer.jwks_fetches();
        let run = counts(
            &wrk(&dir, &name, &base, connections, seconds)
                .wait_with_output()
                .unwrap(),
        );
        let (_, peak) = server.memory_kib();
        results.push((run, issuer.jwks_fetches() - fetches, peak));
        std::thread::sleep(Duration::from_millis(200));
    }

    let public = results[0].0.per_second();
    println!();
    println!(
        "make bench: wrk -t1 -c{connections} -d{seconds}s per route after a 2 s warm-up, release build, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<24} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9} {:>8} {:>7}",
        "route",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "fetches",
        "peak MiB",
        "× public",
        "target"
    );
    let mut report = Vec::new();
    let mut all_met = true;
    for (scenario, (run, fetches, peak)) in scenarios.iter().zip(&results) {
        let ratio = run.per_second() / public;
        let met = ratio >= scenario.target;
        all_met &= met;
        println!(
            "{:<24} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>7} {:>9.1} {:>8.2} {:>7}",
            scenario.name,
            run.per_second(),
            run.p50_us as f64 / 1000.0,
            run.p99_us as f64 / 1000.0,
            run.non2xx,
            fetches,
            *peak as f64 / 1024.0,
            ratio,
            format!("{}{:.2}", if met { "≥" } else { "✗ " }, scenario.target)
        );
        report.push(json!({
            "route": scenario.name,
            "path": scenario.path,
            "requests": run.requests,
            "requests_per_second": run.per_second(),
            "p50_ms": run.p50_us as f64 / 1000.0,
            "p99_ms": run.p99_us as f64 / 1000.0,
            "non_2xx": run.non2xx,
            "server_errors": run.server_errors,
            "jwks_fetches": fetches,
            "peak_rss_mib": *peak as f64 / 1024.0,
            "ratio_to_public": ratio,
            "target_ratio": scenario.target,
        }));
    }
    let peak = results.iter().map(|(_, _, p)| *p).max().unwrap_or(0) as f64 / 1024.0;
    println!("server peak RSS over the run: {peak:.1} MiB (target ≤ 32)");
    println!(
        "targets: {}",
        if all_met && peak <= 32.0 {
            "all met"
        } else {
            "NOT all met"
        }
    );

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let document = json!({
        "wrk": {"threads": 1, "connections": connections, "seconds": seconds},
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "results": report,
        "peak_rss_mib": peak,
    });
    let text = serde_json::to_string_pretty(&document).unwrap();
    std::fs::write(out.join("latest.json"), &text).unwrap();
    std::fs::write(out.join(format!("bench-{}.json", now())), &text).unwrap();
    println!("figures written to target/bench/latest.json");

    for (scenario, (run, fetches, _)) in scenarios.iter().zip(&results) {
        assert_eq!(run.server_errors, 0, "{}: 5xx", scenario.name);
        assert_eq!(run.socket_errors, 0, "{}: socket errors", scenario.name);
        assert_eq!(
            *fetches, 0,
            "{}: JWKS fetched during the load",
            scenario.name
        );
        if scenario.refusals {
            assert_eq!(
                run.non2xx, run.requests,
                "{}: a forged token was accepted",
                scenario.name
            );
        } else {
            assert_eq!(run.non2xx, 0, "{}: valid requests refused", scenario.name);
        }
    }
}
