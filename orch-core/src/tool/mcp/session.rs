//! [`McpSession`]: the MCP servers of one turn, started together and stopped together.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rmcp::ServiceExt;
use rmcp::service::{RoleClient, RunningService};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::config::{McpConfig, ServerConfig};
use super::remote::McpTool;
use super::{MAX_TOOL_NAME, McpSettings, names_whole_server, server_wanted, tool_name};
use crate::tool::ToolRegistry;

/// Bytes of a stdio server's stderr kept, for the message when it fails to start.
const STDERR_TAIL: usize = 2000;

/// A server that could not be used this turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpProblem {
    /// The server's name (empty when `.mcp.json` itself is at fault).
    pub server: String,
    /// What went wrong, worded to follow the server's name.
    pub message: String,
}

impl std::fmt::Display for McpProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.server.is_empty() {
            true => f.write_str(&self.message),
            false => write!(f, "MCP server '{}' {}", self.server, self.message),
        }
    }
}

impl std::error::Error for McpProblem {}

/// The MCP servers of one turn and their tools. Stop it with [`McpSession::shutdown`]; dropping it
/// kills what is left of the stdio servers' process groups too.
#[derive(Default)]
pub struct McpSession {
    servers: Vec<Connected>,
    tools: ToolRegistry,
    problems: Vec<McpProblem>,
}

impl std::fmt::Debug for McpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpSession")
            .field("servers", &self.servers.iter().map(|s| &s.name).collect::<Vec<_>>())
            .field("tools", &self.tools)
            .field("problems", &self.problems)
            .finish()
    }
}

/// A started server.
struct Connected {
    name: String,
    client: Option<RunningService<RoleClient, ()>>,
    child: Option<tokio::process::Child>,
}

impl Drop for Connected {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            crate::runtime::kill_child_group(child);
        }
    }
}

impl McpSession {
    /// Starts the servers of `<dir>/.mcp.json` that a turn allowed `allowed` tools (`None`: all) may
    /// use, each within the startup timeout, all at once. Servers that cannot be started are
    /// [`McpSession::problems`]; the others' tools are [`McpSession::tools`].
    pub async fn start(dir: &Path, allowed: Option<&[String]>, settings: &McpSettings) -> Self {
        let config = McpConfig::load(dir);
        let mut session = Self::default();
        for p in config.problems {
            let message = match p.server.is_empty() {
                true => format!("{} {}", p.file.display(), p.message),
                false => p.message,
            };
            session.problems.push(McpProblem { server: p.server, message });
        }
        let wanted = config.servers.into_iter().filter(|(name, _)| server_wanted(name, allowed));
        let started = futures::future::join_all(wanted.map(|(name, c)| connect(name, c, dir, settings))).await;
        for result in started {
            match result {
                Ok((connected, tools)) => {
                    for t in tools {
                        session.tools.register_arc(Arc::new(t));
                    }
                    session.servers.push(connected);
                }
                Err(problem) => session.problems.push(problem),
            }
        }
        session
    }

    /// The started servers' tools.
    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// The servers that could not be started, and why.
    pub fn problems(&self) -> &[McpProblem] {
        &self.problems
    }

    /// The names of the started servers.
    pub fn servers(&self) -> Vec<&str> {
        self.servers.iter().map(|s| s.name.as_str()).collect()
    }

    /// The process ids of the started stdio servers (each leads its own process group).
    pub fn pids(&self) -> Vec<u32> {
        self.servers.iter().filter_map(|s| s.child.as_ref().and_then(tokio::process::Child::id)).collect()
    }

    /// `allowed` with each entry that names a whole server (`mcp__github`, `mcp__github__*`) replaced by
    /// the names of that server's tools, so [`ToolRegistry::only`] keeps them.
    pub fn expand_allowed(&self, allowed: &[String]) -> Vec<String> {
        let mut out = Vec::with_capacity(allowed.len());
        for entry in allowed {
            let whole: Vec<&str> =
                self.servers.iter().filter(|s| names_whole_server(entry, &s.name)).map(|s| s.name.as_str()).collect();
            if whole.is_empty() {
                out.push(entry.clone());
                continue;
            }
            for server in whole {
                let prefix = tool_name(server, "");
                out.extend(self.tools.names().into_iter().filter(|n| n.starts_with(&prefix)).map(str::to_string));
            }
        }
        out
    }

    /// Stops every server: the MCP session is closed, and a stdio server's process group is killed and
    /// the server reaped.
    pub async fn shutdown(mut self) {
        for mut s in std::mem::take(&mut self.servers) {
            if let Some(client) = s.client.take() {
                // Closing the transport lets a well-behaved server end by itself; it gets little time.
                let closing = tokio::time::timeout(std::time::Duration::from_millis(500), client.cancel()).await;
                if closing.is_err() {
                    tracing::debug!(server = %s.name, "MCP session did not close in time");
                }
            }
            if let Some(mut child) = s.child.take() {
                crate::runtime::kill_child_group(&mut child);
                if tokio::time::timeout(std::time::Duration::from_secs(5), child.wait()).await.is_err() {
                    tracing::warn!(server = %s.name, "MCP server process not reaped after SIGKILL");
                }
            }
        }
    }
}

