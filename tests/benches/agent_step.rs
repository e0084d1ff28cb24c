//! The agent-step workload of shared/bench/agent-step.md: overhead per agent step.
//!
//! One agent, one prompt; model calls 1..N each ask for `Read {"file_path": "hello.txt"}`, call N+1
//! answers with text. Overhead per step = (wall − model answer construction − tool body) / (N+1).
//!
//! Run: `cargo bench -p orch-tests --bench agent_step` (env: N, RUNS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod allocator;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::prelude::*;
use orch_core::tool::builtin;
use orch_store_sqlite::SqliteStore;
use orch_tests::{TimedTool, median_p90};
use serde_json::json;

const HELLO: &str = "Hello from the agent-step benchmark! This file is ninety-four bytes of plain ASCII text, okay\n";

struct Measured {
    per_step_us: Vec<f64>,
}

async fn bench(store: Arc<dyn Store>, n: usize, runs: usize, warmups: usize) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(HELLO.len(), 94);
    std::fs::write(dir.path().join("hello.txt"), HELLO).unwrap();
    let model_nanos = Arc::new(AtomicU64::new(0));
    let tool_nanos = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let (mn, c2) = (model_nanos.clone(), calls.clone());
    let model = ScriptedModel::from_fn(move |_req: &ModelRequest| {
        let t = Instant::now();
        let i = c2.fetch_add(1, Ordering::Relaxed);
        // Like a real API, the model reports its usage.
        let usage = Usage { input_tokens: 100 + 40 * i as u64, output_tokens: 20, ..Usage::default() };
        let reply = if i < n {
            ScriptReply::tool_use(format!("call_{i}"), "Read", json!({"file_path": "hello.txt"})).with_usage(usage)
        } else {
            ScriptReply::text("The file says hello.").with_usage(usage)
        };
        mn.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(reply)
    });
    let read = builtin::all().into_iter().find(|t| t.name() == "Read").unwrap();
    let mut tools = ToolRegistry::new();
    tools.register(TimedTool::new(read, tool_nanos.clone()));
    let runner = AgentRunner::builder(store, Arc::new(model)).tools(tools).build();
    let mut per_step = Vec::new();
    for run in 0..warmups + runs {
        calls.store(0, Ordering::Relaxed);
        model_nanos.store(0, Ordering::Relaxed);
        tool_nanos.store(0, Ordering::Relaxed);
        let agent =
            runner.ensure_agent(&format!("bench-{run}"), "scripted", dir.path().to_str().unwrap()).await.unwrap();
        let t = Instant::now();
        let out =
            runner.run(agent.id, "Read hello.txt and tell me what it says.", RunOptions::default()).await.unwrap();
        let wall = t.elapsed().as_nanos() as f64;
        assert_eq!(out.num_turns as usize, n + 1);
        assert_eq!(out.final_text.as_deref(), Some("The file says hello."));
        if run >= warmups {
            let inside = (model_nanos.load(Ordering::Relaxed) + tool_nanos.load(Ordering::Relaxed)) as f64;
            per_step.push((wall - inside) / (n as f64 + 1.0) / 1000.0);
        }
    }
    Measured { per_step_us: per_step }
}

/// The disk's floor in the same run: one bare SQLite commit (a ~1 KB row) per step, with the file store's
/// settings (WAL, synchronous=FULL), no orch at all. Median µs per commit.
fn bare_commit_floor(commits: usize) -> f64 {
    let dir = tempfile::tempdir_in(".").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("floor.db")).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get::<_, String>(0)).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)").unwrap();
    let payload = "x".repeat(1024);
    let mut times = Vec::with_capacity(commits);
    for _ in 0..commits {
        let t = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.execute("INSERT INTO t (payload) VALUES (?1)", [&payload]).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        times.push(t.elapsed().as_nanos() as f64 / 1000.0);
    }
    median_p90(&mut times).0
}

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        println!("agent-step workload: N = {n} Read calls, {runs} runs after 2 warm-ups (µs per step)");
        let mut mem = bench(Arc::new(MemoryStore::new()), n, runs, 2).await;
        let (m_med, m_p90) = median_p90(&mut mem.per_step_us);
        println!("  in-memory store:                           median {m_med:8.1}  p90 {m_p90:8.1}");

        let dir = tempfile::tempdir_in(".").unwrap_or_else(|_| tempfile::tempdir().unwrap());
        let sqlite = SqliteStore::open(dir.path().join("bench.db")).unwrap();
        let mut file = bench(Arc::new(sqlite), n, runs, 2).await;
        let (f_med, f_p90) = median_p90(&mut file.per_step_us);
        println!(
            "  SQLite file (WAL, synchronous=FULL, 1 commit per step): median {f_med:8.1}  p90 {f_p90:8.1}"
        );
        println!("  ratio SQLite file / in-memory (same run): {:.1}x", f_med / m_med);
        let floor = bare_commit_floor(2000);
        println!(
            "  disk floor (same run): one bare SQLite commit, WAL + synchronous=FULL, no orch: median {floor:8.1}; orch above it: {:.1} µs per step",
            f_med - floor
        );
        println!(
            "  vs. LangGraph 1.2.22 reference (shared/bench/agent-step.md): no checkpointer 2000 µs → {:.0}x less; SQLite checkpointer 6000 µs → {:.0}x less",
            2000.0 / m_med,
            6000.0 / f_med
        );
    });
}
