//! [`AgentManager`]: creates named agents, commands them in the background, reports their status,
//! interrupts and deletes them. The orchestrator's management tools and the `orch agent` commands are
//! thin layers over it.
//!
//! # Busy policy
//! One agent never runs two turns at once. Commanding an agent that is running is **refused** with
//! [`ManageError::Busy`], which names the run in progress and what to do (wait with
//! `check_agent_status`, or `interrupt_agent` first). Refusing, rather than queueing, keeps what the
//! orchestrator asked for visible in its own conversation: a queued command would run later against a
//! state the orchestrator has not seen.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::tracking::FileTracking;
use crate::ErrorKind;
use crate::executor::native::task_slug;
use crate::executor::{
    AgentRunner, DeltaCallback, Interrupted, RunError, RunObserver, RunOptions, RunReport, RunTicket, Supervisor,
    agent_keys, is_claude_code_model,
};
use crate::model::{ModelAliases, ModelSpec};
use crate::store::{AgentFilter, Batch, Change, EventQuery, Store, StoreError};
use crate::template::Templates;
use crate::wire::{Agent, Event, EventKeys, EventRecord, Id, LogLevel, PromptAuthor, TemplateRef, now};
pub use crate::wire::{CreateAgent, StatusEntry, StatusReport};

/// Default model calls per command run (the seed's `MAX_AGENT_TURNS`).
pub const DEFAULT_MAX_AGENT_TURNS: u32 = 500;

pub use crate::wire::ORCHESTRATOR_AGENT_NAME;

/// Whether `agent` is the record behind an orchestrator's own turns (not a managed agent).
pub fn is_orchestrator_agent(agent: &Agent) -> bool {
    agent.is_orchestrator()
}

/// What went wrong managing an agent. The messages are shown to models and people as they are.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// A required parameter is missing or empty.
    #[error("'{0}' is required")]
    Missing(&'static str),
    /// A parameter has a bad value.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// Which parameter.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// No live agent has the name.
    #[error("Agent '{0}' not found")]
    NotFound(String),
    /// A live agent already has the name.
    #[error("Agent name '{0}' is already in use by a live agent; pick another name or delete that agent first")]
    NameTaken(String),
    /// No agent template has the name.
    #[error("Template '{name}' not found. Available templates: {available}")]
    UnknownTemplate {
        /// The name asked for.
        name: String,
        /// The names there are.
        available: String,
    },
    /// The agent is running a command.
    #[error(
        "Agent '{name}' is busy running a command ({task}); wait for it to finish (check_agent_status) or interrupt_agent it first"
    )]
    Busy {
        /// The agent.
        name: String,
        /// The run in progress.
        task: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A run could not start.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl ManageError {
    /// What kind of failure this is: a missing or invalid parameter is usage; an unknown agent or
    /// template not found; a taken name a conflict; a busy agent busy; a store or run failure has its
    /// own kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Missing(_) | Self::Invalid { .. } => ErrorKind::Usage,
            Self::NotFound(_) | Self::UnknownTemplate { .. } => ErrorKind::NotFound,
            Self::NameTaken(_) => ErrorKind::Conflict,
            Self::Busy { .. } => ErrorKind::Busy,
            Self::Store(e) => e.kind(),
            Self::Run(e) => e.kind(),
        }
    }
}

/// Settings of an [`AgentManager`].
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Working directory of new agents; `.claude/agents` and `.claude/commands` are read from it.
    pub working_dir: PathBuf,
    /// Model of agents created without one (an alias, a bare id or a `provider:model` spec).
    pub default_model: String,
    /// Model calls allowed per command run (`ORCH_MAX_AGENT_TURNS`, default 500).
    pub max_turns: u32,
    /// Run a "reply Ready" turn right after `create_agent` (`ORCH_AGENT_WARMUP=1`; default off: it only
    /// costs money).
    pub warmup: bool,
    /// Record the files each command run read and changed (default on).
    pub file_tracking: bool,
    /// Model aliases for `create_agent`'s `model` (`opus`, `sonnet`, `haiku`, `fast`, …).
    pub aliases: ModelAliases,
}

