//! The orchestrator from Rust: one chat turn in which a scripted orchestrator creates an agent called
//! alice and commands her to write `hello.py`; then alice's run is awaited and her status printed.
//!
//! Run: `cargo run -p orch-examples --example orchestrator`

use std::sync::Arc;

use orch_core::orchestrator::{Orchestrator, OrchestratorConfig};
use orch_core::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // One scripted model answers the orchestrator and its agents (its steps match on the agent's name).
    let model = Arc::new(ScriptedModel::from_json_str(include_str!("scripts/orchestrator.json"))?);

    // `agents` runs the managed agents; `model` also serves the orchestrator's own turns.
    let agents = AgentRunner::builder(store.clone(), model.clone()).build();
    let orch =
        Orchestrator::builder(agents, model).config(OrchestratorConfig::new(dir.path(), "scripted")).open().await?;

    let turn = orch.chat("create an agent called alice for python work, then have her write hello.py", None).await?;
    println!("orchestrator: {}", turn.reply.unwrap_or_default());
    // The runs the turn started keep going in the background until awaited.
    for run in &turn.started_runs {
        let report = run.wait().await;
        match report.result {
            Ok(outcome) => println!("[{}] {}", report.agent_name, outcome.final_text.unwrap_or_default()),
            Err(e) => println!("[{}] failed: {e}", report.agent_name),
        }
    }

    let status = orch.manager().status("alice", 10, 0).await?;
    let a = &status.agent;
    println!("alice: {:?}, model {}, {} output tokens", a.status, a.model, a.usage.output_tokens);
    for entry in &status.entries {
        println!("  {:<18} {}", entry.record.event.kind(), entry.summary);
    }
    println!("hello.py: {}", std::fs::read_to_string(dir.path().join("hello.py"))?.trim());
    Ok(())
}
