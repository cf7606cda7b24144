//! The API binary as a child process: how it is started, where it runs, and that it is stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::ports::{wait_for_port, wait_until_serving};

/// The API binary Cargo built for the calling test crate or bench.
///
/// Cargo tells only integration tests and benches where the binary is (`CARGO_BIN_EXE_*`, at
/// their compile time), so this crate cannot know it: the caller names it with
/// [`binary!`](crate::binary).
#[derive(Debug, Clone, Copy)]
pub struct Binary(&'static str);

/// The [`Binary`] of the integration test or bench this expands in.
#[macro_export]
macro_rules! binary {
    () => {
        $crate::Binary::new(env!("CARGO_BIN_EXE_hello-world-api"))
    };
}

impl Binary {
    /// The binary at `path`; [`binary!`](crate::binary) supplies it.
    pub const fn new(path: &'static str) -> Self {
        Self(path)
    }

    /// A command for the binary with a clean environment plus `env`, run in `dir`.
    pub fn command(self, dir: &Path, env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(self.0);
        // Tests run in parallel: each binary's metrics listener takes a free port.
        command
            .env_clear()
            .current_dir(dir)
            .env("APP__METRICS__ADDRESS", "127.0.0.1:0")
            .envs(env.iter().copied());
        command
    }

    /// Starts the binary on `port` and waits until it serves; its log goes to `server.log`
    /// in `dir`.
    pub fn start(self, dir: &Path, env: &[(&str, &str)], port: u16) -> Running {
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = self
            .command(dir, env)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let running = Running(child);
        wait_for_port(port);
        wait_until_serving(port);
        running
    }
}

/// A child process, killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Sends `signal` (as `kill` names it: `-TERM`, `-INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.0.id().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap_or_else(|e| panic!("kill {signal} {pid}: {e}"));
        assert!(sent.success(), "kill {signal} {pid}: {sent}");
    }

    /// Waits (at most `limit`) for the process to exit, and its status.
    pub async fn exit_within(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap_or_else(|e| panic!("wait: {e}")) {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running after {limit:?}"
            );
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Resident and peak resident memory, in KiB (0 where `/proc` does not say).
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

/// A fresh, empty directory named after `name` and this process, for a binary to run in.
pub fn empty_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hello-world-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
