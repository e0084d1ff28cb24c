//! Task dispatch throughput of the SQLite store alone (no agent: each task is completed as soon as it is
//! claimed), against a naive dispatcher measured in the same run.
//!
//! `cargo bench -p orch-store-sqlite --bench dispatch` (`ORCH_BENCH_N` changes the task count, default
//! 20,000).
//!
//! The graph: N tasks in 10 waves, each task after the first wave depending on one task of the wave
//! before, so completing a task releases its dependents in the same commit.
//!
//! - pipelined: claims of up to 256 tasks (one store change each), and every claimed task completed by
//!   its own concurrent `FinishTask` commit — the writer coalesces them into shared transactions — at
//!   full durability (`synchronous = FULL`), then with every commit relaxed (`synchronous = NORMAL`);
//! - baseline: one task at a time, claimed then completed, each a durable commit of its own.
//!
//! Reports tasks/s (median of runs) and write transactions per task.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::store::testkit::fixtures::{claimed, completed, wave_graph};
use orch_core::store::{Batch, Change, Store};
use orch_core::wire::{Task, TaskClaim, now};
use orch_store_sqlite::SqliteStore;

const WAVES: u64 = 10;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A running graph of `n` tasks in waves, stored in `store`.
async fn seed(store: &SqliteStore, n: u64) {
    let (graph, tasks) = wave_graph(n, WAVES);
    let mut batch = Batch::new().change(Change::UpsertGraph(Box::new(graph)));
    for chunk in tasks.chunks(5_000) {
        batch.push_change(Change::InsertTasks(chunk.to_vec()));
    }
    store.commit(batch).await.unwrap();
}

fn claim(limit: u32) -> Batch {
    let at = now();
    Batch::new()
        .change(Change::ClaimTasks(Box::new(TaskClaim {
            worker: "bench".into(),
            limit,
            graph_id: None,
            now: at,
            deadline: at + chrono::Duration::hours(1),
            stale_before: at - chrono::Duration::seconds(5),
            start: None,
        })))
        .relaxed()
}

fn finish(t: Task, relaxed: bool) -> Batch {
    let b = Batch::new().change(completed(t));
    if relaxed { b.relaxed() } else { b }
}

/// Claims up to 256 at a time and completes each claimed task with a concurrent commit of its own.
async fn pipelined(n: u64, relaxed: bool) -> (Duration, f64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("dispatch.db")).unwrap());
    seed(&store, n).await;
    let commits0 = store.commits();
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let tasks = claimed(store.commit(claim(256)).await.unwrap());
        assert!(!tasks.is_empty(), "no task to claim after {done} of {n}");
        let handles: Vec<_> = tasks
            .into_iter()
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move { store.commit(finish(t, relaxed)).await.unwrap() })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
            done += 1;
        }
    }
    let took = start.elapsed();
    let per_task = (store.commits() - commits0) as f64 / n as f64;
    (took, per_task)
}

/// One task at a time: claim one, complete it, each a durable commit.
async fn baseline(n: u64) -> (Duration, f64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SqliteStore::open(dir.path().join("baseline.db")).unwrap();
    seed(&store, n).await;
    let commits0 = store.commits();
    let start = Instant::now();
    for _ in 0..n {
        let mut tasks = claimed(store.commit(Batch::new().change(claim(1).changes.remove(0))).await.unwrap());
        let t = tasks.pop().expect("a task to claim");
        store.commit(finish(t, false)).await.unwrap();
    }
    let took = start.elapsed();
    (took, (store.commits() - commits0) as f64 / n as f64)
}

fn main() {
    let n: u64 = std::env::var("ORCH_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let n = (n / WAVES).max(10) * WAVES;
    let base_n = (n / 20).max(WAVES * 10) / WAVES * WAVES;
    let runs = 3;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("task dispatch, SQLite file (WAL), no-op tasks in {WAVES} waves (median of {runs} runs)");
    let mut base = Vec::new();
    let mut base_commits = 0.0;
    for _ in 0..runs {
        let (d, c) = rt.block_on(baseline(base_n));
        base.push(base_n as f64 / d.as_secs_f64());
        base_commits = c;
    }
    let base = median(base);
    println!(
        "  baseline    {base_n:>7} tasks, one at a time, FULL       {base:>9.0} tasks/s  {base_commits:.2} commits/task  1.0x"
    );
    for (label, relaxed) in [("FULL  ", false), ("NORMAL", true)] {
        let mut rates = Vec::new();
        let mut commits = 0.0;
        for _ in 0..runs {
            let (d, c) = rt.block_on(pipelined(n, relaxed));
            rates.push(n as f64 / d.as_secs_f64());
            commits = c;
        }
        let r = median(rates);
        println!(
            "  pipelined   {n:>7} tasks, claims of 256, {label}    {r:>9.0} tasks/s  {commits:.2} commits/task  {:.1}x",
            r / base
        );
    }
}
