//! Workflow overhead per step (issue 12): a workflow of `STEPS` steps (default 20), each one prompt the
//! scripted model answers at once with no tool call, on a SQLite file at full durability, against a
//! same-run baseline of the bare agent runs it is made of (a fresh agent created and run once per
//! step, through the same supervisor), each in a fresh database. Overhead per step = (workflow − baseline) / steps: the record,
//! its events, StepStart/StepEnd, templates and the step bookkeeping.
//!
//! Run: `cargo bench -p orch-tests --bench workflow_step` (env: STEPS, RUNS; ONLY=workflow or ONLY=bare
//! runs one side, e.g. to count its syscalls under strace).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod allocator;

use std::sync::Arc;
use std::time::Instant;

use orch_core::executor::Supervisor;
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::prelude::*;
use orch_core::workflow::WorkflowEngine;
use orch_store_sqlite::SqliteStore;
use orch_tests::median_p90;
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn setup(dir: &std::path::Path) -> (Supervisor, WorkflowEngine) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("orch.db")).unwrap());
    let model = ScriptedModel::from_fn(|_req: &ModelRequest| Ok(ScriptReply::text("done")));
    let runner = AgentRunner::builder(store, Arc::new(model)).tools(ToolRegistry::new()).build();
    let supervisor = Supervisor::new(runner, Vec::new());
    let engine = WorkflowEngine::new(supervisor.clone(), dir, "scripted");
    (supervisor, engine)
}

/// A fresh working dir with a `bench` workflow of `steps` steps.
fn workdir(steps: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".orch/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    let mut toml = String::from("description = \"bench\"\n");
    for i in 0..steps {
        toml.push_str(&format!("[[steps]]\nname = \"s{i}\"\nprompt = \"step {i}: {{{{prompt}}}}\"\n"));
    }
    std::fs::write(wf.join("bench.toml"), toml).unwrap();
    dir
}

/// The workflow of `steps` steps in a fresh store: ms.
async fn workflow(steps: usize) -> f64 {
    let dir = workdir(steps);
    let (_, engine) = setup(dir.path());
    let t = Instant::now();
    let done = engine.start("bench", json!({"prompt": "go"}), None, None).await.unwrap();
    assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);
    t.elapsed().as_secs_f64() * 1000.0
}

/// `steps` bare agent runs (a fresh agent each) in a fresh store: ms.
async fn bare(steps: usize) -> f64 {
    let dir = workdir(steps);
    let (supervisor, _) = setup(dir.path());
    let t = Instant::now();
    for i in 0..steps {
        let mut agent = Agent::new(format!("bare-{i}"), "scripted", dir.path().display().to_string());
        agent = supervisor.runner().create_agent(agent).await.unwrap();
        supervisor.run(&agent, format!("step {i}: go"), RunOptions::default()).await.unwrap();
    }
    t.elapsed().as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let steps = env("STEPS", 20);
    let runs = env("RUNS", 10);
    let only = std::env::var("ONLY").unwrap_or_default();
    println!(
        "workflow overhead per step: {steps} steps, {runs} runs after 1 warm-up, SQLite file (WAL, synchronous=FULL); \
         each side in a fresh database, which side goes first alternating"
    );
    let mut workflow_ms = Vec::new();
    let mut bare_ms = Vec::new();
    for run in 0..=runs {
        // A fresh file pays for growing its WAL (the file system syncs the size too); each side gets
        // its own, and the order alternates so neither always runs on a warmer disk cache.
        let (w, b) = if run % 2 == 0 {
            let w = if only == "bare" { 0.0 } else { workflow(steps).await };
            let b = if only == "workflow" { 0.0 } else { bare(steps).await };
            (w, b)
        } else {
            let b = if only == "workflow" { 0.0 } else { bare(steps).await };
            let w = if only == "bare" { 0.0 } else { workflow(steps).await };
            (w, b)
        };
        if run > 0 {
            workflow_ms.push(w);
            bare_ms.push(b);
        }
    }
    let (w_med, w_p90) = median_p90(&mut workflow_ms);
    let (b_med, b_p90) = median_p90(&mut bare_ms);
    println!("  workflow of {steps} steps          median {w_med:8.1} ms  p90 {w_p90:8.1} ms");
    println!("  baseline: {steps} bare agent runs   median {b_med:8.1} ms  p90 {b_p90:8.1} ms");
    let per_step = (w_med - b_med) / steps as f64;
    println!(
        "  overhead per step (median difference / steps): {per_step:.2} ms (goal < 2 ms); ratio {:.2}x",
        w_med / b_med
    );
}
