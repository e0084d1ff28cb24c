//! Record and replay: run an agent with every model call recorded to a cassette, then run the same
//! agent again offline from the cassette (no model, no network), getting the same answer. A replayed
//! request that no longer matches the recording fails with a diff.
//!
//! Run: `cargo run -p orch-examples --example record_replay`

use std::sync::Arc;

use orch_core::model::cassette::{RecordingProvider, ReplayProvider};
use orch_core::prelude::*;

const SCRIPT: &str = r#"{"steps": [
  {"when": "capital of (\\w+)", "reply": [{"type": "text", "text": "The capital of $1 is Oslo."}]}
]}"#;

async fn ask(model: Arc<dyn ModelProvider>, prompt: &str) -> Result<String, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store, model).build();
    let agent = runner.ensure_agent("geographer", "scripted", &dir.path().to_string_lossy()).await?;
    Ok(runner.run(agent.id, prompt, RunOptions::default()).await?.final_text.unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let cassette = dir.path().join("geography.jsonl");

    // 1. Record: any provider (a real one in practice; a scripted one here) behind a recorder.
    let live: Arc<dyn ModelProvider> = Arc::new(ScriptedModel::from_json_str(SCRIPT)?);
    let recorder = Arc::new(RecordingProvider::create(live, &cassette)?);
    println!("recorded: {}", ask(recorder.clone(), "What is the capital of Norway?").await?);
    println!("cassette: {} interaction(s)", recorder.recorded());

    // 2. Replay offline: the same request gets the recorded answer.
    let replay = Arc::new(ReplayProvider::from_file(&cassette)?);
    println!("replayed: {}", ask(replay, "What is the capital of Norway?").await?);

    // 3. A request that changed fails with a diff of what changed.
    let replay = Arc::new(ReplayProvider::from_file(&cassette)?);
    match ask(replay, "What is the capital of Sweden?").await {
        Ok(text) => println!("unexpected answer: {text}"),
        Err(e) => println!("changed request: {}", e.to_string().lines().next().unwrap_or_default()),
    }
    Ok(())
}
