//! Tools the Claude Code CLI does not have, given to it over MCP (feature `mcp`).
//!
//! A Claude Code turn whose tool list holds tools other than the CLI's own (`Read`, `Bash`, …) — an
//! orchestrator's management tools, tools a host added — serves those tools for the length of the turn
//! on a [`ToolEndpoint`] (streamable HTTP on 127.0.0.1, a bearer token of its own) and passes the CLI
//! `--mcp-config FILE` naming it. The CLI sees them as `mcp__orch__<tool>` (`mcp__mgmt__<tool>` for an
//! orchestrator, the name the seed's orchestrator used), pre-approved with `--allowedTools`, and its calls
//! run the tools in this process, on this engine: a `create_agent` from the CLI creates the agent here.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::ClaudeCodeExecutor;
use crate::executor::{AgentExecutor, RunError, RunOutcome, TurnContext};
use crate::tool::mcp::{ToolEndpoint, tool_name};
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use crate::wire::ORCHESTRATOR_AGENT_NAME;

/// The tools of the Claude Code CLI itself: never served.
const CLI_TOOLS: &[&str] = &[
    "Task",
    "Agent",
    "Bash",
    "BashOutput",
    "KillShell",
    "Glob",
    "Grep",
    "LS",
    "Read",
    "Edit",
    "MultiEdit",
    "Write",
    "NotebookEdit",
    "NotebookRead",
    "WebFetch",
    "WebSearch",
    "TodoWrite",
    "ExitPlanMode",
    "AskUserQuestion",
    "SlashCommand",
    "Skill",
];

/// The server name the CLI sees the served tools under, for this turn's agent.
fn server_name(cx: &TurnContext) -> &'static str {
    if cx.agent.name == ORCHESTRATOR_AGENT_NAME && cx.agent.orchestrator_id.is_some() { "mgmt" } else { "orch" }
}

fn served(name: &str) -> bool {
    !CLI_TOOLS.contains(&name) && !name.starts_with("mcp__")
}

/// Whether the turn has tools to serve.
pub(super) fn wanted(cx: &TurnContext) -> bool {
    cx.tools.names().into_iter().any(served)
}

/// Stands for a served tool in the tool list given to the CLI executor (its name goes to
/// `--allowedTools`); the CLI calls the real one over MCP, so this one is never called.
struct Served {
    name: String,
    inner: Arc<dyn Tool>,
}

#[async_trait]
impl Tool for Served {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        self.inner.description()
    }
    fn input_schema(&self) -> Value {
        self.inner.input_schema()
    }
    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        self.inner.call(ctx, input).await
    }
}

/// Runs the turn with the served tools on an endpoint of their own, stopped when the turn ends.
pub(super) async fn run(
    exec: &ClaudeCodeExecutor,
    cx: TurnContext,
    prompt: Option<String>,
) -> Result<RunOutcome, RunError> {
    let server = server_name(&cx);
    let config_error = |message: String| RunError::Config { agent: cx.agent.name.clone(), message };
    let mut serve = ToolRegistry::new();
    let mut offered = ToolRegistry::new();
    for name in cx.tools.names() {
        let Some(tool) = cx.tools.get(name).cloned() else { continue };
        if served(name) {
            serve.register_arc(tool.clone());
            offered.register(Served { name: tool_name(server, name), inner: tool });
        } else {
            offered.register_arc(tool);
        }
    }
    let context = ToolContext {
        working_dir: PathBuf::from(&cx.agent.working_dir),
        agent_id: cx.agent.id,
        agent_name: cx.agent.name.clone(),
        tool_use_id: String::new(),
        interrupt: cx.interrupt.clone(),
        runtime: cx.runtime.clone(),
    };
    let endpoint = ToolEndpoint::start(serve, context)
        .await
        .map_err(|e| config_error(format!("cannot serve its tools to Claude Code over MCP: {e}")))?;
    let file = std::env::temp_dir().join(format!("orch-mcp-{}.json", crate::wire::new_id().simple()));
    write_private(&file, &endpoint.mcp_config(server).to_string())
        .map_err(|e| config_error(format!("cannot write the MCP config {}: {e}", file.display())))?;
    tracing::debug!(agent = %cx.agent.name, url = endpoint.url(), server, "serving tools to Claude Code over MCP");
    let mut config = exec.config().clone();
    config.extra_args.extend(["--mcp-config".to_string(), file.to_string_lossy().into_owned()]);
    let inner = ClaudeCodeExecutor::new(config);
    let result = inner.run_turn(TurnContext { tools: offered, ..cx }, prompt).await;
    endpoint.stop().await;
    if let Err(e) = std::fs::remove_file(&file) {
        tracing::debug!(file = %file.display(), error = %e, "MCP config not removed");
    }
    result
}

/// Writes `text` to a new file only its owner can read (it holds the endpoint's token).
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
