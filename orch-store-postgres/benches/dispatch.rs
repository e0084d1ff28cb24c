//! Task dispatch throughput of the PostgreSQL store alone (no agent: each task is completed as soon as
//! it is claimed) with `WORKERS` worker processes (default 4) sharing one schema, against one process
//! dispatching one task at a time in the same run.
//!
//! `cargo bench -p orch-store-postgres --bench dispatch` (needs the server: `ORCH_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; env `N` (default 20,000), `WORKERS`, `RUNS` (default 3)).
//!
//! The graph: `N` tasks in 10 waves, each task after the first depending on one task of the wave before,
//! so completing a task releases its dependent in the same commit. A worker process beats every 500 ms,
//! claims up to 256 tasks at a time (one commit) and completes each with a `FinishTask` commit of its
//! own, all at once, as a worker's ending attempts do; the store's group commit merges those into
//! shared transactions. Until nothing is left. Commits per task: the database's committed transactions
//! over the run (`pg_stat_database.xact_commit`, which also counts the readers' and any other
//! client's).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use orch_core::store::testkit::fixtures::{claimed, completed, wave_graph};
use orch_core::store::{Batch, Change, Store};
use orch_core::wire::{Task, TaskClaim, WorkerInfo, now};
use orch_store_postgres::{PgOptions, PgStore};
use sqlx_core::query_scalar::query_scalar;
use sqlx_postgres::PgConnection;

const WAVES: u64 = 10;
const CHILD: &str = "ORCH_DISPATCH_CHILD";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn url() -> String {
    std::env::var("ORCH_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn open(schema: &str, pool: u32) -> PgStore {
    PgStore::connect_with(&url(), PgOptions { schema: Some(schema.into()), pool_size: Some(pool) })
        .await
        .unwrap_or_else(|e| panic!("this benchmark needs PostgreSQL: {e}"))
}

async fn seed(store: &PgStore, n: u64) {
    let (graph, tasks) = wave_graph(n, WAVES);
    let mut batch = Batch::new().change(Change::UpsertGraph(Box::new(graph)));
    for chunk in tasks.chunks(5_000) {
        batch.push_change(Change::InsertTasks(chunk.to_vec()));
    }
    store.commit(batch).await.unwrap();
}

fn claim(worker: &str, limit: u32) -> Batch {
    let at = now();
    Batch::new().change(Change::ClaimTasks(Box::new(TaskClaim {
        worker: worker.into(),
        limit,
        graph_id: None,
        now: at,
        deadline: at + chrono::Duration::hours(1),
        stale_before: at - chrono::Duration::seconds(5),
        start: None,
    })))
}

fn finish(t: Task) -> Batch {
    Batch::new().change(completed(t))
}

/// A worker process: claims and completes until the graph has nothing left; prints its count.
async fn child(schema: &str) {
    let store = Arc::new(open(schema, 16).await);
    let me = format!("w{}", std::process::id());
    // A worker beats, or its running tasks look abandoned to the others' claims.
    let started_at = now();
    let info = move |me: &str| WorkerInfo {
        id: me.to_string(),
        host: "bench".into(),
        pid: std::process::id(),
        concurrency: 256,
        started_at,
        heartbeat_at: now(),
        role: orch_core::wire::WorkerRole::Worker,
    };
    // Claims start after the first beat.
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(info(&me))))).await.unwrap();
    let beat = {
        let (store, me) = (store.clone(), me.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                store.commit(Batch::new().change(Change::Heartbeat(Box::new(info(&me))))).await.unwrap();
            }
        })
    };
    let mut done = 0u64;
    let mut idle = 0;
    loop {
        let tasks = claimed(store.commit(claim(&me, 256)).await.unwrap());
        if tasks.is_empty() {
            // Others may still be completing parents of what is left.
            let open = store.list_graphs(1).await.unwrap().first().map(|g| !g.status.is_final()).unwrap_or(false);
            idle += 1;
            if !open || idle > 2_000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            continue;
        }
        idle = 0;
        // Every claimed task's completion at once: the store groups them into shared commits.
        let finished = futures::future::join_all(tasks.into_iter().map(|t| {
            let store = store.clone();
            async move { store.commit(finish(t)).await.unwrap() }
        }))
        .await
        .len();
        done += finished as u64;
    }
    beat.abort();
    println!("DONE {done}");
}

