//! Executors run agent turns: the [`native`] loop (model + tools + hooks) here, external agent CLIs
//! (Claude Code) beside it. Every executor records the same events and costs and fires the same hooks.
//!
//! [`AgentRunner`] is the front door: it owns the store, the executor, tools and hooks, refuses to run
//! one agent twice at once, and interrupts running turns.

mod additions;
mod claim;
#[cfg(all(feature = "tokio", unix))]
pub mod claude_code;
pub mod compact;
mod gate;
pub mod lease;
mod mcp_turn;
pub mod native;
mod recorder;
mod route;
mod run_end;
mod runner;
mod state;
mod supervisor;

pub use additions::RunnerAdditions;
pub use claim::{NewClaimed, RunClaim};
#[cfg(all(feature = "tokio", unix))]
pub use claude_code::{ClaudeCodeConfig, ClaudeCodeExecutor, SystemPromptMode};
pub use compact::CompactionSettings;
pub use gate::{GatePass, ModelGate};
pub use native::{NativeExecutor, SubagentSettings};
pub use recorder::TurnRecorder;
pub use route::{CLAUDE_CODE, RoutingExecutor, claude_code_entry, is_claude_code_model};
pub use run_end::{RunEnd, TurnResult, refused};
pub use runner::{AgentRunner, AgentRunnerBuilder};
pub use state::{LoopState, Parked, PendingCall, Phase, TurnState};
pub use supervisor::{Interrupted, RunObserver, RunReport, RunTicket, RunWatch, Supervisor, agent_keys};

use std::sync::Arc;

use async_trait::async_trait;

use crate::ErrorKind;
use crate::Interrupt;
use crate::hook::HookRegistry;
use crate::model::{ModelDelta, ModelError};
use crate::runtime::Runtime;
use crate::store::{Batch, Change, Durability, Store, StoreError};
use crate::tool::ToolRegistry;
pub use crate::wire::RunOutcome;
use crate::wire::{Agent, AgentStatus, EventRecord, PromptAuthor};

/// Receives streamed model deltas as they arrive (e.g. to print text live).
pub type DeltaCallback = Arc<dyn Fn(&ModelDelta) + Send + Sync>;

/// Receives a run's events as they are committed, in order, with their seqs: what a host of the run
/// sees without reading the log back. Events appended by others (hooks' own appends, other agents)
/// are not included.
pub type EventsCallback = Arc<dyn Fn(&[EventRecord]) + Send + Sync>;

