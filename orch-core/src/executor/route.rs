//! [`RoutingExecutor`]: one executor for a runner whose agents use different engines, chosen per agent
//! by its model string through the [`ProviderRegistry`]: a provider entry that names an external
//! executor (`claude-code`) sends its agents there; every other model runs on the native loop.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;

use super::{AgentExecutor, RunError, RunOutcome, TurnContext};
use crate::model::{ProviderEntry, ProviderRegistry, TargetKind};

/// The name of the Claude Code executor in provider entries.
pub const CLAUDE_CODE: &str = "claude-code";

/// Whether an agent's model string names the Claude Code CLI (`claude-code` or `claude-code:MODEL`),
/// by the built-in provider table. Routing itself asks the runner's registry.
pub fn is_claude_code_model(model: &str) -> bool {
    BUILTIN_ROUTES.route(model).is_ok_and(|r| r.executor.as_deref() == Some(CLAUDE_CODE))
}

/// The provider entry of `claude-code[:MODEL]`: its agents run on the Claude Code executor. Its native
/// provider (used only when bare models fall back to it as the default) is what `factory` builds.
pub fn claude_code_entry(
    factory: impl Fn(&str) -> Result<Arc<dyn crate::model::ModelProvider>, crate::model::ModelError> + Send + Sync + 'static,
) -> ProviderEntry {
    ProviderEntry::new(CLAUDE_CODE, factory).target(TargetKind::Optional).external(CLAUDE_CODE)
}

/// A registry that only knows which built-in models run on an external executor.
static BUILTIN_ROUTES: LazyLock<ProviderRegistry> = LazyLock::new(builtin_routes);

fn builtin_routes() -> ProviderRegistry {
    let mut r = ProviderRegistry::new();
    // The name is valid, so registering cannot fail.
    let _ = r.register_entry(claude_code_entry(|_| {
        Err(crate::model::ModelError::Other { message: "claude-code models run on the Claude Code executor".into() })
    }));
    r
}

/// Runs each agent on the executor its model's provider entry names (`claude-code` and `claude-code:…`
/// on the Claude Code executor), everything else on the native one.
///
/// ```no_run
/// # #[cfg(all(feature = "tokio", unix))]
/// # fn demo(store: std::sync::Arc<dyn orch_core::store::Store>, provider: std::sync::Arc<dyn orch_core::model::ModelProvider>) {
/// use std::sync::{Arc, LazyLock};
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
    external: BTreeMap<String, Arc<dyn AgentExecutor>>,
    registry: ProviderRegistry,
}

impl std::fmt::Debug for RoutingExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingExecutor")
            .field("native", &self.native.name())
            .field("external", &self.external.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RoutingExecutor {
    /// A router with only the native executor, routing by the built-in providers (`claude-code` models
    /// are refused with a clear error until [`RoutingExecutor::with_claude_code`]).
    pub fn new(native: Arc<dyn AgentExecutor>) -> Self {
        Self { native, external: BTreeMap::new(), registry: BUILTIN_ROUTES.clone() }
    }

    /// Routes by `registry`'s provider entries instead of the built-in ones.
    pub fn with_registry(mut self, registry: ProviderRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// Runs the agents of providers whose entry names `name` as their executor on `executor`.
    pub fn with_external(mut self, name: impl Into<String>, executor: Arc<dyn AgentExecutor>) -> Self {
        self.external.insert(name.into(), executor);
        self
    }

    /// Runs `claude-code` models on this executor (normally a
    /// [`ClaudeCodeExecutor`](super::ClaudeCodeExecutor)).
    pub fn with_claude_code(self, executor: Arc<dyn AgentExecutor>) -> Self {
        self.with_external(CLAUDE_CODE, executor)
    }

    /// The executor that runs an agent with `model`, or why there is none. A model the registry cannot
    /// route goes to the native executor, which reports why.
    pub fn route(&self, model: &str) -> Result<&Arc<dyn AgentExecutor>, String> {
        match self.registry.route(model).ok().and_then(|r| r.executor) {
            Some(name) => self.external.get(&name).ok_or_else(|| {
                let label = if name == CLAUDE_CODE { "Claude Code" } else { name.as_str() };
                format!("its model '{model}' runs on the {label} executor, but this runner has no {label} executor")
            }),
            None => Ok(&self.native),
        }
    }
}

#[async_trait]
impl AgentExecutor for RoutingExecutor {
    fn name(&self) -> &str {
        "router"
    }

    async fn run_turn(&self, mut cx: TurnContext, prompt: Option<String>) -> Result<RunOutcome, RunError> {
        let executor = self
            .route(&cx.agent.model)
            .map_err(|message| RunError::Config { agent: cx.agent.name.clone(), message })?
            .clone();
        if !executor.ends_with_its_last_commit() {
            cx.release = None;
        }
        executor.run_turn(cx, prompt).await
    }

    /// Decided per turn: the claim's release is handed on only to an executor that ends with it.
    fn ends_with_its_last_commit(&self) -> bool {
        true
    }
}

impl super::AgentRunner {
    /// A builder over `store` whose agents each run on the provider their model names in `registry`
    /// (a bare id or alias on its default), with the built-in tools. Models of providers that run on an
    /// external executor are refused until one is given through
    /// [`AgentRunnerBuilder::executor`](super::AgentRunnerBuilder::executor) with a [`RoutingExecutor`].
    pub fn with_registry(store: Arc<dyn crate::store::Store>, registry: ProviderRegistry) -> super::AgentRunnerBuilder {
        let native: Arc<dyn AgentExecutor> = Arc::new(super::NativeExecutor::with_registry(registry.clone()));
        let router = RoutingExecutor::new(native).with_registry(registry);
        // The builder's own provider is replaced by the executor right away.
        let unused: Arc<dyn crate::model::ModelProvider> = Arc::new(Unused);
        super::AgentRunner::builder(store, unused).executor(Arc::new(router))
    }
}

/// Stands in for the provider argument of `AgentRunner::builder` when the executor is given.
struct Unused;

#[async_trait]
impl crate::model::ModelProvider for Unused {
    fn name(&self) -> &str {
        "unused"
    }

    async fn stream(
        &self,
        _request: crate::model::ModelRequest,
    ) -> Result<crate::model::DeltaStream, crate::model::ModelError> {
        Err(crate::model::ModelError::Other { message: "no provider: the runner's executor picks them".into() })
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
