//! 100 ADWs at once (issue 12): `N` workflow runs (default 100) of 4 steps (plan, build, review, fix;
//! each step one tool call, a `Write`, then an answer from the instantly answering scripted model)
//! started together on one SQLite file at full durability, against a same-run baseline: the same agent
//! turns without the workflow layer (`N` concurrent chains of 4 fresh agents run one after another),
//! each side in a fresh database, the order alternating. Reports total wall time, the ratio, and the
//! peak RSS of each (VmHWM, reset before each).
//!
//! Run: `cargo bench -p orch-tests --bench adw_100` (env: N, RUNS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod allocator;

use std::sync::Arc;
use std::time::Instant;

use orch_core::executor::Supervisor;
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::prelude::*;
use orch_core::tool::builtin;
use orch_core::wire::{ContentBlock, Role};
use orch_core::workflow::WorkflowEngine;
use orch_store_sqlite::SqliteStore;
use orch_tests::{median_p90, proc_status, reset_peak_rss};
use serde_json::json;

const STEPS: [&str; 4] = ["plan", "build", "review", "fix"];

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A model that writes one file per turn, then answers once the write's result is back.
fn model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ModelRequest| {
        let answered = req.messages.last().is_some_and(|m| {
            m.role == Role::User && m.content.iter().any(|b| matches!(b, ContentBlock::ToolResult { .. }))
        });
        if answered {
            return Ok(ScriptReply::text("done"));
        }
        let n = req.messages.len();
        Ok(ScriptReply::tool_use(
            format!("w{n}"),
            "Write",
            json!({"file_path": format!("out/{}.md", orch_core::wire::new_id()), "content": "# notes\n"}),
        ))
    })
}

fn setup(dir: &std::path::Path) -> (Supervisor, WorkflowEngine) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("orch.db")).unwrap());
    let write = builtin::all().into_iter().find(|t| t.name() == "Write").unwrap();
    let mut tools = ToolRegistry::new();
    tools.register_arc(write);
    let runner = AgentRunner::builder(store, Arc::new(model())).tools(tools).build();
    let supervisor = Supervisor::new(runner, Vec::new());
    let engine = WorkflowEngine::new(supervisor.clone(), dir, "scripted");
    (supervisor, engine)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// `n` workflows of the four steps at once in a fresh store: ms and peak RSS (kB).
async fn workflows(n: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".orch/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    let mut toml = String::from("description = \"four steps\"\n");
    for s in STEPS {
        toml.push_str(&format!("[[steps]]\nname = \"{s}\"\nprompt = \"{s}: {{{{prompt}}}}\"\n"));
    }
    std::fs::write(wf.join("four.toml"), toml).unwrap();
    let (_, engine) = setup(dir.path());
    reset_peak_rss();
    let t = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for i in 0..n {
        let engine = engine.clone();
        starts.spawn(async move { engine.start("four", json!({"prompt": format!("task {i}")}), None, None).await });
    }
    let done = starts.join_all().await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let peak = proc_status("VmHWM").unwrap_or(0);
    for d in &done {
        let d = d.as_ref().unwrap();
        assert_eq!(d.status, WorkflowStatus::Completed, "{:?}", d.error_message);
    }
    (ms, peak)
}

/// `n` chains of four bare agent runs (a fresh agent each) at once in a fresh store: ms and peak RSS (kB).
async fn bare(n: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (supervisor, _) = setup(dir.path());
    reset_peak_rss();
    let t = Instant::now();
    let mut chains = tokio::task::JoinSet::new();
    for i in 0..n {
        let supervisor = supervisor.clone();
        let cwd = dir.path().display().to_string();
        chains.spawn(async move {
            for s in STEPS {
                let agent = Agent::new(format!("bare-{s}-{i}"), "scripted", cwd.clone());
                let agent = supervisor.runner().create_agent(agent).await.unwrap();
                supervisor.run(&agent, format!("{s}: task {i}"), RunOptions::default()).await.unwrap();
            }
        });
    }
    chains.join_all().await;
    (t.elapsed().as_secs_f64() * 1000.0, proc_status("VmHWM").unwrap_or(0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env("N", 100);
    let runs = env("RUNS", 3);
    println!(
        "{n} ADWs of 4 steps at once, {runs} runs after 1 warm-up, one SQLite file (WAL, synchronous=FULL); \
         each side in a fresh database, which side goes first alternating"
    );
    let (mut wf_ms, mut bare_ms, mut wf_peak, mut bare_peak) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..=runs {
        let ((w, w_peak), (b, b_peak)) = if run % 2 == 0 {
            let w = workflows(n).await;
            (w, bare(n).await)
        } else {
            let b = bare(n).await;
            (workflows(n).await, b)
        };
        if run > 0 {
            wf_ms.push(w);
            bare_ms.push(b);
            wf_peak.push(mb(w_peak));
            bare_peak.push(mb(b_peak));
        }
    }
    let (w_med, w_p90) = median_p90(&mut wf_ms);
    let (b_med, b_p90) = median_p90(&mut bare_ms);
    let (wp, _) = median_p90(&mut wf_peak);
    let (bp, _) = median_p90(&mut bare_peak);
    println!("  {n} workflows (4 steps each)        median {w_med:8.1} ms  p90 {w_p90:8.1} ms  peak RSS {wp:.1} MB");
    println!("  baseline: {n} chains of 4 bare runs  median {b_med:8.1} ms  p90 {b_p90:8.1} ms  peak RSS {bp:.1} MB");
    println!(
        "  ratio {:.2}x; {:.0} workflow steps/s; overhead per step {:.2} ms of wall time",
        w_med / b_med,
        (n * STEPS.len()) as f64 / (w_med / 1000.0),
        (w_med - b_med) / (n * STEPS.len()) as f64
    );
}
