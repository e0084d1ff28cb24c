//! What the server benchmarks share: `orch serve` as a child process, its memory, percentiles.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A number from the environment, else `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A running `orch serve` (killed when dropped) and its address (`127.0.0.1:PORT`).
pub struct Server(pub Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `orch serve --port 0` in `dir` on the scripted demo orchestrator, with no rate limit.
pub fn serve(dir: &Path) -> Server {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/scripts/orchestrator.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_orch"))
        .env("ORCH_RATE_LIMIT", "0")
        .arg("--cwd")
        .arg(dir)
        .args(["--model", &format!("scripted:{script}"), "serve", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("orch serve: listening on http://").unwrap().to_string();
    Server(child, addr)
}

/// The resident memory of process `pid`, MB.
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The `p` quantile (0 to 1) of `v` (sorted in place); 0 when empty.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * p).ceil() as usize).saturating_sub(1).min(v.len() - 1)]
}
