//! Shared by the soak and the benchmark: a loopback issuer on its own thread, the release
//! binary as a child process, and wrk runs whose Lua scripts count what they saw.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hello_world_api::issuer::{Issuer, SigningKey};
use serde_json::{Value, json};

pub const AUDIENCE: &str = "https://hello-world.example.com";
pub const BINARY: &str = env!("CARGO_BIN_EXE_hello-world-api");

/// The server process; killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Starts the binary against `issuer_url` on a free port, with `extra` settings.
    pub fn start(dir: &Path, issuer_url: &str, extra: &[(&str, &str)]) -> (Self, u16) {
        let port = free_port();
        let child = Command::new(BINARY)
            .env_clear()
            .current_dir(dir)
            .envs([
                ("AUTH0_ISSUER", issuer_url),
                ("AUTH0_AUDIENCE", AUDIENCE),
                ("PORT", &port.to_string()),
                ("RUST_LOG", "warn"),
                ("APP__METRICS__ADDRESS", "127.0.0.1:0"),
            ])
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let server = Server(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        (server, port)
    }

    /// Resident and peak resident memory, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
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
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hello-world-api-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Serves `issuer` on loopback from a thread of its own; returns its URL.
pub fn serve_issuer(issuer: &Issuer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let serving = issuer.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let _handle = serving.serve(listener).unwrap();
            std::future::pending::<()>().await;
        });
    });
    url
}

pub fn claims(issuer_url: &str, sub: &str, admin: bool) -> Value {
    let mut c = json!({"iss": issuer_url, "aud": AUDIENCE, "sub": sub, "exp": now() + 3600});
    if admin {
        c["permissions"] = json!(["read:admin-messages"]);
    }
    c
}

/// `count` tokens signed by `key`, each for another subject.
pub fn tokens(
    key: &SigningKey,
    issuer_url: &str,
    prefix: &str,
    count: usize,
    admin: bool,
) -> Vec<String> {
    (0..count)
        .map(|i| {
            key.sign(&claims(issuer_url, &format!("{prefix}-{i}"), admin))
                .unwrap()
        })
        .collect()
}

/// A wrk script cycling through `tokens` (none: no Authorization header) on `path`, reporting
/// its own counts in one `LOAD` line.
pub fn script(path: &str, tokens: &[String]) -> String {
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
  if #tokens == 0 then return wrk.format("GET", "{path}") end
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
  io.write(string.format("LOAD requests=%d duration_us=%d non2xx=%d server_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, non2xx, server_errors,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"#
    );
    lua
}

/// A wrk script that switches token lists at given Unix times (`phases`: start, tokens; the
/// first starts at 0), for tokens signed by keys the issuer rotates in during the run.
pub fn phased_script(path: &str, phases: &[(u64, Vec<String>)]) -> String {
    let mut lua = String::from("local phases = {\n");
    for (start, tokens) in phases {
        let _ = write!(lua, "  {{ start = {start}, tokens = {{");
        for token in tokens {
            let _ = write!(lua, "\"{token}\",");
        }
        lua.push_str("} },\n");
    }
    lua.push_str("}\n");
    // Reuse the plain script's counting, with a request() that follows the schedule.
    let plain = script(path, &[]);
    let body = plain
        .split_once("function request()")
        .map(|(head, _)| head.replace("local tokens = {\n}\n", ""))
        .unwrap_or_default();
    let tail = plain
        .split_once("function response(")
        .map(|(_, rest)| format!("function response({rest}"))
        .unwrap_or_default()
        .replace("\"LOAD requests=%d", "\"LOAD phase=%d requests=%d")
        .replace(
            "    summary.requests,",
            "    threads[1]:get(\"phase\"), summary.requests,",
        );
    let _ = write!(
        lua,
        r#"{body}phase = 1
function request()
  i = i + 1
  while phase < #phases and os.time() >= phases[phase + 1].start do phase = phase + 1 end
  local tokens = phases[phase].tokens
  return wrk.format("GET", "{path}", {{ ["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1] }})
end
{tail}"#
    );
    lua
}

/// What one wrk run reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub requests: u64,
    pub duration_us: u64,
    pub non2xx: u64,
    pub server_errors: u64,
    pub socket_errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// For a phased script: the last phase (1-based) its first thread reached.
    pub phase: u64,
}

impl Counts {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }
}

pub fn counts(output: &Output) -> Counts {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("LOAD "))
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
        duration_us: value("duration_us"),
        non2xx: value("non2xx"),
        server_errors: value("server_errors"),
        socket_errors: value("socket_errors"),
        p50_us: value("p50_us"),
        p99_us: value("p99_us"),
        phase: value("phase"),
    }
}

/// Starts wrk (one thread, `connections`) for `seconds` with the script `name` in `dir`.
pub fn wrk(dir: &Path, name: &str, url: &str, connections: u32, seconds: u64) -> Child {
    Command::new("wrk")
        .args([
            "-t1".to_owned(),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            "--timeout".to_owned(),
            "5s".to_owned(),
            "-s".to_owned(),
        ])
        .arg(dir.join(format!("{name}.lua")))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk is installed (make soak / make bench install it)")
}
