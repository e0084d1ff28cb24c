//! The MCP client: an agent uses the tools of the MCP servers in its `.mcp.json`, named
//! `mcp__<server>__<tool>`, over stdio (the `orch-mcp-stub` binary) and streamable HTTP (the same stub
//! served by rmcp on 127.0.0.1:0 in the test). A `.claude/settings.json` PreToolUse hook matching
//! `mcp__.*` denies a call; a server that cannot start is an error event and the run goes on; a tool
//! that hangs times out; after the run no server process is left.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orch_core::hook::HookRegistry;
use orch_core::model::scripted::ScriptReply;
use orch_core::prelude::*;
use orch_core::tool::mcp::McpSettings;
use orch_tests::mcp_stub::process_gone;
use serde_json::{Value, json};

const STUB: &str = env!("CARGO_BIN_EXE_orch-mcp-stub");

/// What the model saw in one request: the names of the tools offered, and the messages as JSON text.
type Seen = (Vec<String>, String);

/// A model that makes these tool calls in turn, then answers "done"; it keeps what each request showed.
struct Script {
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn scripted(calls: Vec<(&'static str, Value)>) -> (ScriptedModel, Script) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let mut seen = kept.lock().unwrap();
        let names = req.tools.iter().map(|t| t.name.clone()).collect();
        seen.push((names, serde_json::to_string(&*req.messages).unwrap()));
        let i = seen.len() - 1;
        Ok(match calls.get(i) {
            Some((name, input)) => ScriptReply::tool_use(format!("call_{i}"), *name, input.clone()),
            None => ScriptReply::text("done"),
        })
    });
    (model, Script { seen })
}

fn write_mcp_json(dir: &Path, servers: Value) {
    std::fs::write(dir.join(".mcp.json"), json!({"mcpServers": servers}).to_string()).unwrap();
}

/// A stdio entry for the stub that writes its pids to `<dir>/pids`.
fn stub_entry(dir: &Path, grandchild: bool) -> Value {
    let args: Vec<&str> = if grandchild { vec!["--grandchild"] } else { vec![] };
    json!({"command": STUB, "args": args, "env": {"STUB_PID_FILE": dir.join("pids").to_str().unwrap()}})
}

fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("pids")).unwrap_or_default().lines().map(|l| l.parse().unwrap()).collect()
}

/// The run's tool results by call id: (content, is_error).
async fn results(store: &Arc<dyn Store>) -> Vec<(String, String, bool)> {
    store
        .read_events(&EventQuery::after(0))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::ToolResult { tool_use_id, content, is_error, .. } => Some((tool_use_id, content, is_error)),
            _ => None,
        })
        .collect()
}

