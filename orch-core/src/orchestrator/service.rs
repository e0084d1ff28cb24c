//! [`Orchestrator`]: the chat agent a person talks to. Its own turns run on the native loop as the
//! agent record named `orchestrator` (role `orchestrator`, so it never shows among managed agents),
//! with the management tools and a system prompt rendered anew each turn.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::lock::Mutex as AsyncMutex;

use super::agents::{AgentManager, ManageError, ManagerConfig, ORCHESTRATOR_AGENT_NAME};
use super::tools::{StartedRuns, register_management_tools};
use crate::ErrorKind;
use crate::Interrupt;
use crate::executor::{
    AgentExecutor, AgentRunner, DeltaCallback, NativeExecutor, RunError, RunOptions, RunOutcome, is_claude_code_model,
};
use crate::executor::{RunTicket, Supervisor};
use crate::hook::HookRegistry;
use crate::model::ModelProvider;
use crate::store::{Batch, Change, EventQuery, Store, StoreError};
use crate::template::Templates;
use crate::tool::ToolRegistry;
use crate::tool::builtin::{Bash, Glob, Grep, Read};
use crate::wire::{
    Agent, AgentRole, AgentStatus, ChatMessage, Event, EventKeys, Id, LogLevel, NewEvent,
    Orchestrator as OrchestratorRecord, Participant, new_id, now,
};

/// The orchestrator's built-in system prompt. `{{SUBAGENT_MAP}}` and `{{AVAILABLE_ADW_TYPES}}` are
/// filled in each turn.
pub const DEFAULT_PROMPT: &str = include_str!("default_prompt.md");

/// The system log written when a new message interrupts a running turn (the seed's wording).
pub const REFOCUS_WARNING: &str = "Previous orchestrator task interrupted - refocusing on new message";

/// Why the orchestrator could not open or answer.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// No orchestrator has the id.
    #[error("orchestrator {0} not found")]
    NotFound(Id),
    /// The orchestrator was archived.
    #[error("orchestrator {0} is archived; start a new one")]
    Archived(Id),
    /// The message is empty.
    #[error("the message is empty")]
    EmptyMessage,
    /// Bad configuration (prompt file, model).
    #[error("{0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The turn failed.
    #[error("orchestrator turn failed: {0}")]
    Run(#[from] RunError),
    /// Managing agents failed.
    #[error(transparent)]
    Manage(#[from] ManageError),
}

impl OrchestratorError {
    /// What kind of failure this is: an unknown orchestrator is not found, an archived one a conflict,
    /// an empty message or bad configuration usage; store, run and management failures have their own
    /// kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Archived(_) => ErrorKind::Conflict,
            Self::EmptyMessage | Self::Config(_) => ErrorKind::Usage,
            Self::Store(e) => e.kind(),
            Self::Run(e) => e.kind(),
            Self::Manage(e) => e.kind(),
        }
    }
}

/// Settings of an [`Orchestrator`].
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// Working directory: `.claude/` templates are read from it; agents work in it.
    pub working_dir: PathBuf,
    /// The orchestrator's own model: a native one, or (with the `mcp` feature, on Unix) `claude-code[:MODEL]`,
    /// whose turns run in the Claude Code CLI with the management tools given to it over MCP as
    /// `mcp__mgmt__<tool>` (the executor must route `claude-code` to the Claude Code executor, as an
    /// engine's does; without an executor one is made from `ClaudeCodeConfig::from_env`).
    pub model: String,
    /// A prompt template file to use instead of [`DEFAULT_PROMPT`] (`ORCH_ORCHESTRATOR_PROMPT`).
    /// It is read anew every turn.
    pub prompt_file: Option<PathBuf>,
    /// Model calls allowed per chat turn.
    pub max_turns: u32,
    /// Workflow types listed in `{{AVAILABLE_ADW_TYPES}}`, as `(type, description)`.
    pub workflow_types: Vec<(String, String)>,
    /// Built-in tools the orchestrator also gets besides the management tools (default: `Read`,
    /// `Glob`, `Grep`, `Bash`, to look before it delegates).
    pub builtin_tools: Vec<String>,
}

