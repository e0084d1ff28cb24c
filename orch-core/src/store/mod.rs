//! The [`Store`] trait: entities and the append-only event log, shared by every host.
//!
//! Implementations: [`MemoryStore`] (in this crate, for tests and benchmarks), `orch-store-sqlite`
//! (the embedded default) and `orch-store-postgres`. Every implementation must pass the conformance
//! suite in `testkit` (feature `testkit`).

mod batch;
mod follow;
mod memory;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "testkit")]
mod writes;

pub use batch::{Batch, Change, Durability, SavedState, start_claimed};
pub use follow::{KnownSeq, Wakeup, follow_log, follow_log_matching, follow_log_matching_known};
pub use memory::MemoryStore;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::ErrorKind;
use crate::wire::{
    Agent, AgentStatus, ChatMessage, EventRecord, Id, Message, NewEvent, Orchestrator, Plan, Prompt, RunLease,
    SystemLog, Task, TaskGraph, Usage, WorkflowRecord,
};
pub use crate::wire::{EventQuery, StoreStatus};

/// A store failure. Messages name what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such entity.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A live agent already has that name.
    #[error("agent name '{name}' is already in use by a live agent")]
    NameTaken {
        /// The name.
        name: String,
    },
    /// The database was written by a newer orch; it is left untouched.
    #[error(
        "database {location} has schema version {found}, newer than this orch supports ({supported}); upgrade orch — the database was not modified"
    )]
    NewerSchema {
        /// Where.
        location: String,
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The database file is not a database or is damaged.
    #[error("database {location} is not a valid orch database: {message}")]
    Corrupt {
        /// Where.
        location: String,
        /// Details.
        message: String,
    },
    /// The database could not be opened or created.
    #[error("cannot open database {location}: {message}")]
    Open {
        /// Where.
        location: String,
        /// Details.
        message: String,
    },
    /// A [`Change::SwapRun`] found the agent held by another run than expected (or by none).
    #[error("{}", run_conflict_message(.agent_id, .current.as_deref()))]
    RunConflict {
        /// The agent.
        agent_id: Id,
        /// The run holding it now, if any.
        current: Option<Box<RunLease>>,
    },
    /// A [`Change::SwapWorkflowRun`] found the workflow held by another run than expected (or by none).
    #[error("{}", workflow_conflict_message(.workflow_id, .current.as_deref()))]
    WorkflowRunConflict {
        /// The workflow.
        workflow_id: Id,
        /// The run holding it now, if any.
        current: Option<Box<RunLease>>,
    },
    /// An entity with that identity exists already (a task id, or a task key in its graph).
    #[error("{what} already exists")]
    Duplicate {
        /// What was inserted.
        what: String,
    },
    /// A fenced [`Change::UpdateTask`] found the task at another attempt: its lease was taken over.
    #[error("task {task_id} is at attempt {found}, not {expected}: its attempt was taken over")]
    Fenced {
        /// The task.
        task_id: Id,
        /// The attempt the write was for.
        expected: u32,
        /// The attempt stored.
        found: u32,
    },
    /// A [`Change::ReserveBudget`] would pass a limit.
    #[error(
        "budget_exhausted: the {scope} limit of ${limit:.4} would be passed (spent ${spent:.4}, reserved ${reserved:.4}, asked ${asked:.4})"
    )]
    BudgetExhausted {
        /// Which limit: `daily`, `monthly` or `graph <id>`.
        scope: String,
        /// The limit, USD.
        limit: f64,
        /// Spent so far, USD.
        spent: f64,
        /// Reserved by calls in flight, USD.
        reserved: f64,
        /// The reservation refused, USD.
        asked: f64,
    },
    /// A [`Change::GrowGraph`] found its graph ended: no task can be added to it any more.
    #[error("task graph {id} has ended ({status}): no task can be added to it")]
    GraphEnded {
        /// The graph.
        id: Id,
        /// Its status as stored.
        status: String,
    },
    /// Stored data could not be decoded.
    #[error("stored data could not be decoded: {0}")]
    Decode(String),
    /// Any other backend failure.
    #[error("store backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// What kind of failure this is: not found, a taken name (conflict), a run conflict (busy), a
    /// database that cannot be opened (unavailable); damaged, newer-schema or undecodable data and other
    /// backend failures are internal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::NameTaken { .. } => ErrorKind::Conflict,
            Self::RunConflict { .. } | Self::WorkflowRunConflict { .. } | Self::Fenced { .. } => ErrorKind::Busy,
            Self::Duplicate { .. } | Self::BudgetExhausted { .. } | Self::GraphEnded { .. } => ErrorKind::Conflict,
            Self::Open { .. } => ErrorKind::Unavailable,
            Self::NewerSchema { .. } | Self::Corrupt { .. } | Self::Decode(_) | Self::Backend(_) => ErrorKind::Internal,
        }
    }
}

