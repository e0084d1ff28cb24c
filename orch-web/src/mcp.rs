//! orch as an MCP server: `orch mcp` (stdio) and `/mcp` on `orch serve` (streamable HTTP, behind the
//! server's token). It offers the orchestrator's management tools (`create_agent`, `list_agents`,
//! `command_agent`, `check_agent_status`, `delete_agent`, `interrupt_agent`, `read_system_logs`,
//! `report_cost`), the workflow tools (`start_adw`, `check_adw`) and the graph tools (`plan_graph`,
//! `approve_plan`, `run_graph`, `graph_status`, `claim_task`, `heartbeat_task`, `complete_task`,
//! `fail_task`), so Claude Code, Codex or any MCP client can act as the orchestrator, or work as an
//! external worker of the task queue. The tools are orch's own (`orch_core::tool::Tool`s), served by
//! orch-core's [`ToolServer`] (the adapter the Claude Code executor uses too).

use std::sync::Arc;

use orch_core::engine::Engine;
use orch_core::orchestrator::Orchestrator;
use orch_core::tool::mcp::ToolServer;
use orch_core::tool::{ToolContext, ToolRegistry};

use crate::chat::Failure;

const INSTRUCTIONS: &str = "orch runs LLM agents under deterministic orchestration. Create agents and \
command them (their runs go on in orch; check_agent_status follows them), start AI developer workflows \
(start_adw, check_adw), plan work as task graphs and run them (plan_graph, approve_plan, run_graph, \
graph_status), or work as a worker of the task queue: claim_task gives a task and its prompt; keep its \
lease with heartbeat_task and end it with complete_task or fail_task.";

/// orch's tools as an MCP server: the tools of `orchestrator` (its management and workflow tools) and
/// the graph tools over `graphs`, on `engine` (orch-core's [`ToolServer`], with instructions for the
/// client's model).
pub fn server(engine: &Engine, orchestrator: &Orchestrator, graphs: orch_core::graph::GraphRunner) -> ToolServer {
    let mut tools = ToolRegistry::new();
    let _ = orch_core::orchestrator::register_management_tools(
        &mut tools,
        orchestrator.manager().clone(),
        orchestrator.id(),
        orchestrator.agent_id(),
    );
    let _ = orch_core::orchestrator::register_adw_tools(&mut tools, engine.workflows(), orchestrator.id());
    let planner = engine.planner().ok();
    orch_core::orchestrator::graph_tools::register_graph_tools(&mut tools, graphs, planner);
    let context = ToolContext {
        working_dir: engine.working_dir().to_path_buf(),
        agent_id: orchestrator.agent_id(),
        agent_name: "mcp".into(),
        tool_use_id: String::new(),
        interrupt: orch_core::Interrupt::new(),
        runtime: engine.runtime().clone(),
    };
    ToolServer::new(tools, context).with_instructions(INSTRUCTIONS)
}

/// `orch mcp`: serves the tools over stdio until the client closes it. Runs the tools start (agent
/// runs, workflow runs) go on in this process; they are interrupted when it ends.
pub async fn run_stdio(engine: Engine) -> Result<u8, Failure> {
    use rmcp::ServiceExt;
    let orchestrator = crate::chat::orchestrator(&engine, None, false).await?;
    let graphs = engine.graph_runner()?;
    let server = server(&engine, &orchestrator, graphs);
    eprintln!("orch mcp: serving {} tools on stdio (orchestrator {})", server.tool_names().len(), orchestrator.id());
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Failure::runtime(format!("the MCP session did not start: {e}")))?;
    let ended = running.waiting().await;
    for r in orchestrator.manager().active_runs() {
        r.interrupt();
    }
    ended.map_err(|e| Failure::runtime(format!("the MCP session failed: {e}")))?;
    Ok(0)
}

/// The `/mcp` route of `orch serve`: streamable HTTP sessions over the server's tools. Off loopback the
/// server's token guards it (as every route), so any Host header is taken; on loopback only local ones
/// (DNS rebinding).
pub fn http_service(
    server: ToolServer,
    loopback: bool,
) -> rmcp::transport::streamable_http_server::StreamableHttpService<
    ToolServer,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
    let mut config = StreamableHttpServerConfig::default();
    if !loopback {
        config = config.disable_allowed_hosts();
    }
    StreamableHttpService::new(move || Ok(server.clone()), Arc::default(), config)
}
