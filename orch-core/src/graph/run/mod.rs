//! Running task graphs: workers claim due tasks from the store and run each as an agent run on the
//! shared [`Supervisor`]; people steer graphs (start, pause, resume, cancel) and resolve checkpoints.
//!
//! Nothing but the store coordinates: a claim is one store change (SQLite's one writer, PostgreSQL's
//! `FOR UPDATE SKIP LOCKED`), every write of an attempt is fenced by its attempt number, a task's
//! dependents are released in the commit that completes it, and workers beat in a table of their own so
//! that a dead worker's task is taken over by the next claim anywhere.

mod attempt;
mod budget;
mod external;
pub mod isolate;
mod joined;
mod launch;
mod prompt;
pub mod qa;
mod rerun;
mod routing;
mod stuck;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use external::{ClaimedTask, ExternalClaim, ExternalEnd, MAX_LEASE, MIN_LEASE};
pub use prompt::{fact_concerns, read_knowledge, task_prompt};
pub use routing::{Route, Router, provider_of};
pub use stuck::{Stuck, StuckSettings};
pub use worker::{FORGET_SILENT_AFTER, Worker, WorkerReport, forget_gone_workers, this_process};

use super::GraphError;
use crate::config::GraphsConfig;
use crate::executor::Supervisor;
use crate::store::{Batch, Change, Store, StoreError};
use crate::wire::{BudgetScope, Event, EventKeys, GraphStatus, Id, Task, TaskGraph, TaskStatus, now};

/// How graphs are run.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSettings {
    /// Tasks a worker runs at once.
    pub concurrency: u32,
    /// Failed attempts before a task raises a checkpoint.
    pub max_attempts: u32,
    /// Retry backoff: `retry_base × 2^(failures-1)`, at most `retry_cap`.
    pub retry_base: Duration,
    /// The longest backoff.
    pub retry_cap: Duration,
    /// Stuck detection.
    pub stuck: StuckSettings,
    /// How long an attempt may run at most (its lease's deadline), whatever its worker's health.
    pub deadline: Duration,
    /// How often a worker beats.
    pub heartbeat: Duration,
    /// A worker silent this long is gone: its tasks are taken over.
    pub stale_after: Duration,
    /// How often an idle worker looks for work when nothing woke it.
    pub poll: Duration,
    /// How long a provider that failed with a transient error is avoided.
    pub provider_down_for: Duration,
    /// Each attempt works in a git worktree of its own, on branch `orch/graph-<graph>-<task key>`;
    /// a completed task's branch is committed and merged into the main tree (see [`isolate`]).
    pub worktree: bool,
    /// The model of the QA pass: completed tasks with verification criteria that are not commands are
    /// reviewed by an agent on it (see [`qa`]); `None`: no review.
    pub qa_model: Option<String>,
}

impl Default for GraphSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            max_attempts: 3,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            stuck: StuckSettings::default(),
            deadline: Duration::from_secs(2 * 3600),
            heartbeat: Duration::from_secs(1),
            stale_after: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            provider_down_for: Duration::from_secs(30),
            worktree: false,
            qa_model: None,
        }
    }
}

impl GraphSettings {
    /// The settings of `[graphs]` over the defaults.
    pub fn from_config(c: &GraphsConfig) -> Self {
        let mut s = Self::default();
        if let Some(n) = c.concurrency.filter(|n| *n > 0) {
            s.concurrency = n;
        }
        if let Some(n) = c.max_attempts.filter(|n| *n > 0) {
            s.max_attempts = n;
        }
        let secs = |v: Option<f64>| v.filter(|v| v.is_finite() && *v > 0.0).map(Duration::from_secs_f64);
        if let Some(d) = secs(c.retry_base_secs) {
            s.retry_base = d;
        }
        if let Some(d) = secs(c.stuck_no_output_secs) {
            s.stuck.no_output = d;
        }
        if let Some(d) = secs(c.stuck_no_tool_secs) {
            s.stuck.no_tool = d;
        }
        s.worktree = c.worktree.unwrap_or(false);
        s.qa_model = c.qa_model.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(str::to_string);
        s
    }

    /// The wait before the retry that follows `failures` failed attempts.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        self.retry_base.saturating_mul(1u32 << exp).min(self.retry_cap)
    }
}

/// How a person resolves a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Run the task again (its failures reset), with the guidance appended to its prompt.
    Retry,
    /// Skip it: its dependents may run.
    Skip,
    /// Fail it for good: the tasks depending on it are cancelled.
    Fail,
}

