//! Task graphs: requirements → plan → dependency graph → waves.
//!
//! - [`Planner`] asks the planning model for a plan as JSON, reads it tolerantly ([`parse`]), checks it
//!   ([`validate`]) and, when the reply is not a valid plan, asks once more with the problems; then it
//!   gives up with a clear error.
//! - [`TaskGraphs`] stores plans (versioned: a revision is a new version; approval is a step of its
//!   own), makes a graph of an approved plan — its tasks in [`waves`] — and adds tasks to a graph later.
//!   Every change commits with the event that records it ([`Event::PlanUpdated`],
//!   [`Event::GraphUpdated`], [`Event::TaskUpdated`]).
//!
//! - [`GraphRunner`] runs graphs ([`run`]): [`Worker`]s claim due tasks from the store and run each as an
//!   agent run, with model routing, retries, budgets, stuck detection and checkpoints people resolve.
//!
//! [`Event::PlanUpdated`]: crate::wire::Event::PlanUpdated
//! [`Event::GraphUpdated`]: crate::wire::Event::GraphUpdated
//! [`Event::TaskUpdated`]: crate::wire::Event::TaskUpdated

pub mod parse;
mod planner;
pub mod run;
mod service;
pub mod validate;
pub mod waves;

pub use planner::{Drafted, PLANNER_AGENT, Planner};
pub use run::{
    ClaimedTask, ExternalClaim, ExternalEnd, GraphRunner, GraphSettings, Resolution, Router, Worker, WorkerReport,
};
pub use service::{NewTask, PlanOrigin, TaskGraphs};
pub use validate::{Problem, Problems};

use crate::ErrorKind;
use crate::model::ModelError;
use crate::store::StoreError;
use crate::wire::{Id, PlanStatus, PlannedTask};

/// Why a plan or graph operation failed. Nothing is stored by an operation that fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The plan is not JSON, or no JSON was found in it.
    #[error("the plan is not JSON: {0}")]
    NotJson(String),
    /// The plan is JSON but not a valid plan.
    #[error("invalid plan: {0}")]
    Invalid(Problems),
    /// A task added to a graph is not valid there.
    #[error("invalid task: {0}")]
    InvalidTask(Problems),
    /// A plan file could not be read.
    #[error("cannot read plan file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The planning model answered twice without a valid plan.
    #[error("the planning model gave no valid plan in {attempts} attempts; nothing was stored. Last problem: {last}")]
    ModelGaveUp {
        /// Calls made.
        attempts: u32,
        /// What was wrong with its last answer.
        last: String,
    },
    /// The planning model's call failed.
    #[error("the planning model failed: {0}")]
    Model(#[from] ModelError),
    /// Bad input: empty requirements, a missing title.
    #[error("{0}")]
    Usage(String),
    /// No such plan.
    #[error("plan {0} not found")]
    PlanNotFound(String),
    /// No such graph.
    #[error("task graph {0} not found")]
    GraphNotFound(Id),
    /// The plan is not approved, so no graph is made of it.
    #[error("plan {id} version {version} is {}, not approved: approve it first (orch plan approve {id})", .status.as_str())]
    NotApproved {
        /// The plan.
        id: Id,
        /// Its version.
        version: u32,
        /// Its status.
        status: PlanStatus,
    },
    /// The graph has ended; no task is added to it.
    #[error("task graph {id} is {status}: tasks can only be added to a graph that has not ended")]
    GraphEnded {
        /// The graph.
        id: Id,
        /// Its status.
        status: &'static str,
    },
    /// No such task.
    #[error("task {0} not found")]
    TaskNotFound(Id),
    /// A task is not in the state the request needs (not held by the caller any more, not waiting for a
    /// person): the message says what it is instead.
    #[error("{0}")]
    TaskState(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GraphError {
    /// What kind of failure this is: a bad plan or input is usage; a model that gave up is the
    /// provider's; model and store failures keep their kinds.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotJson(_) | Self::Invalid(_) | Self::InvalidTask(_) | Self::File { .. } | Self::Usage(_) => {
                ErrorKind::Usage
            }
            Self::ModelGaveUp { .. } => ErrorKind::Provider,
            Self::Model(e) => e.kind(),
            Self::PlanNotFound(_) | Self::GraphNotFound(_) | Self::TaskNotFound(_) => ErrorKind::NotFound,
            Self::NotApproved { .. } | Self::GraphEnded { .. } | Self::TaskState(_) => ErrorKind::Conflict,
            Self::Store(e) => e.kind(),
        }
    }
}

/// A plan read from text (a model's reply or a file): its stated requirements, if any, and its tasks,
/// checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    /// The `requirements` field of the JSON, if it has one.
    pub requirements: Option<String>,
    /// The tasks, keyed and checked.
    pub tasks: Vec<PlannedTask>,
}

/// Reads and checks a plan from text: JSON found as [`parse::extract_json`] does, tasks read as
/// [`parse::read_plan`] does, checked as [`validate::validate`] does.
pub fn read_plan_text(text: &str) -> Result<ReadPlan, GraphError> {
    let value = parse::extract_json(text).map_err(GraphError::NotJson)?;
    let raw = parse::read_plan(&value).map_err(|p| GraphError::Invalid(Problems(p)))?;
    let tasks = validate::validate(raw.tasks).map_err(GraphError::Invalid)?;
    Ok(ReadPlan { requirements: raw.requirements, tasks })
}

/// Reads and checks a plan file (the planning model's JSON format, or a stored plan's).
pub fn read_plan_file(path: &std::path::Path) -> Result<ReadPlan, GraphError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| GraphError::File { path: path.display().to_string(), message: e.to_string() })?;
    read_plan_text(&text)
}