impl OrchestratorConfig {
    /// Defaults: the built-in prompt, 500 model calls per turn, read-and-look built-ins.
    pub fn new(working_dir: impl Into<PathBuf>, model: impl Into<String>) -> Self {
        Self {
            working_dir: working_dir.into(),
            model: model.into(),
            prompt_file: None,
            max_turns: 500,
            workflow_types: Vec::new(),
            builtin_tools: ["Read", "Glob", "Grep", "Bash"].map(String::from).to_vec(),
        }
    }

    /// [`OrchestratorConfig::new`] with `ORCH_ORCHESTRATOR_PROMPT` applied.
    pub fn from_env(working_dir: impl Into<PathBuf>, model: impl Into<String>) -> Self {
        let mut c = Self::new(working_dir, model);
        c.prompt_file = std::env::var_os("ORCH_ORCHESTRATOR_PROMPT").filter(|p| !p.is_empty()).map(PathBuf::from);
        c
    }
}

/// What one chat turn did.
#[derive(Debug, Clone)]
pub struct ChatOutcome {
    /// The orchestrator's last text, if any.
    pub reply: Option<String>,
    /// How the turn ended (`interrupted` when a newer message took over).
    pub outcome: RunOutcome,
    /// The agent runs this turn started with `command_agent` (some may have ended already; wait on
    /// them with [`RunTicket::wait`]).
    pub started_runs: Vec<RunTicket>,
    /// The workflow runs this turn started with `start_adw`, running in this process.
    pub started_workflows: Vec<crate::workflow::WorkflowTicket>,
}

/// Builds an [`Orchestrator`]: see [`Orchestrator::builder`].
pub struct OrchestratorBuilder {
    agents: AgentRunner,
    provider: Arc<dyn ModelProvider>,
    config: OrchestratorConfig,
    manager_config: Option<ManagerConfig>,
    executor: Option<Arc<dyn AgentExecutor>>,
    supervisor: Option<Supervisor>,
    hooks: HookRegistry,
    resume: Option<Id>,
}

impl OrchestratorBuilder {
    /// Settings of the orchestrator.
    pub fn config(mut self, config: OrchestratorConfig) -> Self {
        self.config = config;
        self
    }

    /// Settings of the agent manager (default: [`ManagerConfig::new`] with the working dir and the
    /// orchestrator's model as the default agent model).
    pub fn manager_config(mut self, config: ManagerConfig) -> Self {
        self.manager_config = Some(config);
        self
    }

    /// Supervises the orchestrator's agents' runs with this supervisor (shared with the host's other
    /// runs; its runner runs the agents). Default: one of its own over the agents' runner, with file
    /// tracking as the manager config says.
    pub fn supervisor(mut self, supervisor: Supervisor) -> Self {
        self.supervisor = Some(supervisor);
        self
    }

