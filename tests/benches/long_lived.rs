//! Long-lived agents, the two figures of issue 11, each against its baseline in the same run:
//!
//! 1. **Compaction**: one agent commanded `COMMANDS` times (default 100) by the scripted model, every
//!    prompt and answer ~1,200 characters, on a model whose window is `WINDOW` tokens (default 20,000):
//!    input tokens per model call (as the model measured them) with compaction on (the default 80 %
//!    threshold) against off, and the wall time of all the commands.
//! 2. **Task round trip**: a parent's step that calls a direct tool (`Ping`, a no-op) against one that
//!    calls `Task` with a `general-purpose` subagent answering at once: median time per round trip
//!    (`ROUNDS`, default 200), in-memory store, scripted model.
//!
//! Run: `cargo bench -p orch-tests --bench long_lived` (env: COMMANDS, WINDOW, ROUNDS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod allocator;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use orch_core::executor::compact::SUMMARY_REQUEST_HEAD;
use orch_core::executor::{CompactionSettings, NativeExecutor, Supervisor};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{ModelRequest, Price, PriceTable};
use orch_core::prelude::*;
use orch_tests::median_p90;
use serde_json::{Value, json};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn last_text(req: &ModelRequest) -> String {
    req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string()
}

fn prices(window: u64) -> PriceTable {
    let mut t = PriceTable::default();
    t.models.insert(
        "scripted".into(),
        Price { input: 0.0, output: 0.0, cache_read: None, cache_write: None, context_window: Some(window) },
    );
    t
}

fn supervisor(executor: NativeExecutor, tools: ToolRegistry) -> (Supervisor, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let idle = Arc::new(orch_core::model::scripted::ScriptedModel::from_fn(|_| Ok(ScriptReply::text("-"))));
    let runner = AgentRunner::builder(store.clone(), idle).executor(Arc::new(executor)).tools(tools).build();
    (Supervisor::new(runner, Vec::new()), store)
}

/// Input tokens of every (non-summary) model call, and the wall time, for `commands` commands.
async fn commanded(commands: usize, window: u64, compact_at: f64) -> (Vec<f64>, f64, usize) {
    let inputs = Arc::new(Mutex::new(Vec::new()));
    let summaries = Arc::new(AtomicUsize::new(0));
    let (seen, sums) = (inputs.clone(), summaries.clone());
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let last = last_text(req);
        if last.starts_with(SUMMARY_REQUEST_HEAD) {
            sums.fetch_add(1, Ordering::Relaxed);
            return Ok(ScriptReply::text("SUMMARY: numbered prompts, each answered with a long text."));
        }
        // The scripted model's own measure of the request: bytes of system and messages / 4.
        let bytes = serde_json::to_string(&*req.messages).map(|s| s.len()).unwrap_or(0);
        seen.lock().unwrap().push((bytes / 4) as f64);
        Ok(ScriptReply::text(format!("answer to {}: {}", &last[..last.len().min(12)], "a".repeat(1200))))
    });
    let executor = NativeExecutor::new(Arc::new(model))
        .with_prices(prices(window))
        .with_compaction(CompactionSettings { compact_at, ..CompactionSettings::default() });
    let (sup, _store) = supervisor(executor, ToolRegistry::new());
    let dir = tempfile::tempdir().unwrap();
    let agent = sup.runner().ensure_agent("keeper", "scripted", dir.path().to_str().unwrap()).await.unwrap();
    let t = Instant::now();
    for i in 0..commands {
        sup.run(&agent, format!("prompt {i}: {}", "p".repeat(1200)), RunOptions::default()).await.unwrap();
    }
    let wall = t.elapsed().as_secs_f64();
    let v = inputs.lock().unwrap().clone();
    (v, wall, summaries.load(Ordering::Relaxed))
}

struct Ping;

#[async_trait]
impl Tool for Ping {
    fn name(&self) -> &str {
        "Ping"
    }
    fn description(&self) -> &str {
        "No-op."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn call(&self, _ctx: &ToolContext, _input: Value) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text("pong"))
    }
}

/// Median and p90 microseconds per round trip of one tool call (`Ping`) or one `Task`.
async fn round_trips(rounds: usize, via_task: bool) -> (f64, f64) {
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let last = last_text(req);
        Ok(if req.agent_name.starts_with("general-purpose-") {
            ScriptReply::text("sub done")
        } else if last == "go" {
            if via_task {
                ScriptReply::tool_use(
                    "t",
                    "Task",
                    json!({"description": "d", "prompt": "answer", "subagent_type": "general-purpose"}),
                )
            } else {
                ScriptReply::tool_use("p", "Ping", json!({}))
            }
        } else {
            ScriptReply::text("parent done")
        })
    });
    let executor = NativeExecutor::new(Arc::new(model));
    let mut tools = ToolRegistry::new();
    tools.register(Ping);
    let (sup, _store) = supervisor(executor, tools);
    let dir = tempfile::tempdir().unwrap();
    let agent = sup.runner().ensure_agent("lead", "scripted", dir.path().to_str().unwrap()).await.unwrap();
    let mut micros = Vec::with_capacity(rounds);
    for i in 0..rounds + 10 {
        let t = Instant::now();
        let out = sup.run(&agent, "go".into(), RunOptions::default()).await.unwrap();
        assert_eq!(out.final_text.as_deref(), Some("parent done"));
        if i >= 10 {
            micros.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    median_p90(&mut micros)
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = v.iter().copied().fold(0.0, f64::max);
    let mut s = v.to_vec();
    let (median, _) = median_p90(&mut s);
    (mean, median, max)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let commands = env("COMMANDS", 100);
    let window = env("WINDOW", 20_000) as u64;
    let rounds = env("ROUNDS", 200);
    println!("long-lived agents: {commands} commands, window {window} tokens; {rounds} round trips");

    let (off, wall_off, _) = commanded(commands, window, 0.0).await;
    let (on, wall_on, summaries) = commanded(commands, window, 0.8).await;
    let (mean_off, med_off, max_off) = stats(&off);
    let (mean_on, med_on, max_on) = stats(&on);
    println!("\ninput tokens per call     mean      median    max       last      wall");
    println!(
        "compaction off            {mean_off:<9.0} {med_off:<9.0} {max_off:<9.0} {:<9.0} {wall_off:.3} s",
        off.last().copied().unwrap_or(0.0)
    );
    println!(
        "compaction on (80 %)      {mean_on:<9.0} {med_on:<9.0} {max_on:<9.0} {:<9.0} {wall_on:.3} s  ({summaries} compactions)",
        on.last().copied().unwrap_or(0.0)
    );
    println!("ratio on/off (mean)       {:.3}", mean_on / mean_off);

    let (direct_med, direct_p90) = round_trips(rounds, false).await;
    let (task_med, task_p90) = round_trips(rounds, true).await;
    println!("\nround trip (µs)           median    p90");
    println!("direct tool call          {direct_med:<9.0} {direct_p90:<9.0}");
    println!("Task subagent             {task_med:<9.0} {task_p90:<9.0}");
    println!("ratio Task/direct         {:.2}", task_med / direct_med);
}
