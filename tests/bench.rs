//! The load benchmark behind `make bench`: the release binary against a loopback issuer,
//! driven by wrk (1 thread, 32 connections, 5 s runs after a 1 s warm-up) route by route in
//! one run, with every figure also written as JSON under `target/bench/`.
//!
//! The same run measures a bare actix-web 4 baseline (`tests/baseline/bare_actix.rs`: one
//! hello handler, no middleware, the same worker count). Each route with a target is measured
//! in rounds, each round a run of the route next to a run of the baseline sent the same
//! requests, the order alternating; the ratios printed are medians of the per-round ratios of
//! req/s and of the server's CPU time per request (utime + stime from `/proc/PID/stat` around
//! each run, over the requests wrk completed). Public's rounds also measure the baseline
//! sending the API's added response headers (read from the API's public answer), to tell what
//! the headers cost apart from what our code costs. A scenario sends ~8 KiB tokens with large
//! custom claims, many distinct ones, to a fresh server and reports its peak RSS; the last
//! sends a DPoP-bound token with a fresh ES256 proof per request (target ≥ 0.3× public, the
//! replay store within the RSS target).
//!
//! Targets are printed with the table, not asserted (this machine is shared and noisy): public
//! ≥ 0.85× the baseline's req/s, protected and admin ≥ 0.8×; the older targets as ratios to
//! public stay too. The run fails only on wrong answers: a refused valid token, a 5xx, or a
//! JWKS fetch during the load. `BENCH_SECS`, `BENCH_ROUNDS`, `BENCH_CONNECTIONS` and
//! `BENCH_WORKERS` change the length of a run, the rounds per route, the connection count and
//! the worker count of both servers (default: one per core).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hello_world_api::auth::dpop::ClientKey;
use hello_world_api::issuer::{Issuer, SigningKey};
use serde_json::{Value, json};

use test_support::load::{Counts, counts, lean_script, script, start_server, wrk};
use test_support::{
    AUDIENCE, Running, binary, empty_dir, free_port, now, serve_issuer, subject_claims, tokens,
    wait_for_port,
};

/// The memory scenario: this many distinct tokens, each just under `auth.max_token_bytes`
/// (8192 by default).
const LARGE_TOKENS: usize = 2000;
const LARGE_TOKEN_BYTES: usize = 8192 - 32;

struct Scenario {
    name: &'static str,
    path: &'static str,
    tokens: Vec<String>,
    /// Expected share of public's req/s (the older targets).
    target: f64,
    /// Expected share of the bare baseline's req/s, for the routes that have one.
    bare_target: Option<f64>,
    /// Whether its answers are refusals.
    refusals: bool,
}

/// One measured wrk run and the server's CPU time during it.
#[derive(Clone, Copy)]
struct Measured {
    run: Counts,
    cpu_us_per_request: f64,
    /// JWKS fetches during the measured run.
    fetches: u64,
    /// The server's peak RSS (VmHWM) after the run, in KiB.
    peak_kib: u64,
}