impl Resolution {
    /// Reads `retry`, `skip` or `fail`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "retry" => Some(Self::Retry),
            "skip" => Some(Self::Skip),
            "fail" => Some(Self::Fail),
            _ => None,
        }
    }
}

/// Runs task graphs: their workers and the operations people use on them.
#[derive(Clone)]
pub struct GraphRunner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) supervisor: Supervisor,
    pub(crate) working_dir: PathBuf,
    pub(crate) router: Arc<Router>,
    pub(crate) settings: GraphSettings,
    /// Budget warnings given by this process (one per graph, day or month).
    pub(crate) warned: Arc<std::sync::Mutex<budget::Warned>>,
    /// What this runner's own changes tell its workers at once (they hear other processes' changes
    /// from the log; a process's own writes do not come back to it that way).
    pub(crate) nudges: tokio::sync::broadcast::Sender<Nudge>,
}

/// A change made through a runner that its workers act on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nudge {
    /// Tasks may have become due: claim.
    Due,
    /// The graph was cancelled: stop its attempts.
    Cancelled(Id),
}

impl std::fmt::Debug for GraphRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphRunner").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn task_event(t: &Task) -> (EventKeys, Event) {
    (EventKeys::default(), Event::TaskUpdated { task: Box::new(t.clone()) })
}