impl ManagerConfig {
    /// Defaults: 500 turns, no warm-up, file tracking on, the built-in aliases.
    pub fn new(working_dir: impl Into<PathBuf>, default_model: impl Into<String>) -> Self {
        Self {
            working_dir: working_dir.into(),
            default_model: default_model.into(),
            max_turns: DEFAULT_MAX_AGENT_TURNS,
            warmup: false,
            file_tracking: true,
            aliases: ModelAliases::default(),
        }
    }

    /// [`ManagerConfig::new`] with `ORCH_MAX_AGENT_TURNS` and `ORCH_AGENT_WARMUP` applied. A bad value
    /// is an error naming the variable.
    pub fn from_env(working_dir: impl Into<PathBuf>, default_model: impl Into<String>) -> Result<Self, ManageError> {
        let mut c = Self::new(working_dir, default_model);
        if let Some(v) = env_var("ORCH_MAX_AGENT_TURNS") {
            c.max_turns = v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| ManageError::Invalid {
                what: "ORCH_MAX_AGENT_TURNS",
                message: format!("'{v}' is not a whole number of turns above 0"),
            })?;
        }
        if let Some(v) = env_var("ORCH_AGENT_WARMUP") {
            c.warmup = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ManageError::Invalid {
                        what: "ORCH_AGENT_WARMUP",
                        message: format!("'{v}' is not 1 or 0"),
                    });
                }
            };
        }
        Ok(c)
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Checks an agent name as `create_agent` does and returns it trimmed: not empty, at most 100
/// characters, no control characters, not the orchestrator's own name.
pub fn validate_agent_name(name: &str) -> Result<String, ManageError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ManageError::Missing("name"));
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ManageError::Invalid {
            what: "name",
            message: "use at most 100 characters and no control characters".into(),
        });
    }
    if name == ORCHESTRATOR_AGENT_NAME {
        return Err(ManageError::Invalid {
            what: "name",
            message: format!("'{ORCHESTRATOR_AGENT_NAME}' is reserved for the orchestrator itself"),
        });
    }
    Ok(name.to_string())
}

struct Inner {
    runner: AgentRunner,
    store: Arc<dyn Store>,
    orchestrator_id: Option<Id>,
    config: ManagerConfig,
    supervisor: Supervisor,
}

