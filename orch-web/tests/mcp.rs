//! orch as an MCP server, spoken to as MCP clients do: `orch mcp` over stdio through the official Rust
//! SDK's client (create and command an agent, plan and run a graph, claim and complete its task), and
//! `/mcp` on `orch serve` over streamable HTTP (initialize and list the tools; the token guards it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use support::scripted;
use support::server;

type Client = RunningService<RoleClient, ()>;

/// The text of a tool result.
fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

async fn call(client: &Client, name: &str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else { panic!("arguments are an object") };
    client.call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(map)).await.unwrap()
}

/// A tool's JSON result (panics when the call failed).
async fn call_ok(client: &Client, name: &str, args: Value) -> Value {
    let r = call(client, name, args).await;
    assert_ne!(r.is_error, Some(true), "{name} failed: {}", text(&r));
    serde_json::from_str(&text(&r)).unwrap_or(Value::String(text(&r)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_commands_an_agent_and_works_a_graph_task_through_orch_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = scripted(
        d,
        "model.json",
        &json!({"steps": [
            {"agent": "^alice$", "repeat": true, "reply": [{"type": "text", "text": "hello from alice"}]},
        ]}),
    );
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_orch"));
    cmd.arg("--cwd").arg(d).args(["--model", &model, "mcp"]).env_remove("ORCH_MODEL").env_remove("ANTHROPIC_API_KEY");
    let client: Client = ().serve(TokioChildProcess::new(cmd).unwrap()).await.unwrap();

    let info = client.peer_info().expect("the server introduced itself");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("orch"));
    let names: Vec<String> = client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    for tool in [
        "create_agent",
        "command_agent",
        "check_agent_status",
        "start_adw",
        "plan_graph",
        "claim_task",
        "complete_task",
    ] {
        assert!(names.iter().any(|n| n == tool), "{tool} is offered: {names:?}");
    }

    // An agent, commanded; its run goes on in `orch mcp` and its status says how it ended.
    let created = call(&client, "create_agent", json!({"name": "alice", "system_prompt": "You greet."})).await;
    assert_ne!(created.is_error, Some(true), "{}", text(&created));
    let commanded = call(&client, "command_agent", json!({"agent_name": "alice", "command": "greet"})).await;
    assert_ne!(commanded.is_error, Some(true), "{}", text(&commanded));
    let start = Instant::now();
    loop {
        let status = text(&call(&client, "check_agent_status", json!({"agent_name": "alice"})).await);
        if status.contains("hello from alice") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "alice's run did not finish: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let missing = call(&client, "command_agent", json!({"agent_name": "nobody", "command": "x"})).await;
    assert_eq!(missing.is_error, Some(true), "an unknown agent is a tool error: {}", text(&missing));
    assert!(text(&missing).contains("nobody"), "{}", text(&missing));

    // A graph planned from tasks, approved and run; this client works its task as an external worker.
    let plan = call_ok(&client, "plan_graph", json!({"tasks": [{"id": "greet", "title": "Write the greeting"}]})).await;
    let plan_id = plan["plan_id"].as_str().unwrap().to_string();
    call_ok(&client, "approve_plan", json!({"plan_id": plan_id})).await;
    let graph = call_ok(&client, "run_graph", json!({"plan_id": plan_id})).await;
    let graph_id = graph["graph_id"].as_str().unwrap().to_string();
    assert_eq!(graph["status"], "running", "{graph}");
    let task = call_ok(&client, "claim_task", json!({"worker": "claude-1", "graph_id": graph_id})).await;
    assert!(task["prompt"].as_str().unwrap().contains("Write the greeting"), "{task}");
    let (task_id, attempt) = (task["task_id"].as_str().unwrap().to_string(), task["attempt"].as_u64().unwrap());
    call_ok(&client, "heartbeat_task", json!({"task_id": task_id, "worker": "claude-1", "attempt": attempt})).await;
    let wrong = call(
        &client,
        "complete_task",
        json!({"task_id": task_id, "worker": "someone-else", "attempt": attempt, "output": "x"}),
    )
    .await;
    assert_eq!(wrong.is_error, Some(true), "only the claiming worker reports: {}", text(&wrong));
    let done = call_ok(
        &client,
        "complete_task",
        json!({"task_id": task_id, "worker": "claude-1", "attempt": attempt, "output": "Hello!", "cost_usd": 0.01}),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    let status = call_ok(&client, "graph_status", json!({"graph_id": graph_id})).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert!((status["cost_usd"].as_f64().unwrap() - 0.01).abs() < 1e-9, "{status}");
    let bad = call(&client, "run_graph", json!({"plan_id": "not-an-id"})).await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text(&bad).contains("not-an-id"), "{}", text(&bad));
    client.cancel().await.unwrap();
}

/// Posts one JSON-RPC message to `/mcp`: the status, the session header, and the JSON-RPC answer (read
/// from a JSON body or from the `data:` line of a server-sent event).
async fn rpc(base: &str, session: Option<&str>, token: Option<&str>, body: Value) -> (u16, Option<String>, Value) {
    let mut req = server::client()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let session = r.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = r.text().await.unwrap();
    let value = serde_json::from_str(&text).ok().or_else(|| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
    });
    (status, session, value.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orch_serve_offers_the_tools_at_mcp_behind_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let model = scripted(
        dir.path(),
        "m.json",
        &json!({"steps": [{"repeat": true, "reply": [{"type": "text", "text": "ok"}]}]}),
    );
    let srv = server::start(dir.path(), &model, &["--token", "t0ken"], &[]);
    let base = srv.base.as_str();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let (s, _, _) = rpc(base, None, None, init.clone()).await;
    assert_eq!(s, 401, "no token, no MCP");
    let (s, session, v) = rpc(base, None, Some("t0ken"), init).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["serverInfo"]["name"], "orch", "{v}");
    let session = session.as_deref();
    let (s, _, _) =
        rpc(base, session, Some("t0ken"), json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    assert!(s == 202 || s == 200, "{s}");
    let (s, _, v) = rpc(base, session, Some("t0ken"), json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    assert_eq!(s, 200, "{v}");
    let tools: Vec<&str> = v["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(tools.contains(&"claim_task") && tools.contains(&"create_agent"), "{tools:?}");
    let (_, _, v) = rpc(
        base,
        session,
        Some("t0ken"),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_agents", "arguments": {}}}),
    )
    .await;
    assert!(v["result"]["content"][0]["text"].is_string(), "{v}");
}
