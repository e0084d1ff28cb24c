//! A tool written in Rust, and a `PreToolUse` hook that denies `Bash` commands containing `rm -rf`.
//!
//! Run: `cargo run -p orch-examples --example custom_tool_and_hook`

use std::sync::Arc;

use async_trait::async_trait;
use orch_core::prelude::*;
use serde_json::{Value, json};

/// Adds two numbers.
struct Add;

#[async_trait]
impl Tool for Add {
    fn name(&self) -> &str {
        "add"
    }
    fn description(&self) -> &str {
        "Adds two numbers a and b."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]})
    }
    async fn call(&self, _ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let num = |k: &str| {
            input
                .get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| ToolError::InvalidInput(format!("'{k}' must be a number")))
        };
        Ok(ToolOutput::text(format!("{}", num("a")? + num("b")?)))
    }
}

const SCRIPT: &str = r#"{"steps": [
  {"when": "^Add", "reply": [{"type": "tool_use", "name": "add", "input": {"a": 2, "b": 40}}]},
  {"when": "^42$", "reply": [{"type": "text", "text": "2 + 40 = 42. Now let me clean up."},
                             {"type": "tool_use", "name": "Bash", "input": {"command": "rm -rf ./build"}}]},
  {"when": "denied", "reply": [{"type": "text", "text": "The cleanup was refused by a hook; leaving the files alone."}]}
]}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = Arc::new(ScriptedModel::from_json_str(SCRIPT)?);

    let mut tools = ToolRegistry::with_builtins();
    tools.register(Add);

    let mut hooks = HookRegistry::new();
    hooks.register(
        HookEvent::PreToolUse,
        Some("Bash"),
        FnHook::new("no-rm-rf", |input| {
            let command =
                input.tool_input.as_ref().and_then(|i| i.get("command")).and_then(Value::as_str).unwrap_or("");
            if command.contains("rm -rf") {
                HookDecision::Deny { reason: "rm -rf is not allowed".into() }
            } else {
                HookDecision::Continue
            }
        }),
    )?;

    let runner = AgentRunner::builder(store.clone(), model).tools(tools).hooks(hooks).build();
    let agent = runner.ensure_agent("calculator", "scripted", &dir.path().to_string_lossy()).await?;
    let outcome = runner.run(agent.id, "Add 2 and 40, then clean up", RunOptions::default()).await?;
    println!("reply: {}", outcome.final_text.unwrap_or_default());
    orch_examples::print_events(store.as_ref()).await?;
    Ok(())
}
