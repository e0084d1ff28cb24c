//! Task graphs: a plan (requirements decomposed into tasks with dependencies), the graph made from an
//! approved plan, and its tasks as the stores keep them.
//!
//! A [`Plan`] is versioned: every revision is a new row with the same id and the next version, so what
//! was approved is never overwritten. A [`TaskGraph`] is made from one version of one plan; its [`Task`]s
//! carry what a worker needs to run them (status, attempt, claim, lease, cost, output) so the executor,
//! budgets and checkpoints fit on these rows without reshaping them.

use serde::{Deserialize, Serialize};

use super::{Id, Timestamp};

/// Where a plan is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlanStatus {
    /// Written (by the planning model or from a file), waiting for a person to approve it.
    #[default]
    Draft,
    /// Approved: a graph may be made from it.
    Approved,
    /// Replaced by a newer version.
    Superseded,
}

impl PlanStatus {
    /// As stored (`draft`, `approved`, `superseded`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Approved => "approved",
            Self::Superseded => "superseded",
        }
    }
}

/// How much work a task is; with its type, it picks the model that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Complexity {
    /// A small, well-defined change or lookup.
    Simple,
    /// Ordinary work. The default.
    #[default]
    Medium,
    /// Design, several files, subtle behaviour.
    Complex,
}

impl Complexity {
    /// As stored (`simple`, `medium`, `complex`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Simple => "simple",
            Self::Medium => "medium",
            Self::Complex => "complex",
        }
    }

    /// Reads a complexity as people and models write it: `simple` (also `low`, `easy`, `trivial`),
    /// `medium` (also `moderate`, `normal`, `mid`), `complex` (also `high`, `hard`, `difficult`); case
    /// and surrounding spaces are ignored.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "simple" | "low" | "easy" | "trivial" => Some(Self::Simple),
            "medium" | "moderate" | "normal" | "mid" => Some(Self::Medium),
            "complex" | "high" | "hard" | "difficult" => Some(Self::Complex),
            _ => None,
        }
    }
}

/// One task of a plan, as validated: its key is unique in the plan and its dependencies name keys of
/// other tasks of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTask {
    /// Unique in the plan: the id the plan gave the task, else `task-N` (N = its position, from 1).
    pub key: String,
    /// Short title.
    pub title: String,
    /// What to do.
    #[serde(default)]
    pub description: String,
    /// Kind of work (`code`, `research`, `analysis`, `documentation`, …), lowercase.
    #[serde(default = "default_task_type")]
    pub task_type: String,
    /// How much work it is.
    #[serde(default)]
    pub complexity: Complexity,
    /// Keys of the tasks that must complete first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// A model tier or model for this task (`haiku`, `sonnet`, a spec); `None`: routed by type and complexity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tools it needs.
    #[serde(default)]
    pub tools: Vec<String>,
    /// How to tell it is done.
    #[serde(default)]
    pub verification: Vec<String>,
    /// What the plan expects the task to cost, in USD (finite, 0 or more); `None`: not estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
    /// How long the plan expects the task to take, in minutes (finite, 0 or more); `None`: not estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_minutes: Option<f64>,
}

fn default_task_type() -> String {
    "code".into()
}

/// A plan: requirements decomposed into tasks. One row per version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Id, shared by every version of the plan.
    pub id: Id,
    /// Version, from 1.
    pub version: u32,
    /// Status.
    pub status: PlanStatus,
    /// The requirements it was made from.
    pub requirements: String,
    /// The tasks, in the plan's order.
    pub tasks: Vec<PlannedTask>,
    /// The model that wrote it; `None` when it came from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The file it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_file: Option<String>,
    /// What writing it cost, in USD.
    #[serde(default)]
    pub cost_usd: f64,
    /// Created (this version).
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Where a graph is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GraphStatus {
    /// Made, not started.
    #[default]
    Pending,
    /// Tasks are being run.
    Running,
    /// Stopped on purpose or by its budget; resumable.
    Paused,
    /// Every task completed or was skipped.
    Completed,
    /// A task failed for good.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl GraphStatus {
    /// As stored (`pending`, `running`, `paused`, `completed`, `failed`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the graph has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A task graph: the tasks of one plan version, in waves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskGraph {
    /// Id.
    pub id: Id,
    /// Name (shown in listings).
    pub name: String,
    /// The plan it was made from, if any.
    pub plan_id: Option<Id>,
    /// That plan's version.
    pub plan_version: Option<u32>,
    /// Status.
    pub status: GraphStatus,
    /// Tasks in all.
    pub total_tasks: u32,
    /// Waves in all (the deepest task's wave).
    pub waves: u32,
    /// Its USD limit, if any.
    pub budget_usd: Option<f64>,
    /// What its tasks cost so far, in USD.
    pub cost_usd: f64,
    /// Why it failed or paused.
    pub error: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// First started.
    pub started_at: Option<Timestamp>,
    /// Ended.
    pub completed_at: Option<Timestamp>,
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// Waiting for its dependencies.
    #[default]
    Pending,
    /// Its dependencies completed; waiting for a worker.
    Ready,
    /// A worker runs it.
    Running,
    /// Done.
    Completed,
    /// Failed for good (retries exhausted, or failed by a person).
    Failed,
    /// Skipped by a person; its dependents may run.
    Skipped,
    /// Waiting for a person (a checkpoint) or for a dependency that failed.
    Blocked,
    /// Cancelled with its graph.
    Cancelled,
}

