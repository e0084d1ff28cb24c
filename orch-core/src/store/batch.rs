//! The one write path: a [`Batch`] of entity [`Change`]s and the events that record them, committed
//! in one transaction by [`Store::commit`](super::Store::commit).
//!
//! Every state change of the engine goes through here, so after a crash at any instant the entity
//! tables and the event log agree: a row changes exactly when its event is appended.

use serde_json::Value;

use super::StepCommit;
use crate::wire::{
    Agent, AgentStatus, ChatMessage, Event, EventKeys, Id, Message, NewEvent, Orchestrator, Plan, Prompt, RunLease,
    SystemLog, Task, TaskGraph, Usage, WorkflowRecord,
};
use crate::wire::{BudgetScope, GraphStatus, Reservation, TaskClaim, Timestamp, WorkerInfo};

/// The serialized executor state of an agent and its provider session id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavedState {
    /// Loop state (`None` clears it).
    pub state: Option<Value>,
    /// Provider session id.
    pub session_id: Option<String>,
}

/// One change to an entity. Applied in order inside a [`Batch`]; if one fails, none is stored.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Change {
    /// Inserts an orchestrator.
    CreateOrchestrator(Box<Orchestrator>),
    /// Replaces an orchestrator's mutable fields (session, prompt, working dir, metadata, archived). Its
    /// status and usage are those of its own agent (the agent named `orchestrator` under it), stored
    /// once there; the orchestrator's row keeps them only for an orchestrator without that agent.
    UpdateOrchestrator(Box<Orchestrator>),
    /// Inserts an agent. Fails with [`StoreError::NameTaken`](super::StoreError::NameTaken) if a live
    /// agent of the same orchestrator has the name.
    CreateAgent(Box<Agent>),
    /// Sets an agent's status.
    SetAgentStatus {
        /// The agent.
        id: Id,
        /// The new status.
        status: AgentStatus,
    },
    /// Saves the executor's loop state and the provider session id.
    SaveAgentState {
        /// The agent.
        id: Id,
        /// What to save.
        state: SavedState,
    },
    /// Adds usage and cost to an agent (an increment, never read-modify-write).
    AddAgentUsage {
        /// The agent.
        id: Id,
        /// Tokens to add.
        usage: Usage,
        /// USD to add.
        cost_usd: f64,
    },
    /// Records the context an agent's last model call used, and its model's window.
    SetAgentContext {
        /// The agent.
        id: Id,
        /// Tokens used.
        used: u64,
        /// The window, when known.
        window: Option<u64>,
    },
    /// Replaces an agent's metadata.
    SetAgentMetadata {
        /// The agent.
        id: Id,
        /// The new metadata.
        metadata: Value,
    },
    /// Archives (soft-deletes) an agent; its name becomes free.
    ArchiveAgent {
        /// The agent.
        id: Id,
    },
    /// Appends messages to an agent's conversation, in order.
    AppendMessages {
        /// The agent.
        agent_id: Id,
        /// The messages.
        messages: Vec<Message>,
    },
    /// Forgets an agent's conversation (a fresh session, or after compaction).
    ClearConversation {
        /// The agent.
        agent_id: Id,
    },
    /// Inserts a prompt row.
    InsertPrompt(Box<Prompt>),
    /// Inserts a chat message.
    InsertChat(Box<ChatMessage>),
    /// Inserts a system log row.
    InsertSystemLog(Box<SystemLog>),
    /// Inserts or replaces a workflow record.
    UpsertWorkflow(Box<WorkflowRecord>),
    /// Compare-and-swap of the run that holds an agent: succeeds only if the agent is held by run
    /// `expect` (`None`: by no run), then sets the holder to `lease` (`None`: releases it). Claiming
    /// (`None` → lease), renewing or taking over a stale claim (`Some(old)` → lease) and releasing
    /// (`Some(own)` → `None`) are all this one change. Fails with
    /// [`StoreError::RunConflict`](super::StoreError::RunConflict) naming the current holder.
    SwapRun {
        /// The agent.
        agent_id: Id,
        /// The run expected to hold it now.
        expect: Option<Id>,
        /// The new holder.
        lease: Option<RunLease>,
    },
    /// Releases the agent if run `run_id` holds it, and does nothing otherwise (another run took the
    /// claim over, or it was released already; a missing agent is no error either). A run's last step
    /// carries it, so that the run's end and its release are one commit: the end is recorded whoever
    /// holds the agent now, as it would be before a separate release.
    ReleaseRun {
        /// The agent.
        agent_id: Id,
        /// The run whose claim ends.
        run_id: Id,
    },
    /// [`Change::SwapRun`] for a workflow run: succeeds only if the workflow is held by run `expect`
    /// (`None`: by no run), then sets its holder to `lease`. Fails with
    /// [`StoreError::WorkflowRunConflict`](super::StoreError::WorkflowRunConflict) naming the holder.
    SwapWorkflowRun {
        /// The workflow.
        workflow_id: Id,
        /// The run expected to hold it now.
        expect: Option<Id>,
        /// The new holder.
        lease: Option<RunLease>,
    },
    /// Inserts a new plan version. Fails with [`StoreError::Duplicate`](super::StoreError::Duplicate) when
    /// the plan has that version already (two revisions made at once: the second is refused, not lost).
    InsertPlan(Box<Plan>),
    /// Inserts a plan version, or replaces the row of the same id and version (status changes).
    UpsertPlan(Box<Plan>),
    /// Inserts a task graph, or replaces the one of the same id.
    UpsertGraph(Box<TaskGraph>),
    /// Inserts tasks, in order. Fails with [`StoreError::Duplicate`](super::StoreError::Duplicate) when
    /// a task's id is taken or its graph already has a task of its key.
    InsertTasks(Vec<Task>),
    /// Writes a task's progress: status, attempt, model, claim, lease, not-before, agent, cost, output,
    /// error and times (its definition is fixed at insert and not changed). With `fence`, only if the
    /// stored task is still at attempt `fence`, else it fails with
    /// [`StoreError::Fenced`](super::StoreError::Fenced): a worker whose lease was taken over cannot
    /// overwrite its successor. Fails with `NotFound` for a missing task.
    UpdateTask {
        /// The task as it is to be.
        task: Box<Task>,
        /// The attempt the stored task must be at.
        fence: Option<u32>,
    },
    /// Claims tasks for a worker, as [`TaskClaim`] describes; a `TaskUpdated` event per claimed task is
    /// appended after the batch's own events. Claims nothing (and appends nothing) when no task is due.
    /// With a [`starter`](TaskClaim::start), the attempts it starts are written in the same commit (each
    /// its agent, created holding its run's lease, and the task's new state), as [`start_claimed`] says.
    ClaimTasks(Box<TaskClaim>),
    /// Ends an attempt, or changes a task a person resolved: writes the task's progress, fenced by
    /// `fence` as [`Change::UpdateTask`] is. When its new status releases dependents (completed or
    /// skipped), each pending dependent whose dependencies have all been released becomes ready, with a
    /// `TaskUpdated` event. When the graph then has no task left pending, ready, running or blocked, a
    /// running graph ends (completed, or failed if a task failed), with a `GraphUpdated` event.
    FinishTask {
        /// The task as it is to be.
        task: Box<Task>,
        /// The attempt the stored task must be at.
        fence: u32,
    },
    /// Records a worker's heartbeat (inserts its row, or updates it).
    Heartbeat(Box<WorkerInfo>),
    /// Removes a worker's row (it stopped cleanly).
    RemoveWorker {
        /// The worker.
        id: String,
    },
    /// Removes the rows of workers and servers that have not beaten since `silent_before`: processes
    /// long gone (killed, or on a machine that went away), whose tasks were taken over long ago.
    ForgetWorkers {
        /// Rows whose last heartbeat is older are removed.
        silent_before: Timestamp,
    },
    /// Sets a graph's status and error if its status is one of `from` (stamping its start or end), with
    /// a `GraphUpdated` event of the row as stored; changes nothing, and appends nothing, otherwise.
    SetGraphStatus {
        /// The graph.
        id: Id,
        /// The new status.
        status: GraphStatus,
        /// The new error (`None` clears it).
        error: Option<String>,
        /// The statuses it may change from.
        from: Vec<GraphStatus>,
    },
    /// Counts tasks added to a graph: adds `tasks` to its total and raises its waves to at least `waves`,
    /// with a `GraphUpdated` event of the row as stored. Nothing else of the row is written, so a change
    /// made meanwhile by another writer (its status, limit or spending) is kept. Fails with
    /// [`StoreError::GraphEnded`](super::StoreError::GraphEnded) when the graph has ended (its last task
    /// may have finished since the caller read it), `NotFound` for a missing graph.
    GrowGraph {
        /// The graph.
        id: Id,
        /// Tasks added.
        tasks: u32,
        /// The waves it has at least.
        waves: u32,
    },
    /// Adds a task to a graph that has not ended, at the graph's next position: the task's `index` is
    /// replaced by the number of tasks the graph has when the change is applied (so tasks added at the
    /// same time, by any process, get distinct positions in the order they commit), and an empty `key`
    /// by [`Task::default_key`](crate::wire::Task::default_key) of that position. Its status is
    /// `ready` when each of its dependencies has completed or been skipped when it is added, else
    /// `pending` (whatever it says): a dependency finishing at the same time in another transaction is
    /// either seen finished here or releases it when it finishes. The graph's total
    /// grows by one and its waves to at least the task's, as [`Change::GrowGraph`] does; the task's
    /// dependency edges are stored with it. Records a `TaskUpdated` event of the task as stored, then
    /// a `GraphUpdated` of the graph's row (adds to one graph that a store commits in one transaction
    /// may share one, recorded with the last of them). Fails like `GrowGraph` for an ended or missing graph, and
    /// with [`StoreError::Duplicate`](super::StoreError::Duplicate) when the graph has a task of its
    /// key or its id is taken; nothing is written then.
    AddTask(Box<Task>),
    /// Sets (or with `None` removes) a graph's USD limit, with a `GraphUpdated` event.
    SetGraphBudget {
        /// The graph.
        id: Id,
        /// The limit.
        limit_usd: Option<f64>,
    },
    /// Reserves budget before a model call: fails with
    /// [`StoreError::BudgetExhausted`](super::StoreError::BudgetExhausted), reserving nothing, when the
    /// day's, the month's or the graph's spending plus reservations plus this one would pass its limit.
    ReserveBudget(Box<Reservation>),
    /// Settles a reservation with the real cost: the reservation is released and `actual` is spent on
    /// its day, its month and its graph (the graph's `cost_usd`).
    SettleBudget {
        /// The reservation taken before the call.
        reservation: Box<Reservation>,
        /// What the call cost, in USD.
        actual: f64,
    },
    /// Sets (or with `None` removes) the daily or monthly USD limit.
    SetBudgetLimit {
        /// Which limit.
        scope: BudgetScope,
        /// The limit.
        limit_usd: Option<f64>,
    },
}

