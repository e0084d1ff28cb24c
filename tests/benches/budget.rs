//! Budget reservation throughput under 8 concurrent workers: each worker reserves a model call's
//! estimate on the day, the month and its graph (one store change, checked against the limits
//! atomically) and settles it with the real cost, `CALLS` times (default 2,000 each). Against a
//! same-run baseline of the same number of commits of one small event each (the store's bare commit
//! rate): a reservation and its settlement are two commits, so 0.5 is the ratio of a free check.
//!
//! Run: `cargo bench -p orch-tests --bench budget` (env: WORKERS (default 8), CALLS, RUNS (default 3);
//! PG_URL=postgres://… adds the same on a fresh PostgreSQL schema).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod allocator;

use std::sync::Arc;
use std::time::Instant;

use orch_core::store::{Batch, Change, Store};
use orch_core::wire::{BudgetScope, Event, EventKeys, GraphStatus, Reservation, TaskGraph, new_id, now};
use orch_store_postgres::{PgOptions, PgStore};
use orch_store_sqlite::SqliteStore;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A running graph with a limit no run reaches, and daily and monthly limits.
async fn setup(store: &Arc<dyn Store>, workers: usize) -> Vec<TaskGraph> {
    let mut graphs = Vec::new();
    let mut batch = Batch::new()
        .change(Change::SetBudgetLimit { scope: BudgetScope::Daily, limit_usd: Some(1e9) })
        .change(Change::SetBudgetLimit { scope: BudgetScope::Monthly, limit_usd: Some(1e9) });
    for i in 0..workers {
        let at = now();
        let g = TaskGraph {
            id: new_id(),
            name: format!("bench-{i}"),
            plan_id: None,
            plan_version: None,
            status: GraphStatus::Running,
            total_tasks: 0,
            waves: 0,
            budget_usd: Some(1e9),
            cost_usd: 0.0,
            error: None,
            created_at: at,
            updated_at: at,
            started_at: Some(at),
            completed_at: None,
        };
        batch = batch.change(Change::UpsertGraph(Box::new(g.clone())));
        graphs.push(g);
    }
    store.commit(batch).await.unwrap();
    graphs
}

/// `workers` workers, each reserving and settling `calls` times on its own graph: model calls/s.
async fn reservations(store: Arc<dyn Store>, workers: usize, calls: usize) -> f64 {
    let graphs = setup(&store, workers).await;
    let t = Instant::now();
    let tasks: Vec<_> = graphs
        .into_iter()
        .map(|g| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..calls {
                    let r = Reservation::at(Some(g.id), 0.05, now());
                    store.commit(Batch::new().change(Change::ReserveBudget(Box::new(r.clone())))).await.unwrap();
                    let settle = Change::SettleBudget { reservation: Box::new(r), actual: 0.01 };
                    store.commit(Batch::new().change(settle)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (workers * calls) as f64 / t.elapsed().as_secs_f64()
}

/// The same number of workers committing one small event each, `calls` times: commits/s.
async fn commits(store: Arc<dyn Store>, workers: usize, calls: usize) -> f64 {
    let t = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..calls {
                    let e = Event::Text { text: format!("{w}:{i}") };
                    store.commit(Batch::new().event(EventKeys::default(), e)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (workers * calls) as f64 / t.elapsed().as_secs_f64()
}

async fn side(label: &str, runs: usize, mut open: impl AsyncFnMut(&str) -> (Arc<dyn Store>, Box<dyn FnOnce()>)) {
    let (workers, calls) = (env("WORKERS", 8), env("CALLS", 2_000));
    let (mut r, mut c) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let (store, done) = open(&format!("r{i}")).await;
        r.push(reservations(store, workers, calls).await);
        done();
        let (store, done) = open(&format!("c{i}")).await;
        c.push(commits(store, workers, calls).await);
        done();
    }
    let (r, c) = (median(r), median(c));
    println!(
        "{label}, {workers} workers: {r:>7.0} reserved and settled model calls/s   bare commits {c:>7.0}/s   calls per commit-pair ratio {:.2}",
        2.0 * r / c
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let runs = env("RUNS", 3);
    side("SQLite file (full durability)", runs, async |_| {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("orch.db")).unwrap());
        (store, Box::new(move || drop(dir)) as Box<dyn FnOnce()>)
    })
    .await;
    match std::env::var("PG_URL") {
        Ok(url) => {
            side("PostgreSQL", runs, async |tag| {
                let schema = format!("orch_bench_budget_{tag}_{}", std::process::id());
                let options = PgOptions { schema: Some(schema.clone()), pool_size: Some(16) };
                let store: Arc<dyn Store> = Arc::new(PgStore::connect_with(&url, options).await.unwrap());
                let url = url.clone();
                let done = move || {
                    let _ = std::process::Command::new("psql")
                        .args([
                            url.as_str(),
                            "-qc",
                            &format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
                        ])
                        .status();
                };
                (store, Box::new(done) as Box<dyn FnOnce()>)
            })
            .await;
        }
        Err(_) => println!("PostgreSQL: skipped (set PG_URL=postgres://… to run it)"),
    }
}
