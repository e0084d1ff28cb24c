//! A typed tool: its arguments are a Rust struct, the schema the model sees is derived from it, and
//! arguments that do not fit reach the model as a tool error naming the field.
//!
//! Run: `cargo run -p orch-examples --example typed_tool`

use std::sync::Arc;

use async_trait::async_trait;
use orch_core::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;

/// Where and how far ahead (doc comments become the schema's descriptions).
#[derive(Deserialize, JsonSchema)]
struct Forecast {
    /// City name.
    city: String,
    /// Days ahead, 1 to 7.
    days: u8,
}

struct Weather;

#[async_trait]
impl TypedTool for Weather {
    type Args = Forecast;
    const NAME: &'static str = "weather";

    fn description(&self) -> &str {
        "The weather forecast for a city."
    }

    async fn call(&self, _ctx: &ToolContext, args: Forecast) -> Result<ToolOutput, ToolError> {
        if !(1..=7).contains(&args.days) {
            return Err(ToolError::InvalidInput(format!("days must be 1 to 7, not {}", args.days)));
        }
        Ok(ToolOutput::text(format!("{}: sunny for the next {} days", args.city, args.days)))
    }
}

// The model first sends `days` as a string, reads the error, then calls it right.
const SCRIPT: &str = r#"{"steps": [
  {"when": "^Weather", "reply": [{"type": "tool_use", "name": "weather", "input": {"city": "Oslo", "days": "three"}}]},
  {"when": "field 'days'", "reply": [{"type": "tool_use", "name": "weather", "input": {"city": "Oslo", "days": 3}}]},
  {"when": "sunny", "reply": [{"type": "text", "text": "Oslo will be sunny for three days."}]}
]}"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = Arc::new(ScriptedModel::from_json_str(SCRIPT)?);

    let mut tools = ToolRegistry::new();
    tools.register(Weather); // every TypedTool is a Tool
    println!("schema: {}", serde_json::to_string(&Weather.input_schema())?);

    let runner = AgentRunner::builder(store.clone(), model).tools(tools).build();
    let agent = runner.ensure_agent("forecaster", "scripted", &dir.path().to_string_lossy()).await?;
    let outcome = runner.run(agent.id, "Weather in Oslo for three days?", RunOptions::default()).await?;
    for r in store.read_events(&EventQuery::default()).await? {
        if let Event::ToolResult { content, is_error, .. } = &r.event {
            println!("tool result{}: {content}", if *is_error { " (error)" } else { "" });
        }
    }
    println!("reply: {}", outcome.final_text.unwrap_or_default());
    Ok(())
}
