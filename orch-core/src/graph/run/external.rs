//! Tasks run by agents outside orch's workers: another program (Claude Code, Codex, a script) claims
//! tasks over REST or MCP, works on them wherever it runs, keeps its lease alive, and reports the result.
//!
//! An external claim is an ordinary claim of the store's queue, so external agents and `orch worker`s
//! share one queue without ever running a task twice. What differs is liveness: orch's workers beat
//! every second, an external agent only when it asks. So an external worker's heartbeat row is
//! stamped with the end of its lease (it is alive until then, as far as other workers can tell), and
//! the task's lease deadline is that same time: a heartbeat extends both; an agent that stops asking
//! loses its tasks when the lease runs out, and any worker claims them again (a new attempt). Every
//! report is fenced by the attempt it was claimed at, so a late report of a lost lease changes nothing.
//!
//! A completed task releases its dependents as an attempt of orch's own does; a failure counts
//! towards the task's retries (with backoff) and raises a checkpoint when they are exhausted. The cost
//! an agent reports is spent on the day, the month and the graph, in the same commit.

use std::time::Duration;

use serde::Serialize;

use super::GraphRunner;
use super::attempt::End;
use crate::graph::GraphError;
use crate::store::{Batch, Change};
use crate::wire::{Fact, Reservation, Task, TaskClaim, TaskStatus, WorkerInfo, now};
use crate::wire::{Id, Timestamp};

/// The shortest lease an external agent may ask for.
pub const MIN_LEASE: Duration = Duration::from_secs(5);
/// The longest lease an external agent may ask for.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);
/// The most tasks one claim takes.
const MAX_CLAIM: u32 = 100;
/// The longest worker name.
const MAX_WORKER_CHARS: usize = 200;

/// An external agent's claim.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalClaim {
    /// The agent's name as a worker (its claims carry it; reports must give it again).
    pub worker: String,
    /// Only tasks of this graph.
    pub graph_id: Option<Id>,
    /// At most this many tasks (1 to 100).
    pub limit: u32,
    /// How long the claimed attempts are the agent's without a heartbeat.
    pub lease: Duration,
}

/// A task claimed by an external agent: the task as stored, and the prompt orch's own agent would
/// have been given (its description, its dependencies' outputs, the graph's knowledge that concerns
/// it, the guidance of a person and the last attempt's error).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimedTask {
    /// The task, running at the attempt the reports must name.
    pub task: Task,
    /// What to do.
    pub prompt: String,
}

/// How an external agent's attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExternalEnd {
    /// Done: its output, the facts it learned for later tasks, and what it cost.
    Completed {
        /// The result (kept up to the output limit of a task).
        output: String,
        /// Facts for the graph's later tasks.
        knowledge: Vec<Fact>,
        /// USD the attempt cost.
        cost_usd: f64,
    },
    /// Failed: counted towards the task's retries unless `retry` is false, which raises a checkpoint at
    /// once (a person decides).
    Failed {
        /// What went wrong.
        error: String,
        /// Whether another attempt may help.
        retry: bool,
        /// USD the attempt cost.
        cost_usd: f64,
    },
    /// Given back without a failure (the agent stops): the task is ready again at once.
    Released,
}

fn check_worker(worker: &str) -> Result<&str, GraphError> {
    let w = worker.trim();
    if w.is_empty() {
        return Err(GraphError::Usage("the worker name is empty".into()));
    }
    if w.chars().count() > MAX_WORKER_CHARS || w.chars().any(char::is_control) {
        return Err(GraphError::Usage(format!(
            "the worker name must be at most {MAX_WORKER_CHARS} characters with no control characters"
        )));
    }
    Ok(w)
}

fn check_cost(cost: f64) -> Result<f64, GraphError> {
    if cost.is_finite() && cost >= 0.0 {
        Ok(cost)
    } else {
        Err(GraphError::Usage(format!("cost_usd {cost} is not a number of USD (0 or more)")))
    }
}

fn until(at: Timestamp, lease: Duration) -> Result<Timestamp, GraphError> {
    if !(MIN_LEASE..=MAX_LEASE).contains(&lease) {
        return Err(GraphError::Usage(format!(
            "a lease is {} to {} seconds, not {}",
            MIN_LEASE.as_secs(),
            MAX_LEASE.as_secs(),
            lease.as_secs_f64()
        )));
    }
    chrono::Duration::from_std(lease).map(|d| at + d).map_err(|_| GraphError::Usage("the lease is too long".into()))
}

/// The row that keeps an external worker alive until `alive_until`.
fn worker_row(worker: &str, limit: u32, at: Timestamp, alive_until: Timestamp) -> WorkerInfo {
    WorkerInfo {
        id: worker.to_string(),
        host: "external".into(),
        pid: 0,
        concurrency: limit,
        started_at: at,
        heartbeat_at: alive_until,
        role: crate::wire::WorkerRole::Worker,
    }
}

