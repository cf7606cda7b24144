//! The load benchmark behind `make bench`: the release binary against a loopback issuer,
//! driven by wrk (1 thread, 32 connections, 10 s after a 2 s warm-up) route by route in one
//! run, with every figure also written as JSON under `target/bench/`.
//!
//! The same run measures a bare actix-web 4 baseline (`tests/baseline/bare_actix.rs`: one
//! hello handler, no middleware, the same worker count), with the same wrk parameters, at its
//! start and at its end; each route's req/s and the server's CPU time per request are printed
//! as ratios to it (the mean of both baseline runs). CPU time is the server process's
//! utime + stime from `/proc/PID/stat` around each measured wrk run, divided by the requests
//! wrk completed: unlike req/s it hardly depends on how much of the shared cores wrk got.
//! A last scenario sends ~8 KiB tokens with large custom claims, many distinct ones, to a
//! fresh server and reports its peak RSS.
//!
//! Targets are printed with the table, not asserted (this machine is shared and noisy): public
//! ≥ 0.85× the baseline's req/s, protected and admin ≥ 0.8×; the older targets as ratios to
//! public stay too. The run fails only on wrong answers: a refused valid token, a 5xx, or a
//! JWKS fetch during the load. `BENCH_SECS`, `BENCH_CONNECTIONS` and `BENCH_WORKERS` change
//! the length, the connection count and the worker count of both servers (default: one per
//! core).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hello_world_api::issuer::{Issuer, SigningKey};
use serde_json::{Value, json};