#[test]
#[ignore = "needs wrk and a release build: run with make bench"]
fn load_benchmark() {
    let seconds: u64 = env_or("BENCH_SECS", 5);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let connections: u32 = env_or("BENCH_CONNECTIONS", 32);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers: usize = env_or("BENCH_WORKERS", cores);
    let ticks = clock_ticks_per_second();
    let bare_binary = bare_actix_binary();

    let key = SigningKey::generate("bench-0").unwrap();
    let issuer = Issuer::new(key.clone());
    let issuer_url = serve_issuer(&issuer);
    let dir = empty_dir("bench");
    let worker_setting = workers.to_string();
    let api_settings = [("APP__SERVER__WORKERS", worker_setting.as_str())];
    let (server, port) = start_server(binary!(), &dir, &issuer_url, &api_settings);
    let (bare, bare_port) = start_bare(&bare_binary, &dir, workers, &[]);
    let bare_url = format!("http://127.0.0.1:{bare_port}");
    // The baseline again, sending what the API adds to its public answer (security headers,
    // Vary, a request id): what those headers cost, apart from what our code costs.
    let added = added_headers(port, "/api/messages/public");
    let (dressed, dressed_port) = start_bare(&bare_binary, &dir, workers, &added);
    let dressed_url = format!("http://127.0.0.1:{dressed_port}");
    let impostor =
        SigningKey::from_pkcs8_pem("bench-0", SigningKey::generate("x").unwrap().private_pem())
            .unwrap();
    let scenarios = [
        Scenario {
            name: "public",
            path: "/api/messages/public",
            tokens: vec![],
            target: 1.0,
            bare_target: Some(0.85),
            refusals: false,
        },
        Scenario {
            name: "protected, 1 token",
            path: "/api/messages/protected",
            tokens: tokens(&key, &issuer_url, "one", 1, false),
            target: 0.9,
            bare_target: Some(0.8),
            refusals: false,
        },
        Scenario {
            name: "protected, 1000 tokens",
            path: "/api/messages/protected",
            tokens: tokens(&key, &issuer_url, "many", 1000, false),
            target: 0.85,
            bare_target: Some(0.8),
            refusals: false,
        },
        Scenario {
            name: "admin",
            path: "/api/messages/admin",
            tokens: tokens(&key, &issuer_url, "admin", 100, true),
            target: 0.85,
            bare_target: Some(0.8),
            refusals: false,
        },
        Scenario {
            name: "invalid signature",
            path: "/api/messages/protected",
            tokens: tokens(&impostor, &issuer_url, "forged", 100, false),
            target: 0.3,
            bare_target: None,
            refusals: true,
        },
    ];
    let large = large_tokens(&key, &issuer_url, LARGE_TOKENS, LARGE_TOKEN_BYTES);
    let large_bytes = large.iter().map(String::len).sum::<usize>() / large.len();

    let run = |name: &str, url: &str, sent: Sent, target: &Running, issuer| {
        measure(
            &dir,
            name,
            url,
            sent,
            (connections, seconds),
            target,
            issuer,
            ticks,
        )
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut results: Vec<Paired> = Vec::new();
    // Public's rounds, with the dressed baseline's run next to them.
    let mut dressed_rounds: Vec<Measured> = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let name = format!("scenario-{index}");
        let bare_name = format!("bare-{index}");
        let mut paired = Paired::default();
        // Adjacent pairs, the order alternating round by round, so that a change in what
        // else the machine does between rounds reaches both sides of each ratio alike.
        let scenario_rounds = if scenario.bare_target.is_some() {
            rounds
        } else {
            1
        };
        for round in 0..scenario_rounds {
            let sent = Sent {
                path: scenario.path,
                tokens: &scenario.tokens,
                refusals: scenario.refusals,
            };
            let measure_scenario = || run(&name, &base, sent, &server, Some(&issuer));
            // The baseline is sent exactly what the scenario sends (the same wrk script, the
            // same headers; the bare handler ignores them), so wrk's own cost is the same on
            // both sides and the ratio measures the servers alone.
            let to_bare = Sent {
                path: "/hello",
                ..sent
            };
            let measure_bare = || run(&bare_name, &bare_url, to_bare, &bare, None);
            let measure_dressed =
                || (index == 0).then(|| run("dressed", &dressed_url, to_bare, &dressed, None));
            let (ours, theirs, with_headers) = if round % 2 == 0 {
                let theirs = measure_bare();
                let with_headers = measure_dressed();
                (measure_scenario(), theirs, with_headers)
            } else {
                let ours = measure_scenario();
                let with_headers = measure_dressed();
                (ours, measure_bare(), with_headers)
            };
            paired.push(ours, theirs);
            dressed_rounds.extend(with_headers);
        }
        results.push(paired);
    }
    drop(server);
    drop(bare);
    drop(dressed);

    // On a fresh server, so its peak RSS is this scenario's own.
    let (server, port) = start_server(binary!(), &dir, &issuer_url, &api_settings);
    std::thread::sleep(Duration::from_millis(500));
    let (_, idle_kib) = server.memory_kib();
    let path = "/api/messages/protected";
    let url = format!("http://127.0.0.1:{port}");
    let sent = Sent {
        path,
        tokens: &large,
        refusals: false,
    };
    let memory = run("large-tokens", &url, sent, &server, Some(&issuer));
    drop(server);
    // 16 MiB of tokens: not left behind in the temporary directory.
    let _ = std::fs::remove_file(dir.join("large-tokens.lua"));

    // DPoP, on a fresh server too: its peak RSS includes the replay store it fills. Proofs
    // for at most 0.6× public's rate (verifying one costs an ECDSA check).
    let proofs =
        ((results[0].ours[0].run.per_second() * 0.6) as usize * (seconds as usize + 1)).max(20_000);
    let dpop = dpop_run(
        &dir,
        (&issuer, &issuer_url),
        &api_settings,
        (connections, seconds),
        ticks,
        proofs,
    );

    let pooled: Vec<(Measured, Measured)> = results
        .iter()
        .map(|p| (pool(&p.ours), pool(&p.bare)))
        .collect();
    let public = pooled[0].0.run.per_second();
    println!();
    println!(
        "make bench: wrk -t1 -c{connections} -d{seconds}s per run after a 1 s warm-up, {rounds} rounds next to the baseline per route, release build, {cores} cores, {workers} workers"
    );
    println!(
        "{:<24} {:>8} {:>8} {:>6} {:>11} {:>6} {:>6} {:>6} {:>7} {:>11} {:>7} {:>6} {:>6} {:>6} {:>7} {:>8}",
        "scenario",
        "req/s",
        "bare",
        "× bare",
        "rounds",
        "CPU µs",
        "bare",
        "× bare",
        "non-2xx",
        "vs bare",
        "×public",
        "target",
        "p50 ms",
        "p99 ms",
        "fetches",
        "peak MiB",
    );
    let mut report = Vec::new();
    let mut all_met = true;
    let mut misses = Vec::new();
    for ((scenario, paired), (ours, theirs)) in scenarios.iter().zip(&results).zip(&pooled) {
        let run = &ours.run;
        let ratio = run.per_second() / public;
        let met = ratio >= scenario.target;
        all_met &= met;
        let (to_bare, low, high) = paired.ratios(|m| m.run.per_second());
        let (cpu_to_bare, _, _) = paired.ratios(|m| m.cpu_us_per_request);
        let bare_met = scenario.bare_target.map(|target| to_bare >= target);
        if bare_met == Some(false) {
            misses.push(scenario.name);
        }
        let verdict = scenario.bare_target.map_or_else(
            || "-".to_owned(),
            |target| {
                let word = if to_bare >= target { "PASS" } else { "MISS" };
                format!("{word} ≥{target:.2}")
            },
        );
        row(
            scenario.name,
            (ours, theirs),
            (to_bare, low, high, cpu_to_bare),
            [
                &verdict,
                &format!("{ratio:.2}"),
                &format!("{}{:.2}", if met { "≥" } else { "✗ " }, scenario.target),
            ],
        );
        report.push(json!({
            "route": scenario.name,
            "path": scenario.path,
            "rounds": paired.ours.len(),
            "requests": run.requests,
            "requests_per_second": run.per_second(),
            "p50_ms": run.p50_us as f64 / 1000.0,
            "p99_ms": run.p99_us as f64 / 1000.0,
            "non_2xx": run.non2xx,
            "server_errors": run.server_errors,
            "jwks_fetches": ours.fetches,
            "peak_rss_mib": ours.peak_kib as f64 / 1024.0,
            "ratio_to_public": ratio,
            "target_ratio": scenario.target,
            "cpu_us_per_request": ours.cpu_us_per_request,
            "baseline": bare_json(theirs),
            "ratio_to_baseline": to_bare,
            "ratio_to_baseline_per_round": paired.per_round(|m| m.run.per_second()),
            "cpu_ratio_to_baseline": cpu_to_bare,
            "target_ratio_to_baseline": scenario.bare_target,
            "meets_baseline_target": bare_met,
        }));
    }
    let memory_name = format!(
        "protected, {LARGE_TOKENS} × {:.0} KiB",
        large_bytes as f64 / 1024.0
    );
    row(
        &memory_name,
        (&memory, &memory),
        (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        [
            "-",
            &format!("{:.2}", memory.run.per_second() / public),
            "-",
        ],
    );
    report.push(json!({
        "route": "protected, large tokens",
        "path": path,
        "tokens": LARGE_TOKENS,
        "token_bytes": large_bytes,
        "requests": memory.run.requests,
        "requests_per_second": memory.run.per_second(),
        "p50_ms": memory.run.p50_us as f64 / 1000.0,
        "p99_ms": memory.run.p99_us as f64 / 1000.0,
        "non_2xx": memory.run.non2xx,
        "server_errors": memory.run.server_errors,
        "jwks_fetches": memory.fetches,
        "idle_rss_mib": idle_kib as f64 / 1024.0,
        "peak_rss_mib": memory.peak_kib as f64 / 1024.0,
        "ratio_to_public": memory.run.per_second() / public,
        "cpu_us_per_request": memory.cpu_us_per_request,
    }));
    let dpop_ratio = dpop.run.per_second() / public;
    row(
        "protected, DPoP",
        (&dpop, &dpop),
        (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        [
            "-",
            &format!("{dpop_ratio:.2}"),
            &format!("{}0.30", if dpop_ratio >= 0.3 { "≥" } else { "✗ " }),
        ],
    );
    report.push(json!({
        "route": "protected, DPoP",
        "path": "/api/messages/protected",
        "proofs": proofs,
        "requests": dpop.run.requests,
        "requests_per_second": dpop.run.per_second(),
        "p50_ms": dpop.run.p50_us as f64 / 1000.0,
        "p99_ms": dpop.run.p99_us as f64 / 1000.0,
        "non_2xx": dpop.run.non2xx,
        "server_errors": dpop.run.server_errors,
        "peak_rss_mib": dpop.peak_kib as f64 / 1024.0,
        "ratio_to_public": dpop_ratio,
        "target_ratio": 0.3,
        "cpu_us_per_request": dpop.cpu_us_per_request,
    }));
    println!(
        "× bare: the median over the rounds of the route's req/s (or CPU µs) over the baseline's in the run next to it, which was sent the same requests; rounds: the lowest and highest"
    );
    // The dressed baseline against the bare one, and public against the dressed one, round by
    // round.
    let dressed_vs_bare = Paired {
        ours: dressed_rounds.clone(),
        bare: results[0].bare.clone(),
    };
    let public_vs_dressed = Paired {
        ours: results[0].ours.clone(),
        bare: dressed_rounds.clone(),
    };
    let (headers_cost, headers_low, headers_high) = dressed_vs_bare.ratios(|m| m.run.per_second());
    let (headers_cpu, _, _) = dressed_vs_bare.ratios(|m| m.cpu_us_per_request);
    let (ours_vs_dressed, dressed_low, dressed_high) =
        public_vs_dressed.ratios(|m| m.run.per_second());
    let (ours_vs_dressed_cpu, _, _) = public_vs_dressed.ratios(|m| m.cpu_us_per_request);
    println!(
        "the baseline sending the API's {} added response headers too (DefaultHeaders): {headers_cost:.2}× bare's req/s ({headers_low:.2}–{headers_high:.2}), CPU µs {headers_cpu:.2}×; public against it: {ours_vs_dressed:.2}× ({dressed_low:.2}–{dressed_high:.2}), CPU µs {ours_vs_dressed_cpu:.2}×",
        added.len()
    );
    let peak = pooled.iter().map(|(m, _)| m.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
    let bare_peak = pooled.iter().map(|(_, b)| b.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
    println!(
        "server peak RSS over the run: {peak:.1} MiB (target ≤ 32; the baseline's {bare_peak:.1} MiB)"
    );
    println!(
        "{memory_name} tokens (fresh server, idle {:.1} MiB): peak RSS {:.1} MiB (target ≤ 32, with cache.max_bytes at its default)",
        idle_kib as f64 / 1024.0,
        memory.peak_kib as f64 / 1024.0,
    );
    println!(
        "protected, DPoP ({proofs} proofs, one per request, fresh server): {dpop_ratio:.2}× public (target ≥ 0.30), peak RSS {:.1} MiB with the replay store (target ≤ 32)",
        dpop.peak_kib as f64 / 1024.0,
    );
    let dpop_met = dpop_ratio >= 0.3 && dpop.peak_kib as f64 / 1024.0 <= 32.0;
    println!(
        "targets against public: {}",
        if all_met && dpop_met && peak <= 32.0 && memory.peak_kib as f64 / 1024.0 <= 32.0 {
            "all met"
        } else {
            "NOT all met"
        }
    );
    println!(
        "targets against the bare baseline (public ≥ 0.85, protected and admin ≥ 0.80): {}",
        if misses.is_empty() {
            "all PASS".to_owned()
        } else {
            format!("MISS for {}", misses.join("; "))
        }
    );

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let document = json!({
        "wrk": {"threads": 1, "connections": connections, "seconds": seconds, "rounds": rounds},
        "cores": cores,
        "workers": workers,
        "clock_ticks_per_second": ticks,
        "baseline": {
            "program": "tests/baseline/bare_actix.rs (example bare-actix)",
            "path": "/hello",
            "peak_rss_mib": bare_peak,
        },
        "baseline_with_headers": {
            "headers": added.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
            "requests_per_second": pool(&dressed_rounds).run.per_second(),
            "cpu_us_per_request": pool(&dressed_rounds).cpu_us_per_request,
            "ratio_to_baseline": headers_cost,
            "ratio_to_baseline_per_round": dressed_vs_bare.per_round(|m| m.run.per_second()),
            "cpu_ratio_to_baseline": headers_cpu,
            "public_ratio_to_it": ours_vs_dressed,
            "public_cpu_ratio_to_it": ours_vs_dressed_cpu,
        },
        "results": report,
        "peak_rss_mib": peak,
        "large_tokens_peak_rss_mib": memory.peak_kib as f64 / 1024.0,
    });
    let text = serde_json::to_string_pretty(&document).unwrap();
    std::fs::write(out.join("latest.json"), &text).unwrap();
    std::fs::write(out.join(format!("bench-{}.json", now())), &text).unwrap();
    println!("figures written to target/bench/latest.json");

    let dressed_run = pool(&dressed_rounds).run;
    assert_eq!(
        dressed_run.non2xx, 0,
        "baseline with headers: non-2xx answers"
    );
    assert_eq!(
        dressed_run.socket_errors, 0,
        "baseline with headers: socket errors"
    );
    for (scenario, (_, bare)) in scenarios.iter().zip(&pooled) {
        assert_eq!(
            bare.run.non2xx, 0,
            "baseline next to {}: non-2xx answers",
            scenario.name
        );
        assert_eq!(
            bare.run.socket_errors, 0,
            "baseline next to {}: socket errors",
            scenario.name
        );
    }
    let checked = scenarios
        .iter()
        .map(|s| (s.name, s.refusals))
        .chain([("large tokens", false), ("DPoP", false)]);
    for ((name, refusals), measured) in
        checked.zip(pooled.iter().map(|(m, _)| m).chain([&memory, &dpop]))
    {
        let run = &measured.run;
        assert_eq!(run.server_errors, 0, "{name}: 5xx");
        assert_eq!(run.socket_errors, 0, "{name}: socket errors");
        assert_eq!(measured.fetches, 0, "{name}: JWKS fetched during the load");
        if refusals {
            assert_eq!(
                run.non2xx, run.requests,
                "{name}: a forged token was accepted"
            );
        } else {
            assert_eq!(run.non2xx, 0, "{name}: valid requests refused");
        }
    }
}

/// A fresh server sent one DPoP-bound token with a new ES256 proof on every request: a proof is
/// good once, so `count` of them are made just before the run, one per line of a file wrk
/// reads as it goes (and a warm-up of its own). A proof used twice would be refused and fail
/// the run.
fn dpop_run(
    dir: &Path,
    (issuer, issuer_url): (&Issuer, &str),
    api_settings: &[(&str, &str)],
    (connections, seconds): (u32, u64),
    ticks_per_second: f64,
    count: usize,
) -> Measured {
    let (server, port) = start_server(binary!(), dir, issuer_url, api_settings);
    let key = ClientKey::generate().unwrap();
    let mut claims = subject_claims(issuer_url, "dpop", false);
    claims["cnf"] = json!({ "jkt": key.thumbprint() });
    let token = issuer.sign(&claims).unwrap();
    let path = "/api/messages/protected";
    let url = format!("http://127.0.0.1:{port}");
    let target = format!("{url}{path}");
    let prepare = |name: &str, count: usize| {
        let proofs = dir.join(format!("{name}.proofs"));
        let mut text = String::with_capacity(count * 600);
        for _ in 0..count {
            let proof = key
                .proof("GET", &target, Some(&token), None, now())
                .unwrap();
            text.push_str(&proof);
            text.push('\n');
        }
        std::fs::write(&proofs, text).unwrap();
        std::fs::write(
            dir.join(format!("{name}.lua")),
            dpop_script(path, &token, &proofs),
        )
        .unwrap();
        proofs
    };
    let warm_proofs = prepare("dpop-warm-up", count / 4);
    wrk(dir, "dpop-warm-up", &url, connections, 1)
        .wait_with_output()
        .unwrap();
    let proofs = prepare("dpop", count);
    let before = cpu_ticks(server.0.id());
    let run = counts(
        &wrk(dir, "dpop", &url, connections, seconds)
            .wait_with_output()
            .unwrap(),
    );
    let spent = cpu_ticks(server.0.id()) - before;
    let (_, peak_kib) = server.memory_kib();
    let _ = std::fs::remove_file(warm_proofs);
    let _ = std::fs::remove_file(proofs);
    Measured {
        run,
        cpu_us_per_request: spent as f64 / ticks_per_second * 1e6 / run.requests.max(1) as f64,
        fetches: 0,
        peak_kib,
    }
}

/// The wrk script of [`dpop_run`]: `Authorization: DPoP <token>` and the next proof of the file.
fn dpop_script(path: &str, token: &str, proofs: &Path) -> String {
    format!(
        r#"local proofs = io.open("{}", "r")
function request()
  local proof = proofs:read("*l")
  if proof == nil then proofs:seek("set"); proof = proofs:read("*l") end
  return wrk.format("GET", "{path}", {{ ["Authorization"] = "DPoP {token}", ["DPoP"] = proof }})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LOAD requests=%d duration_us=%d non2xx=%d server_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, 0,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"#,
        proofs.display()
    )
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What a run sends: requests for `path` cycling through `tokens` (none: no Authorization
/// header); `refusals` when its answers are meant to be refusals (told apart from 5xx).
#[derive(Clone, Copy)]
struct Sent<'a> {
    path: &'a str,
    tokens: &'a [String],
    refusals: bool,
}

/// A 1 s warm-up, then the measured wrk run of `path` on `url` (cycling through `tokens`),
/// with the CPU time `server` spent meanwhile and the JWKS fetches `issuer` served.
#[allow(clippy::too_many_arguments)]
fn measure(
    dir: &Path,
    name: &str,
    url: &str,
    Sent {
        path,
        tokens,
        refusals,
    }: Sent,
    (connections, seconds): (u32, u64),
    server: &Running,
    issuer: Option<&Issuer>,
    ticks_per_second: f64,
) -> Measured {
    // Only the refusals need to tell a 5xx from a 4xx, per answer; elsewhere any non-2xx
    // answer fails the run, and wrk's cost per answer stays the same whatever the headers.
    let lua = if refusals {
        script(path, tokens)
    } else {
        lean_script(path, tokens)
    };
    std::fs::write(dir.join(format!("{name}.lua")), lua).unwrap();
    wrk(dir, name, url, connections, 1)
        .wait_with_output()
        .unwrap();
    let pid = server.0.id();
    let fetches = || issuer.map_or(0, Issuer::jwks_fetches);
    let fetched = fetches();
    let before = cpu_ticks(pid);
    let run = counts(
        &wrk(dir, name, url, connections, seconds)
            .wait_with_output()
            .unwrap(),
    );
    let spent = cpu_ticks(pid) - before;
    let (_, peak_kib) = server.memory_kib();
    std::thread::sleep(Duration::from_millis(200));
    Measured {
        run,
        cpu_us_per_request: spent as f64 / ticks_per_second * 1e6 / run.requests.max(1) as f64,
        fetches: fetches() - fetched,
        peak_kib,
    }
}

/// CPU time of process `pid` and all its threads so far (utime + stime), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // The command name (field 2) is in parentheses and may hold spaces; fields 14 and 15
    // (utime, stime) are the 12th and 13th after its closing parenthesis.
    let after = &stat[stat.rfind(')').expect("a /proc/PID/stat line") + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> u64 { fields[i].parse().expect("a tick count") };
    field(11) + field(12)
}

/// The kernel's clock ticks per second (USER_HZ), as `getconf CLK_TCK` prints it; 100 (the
/// value on every Linux architecture in use) when getconf is missing. Asked once per run.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A scenario's rounds, each measured next to a baseline run sent the same requests.
#[derive(Default)]
struct Paired {
    ours: Vec<Measured>,
    bare: Vec<Measured>,
}

impl Paired {
    fn push(&mut self, ours: Measured, bare: Measured) {
        self.ours.push(ours);
        self.bare.push(bare);
    }

    /// `figure` of each of our runs over the baseline's in the same round.
    fn per_round(&self, figure: impl Fn(&Measured) -> f64) -> Vec<f64> {
        self.ours
            .iter()
            .zip(&self.bare)
            .map(|(ours, bare)| figure(ours) / figure(bare))
            .collect()
    }

    /// The median, lowest and highest of [`Paired::per_round`].
    fn ratios(&self, figure: impl Fn(&Measured) -> f64) -> (f64, f64, f64) {
        let mut ratios = self.per_round(figure);
        ratios.sort_by(f64::total_cmp);
        let middle = ratios.len() / 2;
        let median = if ratios.len() % 2 == 1 {
            ratios[middle]
        } else {
            (ratios[middle - 1] + ratios[middle]) / 2.0
        };
        (median, ratios[0], ratios[ratios.len() - 1])
    }
}

/// Several runs as one: counts and fetches added up, CPU time per request over all their
/// requests, the worst latencies, the highest peak RSS.
fn pool(runs: &[Measured]) -> Measured {
    let mut run = Counts::default();
    let mut cpu_us = 0.0;
    for m in runs {
        run.requests += m.run.requests;
        run.duration_us += m.run.duration_us;
        run.non2xx += m.run.non2xx;
        run.server_errors += m.run.server_errors;
        run.socket_errors += m.run.socket_errors;
        run.p50_us = run.p50_us.max(m.run.p50_us);
        run.p99_us = run.p99_us.max(m.run.p99_us);
        cpu_us += m.cpu_us_per_request * m.run.requests as f64;
    }
    Measured {
        run,
        cpu_us_per_request: cpu_us / run.requests.max(1) as f64,
        fetches: runs.iter().map(|m| m.fetches).sum(),
        peak_kib: runs.iter().map(|m| m.peak_kib).max().unwrap_or(0),
    }
}

fn bare_json(m: &Measured) -> Value {
    json!({
        "requests": m.run.requests,
        "requests_per_second": m.run.per_second(),
        "cpu_us_per_request": m.cpu_us_per_request,
        "p50_ms": m.run.p50_us as f64 / 1000.0,
        "p99_ms": m.run.p99_us as f64 / 1000.0,
        "non_2xx": m.run.non2xx,
    })
}

/// One row of the table: our pooled runs and the baseline's next to them, the median ratio of
/// req/s with its range and the median ratio of CPU µs (NaN: no baseline, printed blank),
/// then the verdict against the baseline, the ratio to public and the older target.
fn row(
    name: &str,
    (ours, bare): (&Measured, &Measured),
    (to_bare, low, high, cpu_to_bare): (f64, f64, f64, f64),
    verdicts: [&str; 3],
) {
    let run = &ours.run;
    let paired = !to_bare.is_nan();
    let blank = |text: String| if paired { text } else { String::new() };
    println!(
        "{:<24} {:>8.0} {:>8} {:>6} {:>11} {:>6.1} {:>6} {:>6} {:>7} {:>11} {:>7} {:>6} {:>6.2} {:>6.2} {:>7} {:>8.1}",
        name,
        run.per_second(),
        blank(format!("{:.0}", bare.run.per_second())),
        blank(format!("{to_bare:.2}")),
        blank(format!("{low:.2}–{high:.2}")),
        ours.cpu_us_per_request,
        blank(format!("{:.1}", bare.cpu_us_per_request)),
        blank(format!("{cpu_to_bare:.2}")),
        run.non2xx,
        verdicts[0],
        verdicts[1],
        verdicts[2],
        run.p50_us as f64 / 1000.0,
        run.p99_us as f64 / 1000.0,
        ours.fetches,
        ours.peak_kib as f64 / 1024.0,
    );
}

/// The baseline program, built by `make bench` next to the release binary.
fn bare_actix_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_hello-world-api"))
        .parent()
        .expect("the binary's directory")
        .join("examples")
        .join(format!("bare-actix{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the bare actix-web baseline {} is missing: build it with \
         `cargo build --release --locked --example bare-actix` (make bench does)",
        path.display()
    );
    path
}

/// Starts the baseline on a free port with `workers` workers, adding `headers` to its answers.
fn start_bare(
    binary: &Path,
    dir: &Path,
    workers: usize,
    headers: &[(String, String)],
) -> (Running, u16) {
    let port = free_port();
    let log = if headers.is_empty() {
        "bare.log"
    } else {
        "bare-with-headers.log"
    };
    let child = Command::new(binary)
        .env_clear()
        .args([
            "--port",
            &port.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .args(
            headers
                .iter()
                .flat_map(|(name, value)| ["--header".to_owned(), format!("{name}:{value}")]),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let server = Running(child);
    wait_for_port(port);
    (server, port)
}

/// The headers the API puts on the answer to `GET path` beyond the ones every actix-web answer
/// has (`content-length`, `content-type`, `date`), read from a raw HTTP/1.1 exchange.
fn added_headers(port: u16, path: &str) -> Vec<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .filter(|(name, _)| !["content-length", "content-type", "date"].contains(&name.as_str()))
        .collect();
    assert!(
        headers.iter().any(|(name, _)| name == "x-request-id"),
        "the API's answer to {path}: {head}"
    );
    headers
}

/// `count` distinct tokens of `bytes` bytes each (give or take the last base64 character),
/// carrying large custom claims: a namespaced list of groups and a profile note.
fn large_tokens(key: &SigningKey, issuer_url: &str, count: usize, bytes: usize) -> Vec<String> {
    let claims_for = |i: usize, note: usize| -> Value {
        let mut c = subject_claims(issuer_url, &format!("large-{i}"), false);
        let groups: Vec<String> = (0..150).map(|g| format!("group-{g:03}-{i}")).collect();
        c[format!("{AUDIENCE}/groups")] = json!(groups);
        c[format!("{AUDIENCE}/profile")] = json!({"note": "n".repeat(note)});
        c
    };
    let json_len = |c: &Value| serde_json::to_string(c).unwrap().len();
    let base64_len = |n: usize| (n * 4).div_ceil(3);
    // Header, dots and signature: the same for every token of this key.
    let probe = claims_for(0, 0);
    let fixed = key.sign(&probe).unwrap().len() - base64_len(json_len(&probe));
    let payload = (bytes - fixed) * 3 / 4;
    (0..count)
        .map(|i| {
            let note = payload - json_len(&claims_for(i, 0));
            let token = key.sign(&claims_for(i, note)).unwrap();
            assert!(
                token.len() <= bytes && token.len() + 4 >= bytes,
                "a large token of {} bytes, not {bytes}",
                token.len()
            );
            token
        })
        .collect()
}
