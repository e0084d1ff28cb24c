//! Workflow overhead per step (issue 12): a workflow of `STEPS` steps (default 20), each one prompt the
//! scripted model answers at once with no tool call, on a SQLite file at full durability, against a
//! same-run baseline of the bare agent runs it is made of (a fresh agent created and run once per
//! step, through the same supervisor). Overhead per step = (workflow − baseline) / steps: the record,
//! its events, StepStart/StepEnd, templates and the step bookkeeping.
//!
//! Run: `cargo bench -p orch-tests --bench workflow_step` (env: STEPS, RUNS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let steps = env("STEPS", 20);
    let runs = env("RUNS", 10);
    println!(
        "workflow overhead per step: {steps} steps, {runs} runs after 1 warm-up, SQLite file (WAL, synchronous=FULL)"
    );
    let mut workflow_ms = Vec::new();
    let mut bare_ms = Vec::new();
    for run in 0..=runs {
        let dir = tempfile::tempdir().unwrap();
        let wf = dir.path().join(".orch/workflows");
        std::fs::create_dir_all(&wf).unwrap();
        let mut toml = String::from("description = \"bench\"\n");
        for i in 0..steps {
            toml.push_str(&format!("[[steps]]\nname = \"s{i}\"\nprompt = \"step {i}: {{{{prompt}}}}\"\n"));
        }
        std::fs::write(wf.join("bench.toml"), toml).unwrap();
        let (supervisor, engine) = setup(dir.path());

        let t = Instant::now();
        let done = engine.start("bench", json!({"prompt": "go"}), None, None).await.unwrap();
        let w = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(done.status, WorkflowStatus::Completed, "{:?}", done.error_message);

        let t = Instant::now();
        for i in 0..steps {
            let mut agent = Agent::new(format!("bare-{i}"), "scripted", dir.path().display().to_string());
            agent = supervisor.runner().create_agent(agent).await.unwrap();
            supervisor.run(&agent, format!("step {i}: go"), RunOptions::default()).await.unwrap();
        }
        let b = t.elapsed().as_secs_f64() * 1000.0;
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
