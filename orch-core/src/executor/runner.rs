//! [`AgentRunner`]: creates agents, runs their turns on an executor, refuses concurrent runs of one agent,
//! and interrupts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::{FutureExt, StreamExt};
use tracing::Instrument;

use super::claim::{Registered, RunClaim};
use super::lease;
use super::mcp_turn::{McpHost, TurnMcp};
use super::{AgentExecutor, NativeExecutor, RunError, RunOptions, RunOutcome, RunnerAdditions, TurnContext};
use crate::Interrupt;
use crate::hook::HookRegistry;
use crate::model::ModelProvider;
use crate::runtime::Runtime;
use crate::store::{Batch, Change, EventQuery, Store, StoreError};
use crate::tool::ToolRegistry;
use crate::wire::{Agent, Event, EventKeys, Id, new_id};

/// Runs agents. Cheap to clone; clones share the set of running agents.
#[derive(Clone)]
pub struct AgentRunner {
    pub(super) store: Arc<dyn Store>,
    executor: Arc<dyn AgentExecutor>,
    tools: ToolRegistry,
    hooks: HookRegistry,
    added: RunnerAdditions,
    pub(super) runtime: Arc<dyn Runtime>,
    pub(super) shared: Arc<Shared>,
    mcp: McpHost,
}

/// What clones of one runner share: the runs of this process, and whether the log is being followed
/// for interrupt requests from other processes.
#[derive(Default)]
pub(super) struct Shared {
    running: Mutex<HashMap<Id, Running>>,
    watching: AtomicBool,
}

impl Shared {
    pub(super) fn running(&self) -> MutexGuard<'_, HashMap<Id, Running>> {
        // A poisoned lock only means a thread panicked mid-update; the map is still usable.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A run of this process.
pub(super) struct Running {
    pub(super) interrupt: Interrupt,
    /// `InterruptRequested` events at or below this seq were appended before the run claimed its
    /// agent, so they are not meant for it.
    pub(super) since_seq: u64,
    /// What the run is, for busy messages.
    pub(super) describe: String,
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
    mcp: McpHost,
}

impl AgentRunnerBuilder {
    /// Uses these MCP client timeouts (default: from `MCP_TIMEOUT` and `MCP_TOOL_TIMEOUT`, see
    /// [`crate::tool::mcp`]).
    #[cfg(feature = "mcp")]
    pub fn mcp_settings(mut self, settings: crate::tool::mcp::McpSettings) -> Self {
        self.mcp.settings = settings;
        self
    }

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
            added: RunnerAdditions::new(),
            runtime,
            shared: Arc::default(),
            mcp: self.mcp,
        }
    }
}