/// How soon a committed [`Batch`] must be on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// On stable storage when the commit returns (survives a power cut). The default.
    #[default]
    Full,
    /// Visible to every reader when the commit returns, but on stable storage only with the next
    /// [`Durability::Full`] commit (or the store's next checkpoint). For records that describe the
    /// running processes themselves, such as run leases: a power cut that loses one also ends the
    /// processes it describes, so the loss is harmless, and the sync it saves is most of the cost of
    /// claiming an agent. Stores that cannot relax durability commit such batches fully.
    Relaxed,
}

/// Entity changes and the events that record them, stored atomically by
/// [`Store::commit`](super::Store::commit): all of it, or none of it. Changes apply in order, then
/// the events are appended with consecutive seqs.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// How soon it must be on stable storage.
    pub durability: Durability,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch of events only.
    pub fn events(events: Vec<NewEvent>) -> Self {
        Self { changes: Vec::new(), events, durability: Durability::Full }
    }

    /// The batch with [`Durability::Relaxed`].
    pub fn relaxed(mut self) -> Self {
        self.durability = Durability::Relaxed;
        self
    }

    /// Adds a change.
    pub fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }

    /// Adds an event.
    pub fn event(mut self, keys: EventKeys, event: Event) -> Self {
        self.events.push(NewEvent::new(keys, event));
        self
    }

    /// Adds a change in place.
    pub fn push_change(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Adds an event in place.
    pub fn push_event(&mut self, keys: EventKeys, event: Event) {
        self.events.push(NewEvent::new(keys, event));
    }

    /// The batch with the rows that are projections of its events added: a `system_logs` row for each
    /// `SystemLog` event, so a log written by any part of the engine is listed with the others. Every
    /// store calls this at the start of [`Store::commit`](super::Store::commit).
    pub fn projected(mut self) -> Self {
        for e in &self.events {
            if let Event::SystemLog { level, message, metadata } = &e.event {
                self.changes.push(Change::InsertSystemLog(Box::new(SystemLog {
                    id: crate::wire::new_id(),
                    level: *level,
                    message: message.clone(),
                    summary: None,
                    file_path: None,
                    workflow_id: e.keys.workflow_id,
                    workflow_step: e.keys.step.clone(),
                    metadata: metadata.clone(),
                    created_at: crate::wire::now(),
                })));
            }
        }
        self
    }

    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.events.is_empty()
    }
}