fn workflow_conflict_message(workflow_id: &Id, current: Option<&RunLease>) -> String {
    match current {
        Some(lease) => format!("workflow {workflow_id} is run by {lease}"),
        None => format!("workflow {workflow_id} is not held by the expected run (it was released or taken over)"),
    }
}

fn run_conflict_message(agent_id: &Id, current: Option<&RunLease>) -> String {
    match current {
        Some(lease) => format!("agent {agent_id} is held by {lease}"),
        None => format!("agent {agent_id} is not held by the expected run (it was released or taken over)"),
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Which agents to list.
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    /// Only agents of this orchestrator.
    pub orchestrator_id: Option<Id>,
    /// Include archived (deleted) agents.
    pub include_archived: bool,
}

/// Which system logs to read (newest first).
#[derive(Debug, Clone, Default)]
pub struct SystemLogQuery {
    /// Skip this many.
    pub offset: usize,
    /// At most this many.
    pub limit: usize,
    /// Case-insensitive substring of the message.
    pub message_contains: Option<String>,
    /// Exact level.
    pub level: Option<crate::wire::LogLevel>,
}

/// One atomic step of an agent run: all of it is stored, or none of it.
///
/// The agent loop makes one such commit per step (model call + its tool calls), so a crash never leaves
/// events without the state that produced them, and full durability costs one sync per step.
#[derive(Debug, Clone, Default)]
pub struct StepCommit {
    /// The agent.
    pub agent_id: Id,
    /// New status, if it changes.
    pub status: Option<AgentStatus>,
    /// Usage and USD cost to add atomically.
    pub usage: Option<(Usage, f64)>,
    /// Executor state to save.
    pub state: Option<SavedState>,
    /// Context used by the step's last model call and its model's window, to record on the agent.
    pub context: Option<(u64, Option<u64>)>,
    /// Messages to append to the agent's conversation, in order.
    pub messages: Vec<Message>,
    /// Other changes stored with the step (e.g. the prompt row of the turn's first step).
    pub changes: Vec<Change>,
    /// Events to append, in order.
    pub events: Vec<NewEvent>,
}

/// A live stream of appended events: replayed from a seq, then live, no gap, no duplicate.
pub type EventStream = BoxStream<'static, StoreResult<EventRecord>>;

/// Persistent state: entities and the append-only event log.
///
/// Object-safe: hosts hold an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- the one write path ----
    /// Applies a [`Batch`] atomically, in one transaction: its changes in order, then its events with
    /// consecutive seqs (commit order equals seq order). All of it is stored, or none of it; the
    /// appended records are returned.
    async fn commit(&self, batch: Batch) -> StoreResult<Vec<EventRecord>>;

    /// Appends events only: [`Store::commit`] of a batch without changes.
    async fn append(&self, events: Vec<NewEvent>) -> StoreResult<Vec<EventRecord>> {
        self.commit(Batch::events(events)).await
    }

    // ---- orchestrators ----
    /// Reads an orchestrator.
    async fn get_orchestrator(&self, id: Id) -> StoreResult<Option<Orchestrator>>;
    /// Lists orchestrators, newest first.
    async fn list_orchestrators(&self, include_archived: bool) -> StoreResult<Vec<Orchestrator>>;

    // ---- agents ----
    /// Reads an agent (archived ones too).
    async fn get_agent(&self, id: Id) -> StoreResult<Option<Agent>>;
    /// Finds the live agent with this name under this orchestrator (`None`: agents without one).
    async fn find_agent(&self, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>>;
    /// Lists agents, newest first.
    async fn list_agents(&self, filter: &AgentFilter) -> StoreResult<Vec<Agent>>;
    /// An agent's conversation (messages appended by [`Change::AppendMessages`]), oldest first.
    async fn load_conversation(&self, agent_id: Id) -> StoreResult<Vec<Message>>;
    /// The executor's loop state saved for an agent by [`Change::SaveAgentState`] (`None`: nothing
    /// saved, or no such agent). Kept apart from [`Agent`], which hosts list and serve.
    async fn load_executor_state(&self, agent_id: Id) -> StoreResult<Option<serde_json::Value>>;

    // ---- prompts, chat, system logs, workflows ----
    /// An agent's prompts, oldest first.
    async fn list_prompts(&self, agent_id: Id) -> StoreResult<Vec<Prompt>>;
    /// The latest `limit` chat messages of an orchestrator, oldest first.
    async fn list_chat(&self, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>>;
    /// Reads system logs, newest first.
    async fn list_system_logs(&self, query: &SystemLogQuery) -> StoreResult<Vec<SystemLog>>;
    /// Reads a workflow record.
    async fn get_workflow(&self, id: Id) -> StoreResult<Option<WorkflowRecord>>;
    /// Lists workflow records, newest first.
    async fn list_workflows(&self, orchestrator_id: Option<Id>, limit: usize) -> StoreResult<Vec<WorkflowRecord>>;

    // ---- plans and task graphs ----
    /// Reads a plan: version `version`, or its latest version when `None`.
    async fn get_plan(&self, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>>;
    /// Lists the latest version of every plan, newest first (by that version's creation), at most `limit`.
    async fn list_plans(&self, limit: usize) -> StoreResult<Vec<Plan>>;
    /// Reads a task graph.
    async fn get_graph(&self, id: Id) -> StoreResult<Option<TaskGraph>>;
    /// Lists task graphs, newest first, at most `limit`.
    async fn list_graphs(&self, limit: usize) -> StoreResult<Vec<TaskGraph>>;
    /// Reads a task.
    async fn get_task(&self, id: Id) -> StoreResult<Option<Task>>;
    /// The tasks of a graph, by index.
    async fn list_tasks(&self, graph_id: Id) -> StoreResult<Vec<Task>>;
    /// The tasks of graph `graph_id` that `names` name, each by key, id or index (see
    /// [`task_named`]), by index: a few tasks of a large graph without reading it all (adding a task to
    /// a running graph checks its key and dependencies so). The default reads the whole graph;
    /// stores answer from their indexes.
    async fn find_tasks(&self, graph_id: Id, names: &[String]) -> StoreResult<Vec<Task>> {
        let tasks = self.list_tasks(graph_id).await?;
        Ok(tasks.into_iter().filter(|t| names.iter().any(|n| task_named(n, t))).collect())
    }

    /// The facts ([`Task::knowledge`]) that the completed tasks of graph `graph_id` reported, task by
    /// task in index order: what a worker hands on to the graph's later tasks, read again every few
    /// seconds while it runs. The default reads the whole graph; stores read only the completed tasks
    /// that reported some.
    async fn graph_facts(&self, graph_id: Id) -> StoreResult<Vec<crate::wire::Fact>> {
        let tasks = self.list_tasks(graph_id).await?;
        Ok(tasks
            .into_iter()
            .filter(|t| t.status == crate::wire::TaskStatus::Completed)
            .flat_map(|t| t.knowledge)
            .collect())
    }

    /// The daily and monthly budgets on UTC day `day` (`2026-12-02`) and month `month` (`2026-12`).
    async fn budget(&self, day: &str, month: &str) -> StoreResult<crate::wire::BudgetStatus>;
    /// The workers' heartbeat rows, most recent first.
    async fn list_workers(&self) -> StoreResult<Vec<crate::wire::WorkerInfo>>;

    // ---- the event log ----
    /// Reads events, oldest first.
    async fn read_events(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>>;
    /// The highest seq appended (0 when empty).
    async fn last_seq(&self) -> StoreResult<u64>;
    /// Backend, location, schema version, event count and size.
    async fn status(&self) -> StoreResult<StoreStatus>;
    /// Retention: deletes the events of archived agents appended before `before`; returns how many.
    /// Events of live agents, and events without an agent, are kept. Seqs are never reused.
    async fn prune_events(&self, before: crate::wire::Timestamp) -> StoreResult<u64>;
    /// Every event with `seq > since`: the stored ones, then live ones as they are appended — by
    /// this process or any other sharing the database — with no gap and no duplicate.
    fn subscribe(&self, since: u64) -> EventStream;

    /// The local files this store keeps open through its database engine (a SQLite database and its
    /// `-wal`, `-shm` and `-journal` files), absolute. The rest of orch must never open them itself:
    /// closing any descriptor of such a file drops every POSIX lock the process holds on it, the
    /// engine's included, and another process may then rebuild the shared-memory file under this one.
    /// Empty (the default) for stores that keep no files of their own.
    fn local_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// Whether other processes may write to this store (a database file or server), so that a runner
    /// must follow the log for what they ask of its runs (`InterruptRequested`). `true` unless the store
    /// lives only in this process, as the in-memory one does.
    fn shared_with_other_processes(&self) -> bool {
        true
    }

    /// Like [`Store::subscribe`] restricted to the events matching `filter` (its seq range and limit
    /// are ignored), for a follower that only cares about what *other* processes append (a runner
    /// watching for interrupt requests): a store may wake it less often, e.g. on its poll of the
    /// database rather than on each of this process's commits, and need not decode the events that do
    /// not match. It may deliver this process's events too, and later than `subscribe` would.
    fn subscribe_foreign(&self, since: u64, filter: EventQuery) -> EventStream {
        use futures::StreamExt as _;
        self.subscribe(since)
            .filter(move |r| futures::future::ready(r.as_ref().is_err() || r.as_ref().is_ok_and(|r| filter.matches(r))))
            .boxed()
    }
}

/// Whether `name` names `task`: its key, its id, or its index (a number).
pub fn task_named(name: &str, task: &Task) -> bool {
    task.key == name
        || name.parse::<Id>().is_ok_and(|id| id == task.id)
        || name.parse::<u32>().is_ok_and(|i| i == task.index)
}