/// Options of one run.
#[derive(Clone)]
pub struct RunOptions {
    /// Model calls allowed in the turn (default 500, the seed's `MAX_AGENT_TURNS`).
    pub max_turns: u32,
    /// Run slug; default derived from the prompt and the time, as in the seed.
    pub task_slug: Option<String>,
    /// Interrupt for this run (a fresh one if `None`); [`AgentRunner::interrupt`] triggers it too.
    pub interrupt: Option<Interrupt>,
    /// Live model deltas.
    pub on_delta: Option<DeltaCallback>,
    /// The run's events as they are committed.
    pub on_events: Option<EventsCallback>,
    /// Only these tools (e.g. a slash command's `allowed-tools`); `None` = all registered tools.
    pub allowed_tools: Option<Vec<String>>,
    /// Who wrote the prompt.
    pub author: PromptAuthor,
    /// Runs this turn on another model than the agent's own (e.g. a slash command's `model`, a workflow
    /// step's), on the provider it names (`mycorp:big`) or, bare, on the default provider. An alias or
    /// bare id on a Claude Code agent becomes `claude-code:MODEL`. The agent's record is unchanged, so
    /// resuming a turn left by a crash runs on the model of the resume's own options.
    pub model: Option<String>,
    /// Replaces the agent's system prompt for this turn (e.g. the orchestrator's prompt, rendered anew
    /// each turn). The agent's record is unchanged.
    pub system_prompt: Option<String>,
    /// How deep in `Task` subagents this run is (0: not a subagent).
    pub subagent_depth: u32,
    /// Asked before every model call (e.g. a budget); `None`: calls are not gated.
    pub gate: Option<Arc<dyn ModelGate>>,
    /// Joins the commit that ends the run (e.g. a task graph's end of the task); `None`: the run's end
    /// commits alone. Not handed on to subagents or to a resumed turn left unfinished before the run.
    pub end: Option<Arc<dyn RunEnd>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            max_turns: 500,
            task_slug: None,
            interrupt: None,
            on_delta: None,
            on_events: None,
            allowed_tools: None,
            author: PromptAuthor::Engineer,
            model: None,
            system_prompt: None,
            subagent_depth: 0,
            gate: None,
            end: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("max_turns", &self.max_turns)
            .field("task_slug", &self.task_slug)
            .field("allowed_tools", &self.allowed_tools)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// A run that could not complete. Everything that happened before the failure is in the log.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model call failed; the turn ended and the agent is `blocked`.
    #[error("model call failed: {0}")]
    Model(#[from] ModelError),
    /// No such agent.
    #[error("agent {0} not found")]
    AgentNotFound(String),
    /// The agent is already running a turn, here or in another process.
    #[error("agent '{name}' is busy: it is already running {run}")]
    AgentBusy {
        /// Agent name.
        name: String,
        /// The run in progress (its task, process and host).
        run: String,
    },
    /// The agent has a turn left unfinished by a crash; resume it first.
    #[error(
        "agent '{0}' has an unfinished turn (the process running it stopped); resume it before sending a new prompt"
    )]
    UnfinishedTurn(String),
    /// Nothing to resume.
    #[error("agent '{0}' has no unfinished turn to resume")]
    NothingToResume(String),
    /// The agent's turn is parked until a person approves, denies or answers a tool call.
    #[error(
        "agent '{agent}' is waiting for a person to approve its {tool} call (approval {approval}): `orch approve {approval}`, `orch deny {approval}` or `orch answer {approval} TEXT`"
    )]
    WaitingForPerson {
        /// Agent name.
        agent: String,
        /// The approval.
        approval: crate::wire::Id,
        /// The parked call's tool.
        tool: String,
    },
    /// The saved executor state could not be read.
    #[error("agent '{agent}' has an unreadable saved state: {message}")]
    BadState {
        /// Agent name.
        agent: String,
        /// Details.
        message: String,
    },
    /// The agent's model cannot be run here.
    #[error("agent '{agent}': {message}")]
    Config {
        /// Agent name.
        agent: String,
        /// Details.
        message: String,
    },
}

impl RunError {
    /// What kind of failure this is: the store's or the model's own kind; a missing agent is not found,
    /// a busy one busy; an unfinished turn or nothing to resume is a conflict; a model that cannot run
    /// here is usage; an unreadable saved state is internal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(e) => e.kind(),
            Self::Model(e) => e.kind(),
            Self::AgentNotFound(_) => ErrorKind::NotFound,
            Self::AgentBusy { .. } => ErrorKind::Busy,
            Self::UnfinishedTurn(_) | Self::NothingToResume(_) | Self::WaitingForPerson { .. } => ErrorKind::Conflict,
            Self::BadState { .. } => ErrorKind::Internal,
            Self::Config { .. } => ErrorKind::Usage,
        }
    }
}

/// What an executor is given for one turn.
#[derive(Clone)]
pub struct TurnContext {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The agent, as loaded at the start.
    pub agent: Agent,
    /// The agent was created for this run and has not run before: it has no conversation and no saved
    /// executor state, so the executor need not read them.
    pub fresh: bool,
    /// The run's interrupt.
    pub interrupt: Interrupt,
    /// Options.
    pub options: RunOptions,
    /// The tools on offer (already filtered by `allowed_tools`).
    pub tools: ToolRegistry,
    /// Hooks.
    pub hooks: HookRegistry,
    /// The host runtime.
    pub runtime: Arc<dyn Runtime>,
    /// The runner of this turn, to run subagents (`Task`) with; `None` outside a runner.
    pub runner: Option<AgentRunner>,
    /// The claim that the commit ending this turn releases with it (the last turn of a run whose
    /// executor ends with that commit, see [`AgentExecutor::ends_with_its_last_commit`]); `None`: the
    /// caller releases the claim after the turn.
    pub release: Option<EndRelease>,
}