    /// Runs the orchestrator's own turns on this executor (default: the native loop on the provider).
    pub fn executor(mut self, executor: Arc<dyn AgentExecutor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Hooks of the orchestrator's own turns (default: the agents' runner's hooks, so a project's
    /// `.claude/settings.json` hooks guard the orchestrator's `Bash` too).
    pub fn hooks(mut self, hooks: HookRegistry) -> Self {
        self.hooks = hooks;
        self
    }

    /// Continues the orchestrator with this id (its chat, conversation and costs) instead of
    /// creating one.
    pub fn resume(mut self, id: Option<Id>) -> Self {
        self.resume = id;
        self
    }

    /// Opens (or creates) the orchestrator.
    pub async fn open(self) -> Result<Orchestrator, OrchestratorError> {
        let store = self.agents.store().clone();
        let config = self.config;
        // A `claude-code` orchestrator runs its turns in the CLI, which gets the management tools over MCP.
        #[cfg(not(all(feature = "mcp", unix)))]
        if is_claude_code_model(&config.model) {
            return Err(OrchestratorError::Config(format!(
                "the orchestrator's model cannot be '{}' in this build: a claude-code orchestrator needs orch-core's `mcp` feature (on Unix) to give the CLI its tools; give it an anthropic:, openai:, ollama: or scripted: model (its agents may use claude-code)",
                config.model
            )));
        }
        if let Some(p) = &config.prompt_file
            && let Err(e) = std::fs::read_to_string(p)
        {
            return Err(OrchestratorError::Config(format!(
                "cannot read the orchestrator prompt file {} (ORCH_ORCHESTRATOR_PROMPT): {e}",
                p.display()
            )));
        }
        let record = match self.resume {
            Some(id) => {
                let o = store.get_orchestrator(id).await?.ok_or(OrchestratorError::NotFound(id))?;
                if o.archived {
                    return Err(OrchestratorError::Archived(id));
                }
                o
            }
            None => {
                let at = now();
                let o = OrchestratorRecord {
                    id: new_id(),
                    session_id: None,
                    system_prompt: config
                        .prompt_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "default".into()),
                    status: AgentStatus::Idle,
                    working_dir: config.working_dir.to_string_lossy().into_owned(),
                    usage: Default::default(),
                    total_cost_usd: 0.0,
                    context_used: 0,
                    context_window: None,
                    metadata: serde_json::json!({"model": config.model}),
                    archived: false,
                    created_at: at,
                    updated_at: at,
                };
                // The orchestrator's own agent record is part of it: created in the same commit,
                // recorded by the OrchestratorCreated event.
                let keys = EventKeys { orchestrator_id: Some(o.id), ..EventKeys::default() };
                let batch = Batch::new()
                    .change(Change::CreateOrchestrator(Box::new(o.clone())))
                    .change(Change::CreateAgent(Box::new(own_agent(&config, o.id))))
                    .event(keys, Event::OrchestratorCreated { orchestrator: Box::new(o.clone()) });
                store.commit(batch).await?;
                o
            }
        };
        let agent = match store.find_agent(Some(record.id), ORCHESTRATOR_AGENT_NAME).await? {
            Some(a) => a,
            None => {
                // An orchestrator stored before its agent record was created with it.
                let a = own_agent(&config, record.id);
                store.commit(Batch::new().change(Change::CreateAgent(Box::new(a.clone())))).await?;
                a
            }
        };
        let manager_config =
            self.manager_config.unwrap_or_else(|| ManagerConfig::new(config.working_dir.clone(), config.model.clone()));
        let default_model = manager_config.default_model.clone();
        let workflows = self
            .supervisor
            .as_ref()
            .map(|s| crate::workflow::WorkflowEngine::new(s.clone(), config.working_dir.clone(), default_model));
        let manager = match self.supervisor {
            Some(s) => AgentManager::with_supervisor(s, Some(record.id), manager_config),
            None => AgentManager::new(self.agents.clone(), Some(record.id), manager_config),
        };
        let mut tools = ToolRegistry::new();
        let started = register_management_tools(&mut tools, manager.clone(), record.id, agent.id);
        // Workflows need the shared supervisor (an engine's); an orchestrator built without one has none.
        let started_workflows = match workflows {
            Some(w) => super::register_adw_tools(&mut tools, w, record.id),
            None => super::StartedWorkflows::default(),
        };
        for name in &config.builtin_tools {
            match name.as_str() {
                "Read" => tools.register(Read),
                "Glob" => tools.register(Glob),
                "Grep" => tools.register(Grep),
                "Bash" => tools.register(Bash::default()),
                other => {
                    return Err(OrchestratorError::Config(format!(
                        "unknown built-in tool '{other}' for the orchestrator; use Read, Glob, Grep or Bash"
                    )));
                }
            };
        }
        let executor = match self.executor {
            Some(e) => e,
            #[cfg(all(feature = "mcp", unix))]
            None if is_claude_code_model(&config.model) => {
                Arc::new(crate::executor::ClaudeCodeExecutor::new(crate::executor::ClaudeCodeConfig::from_env()))
            }
            None => Arc::new(NativeExecutor::new(self.provider.clone())),
        };
        let runner = AgentRunner::builder(store.clone(), self.provider)
            .executor(executor)
            .tools(tools)
            .hooks(self.hooks)
            .build_with_runtime(self.agents.runtime().clone());
        Ok(Orchestrator {
            inner: Arc::new(Inner {
                store,
                id: record.id,
                agent_id: agent.id,
                supervisor: Supervisor::new(runner.clone(), Vec::new()),
                runner,
                manager,
                started,
                started_workflows,
                config,
                turn: AsyncMutex::new(()),
                current: Mutex::new(None),
            }),
        })
    }
}

