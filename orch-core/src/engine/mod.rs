//! The composition root: one [`OrchConfig`] in, one running [`Engine`] out. Every host (the CLI, the
//! server, the Python package) builds its engine here, so none assembles providers, executors, prices,
//! aliases, hooks and managers by hand.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use orch_core::config::{Flags, OrchConfig};
//! use orch_core::engine::EngineBuilder;
//! use orch_core::store::MemoryStore;
//!
//! let config = OrchConfig::load(Flags { model: Some("scripted:demo.json".into()), ..Flags::default() })?;
//! // Checks the model, the price and alias files and the hooks before any store is opened.
//! let prepared = EngineBuilder::new(config).require_model(true).prepare()?;
//! let engine = prepared.with_store(Arc::new(MemoryStore::new()));
//! let orchestrator = engine.open_orchestrator(None).await?;
//! # let _ = orchestrator; Ok(()) }
//! ```
//!
//! Opening a store from a URL needs the store crates, so it lives with the hosts (`orch_web::engine`).
//! Workflow and graph engines plug in through [`EngineExtension`].

mod providers;

use std::path::Path;
use std::sync::Arc;

pub use providers::{
    NoModel, agent_model, config_registry, default_spec, default_spec_in, file_path, no_model_message, provider_for,
};

use crate::ErrorKind;
use crate::config::{ConfigError, OrchConfig, Source};
use crate::executor::Supervisor;
use crate::executor::{
    AgentExecutor, AgentRunner, ClaudeCodeConfig, ClaudeCodeExecutor, CompactionSettings, NativeExecutor,
    RoutingExecutor, SubagentSettings,
};
use crate::hook::HookRegistry;
use crate::hook::command::register_settings_hooks;
use crate::model::{ModelAliases, ModelError, ModelProvider, ModelSpec, PriceTable, ProviderEntry, ProviderRegistry};
use crate::orchestrator::summary::Summarizer;
use crate::orchestrator::{
    AgentManager, FileTracking, ManagerConfig, Orchestrator, OrchestratorConfig, OrchestratorError,
};
use crate::runtime::{Runtime, TokioRuntime};
use crate::store::{Store, StoreError};
use crate::template::Templates;
use crate::tool::ToolRegistry;
use crate::tool::builtin::{Bash, BashSandbox};
use crate::wire::Id;

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A model spec, model file, price or alias file is invalid, or no model is configured.
    #[error("{0}")]
    Model(String),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    /// What kind of failure this is: bad configuration or models are usage; a store that cannot be
    /// opened has the store's kind (unavailable, or internal for a damaged or newer database).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(e) => e.kind(),
            Self::Model(_) => ErrorKind::Usage,
            Self::Store(e) => e.kind(),
        }
    }

    /// Whether the error is the user's input (bad flag, variable, file): exit code 2 in the CLI. Store
    /// failures are runtime failures (1). The same as `kind() == ErrorKind::Usage`.
    pub fn is_usage(&self) -> bool {
        self.kind() == ErrorKind::Usage
    }
}

