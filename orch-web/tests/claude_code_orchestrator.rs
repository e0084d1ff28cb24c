//! A `claude-code` orchestrator: its turn runs the (fake) Claude Code CLI, which gets the management
//! tools over MCP (`--mcp-config`, an endpoint of this process) and calls `mcp__mgmt__create_agent`
//! through it; the agent is created on this engine. The fake (tests/fixtures/fake_claude.py) replays
//! tests/fixtures/claude/orchestrator_mcp.jsonl and makes the MCP call over HTTP as the CLI does.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orch_core::executor::{AgentRunner, ClaudeCodeConfig, ClaudeCodeExecutor, NativeExecutor, RoutingExecutor};
use orch_core::model::scripted::ScriptedModel;
use orch_core::orchestrator::{ManagerConfig, Orchestrator, OrchestratorConfig};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::wire::Event;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claude_code_orchestrator_creates_an_agent_through_its_mcp_tools() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let work = work.canonicalize().unwrap();
    let argv_file = dir.path().join("argv.jsonl");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = Arc::new(ScriptedModel::from_json_str(r#"{"steps": []}"#).unwrap());
    let claude = ClaudeCodeConfig::from_env()
        .with_binary(fixture("fake_claude.py"))
        .with_relay_command(vec![env!("CARGO_BIN_EXE_orch").to_string(), "hook-relay".to_string()])
        .with_env("FAKE_CLAUDE_TRANSCRIPT", fixture("claude/orchestrator_mcp.jsonl").to_string_lossy())
        .with_env("FAKE_CLAUDE_ARGV_FILE", argv_file.to_string_lossy());
    let router: Arc<RoutingExecutor> = Arc::new(
        RoutingExecutor::new(Arc::new(NativeExecutor::new(model.clone())))
            .with_claude_code(Arc::new(ClaudeCodeExecutor::new(claude))),
    );
    let agents = AgentRunner::builder(store.clone(), model.clone()).executor(router.clone()).build();
    let orch = Orchestrator::builder(agents, model)
        .config(OrchestratorConfig::new(&work, "claude-code:sonnet"))
        .manager_config(ManagerConfig::new(&work, "sonnet"))
        .executor(router)
        .open()
        .await
        .expect("a claude-code orchestrator opens");

    let turn = orch.chat("make a scout agent", None).await.unwrap();
    assert_eq!(turn.reply.as_deref(), Some("The scout agent is ready."));

    // The CLI's tool call reached orch: the agent exists, created by this orchestrator.
    let scout = orch.manager().agent("scout").await.expect("the CLI's create_agent created scout");
    assert_eq!(scout.orchestrator_id, Some(orch.id()));

    // The CLI was given the endpoint and the tools, pre-approved, under Claude Code's MCP names.
    let argv: Vec<Vec<String>> =
        std::fs::read_to_string(&argv_file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(argv.len(), 1);
    let flag = |name: &str| argv[0].iter().position(|a| a == name).map(|i| argv[0][i + 1].clone());
    let config_file = flag("--mcp-config").expect("--mcp-config is passed");
    assert!(!Path::new(&config_file).exists(), "the MCP config (it holds a token) is removed after the turn");
    let allowed = flag("--allowedTools").unwrap();
    for tool in ["mcp__mgmt__create_agent", "mcp__mgmt__command_agent", "Read", "Bash"] {
        assert!(allowed.split(',').any(|t| t == tool), "{tool} is pre-approved: {allowed}");
    }

    // The log tells the story: the CLI's call, the agent's creation, and the tool's answer to the CLI.
    let events = store.read_events(&EventQuery::after(0)).await.unwrap();
    let use_seq = events
        .iter()
        .find(|r| matches!(&r.event, Event::ToolUse { tool_name, .. } if tool_name == "mcp__mgmt__create_agent"))
        .map(|r| r.seq)
        .expect("the CLI's tool call is an event");
    assert!(events.iter().any(|r| matches!(&r.event, Event::AgentCreated { agent } if agent.name == "scout")));
    let result = events
        .iter()
        .find_map(|r| match &r.event {
            Event::ToolResult { tool_name, content, is_error, .. } if tool_name == "mcp__mgmt__create_agent" => {
                Some((r.seq, content.clone(), *is_error))
            }
            _ => None,
        })
        .expect("the tool's result is an event");
    assert!(result.0 > use_seq);
    assert!(!result.2, "{}", result.1);
    assert!(result.1.contains("scout"), "the CLI got create_agent's answer: {}", result.1);
}
