//! The orchestrator: a chat agent that creates, commands, watches, interrupts and deletes other agents
//! through management tools, with every step in the event log.

pub mod files;
pub mod summary;
