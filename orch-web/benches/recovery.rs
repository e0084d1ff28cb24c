//! Recovery after a worker is SIGKILLed mid-task, with the default settings (heartbeat 1 s, a worker
//! silent for 5 s is gone, idle workers poll every 250 ms): from the kill to each of its tasks running
//! again in another `orch worker` process, read from the event log (the claim's `started_at`). Also
//! checked: no task lost, none completed twice. Baseline in the same run: a fresh `orch worker` process
//! taking a ready task (its spawn to its first claim).
//!
//! Each run: a graph of 12 tasks (each an agent that sleeps 2 s in `Bash`) on a SQLite file; worker A
//! (concurrency 4) claims 4, worker B (concurrency 16) starts and takes the rest, A is killed, B takes
//! A's over. With `PG_URL=postgres://…` the same runs follow on PostgreSQL, each in a schema of its own
//! (dropped after).
//!
//! Run: `cargo bench -p orch-web --bench recovery` (env: RUNS, default 5; PG_URL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

// The CLI tests' `orch` runner: a store per run (the directory's SQLite file, or a PostgreSQL
// schema dropped with it).
#[path = "../tests/support/mod.rs"]
mod test_support;
use test_support::{Db, PgSchema};

/// How a run's store is named in the report.
fn name(db: &Db) -> &'static str {
    match db {
        Db::Sqlite => "SQLite",
        Db::Postgres(_) => "PostgreSQL",
    }
}

fn worker(dir: &Path, db: &Db, model: &str, graph: &str, concurrency: &str) -> Child {
    db.orch(dir)
        .args(["--model", model, "worker", "--graph", graph, "--concurrency", concurrency])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The `TaskUpdated` tasks of the log, in order.
fn updates(dir: &Path, db: &Db) -> Vec<Value> {
    let out = db.orch(dir).args(["events", "--json"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "TaskUpdated")
        .map(|e| e["task"].clone())
        .collect()
}

fn at(v: &Value) -> SystemTime {
    let t: DateTime<Utc> = v.as_str().unwrap().parse().unwrap();
    SystemTime::from(t)
}

fn ms(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -(e.duration().as_secs_f64() * 1000.0),
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).saturating_sub(1).min(v.len() - 1)]
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One run: the recovery delays (ms) of the killed worker's tasks, and the baseline (ms).
fn run(db: &Db) -> (Vec<f64>, f64) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = d.join("model.json");
    let steps = json!({"steps": [
        {"when": "^# Task", "repeat": true, "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 2; echo slept"}}]},
        {"when": "slept", "repeat": true, "reply": [{"type": "text", "text": "done"}]}
    ]});
    std::fs::write(&script, steps.to_string()).unwrap();
    let model = format!("scripted:{}", script.display());
    let tasks: Vec<Value> = (0..12).map(|i| json!({"id": format!("t{i}"), "title": format!("task {i}")})).collect();
    let plan = d.join("plan.json");
    std::fs::write(&plan, json!({"tasks": tasks}).to_string()).unwrap();
    let out = db
        .orch(d)
        .args(["--model", &model, "graph", "run", "--file", plan.to_str().unwrap(), "--no-worker"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let graph = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().trim().to_string();

    let mut a = worker(d, db, &model, &graph, "4");
    let marker = format!(":{}:", a.id());
    wait_until("worker A claims 4 tasks", Duration::from_secs(30), || {
        updates(d, db)
            .iter()
            .filter(|t| t["status"] == "running" && t["claimed_by"].as_str().unwrap().contains(&marker))
            .count()
            >= 4
    });
    let spawned_b = SystemTime::now();
    let mut b = worker(d, db, &model, &graph, "16");
    let b_marker = format!(":{}:", b.id());
    wait_until("worker B claims the rest", Duration::from_secs(30), || {
        updates(d, db)
            .iter()
            .filter(|t| t["status"] == "running" && t["claimed_by"].as_str().unwrap().contains(&b_marker))
            .count()
            >= 8
    });
    a.kill().unwrap();
    let killed = SystemTime::now();
    a.wait().unwrap();
    let status = b.wait().unwrap();
    assert!(status.success(), "worker B ends with the graph");

    let log = updates(d, db);
    let first_b = log
        .iter()
        .filter(|t| t["status"] == "running" && t["claimed_by"].as_str().unwrap().contains(&b_marker))
        .map(|t| at(&t["started_at"]))
        .min()
        .unwrap();
    let baseline = ms(spawned_b, first_b);
    let orphans: std::collections::BTreeSet<&str> = log
        .iter()
        .filter(|t| t["status"] == "running" && t["claimed_by"].as_str().unwrap().contains(&marker))
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let delays = orphans
        .iter()
        .map(|id| {
            let again = log
                .iter()
                .find(|t| {
                    t["id"] == *id && t["status"] == "running" && t["claimed_by"].as_str().unwrap().contains(&b_marker)
                })
                .unwrap_or_else(|| panic!("task {id} of the killed worker was not run again"));
            ms(killed, at(&again["started_at"]))
        })
        .collect();
    let mut completions: HashMap<&str, usize> = HashMap::new();
    for t in log.iter().filter(|t| t["status"] == "completed") {
        *completions.entry(t["id"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(completions.len(), 12, "no task lost");
    assert!(completions.values().all(|n| *n == 1), "no task completed twice");
    (delays, baseline)
}

/// `runs` runs on `db` (a fresh PostgreSQL schema each), summed up.
fn measure(runs: usize, db: impl Fn(usize) -> Db) {
    let (mut delays, mut baselines) = (Vec::new(), Vec::new());
    let mut label = "";
    for i in 0..runs {
        let db = db(i);
        label = name(&db);
        let (d, b) = run(&db);
        delays.extend(d);
        baselines.push(b);
    }
    let n = delays.len();
    let (p50, p99, max) = (percentile(&mut delays, 0.5), percentile(&mut delays, 0.99), percentile(&mut delays, 1.0));
    let base = percentile(&mut baselines, 0.5);
    println!("{label}: {runs} runs, {n} tasks of killed workers, none lost, none completed twice");
    println!("  kill -> running in another worker: p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms");
    println!(
        "  baseline, a fresh worker process taking a ready task: median {base:.0} ms (ratio p99/baseline {:.1})",
        p99 / base
    );
}

fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    measure(runs, |_| Db::Sqlite);
    if let Ok(url) = std::env::var("PG_URL") {
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
        measure(runs, |i| Db::Postgres(PgSchema { url: url.clone(), schema: format!("orch_recovery_{stamp:x}_{i}") }));
    }
}