impl From<StepCommit> for Batch {
    fn from(step: StepCommit) -> Self {
        let id = step.agent_id;
        let mut b = Batch::new();
        if let Some(status) = step.status {
            b.push_change(Change::SetAgentStatus { id, status });
        }
        // Always present (zero when the step used nothing): a step of a missing agent fails with
        // NotFound instead of storing its events, and stores write the agent's fields in one statement.
        let (usage, cost_usd) = step.usage.unwrap_or_default();
        b.push_change(Change::AddAgentUsage { id, usage, cost_usd });
        if let Some(state) = step.state {
            b.push_change(Change::SaveAgentState { id, state });
        }
        if let Some((used, window)) = step.context {
            b.push_change(Change::SetAgentContext { id, used, window });
        }
        if !step.messages.is_empty() {
            b.push_change(Change::AppendMessages { agent_id: id, messages: step.messages });
        }
        b.changes.extend(step.changes);
        b.events = step.events;
        b
    }
}

/// What a store does with a claim's starter: given the events the claim generated (a `TaskUpdated`
/// per claimed task, in claim order), the agents to insert, the tasks to write (each fenced at its
/// claimed attempt), and the events to append instead. A task the starter leaves keeps its claim's
/// event; a started one gets its agent's `AgentCreated` then its own `TaskUpdated`. One rule for every
/// store.
pub fn start_claimed(start: &crate::wire::Starter, claimed: Vec<NewEvent>) -> (Vec<Agent>, Vec<Task>, Vec<NewEvent>) {
    let (mut agents, mut tasks, mut events) = (Vec::new(), Vec::new(), Vec::with_capacity(claimed.len() * 2));
    for e in claimed {
        let started = match &e.event {
            Event::TaskUpdated { task } => {
                start.start(task).filter(|s| s.task.id == task.id && s.task.attempt == task.attempt)
            }
            _ => None,
        };
        match started {
            Some(s) => {
                events.push(s.created);
                events.push(NewEvent::new(e.keys, Event::TaskUpdated { task: s.task.clone() }));
                agents.push(*s.agent);
                tasks.push(*s.task);
            }
            None => events.push(e),
        }
    }
    (agents, tasks, events)
}
