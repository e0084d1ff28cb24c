//! Append throughput of the SQLite store, against the naive pattern measured in the same run.
//!
//! `cargo bench -p orch-store-sqlite --bench append` (set `ORCH_BENCH_N` to change the event count).
//!
//! - batched: one task appends 100,000 events in batches of 100;
//! - concurrent: 8 tasks append single events concurrently (the writer coalesces them into shared commits);
//! - baseline: one connection, one `INSERT` per event, each in its own transaction (same file settings:
//!   WAL, `synchronous = FULL`, same schema and payloads) — the naive pattern.
//!
//! Every variant writes to a fresh file with full durability. Figures are medians over several runs.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::store::Store;
use orch_core::wire::{Event, EventKeys, NewEvent, new_id};
use orch_store_sqlite::SqliteStore;

fn event(keys: &EventKeys, i: u64) -> NewEvent {
    NewEvent::new(
        keys.clone(),
        Event::PreToolUse {
            tool_name: "Write".into(),
            tool_input: serde_json::json!({"file_path": format!("src/file_{i}.rs"), "content": "fn main() {}\n"}),
            tool_use_id: format!("toolu_{i:08}"),
        },
    )
}

fn keys() -> EventKeys {
    EventKeys {
        agent_id: Some(new_id()),
        orchestrator_id: Some(new_id()),
        workflow_id: None,
        step: None,
        task_slug: Some("bench".into()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn fresh_store(dir: &tempfile::TempDir, name: &str) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(dir.path().join(name)).unwrap())
}

async fn batched(n: u64, batch: u64) -> Duration {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = fresh_store(&dir, "batched.db");
    let k = keys();
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let m = batch.min(n - i);
        store.append((i..i + m).map(|j| event(&k, j)).collect()).await.unwrap();
        i += m;
    }
    let took = start.elapsed();
    assert_eq!(store.last_seq().await.unwrap(), n);
    took
}

async fn concurrent(n: u64, tasks: u64) -> Duration {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = fresh_store(&dir, "concurrent.db");
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let k = keys();
                let per = n / tasks + u64::from(t < n % tasks);
                for j in 0..per {
                    store.append(vec![event(&k, j)]).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let took = start.elapsed();
    assert_eq!(store.last_seq().await.unwrap(), n);
    took
}

/// The naive pattern: one connection, one INSERT per event in its own (autocommit) transaction.
fn baseline(n: u64) -> Duration {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("baseline.db");
    drop(SqliteStore::open(&path).unwrap()); // same schema and WAL mode
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    let k = keys();
    let start = Instant::now();
    for i in 0..n {
        let e = event(&k, i);
        let payload = serde_json::to_string(&e.event).unwrap();
        conn.execute(
            "INSERT INTO events (ts, agent_id, orchestrator_id, workflow_id, step, task_slug, category, type, payload) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                e.keys.agent_id.map(|x| x.to_string()),
                e.keys.orchestrator_id.map(|x| x.to_string()),
                e.keys.workflow_id.map(|x| x.to_string()),
                e.keys.step,
                e.keys.task_slug,
                e.event.category().as_str(),
                e.event.kind(),
                payload,
            ],
        )
        .unwrap();
    }
    start.elapsed()
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let n: u64 = std::env::var("ORCH_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let runs = 5;
    let base_n = (n / 20).max(100);
    let base_runs = 3;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    println!("append throughput, SQLite file, WAL, synchronous=FULL (median of runs)");
    let base: Vec<f64> = (0..base_runs).map(|_| rate(base_n, baseline(base_n))).collect();
    let base = median(base);
    println!("  baseline   {base_n:>7} events, 1 INSERT per transaction   {base:>12.0} events/s   1.0x");

    let b: Vec<f64> = (0..runs).map(|_| rate(n, rt.block_on(batched(n, 100)))).collect();
    let b = median(b);
    println!("  batched    {n:>7} events, batches of 100            {b:>12.0} events/s   {:.1}x", b / base);

    let c: Vec<f64> = (0..runs).map(|_| rate(n, rt.block_on(concurrent(n, 8)))).collect();
    let c = median(c);
    println!("  concurrent {n:>7} events, 8 tasks, single appends   {c:>12.0} events/s   {:.1}x", c / base);
}
