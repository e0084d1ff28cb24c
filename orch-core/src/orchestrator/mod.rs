//! The orchestrator: a chat agent that creates, commands, watches, interrupts and deletes other agents
//! through management tools, with every step in the event log.
//!
//! - [`Orchestrator`]: one chat turn at a time ([`Orchestrator::chat`]); a newer message interrupts
//!   the running turn; the system prompt is rendered each turn ([`DEFAULT_PROMPT`] or
//!   `ORCH_ORCHESTRATOR_PROMPT`); text blocks become chat messages; tokens and cost accumulate on the
//!   orchestrator record, which can be resumed by id.
//! - [`AgentManager`]: the agents of one orchestrator: create (from a prompt or a `.claude/agents`
//!   template), command in the background (one run per agent at a time; a busy agent refuses), status,
//!   interrupt (also across processes, through `InterruptRequested` events), delete.
//! - The management tools ([`register_management_tools`], [`MANAGEMENT_TOOLS`]) put the manager in
//!   the orchestrator's model's hands, with the seed's result texts.
//! - [`files`]: what each command run read and changed (`FileTracking` events).
//! - [`summary`]: optional model-written one-line summaries (`SummaryUpdated` events).

mod adw_tools;
mod agents;
pub mod autocomplete;
pub mod files;
pub mod graph_tools;
mod service;
pub mod summary;
mod tools;
mod tracking;

pub use crate::executor::{Interrupted, RunReport, RunTicket};
pub use adw_tools::{ADW_SIGNATURES, StartedWorkflows, register_adw_tools};
pub use agents::{
    AgentManager, CreateAgent, DEFAULT_MAX_AGENT_TURNS, ManageError, ManagerConfig, ORCHESTRATOR_AGENT_NAME,
    StatusEntry, StatusReport, is_orchestrator_agent, validate_agent_name,
};
pub use service::{
    ChatOutcome, DEFAULT_PROMPT, Orchestrator, OrchestratorBuilder, OrchestratorConfig, OrchestratorError,
    REFOCUS_WARNING,
};
pub use tools::{
    COMPACT_WARNING_PERCENT, CONTEXT_WINDOW_TOKENS, MANAGEMENT_TOOLS, SIGNATURES, StartedRuns, format_status,
    group_digits, register_management_tools,
};
pub use tracking::FileTracking;
