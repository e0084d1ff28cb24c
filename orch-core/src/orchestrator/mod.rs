//! The orchestrator: a chat agent that creates, commands, watches, interrupts and deletes other agents
//! through management tools, with every step in the event log.

mod agents;
pub mod files;
mod service;
pub mod summary;
mod tools;

pub use agents::{
    AgentManager, CreateAgent, DEFAULT_MAX_AGENT_TURNS, Interrupted, ManageError, ManagerConfig,
    ORCHESTRATOR_AGENT_NAME, RunReport, RunTicket, StatusReport, is_orchestrator_agent,
};
pub use service::{
    ChatOutcome, DEFAULT_PROMPT, Orchestrator, OrchestratorBuilder, OrchestratorConfig, OrchestratorError,
    REFOCUS_WARNING,
};
pub use tools::{
    COMPACT_WARNING_PERCENT, CONTEXT_WINDOW_TOKENS, MANAGEMENT_TOOLS, SIGNATURES, StartedRuns, format_status,
    group_digits, register_management_tools,
};
