//! Typed tools through the native loop with a scripted model: good arguments run the tool, bad ones
//! reach the model as a tool error naming the field, and the model is offered the struct's schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orch_core::executor::{AgentRunner, RunOptions};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{ModelRequest, ToolSpec};
use orch_core::store::MemoryStore;
use orch_core::tool::schemars::JsonSchema;
use orch_core::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry, TypedTool};
use orch_core::wire::{ContentBlock, Role};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where and how far ahead.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "orch_core::tool::schemars")]
struct Forecast {
    /// City name.
    city: String,
    /// Days ahead.
    days: u8,
    /// Metric units (default yes).
    #[serde(default)]
    metric: Option<bool>,
}

struct Weather {
    calls: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl TypedTool for Weather {
    type Args = Forecast;
    const NAME: &'static str = "weather";

    fn description(&self) -> &str {
        "The forecast for a city."
    }

    async fn call(&self, _ctx: &ToolContext, args: Forecast) -> Result<ToolOutput, ToolError> {
        self.calls.lock().unwrap().push(args.city.clone());
        let units = if args.metric == Some(false) { " (in Fahrenheit)" } else { "" };
        Ok(ToolOutput::text(format!("{}: sunny for {} days{units}", args.city, args.days)))
    }
}

fn tool_results(req: &ModelRequest) -> Vec<(String, bool)> {
    match req.messages.last() {
        Some(m) if m.role == Role::User => m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolResult { content, is_error, .. } => Some((content.clone(), *is_error)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_typed_tool_runs_with_good_arguments_and_names_the_bad_field_to_the_model() {
    let seen: Arc<Mutex<Vec<ModelRequest>>> = Arc::default();
    let s = seen.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        s.lock().unwrap().push(req.clone());
        Ok(match s.lock().unwrap().len() {
            1 => ScriptReply::tool_use("", "weather", json!({"city": "Oslo", "days": 2})),
            2 => ScriptReply::tool_use("", "weather", json!({"city": "Oslo", "days": "three"})),
            3 => ScriptReply::tool_use("", "weather", json!({"days": 1})),
            _ => ScriptReply::text("done"),
        })
    });
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut tools = ToolRegistry::new();
    tools.register(Weather { calls: calls.clone() });
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store, Arc::new(model)).tools(tools).build();
    let dir = tempfile::tempdir().unwrap();
    let agent = runner.ensure_agent("forecaster", "scripted", dir.path().to_str().unwrap()).await.unwrap();

    let out = runner.run(agent.id, "weather in Oslo?", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("done"));
    assert_eq!(*calls.lock().unwrap(), ["Oslo"], "only the call with good arguments ran");

    let seen = seen.lock().unwrap();
    assert_eq!(tool_results(&seen[1]), [("Oslo: sunny for 2 days".to_string(), false)]);
    let (bad_type, is_error) = tool_results(&seen[2]).remove(0);
    assert!(is_error);
    assert!(bad_type.contains("field 'days'") && bad_type.contains("invalid type: string \"three\""), "{bad_type}");
    let (missing, is_error) = tool_results(&seen[3]).remove(0);
    assert!(is_error);
    assert!(missing.contains("missing field 'city'"), "{missing}");

    // The model was offered the struct's schema.
    let spec: &ToolSpec = seen[0].tools.iter().find(|t| t.name == "weather").unwrap();
    assert_eq!(spec.description, "The forecast for a city.");
    let schema = &spec.input_schema;
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["city", "days"]));
    assert_eq!(schema["properties"]["city"], json!({"type": "string", "description": "City name."}));
    assert_eq!(schema["properties"]["days"]["type"], "integer");
    assert_eq!(schema["properties"]["days"]["description"], "Days ahead.");
    assert!(schema["properties"]["metric"]["type"].as_array().is_some_and(|t| t.contains(&json!("boolean"))));
    assert!(schema.get("$schema").is_none() && schema.get("title").is_none(), "{schema}");
}

#[test]
fn a_typed_tool_is_a_tool_named_by_its_const() {
    let w = Weather { calls: Arc::default() };
    assert_eq!(Tool::name(&w), "weather");
    let schema: Value = w.input_schema();
    let keys: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["city", "days", "metric"]);
}