struct Inner {
    store: Arc<dyn Store>,
    id: Id,
    agent_id: Id,
    runner: AgentRunner,
    /// Supervises the orchestrator's own turns.
    supervisor: Supervisor,
    manager: AgentManager,
    started: StartedRuns,
    started_workflows: super::StartedWorkflows,
    config: OrchestratorConfig,
    turn: AsyncMutex<()>,
    current: Mutex<Option<Interrupt>>,
}

/// The orchestrator a person chats with. Cheap to clone.
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # async fn demo(store: std::sync::Arc<dyn orch_core::store::Store>, model: std::sync::Arc<dyn orch_core::model::ModelProvider>) -> Result<(), Box<dyn std::error::Error>> {
/// use orch_core::executor::AgentRunner;
/// use orch_core::orchestrator::{Orchestrator, OrchestratorConfig};
///
/// let agents = AgentRunner::builder(store, model.clone()).build();
/// let orch = Orchestrator::builder(agents, model)
///     .config(OrchestratorConfig::new(".", "anthropic:claude-sonnet-5"))
///     .open()
///     .await?;
/// let turn = orch.chat("create an agent called alice and have her write hello.py", None).await?;
/// println!("{}", turn.reply.unwrap_or_default());
/// orch.manager().wait_all().await; // the runs the turn started
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator").field("id", &self.inner.id).field("config", &self.inner.config).finish()
    }
}

impl Orchestrator {
    /// A builder. `agents` runs the managed agents (its executor, tools and hooks are theirs);
    /// `provider` serves the orchestrator's own model.
    pub fn builder(agents: AgentRunner, provider: Arc<dyn ModelProvider>) -> OrchestratorBuilder {
        let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        OrchestratorBuilder {
            config: OrchestratorConfig::new(dir, provider.name().to_string()),
            hooks: agents.hooks().clone(),
            agents,
            provider,
            manager_config: None,
            executor: None,
            supervisor: None,
            resume: None,
        }
    }

    /// The newest live orchestrator in `store`, if any (what `orch chat` continues).
    pub async fn latest(store: &dyn Store) -> Result<Option<OrchestratorRecord>, StoreError> {
        Ok(store.list_orchestrators(false).await?.into_iter().next())
    }

    /// Its id.
    pub fn id(&self) -> Id {
        self.inner.id
    }

    /// The agent record its own turns run as.
    pub fn agent_id(&self) -> Id {
        self.inner.agent_id
    }

    /// The manager of its agents.
    pub fn manager(&self) -> &AgentManager {
        &self.inner.manager
    }

    /// Its settings.
    pub fn config(&self) -> &OrchestratorConfig {
        &self.inner.config
    }

    /// The record as stored now.
    pub async fn record(&self) -> Result<OrchestratorRecord, OrchestratorError> {
        self.inner.store.get_orchestrator(self.inner.id).await?.ok_or(OrchestratorError::NotFound(self.inner.id))
    }

    /// The latest `limit` chat messages, oldest first.
    pub async fn chat_history(&self, limit: usize) -> Result<Vec<ChatMessage>, OrchestratorError> {
        Ok(self.inner.store.list_chat(self.inner.id, limit).await?)
    }

    fn keys(&self) -> EventKeys {
        EventKeys { agent_id: Some(self.inner.agent_id), orchestrator_id: Some(self.inner.id), ..EventKeys::default() }
    }