/// Removes an agent from the running set when its run ends, however it ends.
pub(super) struct RunningGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) id: Id,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.shared.running().remove(&self.id);
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
            mcp: McpHost::from_env(),
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

    /// The tools and hooks added since the runner was built (shared by its clones), which every turn
    /// starting afterwards gets too.
    pub fn additions(&self) -> &RunnerAdditions {
        &self.added
    }

    /// Creates an agent, recording `AgentCreated` in the same commit. Fails if a live agent has the name.
    pub async fn create_agent(&self, agent: Agent) -> Result<Agent, RunError> {
        let keys = EventKeys {
            agent_id: Some(agent.id),
            orchestrator_id: agent.orchestrator_id,
            workflow_id: agent.workflow_id,
            step: agent.workflow_step.clone(),
            task_slug: None,
        };
        let batch = Batch::new()
            .change(Change::CreateAgent(Box::new(agent.clone())))
            .event(keys, Event::AgentCreated { agent: Box::new(agent.clone()) });
        self.store.commit(batch).await?;
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
        self.shared.running().contains_key(&agent_id)
    }

    /// Interrupts the agent's running turn. Returns whether one was running here.
    pub fn interrupt(&self, agent_id: Id) -> bool {
        match self.shared.running().get(&agent_id) {
            Some(r) => {
                r.interrupt.trigger();
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

    /// Claims the agent for one run, without starting it. The claim is taken in the store, so it holds
    /// against every process sharing the database: while it is held, [`AgentRunner::is_running`] is
    /// true here, [`AgentRunner::interrupt`] and `InterruptRequested` events from other processes reach
    /// it, and any other run of the agent, here or elsewhere, is refused with [`RunError::AgentBusy`]
    /// naming this one. A claim whose process is gone (or, on another host, whose lease expired) is
    /// taken over. Hosts that start runs in the background claim first, so two commands sent at once
    /// can never both start. `name` is used in errors; `task_slug` names the run in them.
    pub async fn claim(
        &self,
        agent_id: Id,
        name: &str,
        task_slug: Option<String>,
        interrupt: Option<Interrupt>,
    ) -> Result<RunClaim, RunError> {
        let interrupt = interrupt.unwrap_or_default();
        let describe = match &task_slug {
            Some(slug) => format!("task {slug} (in this process)"),
            None => "a run in this process".to_string(),
        };
        {
            let mut running = self.shared.running();
            if let Some(r) = running.get(&agent_id) {
                return Err(RunError::AgentBusy { name: name.to_string(), run: r.describe.clone() });
            }
            running.insert(agent_id, Running { interrupt: interrupt.clone(), since_seq: u64::MAX, describe });
        }
        let guard = RunningGuard { shared: self.shared.clone(), id: agent_id };
        // Only a runner that follows the log needs to know which interrupt requests predate this run.
        if self.store.shared_with_other_processes() {
            self.watch_interrupt_requests().await;
            let since_seq = self.store.last_seq().await?;
            if let Some(r) = self.shared.running().get_mut(&agent_id) {
                r.since_seq = since_seq;
            }
        }
        let lease = lease::new_lease(new_id(), task_slug);
        let current = self.store.get_agent(agent_id).await?.ok_or_else(|| RunError::AgentNotFound(name.to_string()))?;
        let expect = match current.run {
            Some(held) if lease::is_stale(&held) => {
                tracing::info!(agent = %name, stale = %held, "taking over the claim of a run whose process is gone");
                Some(held.run_id)
            }
            Some(held) => return Err(RunError::AgentBusy { name: name.to_string(), run: held.to_string() }),
            None => None,
        };
        let swap = Change::SwapRun { agent_id, expect, lease: Some(lease.clone()) };
        // Relaxed: visible to every process at once, synced with the run's first step; a power cut that
        // lost it would end this process too.
        let registered = Registered::new(lease.run_id, interrupt.clone());
        match self.store.commit(Batch::new().change(swap).relaxed()).await {
            Ok(_) => {}
            Err(StoreError::RunConflict { current, .. }) => {
                let run = current.map_or_else(|| "another run".to_string(), |l| l.to_string());
                return Err(RunError::AgentBusy { name: name.to_string(), run });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(RunClaim::hold(self, agent_id, interrupt, lease, registered, guard, None))
    }

    /// Follows the log (once per runner and its clones) and interrupts runs of this process for which
    /// another process appended `InterruptRequested` (`orch agent interrupt` from a second terminal).
    ///
    /// A store no other process can reach needs no follower: runs of other runners of this process are
    /// interrupted directly (see `Supervisor::stop_elsewhere`).
    pub(super) async fn watch_interrupt_requests(&self) {
        if self.shared.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let since = match self.store.last_seq().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the log for interrupt requests");
                self.shared.watching.store(false, Ordering::SeqCst);
                return;
            }
        };
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let only = EventQuery { types: vec!["InterruptRequested".into()], ..EventQuery::default() };
        let mut stream = self.store.subscribe_foreign(since, only);
        self.runtime.spawn(
            async move {
                while let Some(item) = stream.next().await {
                    let Some(shared) = weak.upgrade() else { return };
                    let rec = match item {
                        Ok(rec) => rec,
                        Err(e) => {
                            tracing::warn!(error = %e, "stopped following the log for interrupt requests");
                            shared.watching.store(false, Ordering::SeqCst);
                            return;
                        }
                    };
                    if let (Event::InterruptRequested { .. }, Some(id)) = (&rec.event, rec.keys.agent_id)
                        && let Some(r) = shared.running().get(&id)
                        && rec.seq > r.since_seq
                    {
                        r.interrupt.trigger();
                    }
                }
            }
            .boxed(),
        );
    }

    /// Runs a claimed agent: `Some(prompt)` starts a new turn, `None` resumes an unfinished one. The
    /// claim is released when the run ends, however it ends.
    pub async fn run_claimed(
        &self,
        claim: RunClaim,
        prompt: Option<String>,
        options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        let result = self.run_last(&claim, prompt, options).await;
        claim.release().await;
        result
    }

    /// [`AgentRunner::run_held`] for the last turn under `claim`: the commit that ends the turn also
    /// releases the claim in the store, when the agent's executor ends its turns with that commit
    /// ([`AgentExecutor::ends_with_its_last_commit`]); [`RunClaim::release`] then only lets it go here.
    pub(crate) async fn run_last(
        &self,
        claim: &RunClaim,
        prompt: Option<String>,
        options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        self.run_under(claim, prompt, options, true).await
    }

    /// Runs one turn (or resumes one, with `None`) under a claim the caller keeps, so several turns
    /// can run under one claim with no other run slipping in between (e.g. finishing a turn a dead
    /// process left, then the new prompt). The agent is loaded anew, unless the claim created it
    /// ([`AgentRunner::create_claimed`]) and this is its first turn.
    pub async fn run_held(
        &self,
        claim: &RunClaim,
        prompt: Option<String>,
        options: RunOptions,
    ) -> Result<RunOutcome, RunError> {
        self.run_under(claim, prompt, options, false).await
    }

    async fn run_under(
        &self,
        claim: &RunClaim,
        prompt: Option<String>,
        options: RunOptions,
        last: bool,
    ) -> Result<RunOutcome, RunError> {
        let (agent, fresh) = match claim.take_fresh() {
            Some(agent) => (agent, true),
            None => (self.live_agent(claim.agent_id()).await?, false),
        };
        // The MCP servers of the agent's `.mcp.json` start with the turn's tool list and stop with it.
        let mcp = self.mcp.start(&agent, options.model.as_deref(), options.allowed_tools.as_deref()).await;
        let result = self.run_loaded(claim, agent, fresh, prompt, options, &mcp, last).await;
        mcp.stop().await;
        result
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

    /// Runs the claimed, loaded agent with the per-run overrides of `options` applied (`last`: the
    /// turn's end releases the claim too, see [`AgentRunner::run_last`]).
    #[allow(clippy::too_many_arguments)]
    async fn run_loaded(
        &self,
        claim: &RunClaim,
        mut agent: Agent,
        fresh: bool,
        prompt: Option<String>,
        mut options: RunOptions,
        mcp: &TurnMcp,
        last: bool,
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
        options.interrupt = Some(claim.interrupt().clone());
        let tools = mcp.tools(self.added.tools_over(&self.tools), options.allowed_tools.as_deref());
        mcp.record_problems(&self.store, &agent, &options).await;
        let cx = TurnContext {
            store: self.store.clone(),
            agent,
            fresh,
            interrupt: claim.interrupt().clone(),
            options,
            tools,
            hooks: self.added.hooks_over(&self.hooks),
            runtime: self.runtime.clone(),
            runner: Some(self.clone()),
            release: (last && self.executor.ends_with_its_last_commit()).then(|| claim.end_release()),
        };
        // The run's span (OpenTelemetry's GenAI `invoke_agent`): its model calls and tool calls nest in it.
        let span = tracing::info_span!(
            "invoke_agent",
            otel.name = %format_args!("invoke_agent {}", cx.agent.name),
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = %cx.agent.name,
            gen_ai.agent.id = %cx.agent.id,
            gen_ai.request.model = %cx.agent.model,
            orch.executor = self.executor.name(),
            orch.task_slug = cx.options.task_slug.as_deref(),
            orch.resume = prompt.is_none(),
            orch.stop_reason = tracing::field::Empty,
            orch.num_turns = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            orch.cost_usd = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        let result = self.executor.run_turn(cx, prompt).instrument(span.clone()).await;
        match &result {
            Ok(o) => {
                span.record("orch.stop_reason", tracing::field::display(&o.stop_reason));
                // OpenTelemetry's integers are signed: counts go as i64.
                let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                span.record("orch.num_turns", i64::from(o.num_turns));
                span.record("gen_ai.usage.input_tokens", count(o.usage.input_tokens));
                span.record("gen_ai.usage.output_tokens", count(o.usage.output_tokens));
                span.record("orch.cost_usd", o.cost_usd);
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", tracing::field::display(e));
            }
        }
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
        let claim = self.claim(agent_id, &agent.name, options.task_slug.clone(), options.interrupt.clone()).await?;
        // Loaded again under the claim: another process may have changed it before the claim was taken.
        self.run_claimed(claim, prompt, options).await
    }
}
