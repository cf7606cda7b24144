//! Load runs for the soak and the benchmark: the binary under wrk, and Lua scripts that count
//! what wrk saw.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::constants::AUDIENCE;
use crate::ports::free_port;
use crate::process::{Binary, Running};

/// Starts `binary` against `issuer_url` on a free port, with `extra` settings and warnings
/// only in its log; returns it and its port.
pub fn start_server(
    binary: Binary,
    dir: &Path,
    issuer_url: &str,
    extra: &[(&str, &str)],
) -> (Running, u16) {
    let port = free_port();
    let mut env = vec![
        ("AUTH0_ISSUER", issuer_url),
        ("AUTH0_AUDIENCE", AUDIENCE),
        ("RUST_LOG", "warn"),
    ];
    env.extend_from_slice(extra);
    (binary.start(dir, &env, port), port)
}

/// A wrk script cycling through `tokens` (none: no Authorization header) on `path`, reporting
/// its own counts in one `LOAD` line, 5xx answers apart from the other non-2xx ones.
pub fn script(path: &str, tokens: &[String]) -> String {
    script_with(path, tokens, PER_RESPONSE)
}

/// Like [`script`], without a Lua callback per response: wrk then hands no response's
/// headers to Lua, so what it costs wrk to read an answer hardly depends on how many headers
/// the server sends, and two servers compared on the same cores pay the same client. Non-2xx
/// answers are wrk's own count of statuses ≥ 400; a 5xx is not told apart from a 4xx
/// (`server_errors` stays 0), so use it only where any non-2xx answer is a failure.
pub fn lean_script(path: &str, tokens: &[String]) -> String {
    script_with(path, tokens, "")
}

const PER_RESPONSE: &str = r#"function response(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1 end
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
"#;

fn script_with(path: &str, tokens: &[String], per_response: &str) -> String {
    let mut lua = String::from("local tokens = {\n");
    for token in tokens {
        let _ = writeln!(lua, "  \"{token}\",");
    }
    let counted = if per_response.is_empty() {
        "non2xx = e.status"
    } else {
        "for _, t in ipairs(threads) do\n    non2xx = non2xx + t:get(\"non2xx\")\n    server_errors = server_errors + t:get(\"server_errors\")\n  end"
    };
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
{per_response}function done(summary, latency, requests)
  local non2xx, server_errors = 0, 0
  local e = summary.errors
  {counted}
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
    /// Requests per second over the run.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }
}

/// The counts of the `LOAD` line a script printed when its run was done.
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

/// A wrk script for a load whose requests change while it runs, when the test says so.
///
/// `phases` are lists of (path, token) requests, cycled through in turn; the phase in use is
/// the one (1-based) whose number the file `control` holds, reread every 256 requests (a
/// missing or unreadable file, or a number out of range, keeps the phase), so the test can
/// switch phases at a moment it learns only while the load runs. Answers other than
/// `expected` are counted apart (`unexpected=` in the `LOAD` line, see [`load_field`]),
/// beside non-2xx and 5xx answers as [`script`] counts them; `phase=` is the last phase the
/// first thread reached. Stop a long run with [`stop_wrk`].
pub fn switched_script(phases: &[Vec<(&str, String)>], control: &Path, expected: u16) -> String {
    let mut lua = String::from("local phases = {\n");
    for requests in phases {
        lua.push_str("  {\n");
        for (path, token) in requests {
            let _ = writeln!(lua, "    {{ {path:?}, \"{token}\" }},");
        }
        lua.push_str("  },\n");
    }
    let control = control.display().to_string();
    let _ = write!(
        lua,
        r#"}}
local control = {control:?}
local expected = {expected}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function read_phase()
  local f = io.open(control, "r")
  if f then
    local n = f:read("*n")
    f:close()
    if n and n >= 1 and n <= #phases then phase = n end
  end
end
function init(args) i = 0; phase = 1; non2xx = 0; server_errors = 0; unexpected = 0; read_phase() end
function request()
  i = i + 1
  if i % 256 == 0 then read_phase() end
  local requests = phases[phase]
  local r = requests[(i % #requests) + 1]
  return wrk.format("GET", r[1], {{ ["Authorization"] = "Bearer " .. r[2] }})
end
function response(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1 end
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if status ~= expected then unexpected = unexpected + 1 end
end
function done(summary, latency, requests)
  local non2xx, server_errors, unexpected = 0, 0, 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("non2xx")
    server_errors = server_errors + t:get("server_errors")
    unexpected = unexpected + t:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format("LOAD phase=%d requests=%d duration_us=%d non2xx=%d server_errors=%d unexpected=%d socket_errors=%d p50_us=%d p99_us=%d max_us=%d\n",
    threads[1]:get("phase"), summary.requests, summary.duration, non2xx, server_errors, unexpected,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"#
    );
    lua
}

/// A field of the `LOAD` line a script printed (e.g. `unexpected` of [`switched_script`]), 0
/// when absent.
pub fn load_field(output: &Output, name: &str) -> u64 {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.starts_with("LOAD "))
        .and_then(|line| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Ends a wrk run early as Ctrl-C does: wrk stops its threads, then prints its summary and
/// runs the script's `done` (so [`counts`] reads it from the output as usual).
pub fn stop_wrk(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -INT {}", child.id());
}

/// A plain HTTP/1.0 `GET path` to `127.0.0.1:port` (so the body is never chunked): the status
/// and the body, or `None` when nothing answered within 2 s.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let timeout = Some(std::time::Duration::from_secs(2));
    stream.set_read_timeout(timeout).ok()?;
    stream.set_write_timeout(timeout).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}