/// A workflow or graph engine (or any other add-on) plugging into the engine as it is built.
pub trait EngineExtension: Send + Sync + 'static {
    /// Its name, for logs.
    fn name(&self) -> &str;

    /// Workflow types the orchestrator's prompt lists in `{{AVAILABLE_ADW_TYPES}}`, as
    /// `(type, description)`.
    fn workflow_types(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Builds an [`Engine`] from an [`OrchConfig`]: [`EngineBuilder::prepare`] checks and builds everything
/// that needs no store; [`PreparedEngine::with_store`] finishes it.
pub struct EngineBuilder {
    config: OrchConfig,
    require_model: bool,
    relay_command: Option<Vec<String>>,
    runtime: Option<Arc<dyn Runtime>>,
    extensions: Vec<Arc<dyn EngineExtension>>,
    providers: Vec<ProviderEntry>,
    external: Vec<(String, Arc<dyn AgentExecutor>)>,
}

impl EngineBuilder {
    /// A builder for `config`.
    pub fn new(config: OrchConfig) -> Self {
        Self {
            config,
            require_model: false,
            relay_command: None,
            runtime: None,
            extensions: Vec::new(),
            providers: Vec::new(),
            external: Vec::new(),
        }
    }

    /// Fail in [`EngineBuilder::prepare`] when no model is configured (default: build an engine whose
    /// model calls are refused with the choices, for hosts that only read and manage).
    pub fn require_model(mut self, require: bool) -> Self {
        self.require_model = require;
        self
    }

    /// The command Claude Code runs to relay hooks back (default: this program when it is `orch`).
    pub fn claude_code_relay(mut self, command: Vec<String>) -> Self {
        self.relay_command = Some(command);
        self
    }

    /// The runtime (default tokio).
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Adds an extension (a workflow or graph engine).
    pub fn extension(mut self, extension: Arc<dyn EngineExtension>) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Registers a provider beside the built-in ones (or replaces one of them): `NAME:MODEL` runs on
    /// what `factory(MODEL)` builds, for agents, per-run models and `models.default` alike.
    pub fn provider(
        self,
        name: &str,
        factory: impl Fn(&str) -> Result<Arc<dyn ModelProvider>, ModelError> + Send + Sync + 'static,
    ) -> Self {
        self.provider_entry(ProviderEntry::new(name, factory))
    }

    /// Registers a provider entry (with its target kind, external executor or listed form). A bad name
    /// fails [`EngineBuilder::prepare`].
    pub fn provider_entry(mut self, entry: ProviderEntry) -> Self {
        self.providers.push(entry);
        self
    }

    /// Runs the agents of providers whose entry names `name` as their executor
    /// ([`ProviderEntry::external`]) on `executor`, as `claude-code` agents run on the Claude Code CLI.
    pub fn external_executor(mut self, name: impl Into<String>, executor: Arc<dyn AgentExecutor>) -> Self {
        self.external.push((name.into(), executor));
        self
    }

    /// Checks the configuration and builds the providers, executors, prices, aliases, hooks and
    /// summarizer. Reads the model, price and alias files; opens no store and calls no model.
    pub fn prepare(self) -> Result<PreparedEngine, EngineError> {
        let config = Arc::new(self.config);
        let wd = config.working_dir.value.clone();
        let mut registry = config_registry(&config);
        for entry in self.providers {
            registry.register_entry(entry).map_err(|e| EngineError::Model(e.to_string()))?;
        }
        let spec = default_spec_in(&config, &registry)?;
        if self.require_model && spec.is_none() {
            return Err(EngineError::Model(no_model_message()));
        }
        let aliases = aliases(&config)?;
        let prices = prices(&config)?;
        registry.set_aliases(aliases.clone()).set_prices(prices.clone());
        let provider: Arc<dyn ModelProvider> = match &spec {
            Some(s) => {
                let p = registry.provider(&s.value).map_err(providers::provider_error)?;
                let p = match &config.models.record.value {
                    Some(path) => providers::recording(
                        p,
                        &crate::config::Sourced { value: path.clone(), source: config.models.record.source.clone() },
                    )?,
                    None => p,
                };
                // Agents on the default spec get the same provider (recorded, and a scripted model's
                // used-up steps stay used up).
                registry.insert_provider(s.value.clone(), p.clone());
                registry.set_default(s.value.clone()).map_err(|e| EngineError::Model(e.to_string()))?;
                p
            }
            None => Arc::new(NoModel),
        };
        let summarizer = summarizer(&config, &registry)?;
        let compaction = CompactionSettings {
            compact_at: config.limits.compact_at.value,
            summary_model: config.models.summary.value.clone(),
            ..CompactionSettings::default()
        };
        let native: Arc<dyn AgentExecutor> =
            Arc::new(NativeExecutor::with_registry(registry.clone()).with_compaction(compaction).with_subagents(
                SubagentSettings {
                    max_depth: config.limits.max_subagent_depth.value,
                    max_parallel: config.limits.max_parallel_subagents.value as usize,
                },
            ));
        let mut router = RoutingExecutor::new(native)
            .with_registry(registry.clone())
            .with_claude_code(Arc::new(ClaudeCodeExecutor::new(claude_code_config(&config, self.relay_command))));
        for (name, executor) in self.external {
            router = router.with_external(name, executor);
        }
        let executor: Arc<dyn AgentExecutor> = Arc::new(router);
        // A team's `.claude/settings.json` hooks guard native agents and the orchestrator. The Claude
        // Code CLI reads those files itself, so its executor leaves them out (they would run twice).
        let mut hooks = HookRegistry::new();
        let mut hook_problems = Vec::new();
        if config.hooks.settings.value {
            hook_problems = register_settings_hooks(&mut hooks, &wd).iter().map(|p| p.to_string()).collect();
        }
        let default_model = spec.as_ref().map(|s| s.value.to_string());
        let orchestrator_model = config
            .models
            .orchestrator
            .value
            .clone()
            .or_else(|| default_model.clone())
            .unwrap_or_else(|| "unset".into());
        let default_agent_model = config
            .models
            .agents
            .value
            .clone()
            .or_else(|| spec.as_ref().map(|s| agent_model(&s.value, &wd)))
            .unwrap_or_else(|| "unset".into());
        let workflow_types = self.extensions.iter().flat_map(|e| e.workflow_types()).collect();
        Ok(PreparedEngine {
            parts: Parts {
                config,
                spec: spec.map(|s| s.value),
                provider,
                registry,
                executor,
                hooks,
                hook_problems,
                aliases,
                prices,
                summarizer,
                orchestrator_model,
                default_agent_model,
                workflow_types,
                runtime: self.runtime.unwrap_or_else(|| Arc::new(TokioRuntime)),
            },
        })
    }
}

struct Parts {
    config: Arc<OrchConfig>,
    spec: Option<ModelSpec>,
    provider: Arc<dyn ModelProvider>,
    registry: ProviderRegistry,
    executor: Arc<dyn AgentExecutor>,
    hooks: HookRegistry,
    hook_problems: Vec<String>,
    aliases: ModelAliases,
    prices: PriceTable,
    summarizer: Option<Arc<Summarizer>>,
    orchestrator_model: String,
    default_agent_model: String,
    workflow_types: Vec<(String, String)>,
    runtime: Arc<dyn Runtime>,
}

/// An engine checked and built up to its store.
pub struct PreparedEngine {
    parts: Parts,
}

impl PreparedEngine {
    /// The configuration.
    pub fn config(&self) -> &OrchConfig {
        &self.parts.config
    }

    /// Finishes the engine on `store`.
    pub fn with_store(self, store: Arc<dyn Store>) -> Engine {
        let p = self.parts;
        let runner = AgentRunner::builder(store.clone(), p.provider.clone())
            .tools(builtin_tools(&p.config))
            .executor(p.executor.clone())
            .hooks(p.hooks.clone())
            .build_with_runtime(p.runtime.clone());
        let supervisor = Supervisor::new(runner.clone(), vec![Arc::new(FileTracking::for_store(store.as_ref()))]);
        Engine { inner: Arc::new(Inner { parts: p, store, runner, supervisor }) }
    }
}

/// The built-in tools, `Bash` confined as `[sandbox]` says.
fn builtin_tools(config: &OrchConfig) -> ToolRegistry {
    let mut tools = ToolRegistry::with_builtins();
    let s = &config.sandbox;
    tools.register(Bash::with_sandbox(BashSandbox {
        confine: s.bash.value,
        network: s.network.value,
        writable: s.writable.value.clone(),
    }));
    tools
}

struct Inner {
    parts: Parts,
    store: Arc<dyn Store>,
    runner: AgentRunner,
    supervisor: Supervisor,
}

/// A running engine: the store, the agent runner (native and Claude Code agents, prices, aliases,
/// settings hooks), the orchestrator's settings and the summarizer. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("working_dir", &self.inner.parts.config.working_dir.value)
            .field("model", &self.inner.parts.spec)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The configuration it was built from.
    pub fn config(&self) -> &OrchConfig {
        &self.inner.parts.config
    }

    /// The working directory.
    pub fn working_dir(&self) -> &Path {
        &self.inner.parts.config.working_dir.value
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The agent runner (routes `claude-code` agents to the Claude Code CLI, the rest to the native loop).
    pub fn runner(&self) -> &AgentRunner {
        &self.inner.runner
    }

    /// The workflow engine over this engine's supervisor, working dir and default model.
    pub fn workflows(&self) -> crate::workflow::WorkflowEngine {
        crate::workflow::WorkflowEngine::new(self.supervisor().clone(), self.working_dir(), self.default_agent_model())
    }

    /// Plans and task graphs in this engine's store.
    pub fn graphs(&self) -> crate::graph::TaskGraphs {
        crate::graph::TaskGraphs::new(self.store().clone())
    }

    /// The runner of task graphs: tasks run on this engine's supervisor in its working directory,
    /// routed and retried as `[graphs]` of the configuration says. Fails on a bad routing rule.
    pub fn graph_runner(&self) -> Result<crate::graph::GraphRunner, EngineError> {
        let c = &self.config().graphs;
        crate::graph::Router::check(&c.routes).map_err(EngineError::Model)?;
        Ok(crate::graph::GraphRunner::new(
            self.supervisor().clone(),
            self.working_dir(),
            crate::graph::Router::new(c.routes.clone()),
            crate::graph::GraphSettings::from_config(c),
        ))
    }

    /// The planner: `graphs.planning_model` when set (a bare name or alias runs on the default
    /// model's provider, as an agent's model does), else the default model; called directly (no
    /// agent), priced with this engine's prices. Fails when no model is configured, or when the
    /// planning model runs on an external executor (`claude-code`), which cannot be called without an
    /// agent.
    pub fn planner(&self) -> Result<crate::graph::Planner, EngineError> {
        let spec = self.spec().ok_or_else(|| EngineError::Model(no_model_message()))?;
        let (model, from) = match self.config().graphs.planning_model.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => (m.to_string(), "graphs.planning_model"),
            _ => (spec.to_string(), "--model"),
        };
        let route = self.registry().route(&model).map_err(|e| EngineError::Model(format!("{from}: {e}")))?;
        if let Some(executor) = route.executor {
            return Err(EngineError::Model(format!(
                "the planning model {model} runs on {executor}, which cannot be called directly: \
                 choose a native model (anthropic:, openai:, ollama:, scripted:) with {from}"
            )));
        }
        let provider = self.registry().provider(&route.spec).map_err(|e| EngineError::Model(format!("{from}: {e}")))?;
        Ok(crate::graph::Planner::new(provider, route.model_id).with_prices(self.prices().clone()))
    }

    /// The autocomplete expert of the command input: `models.autocomplete` (an alias, model id or
    /// native spec), else the `fast` alias on the default model's provider; `Ok(None)` when no model is
    /// configured at all. Fails when `models.autocomplete` names a model that cannot be called directly.
    pub fn autocompleter(&self) -> Result<Option<crate::orchestrator::autocomplete::Autocompleter>, EngineError> {
        let c = &self.config().models.autocomplete;
        let configured = c.value.as_deref().map(str::trim).filter(|m| !m.is_empty());
        let model = configured.unwrap_or("fast");
        let bad = |e: String| EngineError::Model(format!("models.autocomplete ({}): {e}", c.source));
        let route = match self.registry().route(model) {
            Ok(r) => r,
            Err(e) if configured.is_some() => return Err(bad(e.to_string())),
            Err(_) => return Ok(None),
        };
        if let Some(executor) = route.executor {
            if configured.is_some() {
                return Err(bad(format!("{model} runs on {executor}; choose a native model")));
            }
            return Ok(None);
        }
        let provider = self.registry().provider(&route.spec).map_err(|e| bad(e.to_string()))?;
        Ok(Some(crate::orchestrator::autocomplete::Autocompleter::new(provider, route.model_id, self.working_dir())))
    }

    /// The supervisor of every background run (the orchestrator's agents, and later workflows and task
    /// graphs): busy refusal, resume-first, failure reports, interrupts across processes, file tracking.
    pub fn supervisor(&self) -> &Supervisor {
        &self.inner.supervisor
    }

    /// The default model spec, if one is configured.
    pub fn spec(&self) -> Option<&ModelSpec> {
        self.inner.parts.spec.as_ref()
    }

    /// The provider of native agents and the orchestrator.
    pub fn provider(&self) -> &Arc<dyn ModelProvider> {
        &self.inner.parts.provider
    }

    /// The providers (built-in and registered), the default spec, aliases and prices: what picks each
    /// agent's provider from its model string.
    pub fn registry(&self) -> &ProviderRegistry {
        &self.inner.parts.registry
    }

    /// The executor of every turn (the orchestrator's own included).
    pub fn executor(&self) -> &Arc<dyn AgentExecutor> {
        &self.inner.parts.executor
    }

    /// The model aliases (built-in, with the aliases file merged over).
    pub fn aliases(&self) -> &ModelAliases {
        &self.inner.parts.aliases
    }

    /// The price table (built-in, with the prices file merged over).
    pub fn prices(&self) -> &PriceTable {
        &self.inner.parts.prices
    }

    /// Problems found loading `.claude/settings*.json` hooks (the bad hooks are skipped).
    pub fn hook_problems(&self) -> &[String] {
        &self.inner.parts.hook_problems
    }

    /// The background summarizer, if a summary model is configured.
    pub fn summarizer(&self) -> Option<&Arc<Summarizer>> {
        self.inner.parts.summarizer.as_ref()
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.parts.runtime
    }

    /// The model string of agents created without one.
    pub fn default_agent_model(&self) -> &str {
        &self.inner.parts.default_agent_model
    }

    /// The `.claude/commands` and `.claude/agents` templates of the working directory, read now.
    pub fn templates(&self) -> Templates {
        Templates::load(self.working_dir())
    }

    /// Settings of agent managers: the default agent model, limits and aliases of the config.
    pub fn manager_config(&self) -> ManagerConfig {
        let c = self.config();
        let mut m = ManagerConfig::new(self.working_dir(), self.default_agent_model());
        m.max_turns = c.limits.max_agent_turns.value;
        m.warmup = c.limits.agent_warmup.value;
        m.aliases = self.aliases().clone();
        m
    }

    /// Settings of orchestrators: the orchestrator's model and prompt file, and the extensions' workflow
    /// types.
    pub fn orchestrator_config(&self) -> OrchestratorConfig {
        let mut o = OrchestratorConfig::new(self.working_dir(), self.inner.parts.orchestrator_model.clone());
        o.prompt_file = self.config().orchestrator.prompt_file.value.clone();
        o.workflow_types = self.inner.parts.workflow_types.clone();
        for spec in self.workflows().types().specs {
            if !o.workflow_types.iter().any(|(t, _)| *t == spec.name) {
                o.workflow_types.push((spec.name, spec.description));
            }
        }
        o
    }

    /// The manager of the agents of orchestrator `scope` (`None`: the free-standing agents of `orch run`).
    pub fn agent_manager(&self, scope: Option<Id>) -> AgentManager {
        AgentManager::with_supervisor(self.supervisor().clone(), scope, self.manager_config())
    }

    /// Opens orchestrator `resume`, or creates one. Its own turns run on this engine's executor, so they
    /// are priced and aliased like its agents', and guarded by the same settings hooks.
    pub async fn open_orchestrator(&self, resume: Option<Id>) -> Result<Orchestrator, OrchestratorError> {
        Orchestrator::builder(self.runner().clone(), self.provider().clone())
            .config(self.orchestrator_config())
            .manager_config(self.manager_config())
            .executor(self.executor().clone())
            .supervisor(self.supervisor().clone())
            .resume(resume)
            .open()
            .await
    }
}

