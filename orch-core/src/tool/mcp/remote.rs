//! [`McpTool`]: one tool of an MCP server as an orch [`Tool`].

use std::borrow::Cow;
use std::pin::pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{Either, select};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents};
use rmcp::service::{Peer, RoleClient};
use serde_json::Value;

use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

/// A tool of an MCP server, offered as `mcp__<server>__<tool>`. A call is a `tools/call` request to the
/// server; it is cancelled by the turn's interrupt and fails after the call timeout.
pub struct McpTool {
    pub(super) name: String,
    pub(super) server: String,
    pub(super) remote_name: String,
    pub(super) description: String,
    pub(super) schema: Value,
    pub(super) peer: Peer<RoleClient>,
    pub(super) timeout: Duration,
}

impl std::fmt::Debug for McpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTool").field("name", &self.name).field("server", &self.server).finish_non_exhaustive()
    }
}

impl McpTool {
    /// The server's name, as written in `.mcp.json`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The tool's name on its server.
    pub fn remote_name(&self) -> &str {
        &self.remote_name
    }
}

#[async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let arguments = match input {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => return Err(ToolError::InvalidInput(format!("expected a JSON object, got {other}"))),
        };
        let mut params = CallToolRequestParams::new(Cow::Owned(self.remote_name.clone()));
        params.arguments = arguments;
        let (server, tool) = (&self.server, &self.remote_name);
        // Dropping the request (interrupt, timeout) makes rmcp send the server a cancellation.
        let call = pin!(tokio::time::timeout(self.timeout, self.peer.call_tool(params)));
        let result = match select(call, pin!(ctx.interrupt.triggered())).await {
            Either::Left((r, _)) => r,
            Either::Right(_) => return Err(ToolError::Interrupted),
        };
        match result {
            Err(_) => Err(ToolError::Failed(format!(
                "MCP server '{server}' did not answer the call of '{tool}' within {} s (MCP_TOOL_TIMEOUT)",
                self.timeout.as_secs_f64()
            ))),
            Ok(Err(e)) => Err(ToolError::Failed(format!("MCP server '{server}' failed the call of '{tool}': {e}"))),
            Ok(Ok(r)) => Ok(output(server, tool, r)),
        }
    }
}

/// What the model is given for a call's result: the text of its content blocks (the structured result
/// when there are none); an error result names the server.
fn output(server: &str, tool: &str, r: CallToolResult) -> ToolOutput {
    let mut parts: Vec<String> = r.content.iter().map(block_text).collect();
    if parts.is_empty()
        && let Some(structured) = &r.structured_content
    {
        parts.push(structured.to_string());
    }
    let text = parts.join("\n");
    if r.is_error == Some(true) {
        let text = if text.trim().is_empty() { "(no details given)".to_string() } else { text };
        ToolOutput::error(format!("MCP server '{server}' reported an error from '{tool}': {text}"))
    } else {
        ToolOutput::text(text)
    }
}

fn block_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(t) => t.text.clone(),
        ContentBlock::Image(i) => format!("[image {}, {} bytes of base64]", i.mime_type, i.data.len()),
        ContentBlock::Audio(a) => format!("[audio {}, {} bytes of base64]", a.mime_type, a.data.len()),
        ContentBlock::Resource(r) => match &r.resource {
            ResourceContents::TextResourceContents { text, .. } => text.clone(),
            ResourceContents::BlobResourceContents { uri, .. } => format!("[resource {uri}]"),
            _ => "[resource]".to_string(),
        },
        ContentBlock::ResourceLink(l) => format!("[resource link {} ({})]", l.uri, l.name),
        _ => "[content of a kind orch does not show]".to_string(),
    }
}