async fn commits(admin: &mut PgConnection) -> i64 {
    query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(admin)
        .await
        .unwrap()
}

async fn drop_schema(admin: &mut PgConnection, schema: &str) {
    sqlx_core::query::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).execute(admin).await.unwrap();
}

/// `workers` processes on a fresh schema: tasks/s and commits/task.
async fn processes(n: u64, workers: u64, run: usize) -> (f64, f64) {
    let schema = format!("orch_bench_dispatch_{}_{run}", std::process::id());
    let store = open(&schema, 2).await;
    seed(&store, n).await;
    let mut admin = <PgConnection as sqlx_core::connection::Connection>::connect(&url()).await.unwrap();
    let c0 = commits(&mut admin).await;
    let start = Instant::now();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> =
        (0..workers).map(|_| Command::new(&exe).env(CHILD, &schema).stdout(Stdio::piped()).spawn().unwrap()).collect();
    let mut total = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker process failed");
        let text = String::from_utf8_lossy(&out.stdout);
        total += text.lines().find_map(|l| l.strip_prefix("DONE ")).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    let took = start.elapsed().as_secs_f64();
    let c1 = commits(&mut admin).await;
    assert_eq!(total, n, "every task completed once");
    drop(store);
    drop_schema(&mut admin, &schema).await;
    (n as f64 / took, (c1 - c0) as f64 / n as f64)
}

/// One process, one task at a time: claim one, complete it.
async fn baseline(n: u64, run: usize) -> (f64, f64) {
    let schema = format!("orch_bench_dispatch_base_{}_{run}", std::process::id());
    let store = open(&schema, 2).await;
    seed(&store, n).await;
    let mut admin = <PgConnection as sqlx_core::connection::Connection>::connect(&url()).await.unwrap();
    let c0 = commits(&mut admin).await;
    let start = Instant::now();
    for _ in 0..n {
        let t = claimed(store.commit(claim("base", 1)).await.unwrap()).pop().expect("a task to claim");
        store.commit(finish(t)).await.unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    let c1 = commits(&mut admin).await;
    drop(store);
    drop_schema(&mut admin, &schema).await;
    (n as f64 / took, (c1 - c0) as f64 / n as f64)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if let Ok(schema) = std::env::var(CHILD) {
        rt.block_on(child(&schema));
        return;
    }
    let n = (env_u64("N", 20_000) / WAVES).max(10) * WAVES;
    let base_n = (n / 10).max(WAVES * 10) / WAVES * WAVES;
    let workers = env_u64("WORKERS", 4);
    let runs = usize::try_from(env_u64("RUNS", 3)).unwrap_or(3);
    println!("task dispatch, PostgreSQL, no-op tasks in {WAVES} waves (median of {runs} runs)");
    let (mut b, mut bc) = (Vec::new(), 0.0);
    for run in 0..runs {
        let (r, c) = rt.block_on(baseline(base_n, run));
        b.push(r);
        bc = c;
    }
    let b = median(b);
    println!(
        "  baseline  {base_n:>7} tasks, 1 process, one at a time        {b:>8.0} tasks/s  {bc:.2} commits/task  1.0x"
    );
    let (mut p, mut pc) = (Vec::new(), 0.0);
    for run in 0..runs {
        let (r, c) = rt.block_on(processes(n, workers, run));
        p.push(r);
        pc = c;
    }
    let p = median(p);
    println!(
        "  grouped   {n:>7} tasks, {workers} processes, claims of 256      {p:>8.0} tasks/s  {pc:.2} commits/task  {:.1}x",
        p / b
    );
}
