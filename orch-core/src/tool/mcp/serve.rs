//! [`ToolEndpoint`]: orch tools served to an MCP client for a while, over streamable HTTP on
//! `127.0.0.1` (a port of its own), behind a bearer token made for it. The Claude Code executor gives the
//! CLI the tools it does not have itself this way (the orchestrator's management tools, tools a host
//! added): the CLI's calls run the tools in this process, on this engine.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool as McpToolSpec,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::tool::{ToolContext, ToolRegistry};

/// The tools of a registry as an MCP server (any rmcp transport: stdio, streamable HTTP, a
/// [`ToolEndpoint`]). Their names, descriptions and input schemas are listed as they are; a call runs
/// the tool with a copy of one context (a call id of its own), and a tool's failure is a tool result
/// marked as an error, which the client's model reads, never a protocol error. Cheap to clone: every
/// session shares the tools.
#[derive(Clone)]
pub struct ToolServer {
    tools: Arc<ToolRegistry>,
    context: ToolContext,
    instructions: Option<Arc<str>>,
}

impl ToolServer {
    /// Serves `tools`; calls run with `context`.
    pub fn new(tools: ToolRegistry, context: ToolContext) -> Self {
        Self { tools: Arc::new(tools), context, instructions: None }
    }

    /// Tells clients what the server is for (the `instructions` of its initialize result).
    pub fn with_instructions(mut self, instructions: &str) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// The names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools.names().into_iter().map(str::to_string).collect()
    }
}

impl ServerHandler for ToolServer {
    fn get_info(&self) -> InitializeResult {
        let info = InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("orch", env!("CARGO_PKG_VERSION")));
        match &self.instructions {
            Some(text) => info.with_instructions(text.to_string()),
            None => info,
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .tools
            .specs()
            .into_iter()
            .map(|s| {
                let schema = match s.input_schema {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                McpToolSpec::new(s.name, s.description, Arc::new(schema))
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = self.tools.get(&request.name).cloned() else {
            return Err(ErrorData::invalid_params(format!("no tool named '{}'", request.name), None));
        };
        let mut ctx = self.context.clone();
        ctx.tool_use_id = format!("mcp_{}", crate::wire::new_id().simple());
        let input = Value::Object(request.arguments.unwrap_or_default());
        // A tool's failure is a result the client's model reads, not a protocol error.
        let result = match tool.call(&ctx, input).await {
            Ok(out) if out.is_error => CallToolResult::error(vec![ContentBlock::text(out.content)]),
            Ok(out) => CallToolResult::success(vec![ContentBlock::text(out.content)]),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
        };
        Ok(result.into())
    }
}

/// Tools served over MCP until [`ToolEndpoint::stop`] (or drop).
pub struct ToolEndpoint {
    url: String,
    token: String,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ToolEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret.
        f.debug_struct("ToolEndpoint").field("url", &self.url).finish_non_exhaustive()
    }
}

impl ToolEndpoint {
    /// Serves `tools` at `http://127.0.0.1:PORT/mcp`; calls run with `context` (a fresh call id each).
    pub async fn start(tools: ToolRegistry, context: ToolContext) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let url = format!("http://{}/mcp", listener.local_addr()?);
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let server = ToolServer::new(tools, context);
        let mut config = StreamableHttpServerConfig::default();
        config.json_response = true;
        let service: Arc<StreamableHttpService<ToolServer, LocalSessionManager>> =
            Arc::new(StreamableHttpService::new(move || Ok(server.clone()), Arc::default(), config));
        let expected = format!("Bearer {token}");
        let task = tokio::spawn(async move {
            // The connections end with the endpoint: dropping the set aborts them.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "MCP tool endpoint: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (service, expected) = (service.clone(), expected.clone());
                connections.spawn(async move {
                    let handle = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (service, expected) = (service.clone(), expected.clone());
                        async move {
                            let authorized = req
                                .headers()
                                .get(http::header::AUTHORIZATION)
                                .is_some_and(|v| v.as_bytes() == expected.as_bytes());
                            if !authorized {
                                return Ok::<_, Infallible>(unauthorized());
                            }
                            Ok(service.handle(req).await)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, handle).await {
                        tracing::debug!(error = %e, "MCP tool endpoint: connection ended");
                    }
                });
                // Reap the connections that ended.
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self { url, token, task })
    }

    /// The endpoint's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bearer token every request must carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A `.mcp.json`-shaped document (Claude Code's `--mcp-config`) naming this endpoint as server
    /// `name`.
    pub fn mcp_config(&self, name: &str) -> Value {
        json!({"mcpServers": {name: {
            "type": "http",
            "url": self.url,
            "headers": {"Authorization": format!("Bearer {}", self.token)},
        }}})
    }

    /// Stops serving; calls in progress are dropped.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ToolEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unauthorized() -> http::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    let mut r = http::Response::new(http_body_util::Full::new(Bytes::from_static(b"unauthorized\n")).boxed());
    *r.status_mut() = http::StatusCode::UNAUTHORIZED;
    r
}