use test_support::load::{Counts, counts, script, start_server, wrk};
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
    let seconds: u64 = env_or("BENCH_SECS", 10);
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
    let (bare, bare_port) = start_bare(&bare_binary, &dir, workers);
    let bare_url = format!("http://127.0.0.1:{bare_port}");
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

    let run = |name: &str, url: &str, path: &str, tokens: &[String], target: &Running, issuer| {
        measure(
            &dir,
            name,
            url,
            path,
            tokens,
            (connections, seconds),
            target,
            issuer,
            ticks,
        )
    };
    let bare_start = run("bare-start", &bare_url, "/hello", &[], &bare, None);
    // The same baseline sent what the protected scenarios send: the same wrk script, which
    // formats each request with an ~800-byte Authorization header (the bare handler ignores
    // it). wrk's own cost per request and the bytes on the wire are then the same on both
    // sides, so the ratio measures the servers alone.
    let bare_token = run(
        "bare-token",
        &bare_url,
        "/hello",
        &scenarios[1].tokens,
        &bare,
        None,
    );
    let base = format!("http://127.0.0.1:{port}");
    let mut results: Vec<Measured> = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let name = format!("scenario-{index}");
        results.push(run(
            &name,
            &base,
            scenario.path,
            &scenario.tokens,
            &server,
            Some(&issuer),
        ));
    }
    drop(server);

    // On a fresh server, so its peak RSS is this scenario's own.
    let (server, port) = start_server(binary!(), &dir, &issuer_url, &api_settings);
    std::thread::sleep(Duration::from_millis(500));
    let (_, idle_kib) = server.memory_kib();
    let path = "/api/messages/protected";
    let url = format!("http://127.0.0.1:{port}");
    let memory = run("large-tokens", &url, path, &large, &server, Some(&issuer));
    drop(server);
    // 16 MiB of tokens: not left behind in the temporary directory.
    let _ = std::fs::remove_file(dir.join("large-tokens.lua"));
    let bare_end = run("bare-end", &bare_url, "/hello", &[], &bare, None);
    drop(bare);

    // The baseline: both runs pooled.
    let bare_requests = bare_start.run.requests + bare_end.run.requests;
    let bare_rps = bare_requests as f64
        / ((bare_start.run.duration_us + bare_end.run.duration_us).max(1) as f64 / 1e6);
    let bare_cpu = (bare_start.cpu_us_per_request * bare_start.run.requests as f64
        + bare_end.cpu_us_per_request * bare_end.run.requests as f64)
        / bare_requests.max(1) as f64;

    let public = results[0].run.per_second();
    println!();
    println!(
        "make bench: wrk -t1 -c{connections} -d{seconds}s per route after a 2 s warm-up, release build, {cores} cores, {workers} workers"
    );
    println!(
        "{:<24} {:>8} {:>6} {:>7} {:>6} {:>7} {:>11} {:>7} {:>6} {:>7} {:>7} {:>7} {:>8}",
        "scenario",
        "req/s",
        "× bare",
        "CPU µs",
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
    let cell =
        |met: bool, target: f64| format!("{} ≥{target:.2}", if met { "PASS" } else { "MISS" });
    println!(
        "{:<24} {:>8.0} {:>6.2} {:>7.1} {:>6.2} {:>7} {:>11} {:>7} {:>6} {:>7.2} {:>7.2} {:>7} {:>8.1}",
        "bare actix-web",
        bare_rps,
        1.0,
        bare_cpu,
        1.0,
        bare_start.run.non2xx + bare_end.run.non2xx,
        "",
        "",
        "",
        bare_start.run.p50_us.max(bare_end.run.p50_us) as f64 / 1000.0,
        bare_start.run.p99_us.max(bare_end.run.p99_us) as f64 / 1000.0,
        "",
        bare_end.peak_kib as f64 / 1024.0,
    );
    row(
        "bare, token-sized header",
        &bare_token,
        (bare_rps, bare_cpu),
        ["", "", ""],
        "",
    );
    let mut report = Vec::new();
    let mut all_met = true;
    let mut misses = Vec::new();
    let mut like_for_like = Vec::new();
    for (scenario, measured) in scenarios.iter().zip(&results) {
        let run = &measured.run;
        let ratio = run.per_second() / public;
        let met = ratio >= scenario.target;
        all_met &= met;
        let to_bare = run.per_second() / bare_rps;
        let cpu_to_bare = measured.cpu_us_per_request / bare_cpu;
        let bare_met = scenario.bare_target.map(|target| to_bare >= target);
        if bare_met == Some(false) {
            misses.push(scenario.name);
        }
        if let Some(target) = scenario.bare_target
            && !scenario.tokens.is_empty()
        {
            let same = run.per_second() / bare_token.run.per_second();
            let verdict = if same >= target { "PASS" } else { "MISS" };
            like_for_like.push(format!(
                "{} {same:.2} {verdict} ≥{target:.2} (CPU {:.2}×)",
                scenario.name,
                measured.cpu_us_per_request / bare_token.cpu_us_per_request
            ));
        }
        row(
            scenario.name,
            measured,
            (bare_rps, bare_cpu),
            [
                &scenario
                    .bare_target
                    .map_or_else(|| "-".to_owned(), |target| cell(to_bare >= target, target)),
                &format!("{ratio:.2}"),
                &format!("{}{:.2}", if met { "≥" } else { "✗ " }, scenario.target),
            ],
            &measured.fetches.to_string(),
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
            "jwks_fetches": measured.fetches,
            "peak_rss_mib": measured.peak_kib as f64 / 1024.0,
            "ratio_to_public": ratio,
            "target_ratio": scenario.target,
            "cpu_us_per_request": measured.cpu_us_per_request,
            "ratio_to_baseline": to_bare,
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
        &memory,
        (bare_rps, bare_cpu),
        [
            "-",
            &format!("{:.2}", memory.run.per_second() / public),
            "-",
        ],
        &memory.fetches.to_string(),
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
        "ratio_to_baseline": memory.run.per_second() / bare_rps,
        "cpu_ratio_to_baseline": memory.cpu_us_per_request / bare_cpu,
    }));
    println!(
        "bare baseline: {:.0} req/s, {:.1} CPU µs/request at the start; {:.0} req/s, {:.1} µs at the end; ratios use both",
        bare_start.run.per_second(),
        bare_start.cpu_us_per_request,
        bare_end.run.per_second(),
        bare_end.cpu_us_per_request,
    );
    let peak = results.iter().map(|m| m.peak_kib).max().unwrap_or(0) as f64 / 1024.0;
    println!("server peak RSS over the run: {peak:.1} MiB (target ≤ 32)");
    println!(
        "{memory_name} tokens (fresh server, idle {:.1} MiB): peak RSS {:.1} MiB (target ≤ 32, with cache.max_bytes at its default)",
        idle_kib as f64 / 1024.0,
        memory.peak_kib as f64 / 1024.0,
    );
    println!(
        "targets: {}",
        if all_met && peak <= 32.0 && memory.peak_kib as f64 / 1024.0 <= 32.0 {
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

    println!(
        "against the baseline sent the same requests (token-sized header, same wrk script): {}",
        like_for_like.join("; ")
    );

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let bare_json = |m: &Measured| {
        json!({
            "requests": m.run.requests,
            "requests_per_second": m.run.per_second(),
            "cpu_us_per_request": m.cpu_us_per_request,
            "p50_ms": m.run.p50_us as f64 / 1000.0,
            "p99_ms": m.run.p99_us as f64 / 1000.0,
            "non_2xx": m.run.non2xx,
        })
    };
    let document = json!({
        "wrk": {"threads": 1, "connections": connections, "seconds": seconds},
        "cores": cores,
        "workers": workers,
        "clock_ticks_per_second": ticks,
        "baseline": {
            "program": "tests/baseline/bare_actix.rs (example bare-actix)",
            "path": "/hello",
            "requests_per_second": bare_rps,
            "cpu_us_per_request": bare_cpu,
            "peak_rss_mib": bare_end.peak_kib as f64 / 1024.0,
            "start": bare_json(&bare_start),
            "with_token_header": bare_json(&bare_token),
            "end": bare_json(&bare_end),
        },
        "results": report,
        "peak_rss_mib": peak,
        "large_tokens_peak_rss_mib": memory.peak_kib as f64 / 1024.0,
    });
    let text = serde_json::to_string_pretty(&document).unwrap();
    std::fs::write(out.join("latest.json"), &text).unwrap();
    std::fs::write(out.join(format!("bench-{}.json", now())), &text).unwrap();
    println!("figures written to target/bench/latest.json");

    for (name, bare) in [
        ("baseline (start)", &bare_start),
        ("baseline (token-sized header)", &bare_token),
        ("baseline (end)", &bare_end),
    ] {
        assert_eq!(bare.run.non2xx, 0, "{name}: non-2xx answers");
        assert_eq!(bare.run.socket_errors, 0, "{name}: socket errors");
    }
    let checked = scenarios
        .iter()
        .map(|s| (s.name, s.refusals))
        .chain([("large tokens", false)]);
    for ((name, refusals), measured) in checked.zip(results.iter().chain([&memory])) {
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A 2 s warm-up, then the measured wrk run of `path` on `url` (cycling through `tokens`),
/// with the CPU time `server` spent meanwhile and the JWKS fetches `issuer` served.
#[allow(clippy::too_many_arguments)]
fn measure(
    dir: &Path,
    name: &str,
    url: &str,
    path: &str,
    tokens: &[String],
    (connections, seconds): (u32, u64),
    server: &Running,
    issuer: Option<&Issuer>,
    ticks_per_second: f64,
) -> Measured {
    std::fs::write(dir.join(format!("{name}.lua")), script(path, tokens)).unwrap();
    wrk(dir, name, url, connections, 2)
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

/// One row of the table: `measured` and its ratios to the baseline's (req/s, CPU µs), then
/// the verdict against the baseline, the ratio to public, the older target, and the fetches.
fn row(name: &str, measured: &Measured, bare: (f64, f64), verdicts: [&str; 3], fetches: &str) {
    let run = &measured.run;
    println!(
        "{:<24} {:>8.0} {:>6.2} {:>7.1} {:>6.2} {:>7} {:>11} {:>7} {:>6} {:>7.2} {:>7.2} {:>7} {:>8.1}",
        name,
        run.per_second(),
        run.per_second() / bare.0,
        measured.cpu_us_per_request,
        measured.cpu_us_per_request / bare.1,
        run.non2xx,
        verdicts[0],
        verdicts[1],
        verdicts[2],
        run.p50_us as f64 / 1000.0,
        run.p99_us as f64 / 1000.0,
        fetches,
        measured.peak_kib as f64 / 1024.0,
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

/// Starts the baseline on a free port with `workers` workers.
fn start_bare(binary: &Path, dir: &Path, workers: usize) -> (Running, u16) {
    let port = free_port();
    let child = Command::new(binary)
        .env_clear()
        .args([
            "--port",
            &port.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("bare.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let server = Running(child);
    wait_for_port(port);
    (server, port)
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