/// The model aliases of `config`: the built-in table with `models.aliases` merged over it.
pub fn aliases(config: &OrchConfig) -> Result<ModelAliases, EngineError> {
    let mut aliases = ModelAliases::default();
    if let Some(path) = &config.models.aliases.value {
        aliases
            .merge_file(path)
            .map_err(|e| EngineError::Model(format!("{e} (from {})", config.models.aliases.source)))?;
    }
    Ok(aliases)
}

/// The price table of `config`: the built-in prices with `models.prices` merged over them.
pub fn prices(config: &OrchConfig) -> Result<PriceTable, EngineError> {
    let mut prices = PriceTable::default();
    if let Some(path) = &config.models.prices.value {
        prices
            .merge_file(path)
            .map_err(|e| EngineError::Model(format!("{e} (from {})", config.models.prices.source)))?;
    }
    Ok(prices)
}

fn summarizer(config: &OrchConfig, registry: &ProviderRegistry) -> Result<Option<Arc<Summarizer>>, EngineError> {
    let s = &config.models.summary;
    let Some(value) = s.value.as_deref() else {
        return Ok(None);
    };
    let spec = registry.parse(value).map_err(|e| EngineError::Model(format!("{e} (from {})", s.source)))?;
    if registry.entry(&spec.provider).and_then(|e| e.executor()).is_some() {
        return Err(EngineError::Model(format!(
            "the summary model (from {}) must be a native model (anthropic:, openai:, ollama:, scripted:)",
            s.source
        )));
    }
    let route =
        registry.route(&spec.to_string()).map_err(|e| EngineError::Model(format!("{e} (from {})", s.source)))?;
    // Its own provider, not the default's: a summary model on the default's file would share its steps.
    let provider = match spec.provider.as_str() {
        "scripted" | "replay" => provider_for(&spec, config)?,
        _ => registry.provider(&spec).map_err(providers::provider_error)?,
    };
    Ok(Some(Arc::new(Summarizer::new(provider, route.model_id))))
}

/// The Claude Code CLI's settings: the binary of the config; keys that came from `.env` (or the host)
/// are passed to the CLI, since it only inherits the process environment.
fn claude_code_config(config: &OrchConfig, relay: Option<Vec<String>>) -> ClaudeCodeConfig {
    let mut c = ClaudeCodeConfig::from_env().with_binary(config.claude_code.binary.value.clone());
    if let Some(r) = relay {
        c = c.with_relay_command(r);
    }
    let p = &config.providers;
    let not_inherited = |s: &Source| !s.is_process_env() && *s != Source::Default;
    if let Some(k) = &p.anthropic_api_key.value
        && not_inherited(&p.anthropic_api_key.source)
    {
        c = c.with_env("ANTHROPIC_API_KEY", k.expose());
    }
    if let Some(u) = &p.anthropic_base_url.value
        && not_inherited(&p.anthropic_base_url.source)
    {
        c = c.with_env("ANTHROPIC_BASE_URL", u.clone());
    }
    c
}
