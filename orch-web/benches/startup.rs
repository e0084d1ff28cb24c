//! `orch run` start-up: from spawning the process to the first model call.
//!
//! The first model call happens right after the `UserPromptSubmit` event is committed, so start-up is
//! measured as that event's timestamp minus the spawn time (same clock). Baseline in the same run: the
//! wall time of `orch --version` (process start and exit, no work).
//!
//! Run: `cargo bench -p orch-web --bench startup`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let exe = env!("CARGO_BIN_EXE_orch");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.json");
    std::fs::write(&script, r#"{"steps": [{"repeat": true, "reply": [{"type": "text", "text": "hi"}]}]}"#).unwrap();
    let model = format!("scripted:{}", script.display());
    let (warmups, runs) = (3, 30);
    let mut startup = Vec::new();
    let mut version = Vec::new();
    for i in 0..warmups + runs {
        let t = Instant::now();
        let st = Command::new(exe).arg("--version").stdout(Stdio::null()).status().unwrap();
        assert!(st.success());
        let v = t.elapsed().as_secs_f64() * 1000.0;

        let spawned = SystemTime::now();
        let out = Command::new(exe)
            .arg("--cwd")
            .arg(dir.path())
            .args(["--model", &model, "run", "--json", "--agent", &format!("a{i}"), "hello"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["type"] == "UserPromptSubmit")
            .expect("a UserPromptSubmit event");
        let ts = chrono::DateTime::parse_from_rfc3339(first["timestamp"].as_str().unwrap()).unwrap();
        let spawned: chrono::DateTime<chrono::Utc> = spawned.into();
        let ms = (ts.with_timezone(&chrono::Utc) - spawned).num_microseconds().unwrap() as f64 / 1000.0;
        if i >= warmups {
            startup.push(ms);
            version.push(v);
        }
    }
    let s = median(&mut startup);
    let v = median(&mut version);
    println!("orch run start-up to first model call (new agent, SQLite file): median {s:.2} ms over {runs} runs");
    println!("baseline `orch --version` spawn-to-exit (same run): median {v:.2} ms; ratio {:.1}x", s / v);
    println!("LangGraph reference (shared/bench/agent-step.md): 579 ms → {:.0}x less", 579.0 / s);
}
