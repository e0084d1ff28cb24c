//! Your own model provider, registered in a `ProviderRegistry` beside a scripted one: agents of one
//! runner run on the provider their model names (`mycorp:…` or `scripted:…`), and one run can switch
//! provider with `RunOptions::model`.
//!
//! Run: `cargo run -p orch-examples --example custom_provider`

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream;
use orch_core::model::{BlockStart, DeltaStream, ModelDelta, ModelError, ProviderEntry, ProviderRegistry, StopReason};
use orch_core::model::{ModelSpec, TargetKind};
use orch_core::prelude::*;

/// A stand-in for your company's model API: it answers by shouting the last message back. A real one
/// would call its HTTP API here and map its stream onto `ModelDelta`s.
struct MyCorp {
    model: String,
}

#[async_trait]
impl ModelProvider for MyCorp {
    fn name(&self) -> &str {
        "mycorp"
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let last = request.messages.last().and_then(|m| m.last_text()).unwrap_or_default();
        let text = format!("[{} via mycorp] {}", self.model, last.to_uppercase());
        let deltas = vec![
            Ok(ModelDelta::BlockStart { index: 0, block: BlockStart::Text }),
            Ok(ModelDelta::Text { index: 0, text }),
            Ok(ModelDelta::BlockStop { index: 0 }),
            Ok(ModelDelta::Usage(Usage { input_tokens: 10, output_tokens: 5, ..Usage::default() })),
            Ok(ModelDelta::Stop { reason: StopReason::EndTurn }),
        ];
        Ok(Box::pin(stream::iter(deltas)))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let wd = dir.path().to_string_lossy().to_string();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());

    let mut registry = ProviderRegistry::new();
    // `mycorp:MODEL` → one MyCorp per model id (built on first use, then reused).
    registry.register("mycorp", |model_id: &str| {
        if model_id.is_empty() {
            return Err(ModelError::Other { message: "mycorp needs a model id".into() });
        }
        Ok(Arc::new(MyCorp { model: model_id.to_string() }) as Arc<dyn ModelProvider>)
    })?;
    // `scripted:…` → a scripted model; it is also the default for bare ids and aliases.
    let scripted: Arc<dyn ModelProvider> = Arc::new(ScriptedModel::from_fn(|_| Ok("scripted says hi".into())));
    registry
        .register_entry(ProviderEntry::new("scripted", move |_: &str| Ok(scripted.clone())).target(TargetKind::File))?;
    registry.set_default(ModelSpec::parse("scripted:inline")?)?;
    println!("providers: {}", registry.accepted_forms());

    let runner = AgentRunner::with_registry(store.clone(), registry).build();
    let big = runner.create_agent(Agent::new("big", "mycorp:big-1", wd.clone())).await?;
    let local = runner.create_agent(Agent::new("local", "sonnet", wd.clone())).await?;
    let lost = runner.create_agent(Agent::new("lost", "openai:gpt-5", wd)).await?;

    let out = runner.run(big.id, "hello there", RunOptions::default()).await?;
    println!("big: {}", out.final_text.unwrap_or_default());
    let out = runner.run(local.id, "hello there", RunOptions::default()).await?;
    println!("local: {}", out.final_text.unwrap_or_default());
    // One run on another model (and provider); the agent keeps its own model.
    let opts = RunOptions { model: Some("mycorp:reviewer".into()), ..RunOptions::default() };
    let out = runner.run(local.id, "review this", opts).await?;
    println!("local, one run on mycorp:reviewer: {}", out.final_text.unwrap_or_default());
    // A provider this registry does not have is refused, naming the ones it has.
    if let Err(e) = runner.run(lost.id, "hi", RunOptions::default()).await {
        println!("lost: {e}");
    }
    Ok(())
}