/// A run's claim, released by the commit that ends the run's last turn ([`TurnContext::commit`]):
/// the run's end and its release are one commit instead of two.
#[derive(Clone, Debug)]
pub struct EndRelease {
    run_id: crate::wire::Id,
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl EndRelease {
    pub(crate) fn new(run_id: crate::wire::Id, done: Arc<std::sync::atomic::AtomicBool>) -> Self {
        Self { run_id, done }
    }
}

impl TurnContext {
    /// Stores one step of the run atomically ([`Store::commit`]) and hands the appended records to
    /// the run's [`RunOptions::on_events`]. Every executor commits through here. The step that ends
    /// the turn (the agent leaves `executing`/`waiting` for `idle`, `blocked` or `complete`) also
    /// releases the run's claim when [`TurnContext::release`] is set, and then carries what
    /// [`RunOptions::end`] joins to it (committed again without it if the store refuses that part).
    pub async fn commit(&self, step: impl Into<Batch>) -> Result<Vec<EventRecord>, StoreError> {
        let mut batch = step.into();
        let release = self.release.as_ref().filter(|_| ends_turn(&batch, self.agent.id));
        if let Some(r) = release {
            batch.push_change(Change::ReleaseRun { agent_id: self.agent.id, run_id: r.run_id });
        }
        // The run's end, which releases the claim, is the run's last commit: what the host records at
        // the run's end may join it.
        let joined = match (release, &self.options.end) {
            (Some(_), Some(end)) => end.join(&batch).map(|extra| (end, extra)),
            _ => None,
        };
        let records = match joined {
            None => self.store.commit(batch).await?,
            Some((end, extra)) => {
                let mut full = batch.clone();
                full.changes.extend(extra.changes);
                full.events.extend(extra.events);
                if extra.durability == Durability::Full {
                    full.durability = Durability::Full;
                }
                match self.store.commit(full).await {
                    Ok(records) => {
                        end.joined(Ok(&records));
                        records
                    }
                    Err(e) if refused(&e) => {
                        tracing::debug!(error = %e, agent = %self.agent.name, "the end joined to the run's was refused; the run's end commits alone");
                        end.joined(Err(&e));
                        self.store.commit(batch).await?
                    }
                    Err(e) => {
                        end.joined(Err(&e));
                        return Err(e);
                    }
                }
            }
        };
        if let Some(r) = release {
            r.done.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if let Some(cb) = &self.options.on_events {
            cb(&records);
        }
        Ok(records)
    }
}

/// Whether `batch` ends agent `id`'s turn: it sets the agent's status to one a running turn never has.
fn ends_turn(batch: &Batch, id: crate::wire::Id) -> bool {
    batch.changes.iter().any(|c| {
        matches!(c, Change::SetAgentStatus { id: a, status } if *a == id
            && matches!(status, AgentStatus::Idle | AgentStatus::Blocked | AgentStatus::Complete))
    })
}

/// Runs agent turns to completion, recording events in the store.
#[async_trait]
pub trait AgentExecutor: Send + Sync + 'static {
    /// Name (`native`, `claude-code`, …).
    fn name(&self) -> &str;
    /// Runs a new turn for `prompt`, or (with `None`) resumes the agent's unfinished turn.
    async fn run_turn(&self, cx: TurnContext, prompt: Option<String>) -> Result<RunOutcome, RunError>;
    /// Whether the commit that ends a turn (the agent's status back to `idle`, `blocked` or
    /// `complete`) is the last thing the turn does with the agent, so that it may release the run's
    /// claim too ([`TurnContext::release`]). Default `false`: an executor whose work goes on after
    /// that commit (a child process still exiting) keeps the claim until the turn returns.
    fn ends_with_its_last_commit(&self) -> bool {
        false
    }
}
