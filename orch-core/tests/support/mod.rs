//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod wire_server;

use std::sync::Arc;

use futures::StreamExt;
use orch_core::Interrupt;
use orch_core::model::{AssembledResponse, ModelDelta, ModelError, ModelProvider, ModelRequest, ResponseAssembler};
use orch_core::runtime::TokioRuntime;
use orch_core::tool::ToolContext;
use orch_core::wire::Message;

/// A request to `model` with a terse system prompt, no tools, and these messages.
pub fn request(model: &str, messages: Vec<Message>) -> ModelRequest {
    ModelRequest {
        model: model.into(),
        system: Some("You are terse.".into()),
        messages: Arc::new(messages),
        tools: Arc::new(Vec::new()),
        max_tokens: 4096,
        thinking: None,
        agent_name: "tester".into(),
    }
}

/// Runs one call: every delta seen, and the assembled answer or the error.
pub async fn call(
    p: &dyn ModelProvider,
    req: ModelRequest,
) -> (Vec<ModelDelta>, Result<AssembledResponse, ModelError>) {
    let mut seen = Vec::new();
    let mut stream = match p.stream(req).await {
        Ok(s) => s,
        Err(e) => return (seen, Err(e)),
    };
    let mut asm = ResponseAssembler::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(d) => {
                seen.push(d.clone());
                if let Err(e) = asm.push(d) {
                    return (seen, Err(e));
                }
            }
            Err(e) => return (seen, Err(e)),
        }
    }
    (seen, asm.finish())
}

/// The context of a tool call made by the test agent `tester` in `working_dir`.
pub fn tool_context(working_dir: std::path::PathBuf) -> ToolContext {
    ToolContext {
        working_dir,
        agent_id: orch_core::wire::new_id(),
        agent_name: "tester".to_string(),
        tool_use_id: "toolu_test".to_string(),
        interrupt: Interrupt::new(),
        runtime: Arc::new(TokioRuntime),
    }
}

/// A model that starts a text block ("working"), then never finishes: a run of it lasts until
/// interrupted.
pub struct StallingModel;

#[async_trait::async_trait]
impl ModelProvider for StallingModel {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn stream(&self, _r: ModelRequest) -> Result<orch_core::model::DeltaStream, ModelError> {
        let first = futures::stream::iter(vec![
            Ok(ModelDelta::BlockStart { index: 0, block: orch_core::model::BlockStart::Text }),
            Ok(ModelDelta::Text { index: 0, text: "working".into() }),
        ]);
        Ok(Box::pin(first.chain(futures::stream::pending())))
    }
}
