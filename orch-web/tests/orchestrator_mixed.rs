//! One orchestrator commanding a native agent on the scripted model and an agent on the (fake) Claude
//! Code CLI: both runs give the same kinds of events, costs and status changes.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use orch_core::executor::{AgentRunner, ClaudeCodeConfig, ClaudeCodeExecutor, NativeExecutor, RoutingExecutor};
use orch_core::model::scripted::ScriptedModel;
use orch_core::orchestrator::{ManagerConfig, Orchestrator, OrchestratorConfig};
use orch_core::store::{EventQuery, Store};
use orch_core::wire::{AgentStatus, Event, EventRecord, Id};
use orch_store_sqlite::SqliteStore;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

const SCRIPT: &str = r#"{"steps": [
  {"agent": "^orchestrator$", "when": "^make",
   "reply": [{"type": "tool_use", "id": "c1", "name": "create_agent", "input": {"name": "alice", "system_prompt": "You write files.", "model": "sonnet"}},
             {"type": "tool_use", "id": "c2", "name": "create_agent", "input": {"name": "bob", "system_prompt": "You write files.", "model": "claude-code:sonnet"}}]},
  {"agent": "^orchestrator$", "when": "Created agent",
   "reply": [{"type": "tool_use", "id": "c3", "name": "command_agent", "input": {"agent_name": "alice", "command": "write target.txt"}},
             {"type": "tool_use", "id": "c4", "name": "command_agent", "input": {"agent_name": "bob", "command": "write target.txt"}}]},
  {"agent": "^orchestrator$", "when": "Command dispatched", "reply": [{"type": "text", "text": "Both are on it."}]},
  {"agent": "^alice$", "when": "target", "reply": [
     {"type": "thinking", "thinking": "The user wants a file; I will use Write."},
     {"type": "text", "text": "I'll write the file now."},
     {"type": "tool_use", "name": "Write", "input": {"file_path": "alice/target.txt", "content": "from alice\n"}}],
   "usage": {"input_tokens": 1200, "output_tokens": 80}},
  {"agent": "^alice$", "reply": [{"type": "text", "text": "Done: the file is written."}], "usage": {"input_tokens": 1300, "output_tokens": 20}}
]}"#;

/// The event kinds of an agent's run that both executors must produce.
fn kinds(evs: &[EventRecord], agent: Id) -> BTreeSet<&str> {
    evs.iter().filter(|r| r.keys.agent_id == Some(agent)).map(|r| r.event.kind()).collect()
}

#[tokio::test]
async fn native_and_claude_code_agents_under_one_orchestrator_look_alike() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("alice")).unwrap();
    let work = work.canonicalize().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("orch.db")).unwrap());
    let model = Arc::new(ScriptedModel::from_json_str(SCRIPT).unwrap());
    let claude = ClaudeCodeConfig::from_env()
        .with_binary(fixture("fake_claude.py"))
        .with_relay_command(vec![env!("CARGO_BIN_EXE_orch").to_string(), "hook-relay".to_string()])
        .with_env("FAKE_CLAUDE_TRANSCRIPT", fixture("claude/tool_use_write.jsonl").to_string_lossy())
        .with_env("FAKE_CLAUDE_ARGV_FILE", dir.path().join("argv.jsonl").to_string_lossy());
    let router = RoutingExecutor::new(Arc::new(NativeExecutor::new(model.clone())))
        .with_claude_code(Arc::new(ClaudeCodeExecutor::new(claude)));
    let agents = AgentRunner::builder(store.clone(), model.clone()).executor(Arc::new(router)).build();
    let orch = Orchestrator::builder(agents, model)
        .config(OrchestratorConfig::new(&work, "scripted"))
        .manager_config(ManagerConfig::new(&work, "sonnet"))
        .open()
        .await
        .unwrap();

    let turn = orch.chat("make two agents and have both write target.txt", None).await.unwrap();
    assert_eq!(turn.reply.as_deref(), Some("Both are on it."));
    assert_eq!(turn.started_runs.len(), 2);
    let mut reports = Vec::new();
    for t in &turn.started_runs {
        reports.push(t.wait().await);
    }
    for r in &reports {
        let o = r.result.as_ref().unwrap_or_else(|e| panic!("{} failed: {e}", r.agent_name));
        assert_eq!(o.final_text.as_deref(), Some("Done: the file is written."), "{}", r.agent_name);
        assert!(o.cost_usd > 0.0, "{} has a cost", r.agent_name);
    }
    assert_eq!(std::fs::read_to_string(work.join("alice/target.txt")).unwrap(), "from alice\n");
    assert!(work.join("target.txt").exists(), "the fake CLI performed bob's Write");

    let alice = orch.manager().agent("alice").await.unwrap();
    let bob = orch.manager().agent("bob").await.unwrap();
    assert_eq!(bob.model, "claude-code:sonnet");
    let evs = store.read_events(&EventQuery::default()).await.unwrap();
    let (ka, kb) = (kinds(&evs, alice.id), kinds(&evs, bob.id));
    for k in [
        "AgentCreated",
        "AgentStatusChanged",
        "UserPromptSubmit",
        "Thinking",
        "Text",
        "ToolUse",
        "PreToolUse",
        "PostToolUse",
        "ToolResult",
        "AgentCostsUpdated",
        "Stop",
        "Result",
        "FileTracking",
    ] {
        assert!(ka.contains(k), "native agent lacks {k}: {ka:?}");
        assert!(kb.contains(k), "claude-code agent lacks {k}: {kb:?}");
    }
    for a in [&alice, &bob] {
        let changes: Vec<(AgentStatus, AgentStatus)> = evs
            .iter()
            .filter(|r| r.keys.agent_id == Some(a.id))
            .filter_map(|r| match r.event {
                Event::AgentStatusChanged { old_status, new_status } => Some((old_status, new_status)),
                _ => None,
            })
            .collect();
        assert_eq!(
            changes,
            vec![(AgentStatus::Idle, AgentStatus::Executing), (AgentStatus::Executing, AgentStatus::Idle)],
            "{}",
            a.name
        );
        assert_eq!(a.status, AgentStatus::Idle);
        assert!(a.total_cost_usd > 0.0 && a.usage.input_tokens > 0, "{} costs accumulated: {:?}", a.name, a.usage);
        assert_eq!(a.orchestrator_id, Some(orch.id()));
        // Every event of the run carries the run's slug and the orchestrator.
        let run: Vec<&EventRecord> =
            evs.iter().filter(|r| r.keys.agent_id == Some(a.id) && r.keys.task_slug.is_some()).collect();
        assert!(run.iter().all(|r| r.keys.orchestrator_id == Some(orch.id())));
        assert!(run.iter().all(|r| r.keys.task_slug.as_deref().unwrap().starts_with("write-target-txt-")));
    }
}
