//! The MCP servers of one turn (feature `mcp`; without it, nothing): started when the runner builds the
//! turn's tool list, their tools added to it, their start-up problems recorded as `SystemLog` error
//! events, and stopped when the turn ends. See [`crate::tool::mcp`].

use std::sync::Arc;

use super::RunOptions;
use crate::store::Store;
use crate::tool::ToolRegistry;
use crate::wire::Agent;

/// The runner's MCP client settings.
#[derive(Debug, Clone, Default)]
pub(super) struct McpHost {
    #[cfg(feature = "mcp")]
    pub(super) settings: crate::tool::mcp::McpSettings,
}

impl McpHost {
    /// Settings from the environment (`MCP_TIMEOUT`, `MCP_TOOL_TIMEOUT`).
    pub(super) fn from_env() -> Self {
        Self {
            #[cfg(feature = "mcp")]
            settings: crate::tool::mcp::McpSettings::from_env(),
        }
    }

    /// Starts the servers of the agent's `.mcp.json` that the turn (on `model` if given) may use. A
    /// turn on Claude Code gets none: its CLI reads `.mcp.json` itself.
    #[cfg_attr(not(feature = "mcp"), allow(clippy::unused_async))]
    pub(super) async fn start(&self, agent: &Agent, model: Option<&str>, allowed: Option<&[String]>) -> TurnMcp {
        #[cfg(feature = "mcp")]
        {
            if super::is_claude_code_model(&agent.model) || model.is_some_and(super::is_claude_code_model) {
                return TurnMcp { session: None };
            }
            let dir = std::path::Path::new(&agent.working_dir);
            if !dir.join(crate::tool::mcp::MCP_JSON).exists() {
                return TurnMcp { session: None };
            }
            let session = crate::tool::mcp::McpSession::start(dir, allowed, &self.settings).await;
            TurnMcp { session: Some(session) }
        }
        #[cfg(not(feature = "mcp"))]
        {
            let _ = (agent, model, allowed);
            TurnMcp {}
        }
    }
}

/// The MCP servers started for one turn.
pub(super) struct TurnMcp {
    #[cfg(feature = "mcp")]
    session: Option<crate::tool::mcp::McpSession>,
}

impl TurnMcp {
    /// The turn's tools: `all` with the servers' tools, kept to `allowed` (an entry naming a whole
    /// server, `mcp__github` or `mcp__github__*`, keeps all its tools).
    pub(super) fn tools(&self, all: ToolRegistry, allowed: Option<&[String]>) -> ToolRegistry {
        #[cfg(feature = "mcp")]
        if let Some(session) = &self.session {
            let mut all = all;
            all.extend(session.tools());
            return match allowed {
                Some(names) => all.only(&session.expand_allowed(names)),
                None => all,
            };
        }
        match allowed {
            Some(names) => all.only(names),
            None => all,
        }
    }

    /// Records each server that could not be started as a `SystemLog` error event of the turn.
    /// (Handed to the run's `on_events` like the turn's own events.)
    pub(super) async fn record_problems(&self, store: &Arc<dyn Store>, agent: &Agent, options: &RunOptions) {
        #[cfg(feature = "mcp")]
        if let Some(session) = &self.session
            && !session.problems().is_empty()
        {
            use crate::store::Batch;
            use crate::wire::{Event, LogLevel};
            let mut batch = Batch::new();
            for p in session.problems() {
                tracing::warn!(agent = %agent.name, server = %p.server, "{p}");
                let keys = super::agent_keys(agent, options.task_slug.clone());
                let metadata = serde_json::json!({"mcp_server": p.server});
                batch =
                    batch.event(keys, Event::SystemLog { level: LogLevel::Error, message: p.to_string(), metadata });
            }
            match store.commit(batch).await {
                Ok(records) => {
                    if let Some(cb) = &options.on_events {
                        cb(&records);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not record the MCP servers that did not start"),
            }
        }
        #[cfg(not(feature = "mcp"))]
        let _ = (store, agent, options);
    }

    /// Stops the turn's servers.
    pub(super) async fn stop(self) {
        #[cfg(feature = "mcp")]
        if let Some(session) = self.session {
            session.shutdown().await;
        }
    }
}
