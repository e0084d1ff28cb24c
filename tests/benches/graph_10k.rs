//! A task graph of `N` tasks (default 10,000) whose scripted model answers at once: every task is a real
//! agent run (an agent created, a model call, its events), dispatched by graph workers. Against a
//! same-run baseline of the same number of bare agent runs (a fresh agent each, through the same
//! supervisor, `CONCURRENCY` at once) without the graph: the ratio is what claims, fenced ends, released
//! dependents and the graph's events cost.
//!
//! The graph: `N` tasks in 10 waves, each task after the first wave depending on one task of the wave
//! before. Also reported, from the stored tasks of the graph run: parent completed → child started
//! (p50, p99), measured at full load (queueing included), not at a paced rate.
//!
//! First, the store calls one task costs: a graph of `COUNT_N` tasks (default 1,000; 0 skips it) and
//! as many bare runs on SQLite, through a store that counts reads by method and commits by the changes
//! they carry.
//!
//! Run: `cargo bench -p orch-tests --bench graph_10k` (env: N, CONCURRENCY (default 128), WORKERS
//! (default 1 on SQLite), RUNS (default 3), COUNT_N, SKIP_SQLITE=1; PG_URL=postgres://… adds the
//! same on a fresh PostgreSQL schema with PG_WORKERS workers (default 4) in this process).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod allocator;
mod counting;
mod pg_schema;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use orch_core::executor::{AgentRunner, RunOptions, Supervisor};
use orch_core::graph::{GraphRunner, GraphSettings, Router, TaskGraphs};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Agent, Complexity, GraphStatus, PlannedTask, TaskStatus};
use orch_store_sqlite::SqliteStore;
use pg_schema::{drop_schema, postgres};

const WAVES: usize = 10;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).saturating_sub(1).min(v.len() - 1)]
}

fn supervisor(store: Arc<dyn Store>) -> Supervisor {
    let model = ScriptedModel::from_fn(|_req: &ModelRequest| Ok(ScriptReply::text("done")));
    let runner = AgentRunner::builder(store, Arc::new(model)).tools(ToolRegistry::new()).build();
    Supervisor::new(runner, Vec::new())
}

fn plan(n: usize) -> Vec<PlannedTask> {
    let per_wave = (n / WAVES).max(1);
    (0..n)
        .map(|i| PlannedTask {
            key: format!("t{i}"),
            title: format!("task {i}"),
            description: String::new(),
            task_type: "code".into(),
            complexity: Complexity::Simple,
            depends_on: if i < per_wave { Vec::new() } else { vec![format!("t{}", i - per_wave)] },
            model: Some("scripted".into()),
            tools: Vec::new(),
            verification: Vec::new(),
            estimated_cost_usd: None,
            estimated_minutes: None,
        })
        .collect()
}

