//! [`AgentRunner`]: creates agents, runs their turns on an executor, refuses concurrent runs of one agent,
//! and interrupts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{AgentExecutor, NativeExecutor, RunError, RunOptions, RunOutcome, TurnContext};
use crate::Interrupt;
use crate::hook::HookRegistry;
use crate::model::ModelProvider;
use crate::runtime::Runtime;
use crate::store::Store;
use crate::tool::ToolRegistry;
use crate::wire::{Agent, Event, EventKeys, Id, NewEvent};

/// Runs agents. Cheap to clone; clones share the set of running agents.
#[derive(Clone)]
pub struct AgentRunner {
    store: Arc<dyn Store>,
    executor: Arc<dyn AgentExecutor>,
    tools: ToolRegistry,
    hooks: HookRegistry,
    runtime: Arc<dyn Runtime>,
    running: Arc<Mutex<HashMap<Id, Interrupt>>>,
}

impl std::fmt::Debug for AgentRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRunner")
            .field("executor", &self.executor.name())
            .field("tools", &self.tools)
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AgentRunner`].
pub struct AgentRunnerBuilder {
    store: Arc<dyn Store>,
    executor: Arc<dyn AgentExecutor>,
    tools: ToolRegistry,
    hooks: HookRegistry,
    runtime: Option<Arc<dyn Runtime>>,
}

impl AgentRunnerBuilder {
    /// Uses these tools instead of the built-ins.
    pub fn tools(mut self, tools: ToolRegistry) -> Self {
        self.tools = tools;
        self
    }

    /// Uses these hooks.
    pub fn hooks(mut self, hooks: HookRegistry) -> Self {
        self.hooks = hooks;
        self
    }

    /// Uses this executor instead of the native one.
    pub fn executor(mut self, executor: Arc<dyn AgentExecutor>) -> Self {
        self.executor = executor;
        self
    }

    /// Uses this runtime (default: tokio, with the `tokio` feature).
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Builds the runner.
    ///
    /// # Panics
    /// Never with the `tokio` feature; without it, a runtime must have been given.
    #[cfg(feature = "tokio")]
    pub fn build(mut self) -> AgentRunner {
        let runtime = self.runtime.take().unwrap_or_else(|| Arc::new(crate::runtime::TokioRuntime));
        self.finish(runtime)
    }

    /// Builds the runner on the given runtime.
    pub fn build_with_runtime(self, runtime: Arc<dyn Runtime>) -> AgentRunner {
        self.finish(runtime)
    }

    fn finish(self, runtime: Arc<dyn Runtime>) -> AgentRunner {
        AgentRunner {
            store: self.store,
            executor: self.executor,
            tools: self.tools,
            hooks: self.hooks,
            runtime,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Removes an agent from the running set when its run ends, however it ends.
struct RunningGuard {
    running: Arc<Mutex<HashMap<Id, Interrupt>>>,
    id: Id,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.running.lock() {
            m.remove(&self.id);
        }
    }
}

impl AgentRunner {
    /// A builder over `store`, running agents natively on `provider` with the built-in tools.
    pub fn builder(store: Arc<dyn Store>, provider: Arc<dyn ModelProvider>) -> AgentRunnerBuilder {
        AgentRunnerBuilder {
            store,
            executor: Arc::new(NativeExecutor::new(provider)),
            tools: ToolRegistry::with_builtins(),
            hooks: HookRegistry::new(),
            runtime: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The tools on offer.
    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// The hooks every run gets.
    pub fn hooks(&self) -> &HookRegistry {
        &self.hooks
    }

    /// Creates an agent, recording `AgentCreated`. Fails if a live agent has the name.
    pub async fn create_agent(&self, agent: Agent) -> Result<Agent, RunError> {
        self.store.create_agent(&agent).await?;
        let keys = EventKeys {
            agent_id: Some(agent.id),
            orchestrator_id: agent.orchestrator_id,
            workflow_id: agent.workflow_id,
            step: agent.workflow_step.clone(),
            task_slug: None,
        };
        self.store.append(vec![NewEvent::new(keys, Event::AgentCreated { agent: Box::new(agent.clone()) })]).await?;
        Ok(agent)
    }

    /// The live agent named `name` (without orchestrator), created with `model` in `working_dir` if missing.
    pub async fn ensure_agent(&self, name: &str, model: &str, working_dir: &str) -> Result<Agent, RunError> {
        if let Some(a) = self.store.find_agent(None, name).await? {
            return Ok(a);
        }
        let dir = std::fs::canonicalize(working_dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| working_dir.to_string());
        match self.create_agent(Agent::new(name, model, dir)).await {
            Ok(a) => Ok(a),
            // Another process created it meanwhile.
            Err(RunError::Store(crate::store::StoreError::NameTaken { .. })) => {
                self.store.find_agent(None, name).await?.ok_or_else(|| RunError::AgentNotFound(name.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the agent is running a turn in this process.
    pub fn is_running(&self, agent_id: Id) -> bool {
        self.running.lock().map(|m| m.contains_key(&agent_id)).unwrap_or(false)
    }

    /// Interrupts the agent's running turn. Returns whether one was running here.
    pub fn interrupt(&self, agent_id: Id) -> bool {
        match self.running.lock().ok().and_then(|m| m.get(&agent_id).cloned()) {
            Some(i) => {
                i.trigger();
                true
            }
            None => false,
        }
    }

    /// Runs `prompt` as a new turn of the agent and waits for it to end.
    pub async fn run(
        &self,
        agent_id: Id,
        prompt: impl Into<String>,
        options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        self.run_inner(agent_id, Some(prompt.into()), options).await
    }

    /// Resumes a turn left unfinished by a crash: completed tool calls are not run again.
    pub async fn resume(&self, agent_id: Id, options: RunOptions) -> Result<RunOutcome, RunError> {
        self.run_inner(agent_id, None, options).await
    }

    /// Claims the agent for one run in this process, without starting it: while the claim is held,
    /// [`AgentRunner::is_running`] is true, [`AgentRunner::interrupt`] reaches it, and any other run of
    /// the agent is refused with [`RunError::AgentBusy`]. Hosts that start runs in the background claim
    /// first, so two commands sent at once can never both start. `name` is used in the error.
    pub fn claim(&self, agent_id: Id, name: &str, interrupt: Option<Interrupt>) -> Result<RunClaim, RunError> {
        let interrupt = interrupt.unwrap_or_default();
        let mut m = self.running.lock().map_err(|_| RunError::AgentBusy(name.to_string()))?;
        if m.contains_key(&agent_id) {
            return Err(RunError::AgentBusy(name.to_string()));
        }
        m.insert(agent_id, interrupt.clone());
        Ok(RunClaim { agent_id, interrupt, _guard: RunningGuard { running: self.running.clone(), id: agent_id } })
    }

    /// Runs a claimed agent: `Some(prompt)` starts a new turn, `None` resumes an unfinished one. The
    /// claim is released when the run ends, however it ends.
    pub async fn run_claimed(
        &self,
        claim: RunClaim,
        prompt: Option<String>,
        options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let agent = self.live_agent(claim.agent_id).await?;
        self.run_loaded(claim, agent, prompt, options).await
    }

    /// The agent, unless it is missing or deleted.
    async fn live_agent(&self, agent_id: Id) -> Result<Agent, RunError> {
        let agent =
            self.store.get_agent(agent_id).await?.ok_or_else(|| RunError::AgentNotFound(agent_id.to_string()))?;
        if agent.archived {
            return Err(RunError::AgentNotFound(format!("{} (deleted)", agent.name)));
        }
        Ok(agent)
    }

    /// Runs the claimed, loaded agent with the per-run overrides of `options` applied.
    async fn run_loaded(
        &self,
        claim: RunClaim,
        mut agent: Agent,
        prompt: Option<String>,
        mut options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        if let Some(model) = options.model.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            agent.model = if super::is_claude_code_model(&agent.model) && !super::is_claude_code_model(model) {
                format!("claude-code:{model}")
            } else {
                model.to_string()
            };
        }
        if let Some(prompt) = &options.system_prompt {
            agent.system_prompt = Some(prompt.clone());
        }
        options.interrupt = Some(claim.interrupt.clone());
        let tools = match &options.allowed_tools {
            Some(names) => self.tools.only(names),
            None => self.tools.clone(),
        };
        let cx = TurnContext {
            store: self.store.clone(),
            agent,
            interrupt: claim.interrupt.clone(),
            options,
            tools,
            hooks: self.hooks.clone(),
            runtime: self.runtime.clone(),
        };
        let result = self.executor.run_turn(cx, prompt).await;
        drop(claim);
        result
    }

    /// The host runtime.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    async fn run_inner(
        &self,
        agent_id: Id,
        prompt: Option<String>,
        options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let agent = self.live_agent(agent_id).await?;
        let claim = self.claim(agent_id, &agent.name, options.interrupt.clone())?;
        self.run_loaded(claim, agent, prompt, options).await
    }
}

/// An agent claimed for one run by [`AgentRunner::claim`]; dropping it releases the agent.
pub struct RunClaim {
    agent_id: Id,
    interrupt: Interrupt,
    _guard: RunningGuard,
}

impl RunClaim {
    /// The claimed agent.
    pub fn agent_id(&self) -> Id {
        self.agent_id
    }

    /// The run's interrupt.
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }
}

impl std::fmt::Debug for RunClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunClaim").field("agent_id", &self.agent_id).finish_non_exhaustive()
    }
}
