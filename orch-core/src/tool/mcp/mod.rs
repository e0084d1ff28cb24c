//! The MCP client (feature `mcp`): agents use the tools of the MCP servers declared in
//! `<cwd>/.mcp.json`, Claude Code's file and format ([`config`]), through rmcp's client behind this
//! adapter. Each remote tool is a [`Tool`](crate::tool::Tool) ([`McpTool`]) named `mcp__<server>__<tool>`
//! exactly as Claude Code names it (characters outside `[A-Za-z0-9_-]` become `_`), so `.claude/`
//! permission rules (`mcp__github`, `mcp__github__*`, `mcp__github__create_issue`), hook matchers
//! (`mcp__.*`) and `allowed-tools` lists apply unchanged.
//!
//! Lifecycle: the servers are started when a native agent's turn builds its tool list ([`McpSession::start`],
//! called by [`AgentRunner`](crate::executor::AgentRunner)), because the model must see their tools in its
//! first request; a turn whose `allowed-tools` names none of a server's tools does not start that server.
//! They are shared by the turn's tool calls and stopped when the turn ends ([`McpSession::shutdown`]): a
//! stdio server is started as the leader of its own process group, and that whole group is killed, as
//! for `Bash`. A server that cannot be started (bad entry, missing program, no answer within the startup
//! timeout) is left out of the turn with a `SystemLog` error event naming it; a call that fails, times
//! out or that the server marks as an error is a tool error naming the server. Nothing waits forever.
//!
//! Timeouts ([`McpSettings`]): starting a server (spawn, `initialize`, `tools/list`) gets
//! `MCP_TIMEOUT` milliseconds (default 30 000), a tool call `MCP_TOOL_TIMEOUT` milliseconds (default
//! 600 000): Claude Code's variable names.

pub mod config;
mod remote;
mod serve;
mod session;

pub use config::{ConfigProblem, MCP_JSON, McpConfig, ServerConfig};
pub use remote::McpTool;
pub use serve::{ToolEndpoint, ToolServer};
pub use session::{McpProblem, McpSession};

use std::time::Duration;

/// Timeouts of the MCP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpSettings {
    /// How long starting one server may take: spawning it (or reaching it), `initialize` and listing
    /// its tools.
    pub startup_timeout: Duration,
    /// How long one tool call may take.
    pub call_timeout: Duration,
}

/// Default [`McpSettings::startup_timeout`].
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`McpSettings::call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(600);

impl Default for McpSettings {
    fn default() -> Self {
        Self { startup_timeout: DEFAULT_STARTUP_TIMEOUT, call_timeout: DEFAULT_CALL_TIMEOUT }
    }
}

impl McpSettings {
    /// The defaults, overridden by `MCP_TIMEOUT` and `MCP_TOOL_TIMEOUT` (milliseconds) when set to a
    /// positive whole number (another value is ignored with a warning).
    pub fn from_env() -> Self {
        Self::from_vars(&|k| std::env::var(k).ok())
    }

    /// [`McpSettings::from_env`] with variables looked up by `var`.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Self {
        let ms = |name: &str, default: Duration| match var(name) {
            None => default,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Duration::from_millis(n),
                _ => {
                    tracing::warn!(variable = name, value = %v, "not a positive number of milliseconds; using the default");
                    default
                }
            },
        };
        Self {
            startup_timeout: ms("MCP_TIMEOUT", DEFAULT_STARTUP_TIMEOUT),
            call_timeout: ms("MCP_TOOL_TIMEOUT", DEFAULT_CALL_TIMEOUT),
        }
    }
}

/// Claude Code's normalisation of a server or tool name: characters outside `[A-Za-z0-9_-]` become `_`.
pub fn normalize_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// The name the model sees for `tool` of `server`: `mcp__<server>__<tool>`.
pub fn tool_name(server: &str, tool: &str) -> String {
    format!("mcp__{}__{}", normalize_name(server), normalize_name(tool))
}

/// Longest tool name offered to a model; a remote tool whose full name is longer is left out (as Claude
/// Code does).
pub const MAX_TOOL_NAME: usize = 128;

/// Whether an `allowed-tools` entry names all the tools of `server` (`mcp__<server>` or
/// `mcp__<server>__*`), as Claude Code's permission rules do.
pub fn names_whole_server(entry: &str, server: &str) -> bool {
    let prefix = format!("mcp__{}", normalize_name(server));
    entry == prefix || entry.strip_prefix(&prefix).is_some_and(|rest| rest == "__*")
}

/// Whether a turn allowed `allowed` tools (`None`: all) may use some tool of `server`, so it is worth
/// starting.
pub fn server_wanted(server: &str, allowed: Option<&[String]>) -> bool {
    let Some(names) = allowed else { return true };
    let prefix = format!("mcp__{}__", normalize_name(server));
    names.iter().any(|n| names_whole_server(n, server) || n.starts_with(&prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_claude_code() {
        assert_eq!(tool_name("github", "create_issue"), "mcp__github__create_issue");
        assert_eq!(tool_name("my server.v2", "do/it"), "mcp__my_server_v2__do_it");
        assert!(names_whole_server("mcp__github", "github"));
        assert!(names_whole_server("mcp__github__*", "github"));
        assert!(!names_whole_server("mcp__github__x", "github"));
        assert!(!names_whole_server("mcp__githubx", "github"));
        let allowed = vec!["Read".to_string(), "mcp__github__create_issue".to_string()];
        assert!(server_wanted("github", Some(&allowed)));
        assert!(!server_wanted("slack", Some(&allowed)));
        assert!(server_wanted("slack", None));
    }

    #[test]
    fn timeouts_come_from_claude_codes_variables() {
        let s = McpSettings::from_vars(&|k| match k {
            "MCP_TIMEOUT" => Some("1500".into()),
            "MCP_TOOL_TIMEOUT" => Some("soon".into()),
            _ => None,
        });
        assert_eq!(s.startup_timeout, Duration::from_millis(1500));
        assert_eq!(s.call_timeout, DEFAULT_CALL_TIMEOUT);
    }
}