    /// The system prompt for the next turn: the template (the prompt file, read now, or the default)
    /// with the agent templates and workflow types of the working dir filled in. An unreadable prompt
    /// file falls back to the default, with the reason.
    pub fn render_system_prompt(&self) -> (String, Option<String>) {
        let cfg = &self.inner.config;
        let (template, problem) = match &cfg.prompt_file {
            None => (DEFAULT_PROMPT.to_string(), None),
            Some(p) => match std::fs::read_to_string(p) {
                Ok(t) => (t, None),
                Err(e) => (
                    DEFAULT_PROMPT.to_string(),
                    Some(format!(
                        "cannot read the orchestrator prompt file {}: {e}; using the built-in prompt",
                        p.display()
                    )),
                ),
            },
        };
        let templates = Templates::load(&cfg.working_dir);
        let subagents = if templates.agents().is_empty() {
            format!(
                "No agent templates yet. Markdown files with `name` and `description` frontmatter in {} become reusable agents (create_agent's subagent_template).",
                cfg.working_dir.join(".claude").join("agents").display()
            )
        } else {
            templates
                .agents()
                .iter()
                .map(|a| format!("- **{}**: {}", a.name, a.description))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let workflows = if cfg.workflow_types.is_empty() {
            "No workflows are available here yet.".to_string()
        } else {
            cfg.workflow_types.iter().map(|(t, d)| format!("- `{t}`: {d}")).collect::<Vec<_>>().join("\n")
        };
        (template.replace("{{SUBAGENT_MAP}}", &subagents).replace("{{AVAILABLE_ADW_TYPES}}", &workflows), problem)
    }

    /// Stops the running turn, if any.
    pub fn interrupt(&self) -> bool {
        match self.inner.current.lock().ok().and_then(|c| c.clone()) {
            Some(i) => {
                i.trigger();
                true
            }
            None => false,
        }
    }

    /// Before a turn: if another process is running a turn of this orchestrator, ask it to stop
    /// (the newest message wins, across processes too) and wait for it; if no process answers, the
    /// turn was left by a process that is gone, and its status is reset.
    async fn take_over(&self) -> Result<(), OrchestratorError> {
        let id = self.inner.agent_id;
        let Some(own) = self.inner.store.get_agent(id).await? else { return Ok(()) };
        if (own.status != AgentStatus::Executing && own.run.is_none()) || self.inner.runner.is_running(id) {
            return Ok(());
        }
        self.log(LogLevel::Warning, REFOCUS_WARNING).await?;
        self.inner.manager.supervisor().stop_elsewhere(id, "chat", std::time::Duration::from_secs(10)).await?;
        Ok(())
    }

    async fn log(&self, level: LogLevel, message: &str) -> Result<(), StoreError> {
        let meta = serde_json::json!({"orchestrator_id": self.inner.id});
        self.inner.manager.log(level, message, meta, self.keys()).await
    }

    /// A failed turn: the orchestrator's own agent (whose status is the orchestrator's) becomes
    /// `blocked` if the failure left it executing, with its event.
    async fn mark_blocked(&self) -> Result<(), StoreError> {
        if let Some(own) = self.inner.store.get_agent(self.inner.agent_id).await?
            && own.status == AgentStatus::Executing
        {
            let keys =
                EventKeys { agent_id: Some(own.id), orchestrator_id: Some(self.inner.id), ..EventKeys::default() };
            let ev = Event::AgentStatusChanged { old_status: AgentStatus::Executing, new_status: AgentStatus::Blocked };
            let batch = Batch::new()
                .change(Change::SetAgentStatus { id: own.id, status: AgentStatus::Blocked })
                .event(keys, ev);
            self.inner.store.commit(batch).await?;
        }
        Ok(())
    }

    async fn add_chat(
        &self,
        sender: Participant,
        receiver: Participant,
        text: &str,
        metadata: serde_json::Value,
        at: Option<crate::wire::Timestamp>,
    ) -> Result<ChatMessage, StoreError> {
        let m = ChatMessage {
            id: new_id(),
            orchestrator_id: self.inner.id,
            sender,
            receiver,
            agent_id: None,
            message: text.to_string(),
            summary: None,
            metadata,
            created_at: at.unwrap_or_else(now),
        };
        let keys = EventKeys { orchestrator_id: Some(self.inner.id), ..EventKeys::default() };
        let batch = Batch::new()
            .change(Change::InsertChat(Box::new(m.clone())))
            .event(keys, Event::ChatMessage { message: Box::new(m.clone()) });
        self.inner.store.commit(batch).await?;
        Ok(m)
    }

    /// One chat turn: the message is stored, the orchestrator's model answers (calling management
    /// tools as it likes), each text block becomes a chat message, and the turn's tokens and cost are
    /// added to the orchestrator. A turn still running is interrupted first, with a WARNING system log:
    /// the newest message wins. Agent runs the turn starts keep running after it returns (see
    /// [`ChatOutcome::started_runs`] and [`AgentManager::wait_all`]).
    pub async fn chat(&self, message: &str, on_delta: Option<DeltaCallback>) -> Result<ChatOutcome, OrchestratorError> {
        let message = message.trim();
        if message.is_empty() {
            return Err(OrchestratorError::EmptyMessage);
        }
        let interrupt = Interrupt::new();
        let previous = self.inner.current.lock().ok().and_then(|mut c| c.replace(interrupt.clone()));
        if let Some(p) = previous {
            p.trigger();
            self.log(LogLevel::Warning, REFOCUS_WARNING).await?;
        }
        self.add_chat(Participant::User, Participant::Orchestrator, message, serde_json::json!({}), None).await?;
        let turn = self.inner.turn.lock().await;
        let result = self.run_turn(message, interrupt.clone(), on_delta).await;
        if let Ok(mut c) = self.inner.current.lock()
            && c.as_ref().is_some_and(|i| i.same_as(&interrupt))
        {
            *c = None;
        }
        drop(turn);
        result
    }

    async fn run_turn(
        &self,
        message: &str,
        interrupt: Interrupt,
        on_delta: Option<DeltaCallback>,
    ) -> Result<ChatOutcome, OrchestratorError> {
        let (system_prompt, problem) = self.render_system_prompt();
        if let Some(p) = problem {
            self.log(LogLevel::Warning, &p).await?;
        }
        self.take_over().await?;
        let slug = format!("orchestrator-{}", now().format("%Y%m%d-%H%M%S"));
        let options = RunOptions {
            max_turns: self.inner.config.max_turns,
            task_slug: Some(slug.clone()),
            interrupt: Some(interrupt),
            on_delta,
            system_prompt: Some(system_prompt),
            model: Some(self.inner.config.model.clone()),
            ..RunOptions::default()
        };
        let start_seq = self.inner.store.last_seq().await?;
        self.inner.started.take();
        // A turn a dead process left unfinished is finished first, under the same claim.
        let result = match self.inner.store.get_agent(self.inner.agent_id).await? {
            Some(own) => self.inner.supervisor.run(&own, message.to_string(), options).await,
            None => Err(RunError::AgentNotFound(ORCHESTRATOR_AGENT_NAME.to_string())),
        };
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                self.mark_blocked().await?;
                self.log(LogLevel::Error, &format!("Orchestrator execution failed: {e}")).await?;
                return Err(e.into());
            }
        };
        // Each text block of the turn is one chat message, in order, at the time it was produced.
        let q = EventQuery {
            after_seq: start_seq,
            agent_id: Some(self.inner.agent_id),
            task_slug: Some(outcome.task_slug.clone()),
            types: vec!["Text".into()],
            ..EventQuery::default()
        };
        for r in self.inner.store.read_events(&q).await? {
            if let Event::Text { text } = &r.event
                && !text.trim().is_empty()
            {
                let meta = serde_json::json!({"type": "text_chunk", "seq": r.seq, "task_slug": outcome.task_slug});
                self.add_chat(Participant::Orchestrator, Participant::User, text, meta, Some(r.timestamp)).await?;
            }
        }
        // The turn's usage was committed to the orchestrator's own agent step by step (where its usage
        // is stored, once); this event records the turn's total against the orchestrator.
        let o = self
            .inner
            .store
            .get_orchestrator(self.inner.id)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: format!("orchestrator {}", self.inner.id) })?;
        let ev = Event::OrchestratorCostsUpdated {
            usage: outcome.usage,
            cost_usd: outcome.cost_usd,
            total_usage: o.usage,
            total_cost_usd: o.total_cost_usd,
        };
        let keys = EventKeys { orchestrator_id: Some(self.inner.id), ..EventKeys::default() };
        self.inner.store.append(vec![NewEvent::new(keys, ev)]).await?;
        Ok(ChatOutcome {
            reply: outcome.final_text.clone(),
            outcome,
            started_runs: self.inner.started.take(),
            started_workflows: self.inner.started_workflows.take(),
        })
    }
}

/// The agent record an orchestrator's own turns run as (hidden from agent lists; the name is reserved).
fn own_agent(config: &OrchestratorConfig, orchestrator_id: Id) -> Agent {
    let dir = std::fs::canonicalize(&config.working_dir)
        .unwrap_or_else(|_| config.working_dir.clone())
        .to_string_lossy()
        .into_owned();
    let mut a = Agent::new(ORCHESTRATOR_AGENT_NAME, config.model.clone(), dir);
    a.orchestrator_id = Some(orchestrator_id);
    a.role = AgentRole::Orchestrator;
    a
}