impl TaskStatus {
    /// As stored (`pending`, `ready`, `running`, `completed`, `failed`, `skipped`, `blocked`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Blocked => "blocked",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the task has ended (completed, failed, skipped or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Skipped | Self::Cancelled)
    }

    /// Whether its dependents may run (completed or skipped).
    pub fn releases_dependents(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped)
    }
}

/// A task of a graph.
///
/// Its definition (graph, index, key, title, description, type, complexity, tools, verification,
/// estimates, dependencies, wave) is fixed when it is inserted; an update writes its progress: status, attempt,
/// model, claim, lease, agent, cost, output, error and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Id.
    pub id: Id,
    /// Its graph.
    pub graph_id: Id,
    /// Position in the graph (the plan's order; tasks added later come after).
    pub index: u32,
    /// Unique in the graph: the plan's key of the task.
    pub key: String,
    /// Short title.
    pub title: String,
    /// What to do.
    pub description: String,
    /// Kind of work.
    pub task_type: String,
    /// How much work it is.
    pub complexity: Complexity,
    /// Tools it needs.
    pub tools: Vec<String>,
    /// How to tell it is done.
    pub verification: Vec<String>,
    /// Its estimated cost, USD: its plan's, or given when it was added (none: not estimated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
    /// Its estimated duration, minutes, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_minutes: Option<f64>,
    /// Tasks (ids, of the same graph) that must complete first.
    pub depends_on: Vec<Id>,
    /// Its wave: 1 for a task without dependencies, else 1 + the highest wave of its dependencies.
    pub wave: u32,
    /// Status.
    pub status: TaskStatus,
    /// The attempt running or last run, from 1 (0: never started). Every write of an attempt names it,
    /// so a worker whose lease was taken over cannot overwrite its successor's work (fencing).
    pub attempt: u32,
    /// The model tier or model asked for, and once routed, the model that runs it.
    pub model: Option<String>,
    /// The worker holding it.
    pub claimed_by: Option<String>,
    /// Until when that worker's claim holds, unless renewed.
    pub lease_until: Option<Timestamp>,
    /// Not to be started before this (a retry's backoff).
    pub not_before: Option<Timestamp>,
    /// The agent of the current attempt.
    pub agent_id: Option<Id>,
    /// What its attempts cost, in USD.
    pub cost_usd: f64,
    /// Its result.
    pub output: Option<String>,
    /// Why its last attempt failed.
    pub error: Option<String>,
    /// Failed attempts so far, counted against its retries (an attempt stopped by the budget, by an
    /// unavailable provider or by its worker's death is not a failure).
    #[serde(default)]
    pub failures: u32,
    /// Why it waits for a person (a checkpoint): set when it is blocked, cleared when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Guidance people gave when resolving its checkpoints with a retry, appended to its prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guidance: Vec<String>,
    /// Facts it reported (the `knowledge` section of its result), given to later tasks that match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub knowledge: Vec<Fact>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Its current attempt started.
    pub started_at: Option<Timestamp>,
    /// Ended.
    pub completed_at: Option<Timestamp>,
}

impl Task {
    /// The key of a task at position `index` (from 0) given none: `task-N`, N its position from 1.
    pub fn default_key(index: u32) -> String {
        format!("task-{}", u64::from(index) + 1)
    }

    /// What a store decides of a task added to a graph
    /// ([`Change::AddTask`](crate::store::Change::AddTask)): its position `index`, the default key of
    /// that position when it has none, and ready when its dependencies are done (`ready`), else pending.
    pub fn place(&mut self, index: u32, ready: bool) {
        self.index = index;
        if self.key.is_empty() {
            self.key = Self::default_key(index);
        }
        self.status = if ready { TaskStatus::Ready } else { TaskStatus::Pending };
    }

    /// Copies `from`'s progress (what [`Change::UpdateTask`](crate::store::Change::UpdateTask) writes)
    /// onto this task: status, attempt, model, claim, lease, not-before, agent, cost, output, error,
    /// failures, checkpoint, guidance, knowledge and the times of change, start and end. Its definition
    /// is kept.
    pub fn set_progress(&mut self, from: &Task) {
        self.status = from.status;
        self.attempt = from.attempt;
        self.model.clone_from(&from.model);
        self.claimed_by.clone_from(&from.claimed_by);
        self.lease_until = from.lease_until;
        self.not_before = from.not_before;
        self.agent_id = from.agent_id;
        self.cost_usd = from.cost_usd;
        self.output.clone_from(&from.output);
        self.error.clone_from(&from.error);
        self.failures = from.failures;
        self.checkpoint.clone_from(&from.checkpoint);
        self.guidance.clone_from(&from.guidance);
        self.knowledge.clone_from(&from.knowledge);
        self.updated_at = from.updated_at;
        self.started_at = from.started_at;
        self.completed_at = from.completed_at;
    }
}

/// A fact a task reported, for later tasks of its graph: those of a type or tag it names, or all of
/// them when it names none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fact {
    /// The fact.
    pub text: String,
    /// Task types or tags it is for (lowercase); empty: every later task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}