/// The graph on `store`, run by `workers` workers of `concurrency` each: tasks/s, and the parent
/// completed → child started delays (ms).
async fn graph(
    store: Arc<dyn Store>,
    dir: &std::path::Path,
    n: usize,
    workers: usize,
    concurrency: u32,
) -> (f64, Vec<f64>) {
    let graphs = TaskGraphs::new(store.clone());
    let p = graphs.create_plan("bench", plan(n), Default::default()).await.unwrap();
    graphs.approve(p.id).await.unwrap();
    let (g, _) = graphs.create_graph(p.id, None).await.unwrap();
    let settings = GraphSettings { concurrency, ..GraphSettings::default() };
    let runner = GraphRunner::new(supervisor(store.clone()), dir, Router::new(Vec::new()), settings);
    let t = Instant::now();
    runner.start(g.id, None).await.unwrap();
    let handles: Vec<_> = (0..workers).map(|_| tokio::spawn(runner.worker(Some(g.id)).run())).collect();
    for h in handles {
        let report = h.await.unwrap().unwrap();
        let status = report.graph.map(|g| g.status);
        assert!(matches!(status, Some(GraphStatus::Completed)), "the graph ended {status:?}");
    }
    let secs = t.elapsed().as_secs_f64();
    let tasks = store.list_tasks(g.id).await.unwrap();
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Completed));
    let done: HashMap<_, _> = tasks.iter().map(|t| (t.id, t.completed_at)).collect();
    let delays = tasks
        .iter()
        .filter_map(|t| {
            let parent = t.depends_on.iter().filter_map(|d| done.get(d).copied().flatten()).max()?;
            let started = t.started_at?;
            Some((started - parent).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    (n as f64 / secs, delays)
}

/// `n` bare agent runs, `concurrency` at once, each a fresh agent created claimed for its run: runs/s.
async fn bare(store: Arc<dyn Store>, n: usize, concurrency: usize) -> f64 {
    let sup = supervisor(store.clone());
    let t = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let sup = sup.clone();
            async move {
                // Created claimed for its run, as a graph task's agent is.
                let agent = Agent::new(format!("bare-{i}"), "scripted", "/tmp");
                let (claim, _) = sup.runner().create_claimed(agent.clone(), Batch::new(), None, None).await.unwrap();
                sup.run_claimed(&agent, claim, format!("# Task t{i}"), RunOptions::default()).await.unwrap();
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    n as f64 / t.elapsed().as_secs_f64()
}

async fn sqlite(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir.join("orch.db")).unwrap())
}

fn report(label: &str, graph_rates: Vec<f64>, bare_rates: Vec<f64>, mut delays: Vec<f64>) {
    if graph_rates.is_empty() || bare_rates.is_empty() {
        // RUNS=0: only the store calls were counted.
        return;
    }
    let (g, b) = (median(graph_rates), median(bare_rates));
    println!("{label}: graph {g:>8.0} tasks/s   bare agent runs {b:>8.0} runs/s   ratio {:.2}", g / b);
    if !delays.is_empty() {
        let p50 = percentile(&mut delays, 0.5);
        let p99 = percentile(&mut delays, 0.99);
        println!("{label}: parent completed -> child started at full load: p50 {p50:.2} ms, p99 {p99:.2} ms");
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // RUST_LOG=orch_store_postgres::group=trace shows each PostgreSQL group commit: its lane, size,
    // time queued and time to commit, and the time of each of its phases.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let n = env("N", 10_000);
    let concurrency = env("CONCURRENCY", 128);
    let workers = env("WORKERS", 1);
    let runs = env("RUNS", 3);
    let count_n = env("COUNT_N", 1_000);
    if count_n > 0 {
        let dir = tempfile::tempdir().unwrap();
        let counted = Arc::new(counting::Counting::new(sqlite(dir.path()).await));
        graph(counted.clone(), dir.path(), count_n, workers, concurrency as u32).await;
        println!("graph of {count_n} tasks on SQLite:");
        counted.print_per(count_n as u64, "task");
        let dir = tempfile::tempdir().unwrap();
        let counted = Arc::new(counting::Counting::new(sqlite(dir.path()).await));
        bare(counted.clone(), count_n, concurrency * workers).await;
        println!("{count_n} bare agent runs on SQLite:");
        counted.print_per(count_n as u64, "run");
        println!();
    }
    println!("graph of {n} tasks in {WAVES} waves, scripted model; {runs} runs, medians");

    let sqlite_runs = if std::env::var("SKIP_SQLITE").is_ok_and(|v| v == "1") { 0 } else { runs };
    let (mut g_rates, mut b_rates, mut all_delays) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sqlite_runs {
        let dir = tempfile::tempdir().unwrap();
        let (rate, delays) = graph(sqlite(dir.path()).await, dir.path(), n, workers, concurrency as u32).await;
        g_rates.push(rate);
        all_delays = delays;
        let dir = tempfile::tempdir().unwrap();
        b_rates.push(bare(sqlite(dir.path()).await, n, concurrency * workers).await);
    }
    if sqlite_runs > 0 {
        report(&format!("SQLite file, {workers} worker(s) x {concurrency}"), g_rates, b_rates, all_delays);
    }

    if let Ok(url) = std::env::var("PG_URL") {
        let pg_workers = env("PG_WORKERS", 4);
        let (mut g_rates, mut b_rates, mut all_delays) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..runs {
            let (store, schema) = postgres(&url, &format!("g{i}")).await;
            let dir = tempfile::tempdir().unwrap();
            let (rate, delays) = graph(store, dir.path(), n, pg_workers, concurrency as u32).await;
            g_rates.push(rate);
            all_delays = delays;
            drop_schema(&url, &schema).await;
            let (store, schema) = postgres(&url, &format!("b{i}")).await;
            b_rates.push(bare(store, n, concurrency * pg_workers).await);
            drop_schema(&url, &schema).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        report(&format!("PostgreSQL, {pg_workers} workers x {concurrency}"), g_rates, b_rates, all_delays);
    } else {
        println!("PostgreSQL: skipped (set PG_URL=postgres://… to run it)");
    }
}