impl GraphRunner {
    /// A runner of graphs whose tasks run on `supervisor` in `working_dir`, routed by `router`.
    pub fn new(
        supervisor: Supervisor,
        working_dir: impl Into<PathBuf>,
        router: Router,
        settings: GraphSettings,
    ) -> Self {
        let store = supervisor.runner().store().clone();
        Self {
            store,
            supervisor,
            working_dir: working_dir.into(),
            router: Arc::new(router),
            settings,
            warned: Arc::default(),
            nudges: tokio::sync::broadcast::channel(64).0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &GraphSettings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn graph(&self, id: Id) -> Result<TaskGraph, GraphError> {
        self.store.get_graph(id).await?.ok_or(GraphError::GraphNotFound(id))
    }

    /// Starts (or resumes) graph `id`: a pending, paused or failed graph becomes running, so workers
    /// claim its tasks. A running graph is left as it is. With `budget_usd`, its limit is set first.
    pub async fn start(&self, id: Id, budget_usd: Option<f64>) -> Result<TaskGraph, GraphError> {
        let g = self.graph(id).await?;
        if matches!(g.status, GraphStatus::Completed | GraphStatus::Cancelled) {
            return Err(GraphError::GraphEnded { id, status: g.status.as_str() });
        }
        let mut batch = Batch::new();
        if let Some(limit) = budget_usd {
            if !limit.is_finite() || limit < 0.0 {
                return Err(GraphError::Usage(format!("the budget must be a positive number of USD, not {limit}")));
            }
            batch.push_change(Change::SetGraphBudget { id, limit_usd: Some(limit) });
        }
        batch.push_change(Change::SetGraphStatus {
            id,
            status: GraphStatus::Running,
            error: None,
            from: vec![GraphStatus::Pending, GraphStatus::Paused, GraphStatus::Failed],
        });
        self.store.commit(batch).await?;
        self.nudge(Nudge::Due);
        self.graph(id).await
    }

    /// The prompt of `task`'s next attempt: its dependencies (as stored now) and `facts` handed on.
    /// `read`: the tasks' dependencies as read together for a claim; a task not there reads its own.
    pub(crate) async fn prompt_of(
        &self,
        task: &Task,
        facts: &[crate::wire::Fact],
        read: Option<&HashMap<Id, Vec<Task>>>,
    ) -> Result<String, StoreError> {
        if let Some(deps) = read.and_then(|r| r.get(&task.id)) {
            return Ok(prompt::task_prompt(task, deps, facts, task.error.as_deref()));
        }
        let mut deps = Vec::with_capacity(task.depends_on.len());
        for d in &task.depends_on {
            if let Some(t) = self.store.get_task(*d).await? {
                deps.push(t);
            }
        }
        Ok(prompt::task_prompt(task, &deps, facts, task.error.as_deref()))
    }

    /// Tells this runner's workers (no receiver is fine: none runs here).
    pub(crate) fn nudge(&self, n: Nudge) {
        let _ = self.nudges.send(n);
    }

    /// Adds a task to graph `graph_id` (see [`TaskGraphs::add_task`](crate::graph::TaskGraphs::add_task));
    /// this runner's workers claim it at once when it is ready.
    pub async fn add_task(&self, graph_id: Id, new: crate::graph::NewTask) -> Result<Task, GraphError> {
        let task = crate::graph::TaskGraphs::new(self.store.clone()).add_task(graph_id, new).await?;
        self.nudge(Nudge::Due);
        Ok(task)
    }

    /// Pauses a running graph: workers claim none of its tasks until it is resumed; running attempts
    /// finish.
    pub async fn pause(&self, id: Id, reason: &str) -> Result<TaskGraph, GraphError> {
        let change = Change::SetGraphStatus {
            id,
            status: GraphStatus::Paused,
            error: Some(reason.to_string()),
            from: vec![GraphStatus::Running, GraphStatus::Pending],
        };
        self.store.commit(Batch::new().change(change)).await?;
        self.graph(id).await
    }

    /// Cancels a graph that has not ended: its open tasks are cancelled; workers interrupt the running
    /// ones (they see the graph's `GraphUpdated` event) and record them cancelled.
    pub async fn cancel(&self, id: Id) -> Result<TaskGraph, GraphError> {
        // A task claimed between the read and the commit fails the commit's fence: read again (a few
        // times; claims of the graph stop once it is cancelled).
        let mut tries = 0;
        loop {
            tries += 1;
            match self.cancel_once(id).await {
                Err(GraphError::Store(StoreError::Fenced { .. })) if tries < 5 => continue,
                other => return other,
            }
        }
    }

    async fn cancel_once(&self, id: Id) -> Result<TaskGraph, GraphError> {
        let g = self.graph(id).await?;
        if g.status.is_final() {
            return Err(GraphError::GraphEnded { id, status: g.status.as_str() });
        }
        let mut batch = Batch::new().change(Change::SetGraphStatus {
            id,
            status: GraphStatus::Cancelled,
            error: Some("cancelled".into()),
            from: vec![GraphStatus::Pending, GraphStatus::Running, GraphStatus::Paused],
        });
        let at = now();
        // By id: the order in which every transaction that locks several pending tasks locks them (a
        // finished task's dependents are locked so), so this one never waits for one that waits for it.
        let mut tasks = self.store.list_tasks(id).await?;
        tasks.sort_by_key(|t| t.id);
        for mut t in tasks {
            if matches!(t.status, TaskStatus::Pending | TaskStatus::Ready | TaskStatus::Blocked) {
                let fence = t.attempt;
                t.status = TaskStatus::Cancelled;
                t.completed_at = Some(at);
                t.updated_at = at;
                let (k, e) = task_event(&t);
                batch.push_change(Change::UpdateTask { task: Box::new(t), fence: Some(fence) });
                batch.push_event(k, e);
            }
        }
        self.store.commit(batch).await?;
        self.nudge(Nudge::Cancelled(id));
        self.graph(id).await
    }

    /// Sets graph `id`'s USD limit (`None` removes it).
    pub async fn set_graph_budget(&self, id: Id, limit_usd: Option<f64>) -> Result<TaskGraph, GraphError> {
        self.store.commit(Batch::new().change(Change::SetGraphBudget { id, limit_usd })).await?;
        self.nudge(Nudge::Due);
        self.graph(id).await
    }

    /// Sets the daily or monthly USD limit (`None` removes it).
    pub async fn set_limit(&self, scope: BudgetScope, limit_usd: Option<f64>) -> Result<(), GraphError> {
        if let Some(l) = limit_usd
            && (!l.is_finite() || l < 0.0)
        {
            return Err(GraphError::Usage(format!(
                "a {} limit must be a positive number of USD, not {l}",
                scope.as_str()
            )));
        }
        self.store.commit(Batch::new().change(Change::SetBudgetLimit { scope, limit_usd })).await?;
        self.nudge(Nudge::Due);
        Ok(())
    }

    /// The open checkpoints: blocked tasks waiting for a person, of graph `graph_id` or of every graph
    /// not ended (the latest 200 graphs).
    pub async fn checkpoints(&self, graph_id: Option<Id>) -> Result<Vec<Task>, GraphError> {
        let graphs = match graph_id {
            Some(id) => vec![self.graph(id).await?],
            None => self.store.list_graphs(200).await?.into_iter().filter(|g| !g.status.is_final()).collect(),
        };
        let mut out = Vec::new();
        for g in graphs {
            out.extend(
                self.store
                    .list_tasks(g.id)
                    .await?
                    .into_iter()
                    .filter(|t| t.status == TaskStatus::Blocked && t.checkpoint.is_some()),
            );
        }
        Ok(out)
    }

    /// Resolves the checkpoint of task `task_id` (a blocked task): retry it with `guidance` appended to
    /// its prompt, skip it, or fail it for good (its dependents, transitively, are cancelled).
    pub async fn resolve(&self, task_id: Id, action: Resolution, guidance: Option<&str>) -> Result<Task, GraphError> {
        let mut task = self.store.get_task(task_id).await?.ok_or(GraphError::TaskNotFound(task_id))?;
        if task.status != TaskStatus::Blocked {
            return Err(GraphError::TaskState(format!(
                "task {} ({}) is {}, not waiting for a person: there is no checkpoint to resolve",
                task.id,
                task.key,
                task.status.as_str()
            )));
        }
        let at = now();
        let fence = task.attempt;
        let resolution = match action {
            Resolution::Retry => "retry",
            Resolution::Skip => "skip",
            Resolution::Fail => "fail",
        };
        let question = task.checkpoint.take().unwrap_or_default();
        task.updated_at = at;
        task.claimed_by = None;
        task.lease_until = None;
        let mut extra: Vec<Task> = Vec::new();
        match action {
            Resolution::Retry => {
                task.status = TaskStatus::Ready;
                task.failures = 0;
                task.not_before = None;
                if let Some(g) = guidance.map(str::trim).filter(|g| !g.is_empty()) {
                    task.guidance.push(g.to_string());
                }
            }
            Resolution::Skip => {
                task.status = TaskStatus::Skipped;
                task.completed_at = Some(at);
            }
            Resolution::Fail => {
                task.status = TaskStatus::Failed;
                task.completed_at = Some(at);
                extra = self.dependents_to_cancel(&task, at).await?;
            }
        }
        let log = Event::SystemLog {
            level: crate::wire::LogLevel::Info,
            message: format!("Checkpoint of task {} resolved: {resolution}", task.key),
            metadata: serde_json::json!({
                "event": "checkpoint_resolved", "graph_id": task.graph_id, "task_id": task.id,
                "action": resolution, "guidance": guidance, "question": question,
            }),
        };
        // The dependents first, so that the graph-end check of FinishTask sees them ended; by id, the
        // order in which every transaction that locks several pending tasks locks them.
        extra.sort_by_key(|t| t.id);
        let mut batch = Batch::new();
        for t in &extra {
            let (k, e) = task_event(t);
            batch.push_change(Change::UpdateTask { task: Box::new(t.clone()), fence: Some(t.attempt) });
            batch.push_event(k, e);
        }
        let (k, e) = task_event(&task);
        batch.push_event(k, e);
        batch.push_event(EventKeys::default(), log);
        batch.push_change(Change::FinishTask { task: Box::new(task.clone()), fence });
        self.store.commit(batch).await?;
        self.nudge(Nudge::Due);
        Ok(task)
    }

    /// The pending tasks that can never run once `failed` failed: its dependents, transitively,
    /// cancelled as of `at`.
    async fn dependents_to_cancel(&self, failed: &Task, at: crate::wire::Timestamp) -> Result<Vec<Task>, GraphError> {
        let tasks = self.store.list_tasks(failed.graph_id).await?;
        let mut doomed = vec![failed.id];
        let mut out: Vec<Task> = Vec::new();
        let mut changed = true;
        while changed {
            changed = false;
            for t in &tasks {
                if t.status == TaskStatus::Pending
                    && !doomed.contains(&t.id)
                    && t.depends_on.iter().any(|d| doomed.contains(d))
                {
                    doomed.push(t.id);
                    let mut c = t.clone();
                    c.status = TaskStatus::Cancelled;
                    c.error = Some(format!("a task it depends on failed ({})", failed.key));
                    c.completed_at = Some(at);
                    c.updated_at = at;
                    out.push(c);
                    changed = true;
                }
            }
        }
        Ok(out)
    }

    /// A worker of this runner: `graph` limits it to one graph (as `orch graph run` does).
    pub fn worker(&self, graph: Option<Id>) -> Worker {
        Worker::new(self.clone(), graph)
    }
}
