//! Running task graphs: the workers that claim tasks, their claims, and the budget every model call
//! reserves from.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Agent, Id, NewEvent, Task, Timestamp};

/// A worker process (or an in-process worker of `orch graph run`), as its heartbeat row records it.
///
/// A worker's liveness is its heartbeat, kept apart from its tasks' deadlines: a task whose worker has
/// not beaten since [`TaskClaim::stale_before`] is taken over by the next claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique id (`HOST:PID:random`).
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Tasks it runs at once at most.
    pub concurrency: u32,
    /// Started.
    pub started_at: Timestamp,
    /// Last heartbeat.
    pub heartbeat_at: Timestamp,
    /// What the process is: a task worker, or a server following the store (missing in older rows and
    /// JSON: a worker).
    #[serde(default)]
    pub role: WorkerRole,
}

impl WorkerInfo {
    /// Whether it beat within `stale_after` before `at`: a silent worker is gone, and the next claim
    /// takes over its tasks; a silent server continues no run.
    pub fn is_alive(&self, stale_after: std::time::Duration, at: Timestamp) -> bool {
        self.silent_for(at) <= stale_after
    }

    /// How long it has been silent at `at` (zero for a beat stamped later).
    pub fn silent_for(&self, at: Timestamp) -> std::time::Duration {
        at.signed_duration_since(self.heartbeat_at).to_std().unwrap_or_default()
    }
}

/// What a heartbeat row stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerRole {
    /// A task worker (`orch worker`, the worker of `orch graph run` or of a server, an external agent):
    /// it claims tasks.
    #[default]
    Worker,
    /// A server (`orch serve`) following the store: it continues the runs whose tool calls are decided
    /// in other processes (`orch approve`), so those need not continue them themselves. It claims no
    /// task by this row (its task worker, if any, beats a row of its own).
    Server,
}

impl WorkerRole {
    /// Its name as stored (`worker`, `server`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::Server => "server",
        }
    }

    /// The role stored as `s`; an unknown name (a newer build's) is a worker.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "server" => Self::Server,
            _ => Self::Worker,
        }
    }
}

/// What a worker asks of [`Change::ClaimTasks`](crate::store::Change::ClaimTasks).
///
/// A claim takes up to `limit` tasks, first by wave then by index, that are either
/// - ready, of a running graph, and due (`not_before` passed), or
/// - running under a worker that stopped heartbeating (its row is older than `stale_before`, or gone)
///   or past their deadline (`lease_until` passed): their attempt is taken over.
///
/// Each claimed task becomes running at the next attempt, held by `worker` until `deadline`, and a
/// `TaskUpdated` event records it in the same commit. The claimed tasks are read from those events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskClaim {
    /// The claiming worker.
    pub worker: String,
    /// At most this many tasks.
    pub limit: u32,
    /// Only tasks of this graph.
    pub graph_id: Option<Id>,
    /// The time of the claim.
    pub now: Timestamp,
    /// The deadline of the claimed attempts (their `lease_until`).
    pub deadline: Timestamp,
    /// Workers whose last heartbeat is older than this are gone.
    pub stale_before: Timestamp,
    /// Starts the claimed attempts in the claim's own commit (see [`Starter`]); `None`: the claim only
    /// claims. Not serialized: it is code of the claiming process.
    #[serde(skip)]
    pub start: Option<Starter>,
}

/// What a [`Starter`] makes of a claimed task: the agent that runs its attempt, created in the claim's
/// commit, and the task as it is then to be stored.
#[derive(Debug, Clone)]
pub struct Started {
    /// The agent as its row is to be stored (holding its run's lease).
    pub agent: Box<Agent>,
    /// Its `AgentCreated` event (the agent without the lease: claims are not events).
    pub created: NewEvent,
    /// The claimed task with its attempt's agent and model (same attempt, same claim).
    pub task: Box<Task>,
}

/// Code a claim runs inside its transaction on each task it claims (as the claim left it), to start
/// the task's attempt in the same commit: it returns the agent to create and the task's new state, or
/// `None` to leave that task claimed only. It runs under the store's write lock, so it must be quick
/// and must not block; it may run more than once for one claim (a store retrying the transaction), so
/// whatever it keeps aside must be found again by the agent ids the commit recorded.
///
/// A store applies a started task as [`Change::CreateAgent`] of its agent and a fenced
/// [`Change::UpdateTask`] of its task would, and records it with the agent's `AgentCreated` then the
/// started task's `TaskUpdated`, in place of the claim's own `TaskUpdated` (see [`start_claimed`]).
///
/// [`start_claimed`]: crate::store::start_claimed
///
/// [`Change::CreateAgent`]: crate::store::Change::CreateAgent
/// [`Change::UpdateTask`]: crate::store::Change::UpdateTask
#[derive(Clone)]
pub struct Starter(Arc<StartFn>);

/// The code of a [`Starter`].
type StartFn = dyn Fn(&Task) -> Option<Started> + Send + Sync;

impl Starter {
    /// A starter running `f`.
    pub fn new(f: impl Fn(&Task) -> Option<Started> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Starts `task`'s attempt, or not.
    pub fn start(&self, task: &Task) -> Option<Started> {
        (self.0)(task)
    }
}

impl std::fmt::Debug for Starter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Starter")
    }
}

impl PartialEq for Starter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Starter {}

/// A budget reservation: taken from the estimated cost before a model call, settled with the real
/// cost after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// The graph whose task makes the call (its own limit applies too).
    pub graph_id: Option<Id>,
    /// USD reserved.
    pub amount: f64,
    /// The UTC day it counts against (`2026-12-02`).
    pub day: String,
    /// The UTC month it counts against (`2026-12`).
    pub month: String,
}

impl Reservation {
    /// A reservation of `amount` USD at `at`, for `graph_id`.
    pub fn at(graph_id: Option<Id>, amount: f64, at: Timestamp) -> Self {
        Self { graph_id, amount, day: at.format("%Y-%m-%d").to_string(), month: at.format("%Y-%m").to_string() }
    }
}

/// A budget limit that is not a graph's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// Every UTC day.
    Daily,
    /// Every UTC month.
    Monthly,
}

impl BudgetScope {
    /// As stored (`daily`, `monthly`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
        }
    }
}

/// One period's spending against its limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetLine {
    /// `daily` or `monthly`.
    pub scope: BudgetScope,
    /// The period (`2026-12-02`, `2026-12`).
    pub period: String,
    /// The limit in USD, if one is set.
    pub limit_usd: Option<f64>,
    /// Settled spending in USD.
    pub spent_usd: f64,
    /// Reserved by model calls in flight, in USD.
    pub reserved_usd: f64,
}

impl BudgetLine {
    /// The share of the limit spent or reserved (0 without a limit).
    pub fn used_fraction(&self) -> f64 {
        match self.limit_usd {
            Some(l) if l > 0.0 => (self.spent_usd + self.reserved_usd) / l,
            Some(_) => 1.0,
            None => 0.0,
        }
    }
}

/// The daily and monthly budgets as they stand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// Today's line.
    pub daily: BudgetLine,
    /// This month's line.
    pub monthly: BudgetLine,
}
