//! [`RoutingExecutor`]: one executor for a runner whose agents use different engines, chosen per agent
//! by its model string.

use std::sync::Arc;

use async_trait::async_trait;

use super::{AgentExecutor, RunError, RunOutcome, TurnContext};

/// Whether an agent's model string names the Claude Code CLI: `claude-code` or `claude-code:MODEL`.
pub fn is_claude_code_model(model: &str) -> bool {
    let m = model.trim();
    m == "claude-code" || m.starts_with("claude-code:")
}

/// Runs each agent on the executor its model asks for: `claude-code` and `claude-code:…` on the
/// Claude Code executor, everything else on the native one.
///
/// ```no_run
/// # #[cfg(all(feature = "tokio", unix))]
/// # fn demo(store: std::sync::Arc<dyn orch_core::store::Store>, provider: std::sync::Arc<dyn orch_core::model::ModelProvider>) {
/// use std::sync::Arc;
/// use orch_core::executor::{AgentRunner, ClaudeCodeConfig, ClaudeCodeExecutor, NativeExecutor, RoutingExecutor};
///
/// let router = RoutingExecutor::new(Arc::new(NativeExecutor::new(provider.clone())))
///     .with_claude_code(Arc::new(ClaudeCodeExecutor::new(ClaudeCodeConfig::from_env())));
/// let runner = AgentRunner::builder(store, provider).executor(Arc::new(router)).build();
/// # }
/// ```
#[derive(Clone)]
pub struct RoutingExecutor {
    native: Arc<dyn AgentExecutor>,
    claude_code: Option<Arc<dyn AgentExecutor>>,
}

impl std::fmt::Debug for RoutingExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingExecutor")
            .field("native", &self.native.name())
            .field("claude_code", &self.claude_code.as_ref().map(|e| e.name().to_string()))
            .finish()
    }
}

impl RoutingExecutor {
    /// A router with only the native executor (Claude Code models are refused with a clear error).
    pub fn new(native: Arc<dyn AgentExecutor>) -> Self {
        Self { native, claude_code: None }
    }

    /// Runs `claude-code` models on this executor (normally a
    /// [`ClaudeCodeExecutor`](super::ClaudeCodeExecutor)).
    pub fn with_claude_code(mut self, executor: Arc<dyn AgentExecutor>) -> Self {
        self.claude_code = Some(executor);
        self
    }

    /// The executor that runs an agent with `model`, or why there is none.
    pub fn route(&self, model: &str) -> Result<&Arc<dyn AgentExecutor>, String> {
        if is_claude_code_model(model) {
            self.claude_code.as_ref().ok_or_else(|| {
                format!("its model '{model}' runs on the Claude Code CLI, but this runner has no Claude Code executor")
            })
        } else {
            Ok(&self.native)
        }
    }
}

#[async_trait]
impl AgentExecutor for RoutingExecutor {
    fn name(&self) -> &str {
        "router"
    }

    async fn run_turn(&self, cx: TurnContext, prompt: Option<String>) -> Result<RunOutcome, RunError> {
        let executor = self
            .route(&cx.agent.model)
            .map_err(|message| RunError::Config { agent: cx.agent.name.clone(), message })?
            .clone();
        executor.run_turn(cx, prompt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_claude_code_models() {
        assert!(is_claude_code_model("claude-code"));
        assert!(is_claude_code_model("claude-code:sonnet"));
        assert!(!is_claude_code_model("claude-codex"));
        assert!(!is_claude_code_model("anthropic:claude-sonnet-4-5"));
        assert!(!is_claude_code_model("scripted:x.json"));
    }
}
