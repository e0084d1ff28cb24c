//! A small MCP server for the MCP client's tests and benchmark, on rmcp's server over stdio (the
//! `orch-mcp-stub` binary). Its tools:
//! - `echo {text}` answers `echo: TEXT`;
//! - `fail {}` answers a tool error ("the stub failed on purpose");
//! - `hang {}` never answers;
//! - `pid {}` answers its process id.
//!
//! Started with `STUB_PID_FILE` set, the stdio server writes its pid there (a line), and with
//! `--grandchild` it also starts `sleep 300` and writes that pid too, so a test can check that the whole
//! process group is gone after the run.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;

/// The stub server.
#[derive(Debug, Clone, Default)]
pub struct Stub;

fn tool(name: &'static str, description: &'static str, schema: serde_json::Value) -> Tool {
    let map = match schema {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Tool::new(name, description, Arc::new(map))
}

impl ServerHandler for Stub {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("orch-mcp-stub", "0.1.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let object = json!({"type": "object", "properties": {}});
        Ok(ListToolsResult::with_all_items(vec![
            tool(
                "echo",
                "Echoes its text.",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
            tool("fail", "Always fails.", object.clone()),
            tool("hang", "Never answers.", object.clone()),
            tool("pid", "Its process id.", object),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            "echo" => {
                let text = args.get("text").and_then(|t| t.as_str()).unwrap_or_default();
                CallToolResult::success(vec![ContentBlock::text(format!("echo: {text}"))])
            }
            "fail" => CallToolResult::error(vec![ContentBlock::text("the stub failed on purpose")]),
            "hang" => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                CallToolResult::success(vec![ContentBlock::text("woke up")])
            }
            "pid" => CallToolResult::success(vec![ContentBlock::text(std::process::id().to_string())]),
            other => return Err(ErrorData::invalid_params(format!("no tool named '{other}'"), None)),
        };
        Ok(result.into())
    }
}

/// Serves the stub on stdin/stdout until the client closes it.
pub async fn serve_stdio(grandchild: bool) -> std::io::Result<()> {
    use rmcp::ServiceExt;
    use std::io::Write;
    let mut keep = None;
    if let Ok(file) = std::env::var("STUB_PID_FILE") {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
        writeln!(f, "{}", std::process::id())?;
        if grandchild {
            let child = std::process::Command::new("sleep").arg("300").spawn()?;
            writeln!(f, "{}", child.id())?;
            keep = Some(child);
        }
    }
    let running = Stub.serve(rmcp::transport::stdio()).await.map_err(std::io::Error::other)?;
    let _ = running.waiting().await;
    drop(keep);
    Ok(())
}

/// Whether process `pid` is gone (no such process, or a zombie waiting to be reaped), or goes within
/// 5 s. Linux only.
pub fn process_gone(pid: u32) -> bool {
    // A SIGKILL is delivered asynchronously: the process may still be on its way out (and a
    // grandchild is reaped by whoever inherits it) just after the kill returns. Gone means gone, or a
    // zombie, within a few seconds.
    for _ in 0..100 {
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // The state follows the command name in parentheses: `123 (sleep) Z ...`.
            Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(false),
        };
        if gone {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}