async fn system_errors(store: &Arc<dyn Store>) -> Vec<String> {
    store
        .read_events(&EventQuery::after(0))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::SystemLog { level: LogLevel::Error, message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

fn runner(store: Arc<dyn Store>, model: ScriptedModel, hooks: HookRegistry, settings: McpSettings) -> AgentRunner {
    AgentRunner::builder(store, Arc::new(model)).hooks(hooks).mcp_settings(settings).build()
}

fn short_settings() -> McpSettings {
    McpSettings { startup_timeout: Duration::from_secs(20), call_timeout: Duration::from_millis(300) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_calls_a_stdio_mcp_tool_a_hook_denies_one_and_the_server_is_gone_after_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_mcp_json(d, json!({"stub": stub_entry(d, true)}));
    // Claude Code's hook file, unchanged: a PreToolUse command hook on `mcp__.*` that blocks calls
    // whose input says "forbidden" (exit 2, the reason on stderr).
    std::fs::create_dir_all(d.join(".claude")).unwrap();
    let hook = "if grep -q forbidden; then echo 'no forbidden words' >&2; exit 2; fi";
    std::fs::write(
        d.join(".claude/settings.json"),
        json!({"hooks": {"PreToolUse": [{"matcher": "mcp__.*", "hooks": [{"type": "command", "command": hook}]}]}})
            .to_string(),
    )
    .unwrap();
    let mut hooks = HookRegistry::new();
    let problems = orch_core::hook::command::register_settings_hooks(&mut hooks, d);
    assert!(problems.is_empty(), "{problems:?}");

    let (model, script) = scripted(vec![
        ("mcp__stub__echo", json!({"text": "hello over stdio"})),
        ("mcp__stub__echo", json!({"text": "forbidden"})),
        ("mcp__stub__fail", json!({})),
    ]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner(store.clone(), model, hooks, short_settings());
    let agent = runner.ensure_agent("mcp-user", "scripted", d.to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "use the stub", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("done"));

    let seen = script.seen.lock().unwrap().clone();
    for tool in ["mcp__stub__echo", "mcp__stub__fail", "mcp__stub__hang", "mcp__stub__pid", "Read"] {
        assert!(seen[0].0.iter().any(|n| n == tool), "{tool} is offered: {:?}", seen[0].0);
    }
    assert!(seen[1].1.contains("echo: hello over stdio"), "the result reached the model: {}", seen[1].1);

    let results = results(&store).await;
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0], ("call_0".into(), "echo: hello over stdio".into(), false));
    assert!(results[1].2 && results[1].1.contains("no forbidden words"), "the hook denied it: {results:?}");
    assert!(
        results[2].2 && results[2].1.contains("MCP server 'stub'") && results[2].1.contains("failed on purpose"),
        "a tool error names the server: {results:?}"
    );

    let pids = pids(d);
    assert_eq!(pids.len(), 2, "the stub and its grandchild wrote their pids: {pids:?}");
    for pid in pids {
        assert!(process_gone(pid), "process {pid} of the server's group is left after the run");
    }
}

/// `echo` in Rust, served over streamable HTTP by orch's own MCP endpoint (rmcp's server).
struct Echo;

#[async_trait::async_trait]
impl Tool for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn description(&self) -> &str {
        "Echoes its text."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"text": {"type": "string"}}})
    }
    async fn call(&self, _ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text(format!("echo: {}", input["text"].as_str().unwrap_or_default())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_calls_a_tool_over_streamable_http_with_the_headers_of_mcp_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut served = ToolRegistry::new();
    served.register(Echo);
    let context = ToolContext {
        working_dir: d.to_path_buf(),
        agent_id: new_id(),
        agent_name: "server".into(),
        tool_use_id: String::new(),
        interrupt: Interrupt::new(),
        runtime: Arc::new(TokioRuntime),
    };
    // rmcp's streamable HTTP server on 127.0.0.1:0; every request must carry its bearer token.
    let endpoint = orch_core::tool::mcp::ToolEndpoint::start(served, context).await.unwrap();
    assert!(endpoint.url().starts_with("http://127.0.0.1:"), "{}", endpoint.url());
    write_mcp_json(
        d,
        json!({
            "web": {"type": "http", "url": endpoint.url(),
                    "headers": {"Authorization": format!("Bearer ${{ORCH_TEST_UNSET_TOKEN:-{}}}", endpoint.token())}},
            "locked": {"type": "http", "url": endpoint.url(), "headers": {"Authorization": "Bearer wrong"}},
        }),
    );
    let (model, script) = scripted(vec![("mcp__web__echo", json!({"text": "hello over http"}))]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner(store.clone(), model, HookRegistry::new(), short_settings());
    let agent = runner.ensure_agent("http-user", "scripted", d.to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "use the web tool", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("done"));
    assert!(script.seen.lock().unwrap()[1].1.contains("echo: hello over http"));
    assert_eq!(results(&store).await, vec![("call_0".into(), "echo: hello over http".into(), false)]);
    // The headers of .mcp.json (the variable's default expanded) reached the server: without the right
    // token a server does not start, and says so.
    let errors = system_errors(&store).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("MCP server 'locked'"), "{errors:?}");
    endpoint.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_start_is_an_error_event_and_the_run_goes_on_with_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_mcp_json(
        d,
        json!({"ghost": {"command": d.join("no-such-mcp-server").to_str().unwrap()}, "stub": stub_entry(d, false)}),
    );
    let (model, script) = scripted(vec![("mcp__stub__echo", json!({"text": "still here"}))]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner(store.clone(), model, HookRegistry::new(), short_settings());
    let agent = runner.ensure_agent("ghost-user", "scripted", d.to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "go", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("done"));
    let errors = system_errors(&store).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("MCP server 'ghost'") && errors[0].contains("could not be started"),
        "the event names the server and what failed: {errors:?}"
    );
    let offered = script.seen.lock().unwrap()[0].0.clone();
    assert!(offered.iter().any(|n| n == "mcp__stub__echo") && !offered.iter().any(|n| n.starts_with("mcp__ghost")));
    assert_eq!(results(&store).await, vec![("call_0".into(), "echo: still here".into(), false)]);

    // A turn whose allowed tools name none of the stub's does not start it.
    let before = pids(d).len();
    let (model, script) = scripted(vec![]);
    let runner2 = AgentRunner::builder(store.clone(), Arc::new(model)).mcp_settings(short_settings()).build();
    let only_read = RunOptions { allowed_tools: Some(vec!["Read".into()]), ..RunOptions::default() };
    runner2.run(agent.id, "again", only_read).await.unwrap();
    assert_eq!(pids(d).len(), before, "no server started for a turn that may not use it");
    assert_eq!(script.seen.lock().unwrap()[0].0, vec!["Read".to_string()]);
    // `mcp__stub` (Claude Code's rule for a whole server) allows every tool of it.
    let (model, script) = scripted(vec![]);
    let runner3 = AgentRunner::builder(store.clone(), Arc::new(model)).mcp_settings(short_settings()).build();
    let whole = RunOptions { allowed_tools: Some(vec!["mcp__stub".into()]), ..RunOptions::default() };
    runner3.run(agent.id, "and again", whole).await.unwrap();
    let offered = script.seen.lock().unwrap()[0].0.clone();
    assert_eq!(offered, ["mcp__stub__echo", "mcp__stub__fail", "mcp__stub__hang", "mcp__stub__pid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_that_hangs_times_out_with_an_error_naming_the_server_and_the_server_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_mcp_json(d, json!({"stub": stub_entry(d, false)}));
    let (model, _script) = scripted(vec![("mcp__stub__hang", json!({}))]);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner(store.clone(), model, HookRegistry::new(), short_settings());
    let agent = runner.ensure_agent("patient", "scripted", d.to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "wait for it", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("done"));
    let results = results(&store).await;
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].2, "{results:?}");
    assert!(
        results[0].1.contains("MCP server 'stub' did not answer the call of 'hang'")
            && results[0].1.contains("MCP_TOOL_TIMEOUT"),
        "{results:?}"
    );
    for pid in pids(d) {
        assert!(process_gone(pid), "server process {pid} left after the run");
    }
}