impl GraphRunner {
    /// Claims up to `claim.limit` due tasks (in wave order) for an external agent, each with its prompt.
    /// An empty list: nothing is due now.
    pub async fn claim_external(&self, claim: ExternalClaim) -> Result<Vec<ClaimedTask>, GraphError> {
        let worker = check_worker(&claim.worker)?;
        if claim.limit == 0 || claim.limit > MAX_CLAIM {
            return Err(GraphError::Usage(format!("limit is 1 to {MAX_CLAIM}, not {}", claim.limit)));
        }
        if let Some(g) = claim.graph_id {
            self.graph(g).await?;
        }
        let at = now();
        let deadline = until(at, claim.lease)?;
        let stale = chrono::Duration::from_std(self.settings.stale_after).unwrap_or(chrono::Duration::seconds(5));
        let task_claim = TaskClaim {
            worker: worker.to_string(),
            limit: claim.limit,
            graph_id: claim.graph_id,
            now: at,
            deadline,
            stale_before: at - stale,
            start: None,
        };
        let batch = Batch::new()
            .change(Change::Heartbeat(Box::new(worker_row(worker, claim.limit, at, deadline))))
            .change(Change::ClaimTasks(Box::new(task_claim)));
        let records = self.store.commit(batch).await?;
        let claimed = super::worker::claimed_by(&records, worker);
        // The dependencies of every claimed task in one read per graph (not one per dependency).
        let deps = super::worker::deps_of(self.store.clone(), claimed.iter()).await;
        let mut out = Vec::with_capacity(claimed.len());
        let mut facts: std::collections::HashMap<Id, Vec<Fact>> = std::collections::HashMap::new();
        for task in claimed {
            if let std::collections::hash_map::Entry::Vacant(slot) = facts.entry(task.graph_id) {
                slot.insert(self.store.graph_facts(task.graph_id).await?);
            }
            let known = facts.get(&task.graph_id).map(Vec::as_slice).unwrap_or_default();
            let prompt = self.prompt_of(&task, known, Some(&deps)).await?;
            out.push(ClaimedTask { task, prompt });
        }
        Ok(out)
    }

    /// The task as stored, if `worker` holds it at `attempt`; else why not.
    async fn held(&self, task_id: Id, worker: &str, attempt: u32) -> Result<Task, GraphError> {
        let worker = check_worker(worker)?;
        let task = self.store.get_task(task_id).await?.ok_or(GraphError::TaskNotFound(task_id))?;
        let holder = task.claimed_by.as_deref().unwrap_or("nobody");
        if task.status != TaskStatus::Running || holder != worker || task.attempt != attempt {
            return Err(GraphError::TaskState(format!(
                "task {} ({}) is not held by {worker} at attempt {attempt}: it is {} at attempt {}, held by {holder} \
                 (a lease that ran out is given to the next claim)",
                task.id,
                task.key,
                task.status.as_str(),
                task.attempt
            )));
        }
        Ok(task)
    }

    /// Extends the lease of `worker`'s attempt `attempt` of task `task_id` by `lease` from now (and keeps
    /// the worker alive as long). Fails with a conflict when the attempt is no longer the worker's.
    pub async fn extend_lease(
        &self,
        task_id: Id,
        worker: &str,
        attempt: u32,
        lease: Duration,
    ) -> Result<Task, GraphError> {
        let mut task = self.held(task_id, worker, attempt).await?;
        let at = now();
        let deadline = until(at, lease)?;
        task.lease_until = Some(deadline);
        task.updated_at = at;
        let row = worker_row(worker.trim(), 1, task.started_at.unwrap_or(at), deadline);
        let batch = Batch::new()
            .change(Change::Heartbeat(Box::new(row)))
            .change(Change::UpdateTask { task: Box::new(task.clone()), fence: Some(attempt) })
            .relaxed();
        self.store.commit(batch).await?;
        Ok(task)
    }

    /// Ends `worker`'s attempt `attempt` of task `task_id` as `end` says, in one fenced commit (with the
    /// reported cost spent on the day, the month and the graph). Returns the task as stored.
    pub async fn finish_external(
        &self,
        task_id: Id,
        worker: &str,
        attempt: u32,
        end: ExternalEnd,
    ) -> Result<Task, GraphError> {
        let mut task = self.held(task_id, worker, attempt).await?;
        let (end, cost) = match end {
            ExternalEnd::Completed { output, knowledge, cost_usd } => {
                (End::Completed { output, knowledge }, check_cost(cost_usd)?)
            }
            ExternalEnd::Failed { error, retry, cost_usd } => {
                let error = if error.trim().is_empty() { "the external agent gave no reason".into() } else { error };
                let end = if retry {
                    End::Failed(format!("{worker}: {error}"))
                } else {
                    End::Checkpoint(format!("{worker} failed without retry: {error}"))
                };
                (end, check_cost(cost_usd)?)
            }
            ExternalEnd::Released => (End::Release { not_before: None, note: format!("given back by {worker}") }, 0.0),
        };
        let mut batch = super::attempt::ending(&self.settings, &mut task, attempt, end, cost, Vec::new());
        if cost > 0.0 {
            let spent = Change::SettleBudget {
                reservation: Box::new(Reservation::at(Some(task.graph_id), 0.0, now())),
                actual: cost,
            };
            batch.changes.insert(0, spent);
        }
        self.store.commit(batch).await?;
        self.nudge(super::Nudge::Due);
        Ok(task)
    }
}