/// Creates, commands, watches, interrupts and deletes the agents of one orchestrator (or, with no
/// orchestrator, the free-standing agents the CLI manages). Cheap to clone.
#[derive(Clone)]
pub struct AgentManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentManager")
            .field("orchestrator_id", &self.inner.orchestrator_id)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AgentManager {
    /// A manager running agents on `runner` (its executor, tools and hooks), owning the agents of
    /// `orchestrator_id`.
    /// Its runs are supervised by a [`Supervisor`] of its own, with file tracking when
    /// [`ManagerConfig::file_tracking`] is on.
    pub fn new(runner: AgentRunner, orchestrator_id: Option<Id>, config: ManagerConfig) -> Self {
        let observers: Vec<Arc<dyn RunObserver>> = if config.file_tracking {
            vec![Arc::new(FileTracking::for_store(runner.store().as_ref()))]
        } else {
            Vec::new()
        };
        Self::with_supervisor(Supervisor::new(runner, observers), orchestrator_id, config)
    }

    /// A manager whose runs `supervisor` supervises (shared with other users of the same runs, such as
    /// workflows and task graphs).
    pub fn with_supervisor(supervisor: Supervisor, orchestrator_id: Option<Id>, config: ManagerConfig) -> Self {
        let runner = supervisor.runner().clone();
        let store = runner.store().clone();
        Self { inner: Arc::new(Inner { runner, store, orchestrator_id, config, supervisor }) }
    }

    /// The supervisor of the managed agents' runs.
    pub fn supervisor(&self) -> &Supervisor {
        &self.inner.supervisor
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The runner of the managed agents.
    pub fn runner(&self) -> &AgentRunner {
        &self.inner.runner
    }

    /// The orchestrator whose agents these are.
    pub fn orchestrator_id(&self) -> Option<Id> {
        self.inner.orchestrator_id
    }

    /// The settings.
    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// The model string a new agent gets for `requested`: aliases resolved (case-insensitively),
    /// `claude-code[:M]` and `provider:model` specs checked and kept.
    pub fn resolve_model(&self, requested: Option<&str>) -> Result<String, ManageError> {
        let m = requested.map(str::trim).filter(|m| !m.is_empty()).unwrap_or(&self.inner.config.default_model);
        if is_claude_code_model(m) {
            return Ok(m.to_string());
        }
        if ModelSpec::is_qualified(m) {
            ModelSpec::parse(m).map_err(|e| ManageError::Invalid { what: "model", message: e.to_string() })?;
            return Ok(m.to_string());
        }
        Ok(self.inner.config.aliases.resolve(m).to_string())
    }

    /// Creates an agent from a system prompt or a `.claude/agents` template. The name must be free
    /// among live agents (a deleted agent's name is free again).
    pub async fn create_agent(&self, req: CreateAgent) -> Result<Agent, ManageError> {
        let name = validate_agent_name(&req.name)?;
        if let Some(at) = req.compact_at
            && !(0.0..=1.0).contains(&at)
        {
            return Err(ManageError::Invalid {
                what: "compact_at",
                message: format!("{at} is not a share of the context window from 0 to 1 (0: never compact)"),
            });
        }
        let mut system_prompt = req.system_prompt.filter(|s| !s.trim().is_empty());
        let mut model = req.model;
        let mut template_ref = None;
        let mut tools = None;
        if let Some(template) = req.template.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let templates = Templates::load(&self.inner.config.working_dir);
            let Some(t) = templates.agent(template) else {
                let mut names: Vec<&str> = templates.agents().iter().map(|a| a.name.as_str()).collect();
                names.sort_unstable();
                let available = if names.is_empty() {
                    format!(
                        "none (add .md files to {})",
                        self.inner.config.working_dir.join(".claude/agents").display()
                    )
                } else {
                    names.join(", ")
                };
                return Err(ManageError::UnknownTemplate { name: template.to_string(), available });
            };
            system_prompt = Some(t.system_prompt.clone());
            if t.model.is_some() {
                model = t.model.clone();
            }
            template_ref = Some(TemplateRef { name: t.name.clone(), color: t.color.clone() });
            tools = t.tools.clone();
        }
        let Some(system_prompt) = system_prompt else {
            return Err(ManageError::Invalid {
                what: "agent",
                message: "either 'system_prompt' or 'subagent_template' is required".into(),
            });
        };
        let model = self.resolve_model(model.as_deref())?;
        if self.inner.store.find_agent(self.inner.orchestrator_id, &name).await?.is_some() {
            return Err(ManageError::NameTaken(name));
        }
        let dir = std::fs::canonicalize(&self.inner.config.working_dir)
            .unwrap_or_else(|_| self.inner.config.working_dir.clone())
            .to_string_lossy()
            .into_owned();
        let mut agent = Agent::new(name.clone(), model, dir);
        agent.orchestrator_id = self.inner.orchestrator_id;
        agent.system_prompt = Some(system_prompt);
        agent.template = template_ref;
        agent.tools = tools;
        agent.compact_at = req.compact_at;
        let agent = match self.inner.runner.create_agent(agent).await {
            Ok(a) => a,
            Err(RunError::Store(StoreError::NameTaken { .. })) => return Err(ManageError::NameTaken(name)),
            Err(e) => return Err(e.into()),
        };
        if self.inner.config.warmup {
            let ticket = self
                .start(
                    &agent,
                    "You have just been created. Reply with the single word: Ready".into(),
                    Some(format!("{}-greeting", agent.name)),
                    PromptAuthor::OrchestratorAgent,
                    None,
                )
                .await?;
            ticket.wait().await;
        }
        Ok(self.inner.store.get_agent(agent.id).await?.unwrap_or(agent))
    }

    /// The live agents, newest first (not the orchestrator's own record).
    pub async fn list_agents(&self) -> Result<Vec<Agent>, ManageError> {
        let filter = AgentFilter { orchestrator_id: self.inner.orchestrator_id, include_archived: false };
        let mut agents = self.inner.store.list_agents(&filter).await?;
        if self.inner.orchestrator_id.is_none() {
            agents.retain(|a| a.orchestrator_id.is_none());
        }
        agents.retain(|a| !is_orchestrator_agent(a));
        Ok(agents)
    }

    /// The live agent named `name`.
    pub async fn agent(&self, name: &str) -> Result<Agent, ManageError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ManageError::Missing("agent_name"));
        }
        match self.inner.store.find_agent(self.inner.orchestrator_id, name).await? {
            Some(a) if !is_orchestrator_agent(&a) => Ok(a),
            _ => Err(ManageError::NotFound(name.to_string())),
        }
    }

    /// Starts `command` on the agent in the background and returns at once. A prompt starting with
    /// `/name args` is expanded from `.claude/commands` for native agents (the Claude Code CLI
    /// expands its own); the command's model and allowed tools apply to this run. Refused with
    /// [`ManageError::Busy`] while the agent runs.
    pub async fn command_agent(&self, name: &str, command: &str) -> Result<RunTicket, ManageError> {
        self.command_agent_as(name, command, PromptAuthor::OrchestratorAgent).await
    }

    /// [`AgentManager::command_agent`] with the prompt's author given.
    pub async fn command_agent_as(
        &self,
        name: &str,
        command: &str,
        author: PromptAuthor,
    ) -> Result<RunTicket, ManageError> {
        self.command_agent_streaming(name, command, author, None).await
    }

    /// [`AgentManager::command_agent_as`] with the model's deltas streamed to `on_delta` (a CLI
    /// printing the reply as it is written).
    pub async fn command_agent_streaming(
        &self,
        name: &str,
        command: &str,
        author: PromptAuthor,
        on_delta: Option<DeltaCallback>,
    ) -> Result<RunTicket, ManageError> {
        if command.trim().is_empty() {
            return Err(ManageError::Missing("command"));
        }
        let agent = self.agent(name).await?;
        self.start(&agent, command.to_string(), None, author, on_delta).await
    }

    async fn start(
        &self,
        agent: &Agent,
        prompt: String,
        slug: Option<String>,
        author: PromptAuthor,
        on_delta: Option<DeltaCallback>,
    ) -> Result<RunTicket, ManageError> {
        let mut options = RunOptions {
            max_turns: self.inner.config.max_turns,
            author,
            allowed_tools: tools_of(agent),
            on_delta,
            ..RunOptions::default()
        };
        let mut prompt = prompt;
        if !is_claude_code_model(&agent.model) && prompt.trim_start().starts_with('/') {
            let templates = Templates::load(&agent.working_dir);
            match templates.expand(&prompt) {
                Ok(Some(x)) => prompt = x.apply_to(&mut options),
                Ok(None) => {}
                Err(e) => return Err(ManageError::Invalid { what: "command", message: e.to_string() }),
            }
        }
        let slug = slug.unwrap_or_else(|| task_slug(&prompt, now()));
        options.task_slug = Some(slug);
        self.inner.supervisor.start(agent, prompt, options).await.map_err(|e| match e {
            RunError::AgentBusy { name, run } => ManageError::Busy { name, task: run },
            other => ManageError::from(other),
        })
    }

    /// Writes a system log (its `SystemLog` event and `system_logs` row, in one commit).
    pub async fn log(
        &self,
        level: LogLevel,
        message: &str,
        metadata: serde_json::Value,
        keys: EventKeys,
    ) -> Result<(), StoreError> {
        self.inner.supervisor.log(level, message, metadata, keys).await
    }

    /// Runs `command` on the agent in the foreground and waits for it (what a CLI process does).
    pub async fn run_agent(&self, name: &str, command: &str, author: PromptAuthor) -> Result<RunReport, ManageError> {
        let ticket = self.command_agent_as(name, command, author).await?;
        Ok(ticket.wait().await)
    }

    /// The runs started by this manager's supervisor that have not ended.
    pub fn active_runs(&self) -> Vec<RunTicket> {
        self.inner.supervisor.active_runs()
    }

    /// Waits until no run started by this manager's supervisor is going, including runs started
    /// meanwhile, and returns the reports of the runs it waited for. Runs that had ended before the call
    /// are not in it: keep their [`RunTicket`]s (e.g. [`ChatOutcome::started_runs`](super::ChatOutcome))
    /// to see them.
    pub async fn wait_all(&self) -> Vec<RunReport> {
        self.inner.supervisor.wait_all().await
    }

    /// Stops the agent's run: in this process at once (waiting up to `wait` for it to record its
    /// end); in another process by appending `InterruptRequested`, which that process follows. An
    /// agent left `executing` by a process that is gone is reset to `idle` at once.
    pub async fn interrupt_agent(&self, name: &str, wait: Duration) -> Result<Interrupted, ManageError> {
        self.interrupt_agent_by(name, wait, "orchestrator").await
    }

    /// [`AgentManager::interrupt_agent`] on behalf of `by` (`cli`, `http`, …), named in the
    /// `InterruptRequested` event a run in another process gets.
    pub async fn interrupt_agent_by(&self, name: &str, wait: Duration, by: &str) -> Result<Interrupted, ManageError> {
        let agent = self.agent(name).await?;
        Ok(self.inner.supervisor.interrupt(&agent, by, wait).await?)
    }

    /// Deletes (archives) the agent, interrupting its run first. Its name can be reused.
    pub async fn delete_agent(&self, name: &str) -> Result<Agent, ManageError> {
        let agent = self.agent(name).await?;
        self.inner.supervisor.interrupt(&agent, "delete", Duration::from_secs(5)).await?;
        let batch = Batch::new()
            .change(Change::ArchiveAgent { id: agent.id })
            .event(agent_keys(&agent, None), Event::AgentDeleted {});
        self.inner.store.commit(batch).await?;
        Ok(agent)
    }

    /// The agent's status and its latest run's events: `tail` entries after skipping the newest
    /// `offset`, oldest first. Each entry carries its model summary when one was made, else the
    /// heuristic one.
    ///
    /// The agent, its latest run and that run's events are three reads: when the agent's status changed
    /// meanwhile (a run started or ended between them), they are read again, up to three times, so the
    /// status and the entries are of one moment (never an idle agent with the start of a new run).
    pub async fn status(&self, name: &str, tail: usize, offset: usize) -> Result<StatusReport, ManageError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let since = self.inner.store.last_seq().await?;
            let report = self.status_once(name, tail, offset).await?;
            let changed = EventQuery {
                after_seq: since,
                agent_id: Some(report.agent.id),
                types: vec!["AgentStatusChanged".into()],
                limit: Some(1),
                ..EventQuery::default()
            };
            if tries >= 3 || self.inner.store.read_events(&changed).await?.is_empty() {
                return Ok(report);
            }
        }
    }

    async fn status_once(&self, name: &str, tail: usize, offset: usize) -> Result<StatusReport, ManageError> {
        let agent = self.agent(name).await?;
        let prompts = self.inner.store.list_prompts(agent.id).await?;
        let task_slug = prompts.iter().rev().find_map(|p| p.task_slug.clone());
        let mut entries = Vec::new();
        if let Some(slug) = &task_slug {
            let q = EventQuery { agent_id: Some(agent.id), task_slug: Some(slug.clone()), ..EventQuery::default() };
            let events = self.inner.store.read_events(&q).await?;
            let mut summaries: HashMap<u64, String> = HashMap::new();
            for r in &events {
                if let Event::SummaryUpdated { target_seq, summary } = &r.event {
                    summaries.insert(*target_seq, summary.clone());
                }
            }
            let shown: Vec<&EventRecord> = events.iter().filter(|r| shows_in_status(&r.event)).collect();
            let end = shown.len().saturating_sub(offset);
            let start = end.saturating_sub(tail);
            for r in &shown[start..end] {
                let s = summaries.get(&r.seq).cloned().unwrap_or_else(|| r.event.summary());
                entries.push(StatusEntry { record: (*r).clone(), summary: s });
            }
        }
        Ok(StatusReport { agent, task_slug, entries })
    }
}

fn tools_of(agent: &Agent) -> Option<Vec<String>> {
    agent.tools.as_ref().map(|t| t.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

/// Events shown in an agent's status: hooks, response blocks, errors and file reports; not costs,
/// status changes or summary updates.
fn shows_in_status(e: &Event) -> bool {
    !matches!(
        e,
        Event::AgentCostsUpdated { .. }
            | Event::AgentStatusChanged { .. }
            | Event::SummaryUpdated { .. }
            | Event::HookInvoked { .. }
            | Event::ModelRetry { .. }
    )
}
