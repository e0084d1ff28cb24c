//! A scripted model writes a file through the `Write` tool; then every recorded event is printed.
//!
//! Run: `cargo run -p orch-examples --example hello_agent`

use std::sync::Arc;

use orch_core::prelude::*;
use orch_store_sqlite::SqliteStore;

const SCRIPT: &str = r#"{"steps": [
  {"when": "greet (\\w+)",
   "reply": [{"type": "text", "text": "Writing a greeting for $1."},
             {"type": "tool_use", "name": "Write", "input": {"file_path": "hello.txt", "content": "Hello, $1!\n"}}]},
  {"when": "^Wrote", "reply": [{"type": "text", "text": "Done."}]}
]}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // The embedded store: one SQLite file.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("orch.db"))?);
    let model = Arc::new(ScriptedModel::from_json_str(SCRIPT)?);
    let runner = AgentRunner::builder(store.clone(), model).build();

    let agent = runner.ensure_agent("greeter", "scripted", &dir.path().to_string_lossy()).await?;
    let outcome = runner.run(agent.id, "Please greet Ada", RunOptions::default()).await?;

    println!("reply: {}", outcome.final_text.unwrap_or_default());
    println!("hello.txt: {}", std::fs::read_to_string(dir.path().join("hello.txt"))?.trim());
    println!("events:");
    orch_examples::print_events(store.as_ref()).await?;
    Ok(())
}
