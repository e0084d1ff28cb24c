//! Workflows: ordered steps, each run by a fresh agent with one prompt, recorded in the log and run on
//! the shared supervisor ([`WorkflowEngine`]); the [`Workflow`] trait for workflows in code, registered
//! at run time in [`CodeWorkflows`]; the
//! `.orch/workflows/*.toml` format ([`spec`]), its templates and conditions ([`expr`]), output
//! extraction ([`extract`]) and the built-in ADWs ([`builtin`]), run by [`DataWorkflow`]; runs in git
//! worktrees of their own ([`worktree`]).
pub mod builtin;
mod code;
mod data;
pub mod expr;
pub mod extract;
mod run;
mod spans;
pub mod spec;
pub mod worktree;

pub use code::CodeWorkflows;
pub use data::DataWorkflow;
pub use run::{
    PriorSteps, StepRequest, StepRun, Workflow, WorkflowEngine, WorkflowError, WorkflowRun, WorkflowTicket,
    WorkflowTypes, is_stale,
};
pub use worktree::{Isolation, OnSuccess};