/// Starts one server and lists its tools, within the startup timeout.
async fn connect(
    name: String,
    config: ServerConfig,
    dir: &Path,
    settings: &McpSettings,
) -> Result<(Connected, Vec<McpTool>), McpProblem> {
    let problem = |message: String| McpProblem { server: name.clone(), message };
    let mut connected = Connected { name: name.clone(), client: None, child: None };
    let mut stderr_tail: Option<Arc<Mutex<String>>> = None;
    let started = tokio::time::timeout(settings.startup_timeout, async {
        let client = match &config {
            ServerConfig::Stdio { command, args, env } => {
                let mut cmd = tokio::process::Command::new(command);
                cmd.args(args)
                    .envs(env)
                    .current_dir(dir)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                #[cfg(unix)]
                cmd.process_group(0);
                let mut child = cmd.spawn().map_err(|e| format!("could not be started: `{command}`: {e}"))?;
                let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                    return Err("could not be started: its stdin or stdout is not a pipe".to_string());
                };
                if let Some(stderr) = child.stderr.take() {
                    stderr_tail = Some(keep_tail(stderr, name.clone()));
                }
                connected.child = Some(child);
                ().serve((stdout, stdin)).await.map_err(|e| format!("did not complete the MCP handshake: {e}"))?
            }
            ServerConfig::Http { url, headers } => {
                let transport = http_transport(url, headers)?;
                ().serve(transport).await.map_err(|e| format!("at {url} did not complete the MCP handshake: {e}"))?
            }
        };
        let listed = client.peer().list_all_tools().await.map_err(|e| format!("did not list its tools: {e}"));
        connected.client = Some(client);
        listed
    })
    .await;
    let tail = || {
        stderr_tail
            .as_ref()
            .map(|t| t.lock().unwrap_or_else(|p| p.into_inner()).trim().to_string())
            .filter(|t| !t.is_empty())
            .map(|t| format!("; its stderr ends with: {t}"))
            .unwrap_or_default()
    };
    let listed = match started {
        Ok(Ok(listed)) => listed,
        Ok(Err(message)) => {
            // Give a server that crashed a moment to have written why.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            return Err(problem(format!("{message}{}", tail())));
        }
        Err(_) => {
            return Err(problem(format!(
                "did not start within {} s (MCP_TIMEOUT){}",
                settings.startup_timeout.as_secs_f64(),
                tail()
            )));
        }
    };
    let Some(peer) = connected.client.as_ref().map(|c| c.peer().clone()) else {
        return Err(problem("did not start".into()));
    };
    let mut tools = Vec::with_capacity(listed.len());
    for t in listed {
        let full = tool_name(&name, &t.name);
        if full.len() > MAX_TOOL_NAME {
            tracing::warn!(server = %name, tool = %t.name, "MCP tool left out: its name is over {MAX_TOOL_NAME} characters");
            continue;
        }
        tools.push(McpTool {
            name: full,
            server: name.clone(),
            remote_name: t.name.to_string(),
            description: t.description.as_deref().unwrap_or_default().to_string(),
            schema: Value::Object((*t.input_schema).clone()),
            peer: peer.clone(),
            timeout: settings.call_timeout,
        });
    }
    tracing::debug!(server = %name, tools = tools.len(), "MCP server started");
    Ok((connected, tools))
}

/// The streamable HTTP transport to `url`, with `headers` on every request.
fn http_transport(
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<rmcp::transport::StreamableHttpClientTransport<reqwest13::Client>, String> {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    // reqwest's rustls has no crypto provider of its own here: ring, installed once per process
    // (a provider installed earlier by the host is kept).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut custom = HashMap::new();
    for (k, v) in headers {
        let name =
            http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("has a bad header name {k:?}: {e}"))?;
        let value = http::HeaderValue::from_str(v).map_err(|e| format!("has a bad value for header {k}: {e}"))?;
        custom.insert(name, value);
    }
    let client = reqwest13::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest13::redirect::Policy::none())
        .build()
        .map_err(|e| format!("has no HTTP client: {e}"))?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(custom);
    Ok(rmcp::transport::StreamableHttpClientTransport::with_client(client, config))
}

/// Reads a server's stderr to its end in the background, keeping the last bytes (lossy UTF-8).
fn keep_tail(mut stderr: tokio::process::ChildStderr, server: String) -> Arc<Mutex<String>> {
    let tail = Arc::new(Mutex::new(String::new()));
    let kept = tail.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let chunk = String::from_utf8_lossy(&buf[..n]);
                    tracing::trace!(%server, stderr = %chunk, "MCP server stderr");
                    let mut t = kept.lock().unwrap_or_else(|p| p.into_inner());
                    t.push_str(&chunk);
                    if t.len() > STDERR_TAIL {
                        let mut cut = t.len() - STDERR_TAIL;
                        while !t.is_char_boundary(cut) {
                            cut += 1;
                        }
                        t.drain(..cut);
                    }
                }
            }
        }
    });
    tail
}
