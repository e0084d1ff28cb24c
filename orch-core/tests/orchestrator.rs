//! Acceptance tests of the orchestrator, its management tools and background command agents, on the
//! in-memory store with the scripted model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orch_core::Interrupt;
use orch_core::executor::AgentRunner;
use orch_core::model::scripted::ScriptedModel;
use orch_core::orchestrator::{
    AgentManager, CreateAgent, ManageError, ManagerConfig, Orchestrator, OrchestratorConfig, REFOCUS_WARNING,
    register_management_tools,
};
use orch_core::runtime::TokioRuntime;
use orch_core::store::{Batch, Change, EventQuery, MemoryStore, Store, SystemLogQuery};
use orch_core::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use orch_core::wire::{AgentStatus, Event, EventRecord, LogLevel, Participant};
use serde_json::{Value, json};

/// A tool that waits until it is interrupted (or 30 s pass): a long job to interrupt.
struct Wait;

#[async_trait]
impl Tool for Wait {
    fn name(&self) -> &str {
        "Wait"
    }
    fn description(&self) -> &str {
        "waits"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn call(&self, ctx: &ToolContext, _input: Value) -> Result<ToolOutput, ToolError> {
        tokio::select! {
            _ = ctx.interrupt.triggered() => Err(ToolError::Interrupted),
            _ = tokio::time::sleep(Duration::from_secs(30)) => Ok(ToolOutput::text("waited 30 s")),
        }
    }
}

struct World {
    store: Arc<MemoryStore>,
    orch: Orchestrator,
    dir: tempfile::TempDir,
    tools: ToolRegistry,
}

impl World {
    fn manager(&self) -> &AgentManager {
        self.orch.manager()
    }

    /// Calls a management tool directly, as the orchestrator's model would.
    async fn call(&self, name: &str, input: Value) -> ToolOutput {
        let tool = self.tools.get(name).unwrap_or_else(|| panic!("no tool {name}"));
        let ctx = ToolContext {
            working_dir: self.dir.path().to_path_buf(),
            agent_id: self.orch.agent_id(),
            agent_name: "orchestrator".into(),
            tool_use_id: "t1".into(),
            interrupt: Interrupt::new(),
            runtime: Arc::new(TokioRuntime),
        };
        tool.call(&ctx, input).await.expect("management tools never fail the call")
    }

    async fn events(&self) -> Vec<EventRecord> {
        self.store.read_events(&EventQuery::default()).await.unwrap()
    }

    /// Until some run is inside a tool call (up to 5 s).
    async fn wait_for_tool_call(&self) {
        for _ in 0..500 {
            if self.events().await.iter().any(|r| matches!(r.event, Event::PreToolUse { .. })) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no tool call started");
    }
}

async fn world(script: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let model: Arc<ScriptedModel> = Arc::new(ScriptedModel::from_json_str(script).unwrap());
    let mut agent_tools = ToolRegistry::with_builtins();
    agent_tools.register(Wait);
    let agents = AgentRunner::builder(store.clone(), model.clone()).tools(agent_tools).build();
    let orch = Orchestrator::builder(agents, model)
        .config(OrchestratorConfig::new(dir.path(), "scripted"))
        .manager_config(ManagerConfig::new(dir.path(), "scripted"))
        .open()
        .await
        .unwrap();
    let mut tools = ToolRegistry::new();
    register_management_tools(&mut tools, orch.manager().clone(), orch.id(), orch.agent_id());
    World { store, orch, dir, tools }
}

const IDLE: &str = r#"{"steps": [{"repeat": true, "reply": [{"type": "text", "text": "ok"}]}]}"#;

async fn wait_status(store: &MemoryStore, id: orch_core::wire::Id, want: AgentStatus) {
    for _ in 0..500 {
        if store.get_agent(id).await.unwrap().unwrap().status == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("agent never became {want}");
}

#[tokio::test]
async fn create_agent_success_and_errors() {
    let w = world(IDLE).await;
    let out =
        w.call("create_agent", json!({"name": "alice", "system_prompt": "You write Python.", "model": "Opus"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.starts_with("✅ Created agent 'alice'\nID: "), "{}", out.content);
    assert!(out.content.contains("\nModel: claude-opus-4-8"), "alias resolved case-insensitively: {}", out.content);
    assert!(out.content.ends_with("Tools: all"), "{}", out.content);
    // No warm-up turn: the agent never ran.
    let alice = w.manager().agent("alice").await.unwrap();
    assert_eq!(alice.status, AgentStatus::Idle);
    assert!(w.store.list_prompts(alice.id).await.unwrap().is_empty(), "no 'Ready' turn by default");
    assert_eq!(alice.orchestrator_id, Some(w.orch.id()));

    for (input, want) in [
        (json!({}), "❌ Error: 'name' is required"),
        (json!({"name": "  "}), "❌ Error: 'name' is required"),
        (json!({"name": "bob"}), "❌ Error: invalid agent: either 'system_prompt' or 'subagent_template' is required"),
        (json!({"name": "alice", "system_prompt": "x"}), "❌ Error: Agent name 'alice' is already in use"),
        (json!({"name": 7, "system_prompt": "x"}), "❌ Error: 'name' must be a string"),
        (json!({"name": "orchestrator", "system_prompt": "x"}), "reserved for the orchestrator"),
        (json!({"name": "carol", "system_prompt": "x", "model": "anthropic:"}), "❌ Error: invalid model"),
    ] {
        let out = w.call("create_agent", input.clone()).await;
        assert!(out.is_error, "{input} should fail");
        assert!(out.content.contains(want), "{input}: {}", out.content);
    }
}

#[tokio::test]
async fn create_agent_from_template_applies_prompt_model_and_tools() {
    let w = world(IDLE).await;
    let agents_dir = w.dir.path().join(".claude/agents");
    std::fs::create_dir_all(&agents_dir).unwrap();
    std::fs::write(
        agents_dir.join("scout.md"),
        "---\nname: scout-fast\ndescription: Reads code\ntools: Read, Grep\nmodel: haiku\ncolor: blue\n---\nYou only read code.\n",
    )
    .unwrap();
    let out = w.call("create_agent", json!({"name": "s1", "subagent_template": "scout-fast", "model": "opus"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("Model: claude-haiku-4-5"), "template model wins: {}", out.content);
    assert!(out.content.contains("Template: scout-fast") && out.content.contains("Tools: Read, Grep"));
    let a = w.manager().agent("s1").await.unwrap();
    assert_eq!(a.system_prompt.as_deref(), Some("You only read code."));
    assert_eq!(a.template.as_ref().and_then(|t| t.color.as_deref()), Some("blue"));

    let out = w.call("create_agent", json!({"name": "s2", "subagent_template": "nope"})).await;
    assert!(out.is_error);
    assert!(out.content.contains("Template 'nope' not found. Available templates: scout-fast"), "{}", out.content);

    // The system prompt lists the template.
    let (prompt, problem) = w.orch.render_system_prompt();
    assert!(problem.is_none());
    assert!(prompt.contains("- **scout-fast**: Reads code"), "{prompt}");
    assert!(!prompt.contains("{{"), "placeholders filled: {prompt}");
}

#[tokio::test]
async fn template_tools_restrict_what_the_agent_may_call() {
    let script = r#"{"steps": [
        {"agent": "^s1$", "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "x.txt", "content": "x"}}]},
        {"agent": "^s1$", "reply": [{"type": "text", "text": "done"}]}
    ]}"#;
    let w = world(script).await;
    let agents_dir = w.dir.path().join(".claude/agents");
    std::fs::create_dir_all(&agents_dir).unwrap();
    std::fs::write(agents_dir.join("r.md"), "---\nname: reader\ndescription: d\ntools: [Read]\n---\nRead only.\n")
        .unwrap();
    w.call("create_agent", json!({"name": "s1", "subagent_template": "reader"})).await;
    let t = w.manager().command_agent("s1", "write x").await.unwrap();
    t.wait().await.result.unwrap();
    assert!(!w.dir.path().join("x.txt").exists(), "Write is not among the template's tools");
    let refused = w
        .events()
        .await
        .into_iter()
        .any(|r| matches!(&r.event, Event::ToolRefused { tool_name, .. } if tool_name == "Write"));
    assert!(refused, "the call was refused and recorded");
}

#[tokio::test]
async fn list_status_delete_interrupt_logs_and_cost_texts() {
    let script = r#"{"steps": [
        {"agent": "^alice$", "reply": [{"type": "text", "text": "I wrote nothing yet."}], "usage": {"input_tokens": 1200, "output_tokens": 34}}
    ]}"#;
    let w = world(script).await;
    assert_eq!(w.call("list_agents", json!({})).await.content, "No agents found");
    w.call("create_agent", json!({"name": "alice", "system_prompt": "p"})).await;
    let list = w.call("list_agents", json!({})).await.content;
    assert!(list.starts_with("📋 Active Agents:\n\n• alice (ID: "), "{list}");
    assert!(list.contains("Status: idle") && list.contains("Cost: $0.0000"), "{list}");
    assert!(!list.contains("orchestrator"), "the orchestrator's own record is not listed: {list}");

    let status = w.call("check_agent_status", json!({"agent_name": "alice"})).await.content;
    assert!(status.starts_with("📊 Agent Status: alice\nStatus: idle"), "{status}");
    assert!(status.ends_with("No recent activity"), "{status}");

    let out = w.call("command_agent", json!({"agent_name": "alice", "command": "say something"})).await;
    assert!(out.content.starts_with("✅ Command dispatched to 'alice'\nTask: say-something-"), "{}", out.content);
    w.manager().wait_all().await;
    let status = w.call("check_agent_status", json!({"agent_name": "alice", "tail_count": 3})).await.content;
    assert!(status.contains("Tokens: 1,234 (input 1,200, output 34)"), "{status}");
    assert!(status.contains("Task: say-something-"), "{status}");
    let lines: Vec<&str> = status.lines().filter(|l| l.starts_with("• [")).collect();
    assert_eq!(lines.len(), 3, "tail_count applies: {status}");
    assert!(status.contains("• [Text] I wrote nothing yet."), "{status}");
    let verbose = w
        .call("check_agent_status", json!({"agent_name": "alice", "tail_count": 1, "offset": 0, "verbose_logs": true}))
        .await;
    assert!(verbose.content.contains("\n  Payload: {"), "{}", verbose.content);
    let first = w.call("check_agent_status", json!({"agent_name": "alice", "tail_count": 1, "offset": 1000})).await;
    assert!(first.content.ends_with("No recent activity"), "offset past the start: {}", first.content);
    let bad = w.call("check_agent_status", json!({"agent_name": "alice", "tail_count": "many"})).await;
    assert!(bad.is_error && bad.content.contains("'tail_count' must be a whole number"), "{}", bad.content);

    for tool in ["check_agent_status", "command_agent", "delete_agent", "interrupt_agent"] {
        let out = w.call(tool, json!({"agent_name": "zed", "command": "x"})).await;
        assert!(out.is_error && out.content == "❌ Error: Agent 'zed' not found", "{tool}: {}", out.content);
        let out = w.call(tool, json!({})).await;
        assert!(out.is_error && out.content == "❌ Error: 'agent_name' is required", "{tool}: {}", out.content);
    }
    let out = w.call("command_agent", json!({"agent_name": "alice"})).await;
    assert_eq!(out.content, "❌ Error: 'command' is required");

    let out = w.call("interrupt_agent", json!({"agent_name": "alice"})).await;
    assert!(!out.is_error, "not running is a warning, not an error");
    assert_eq!(out.content, "⚠️ Agent 'alice' is not currently running");

    // System logs: newest first, filters, bad level.
    w.manager().log(LogLevel::Error, "disk full on /tmp", json!({}), Default::default()).await.unwrap();
    w.manager().log(LogLevel::Info, "all fine", json!({}), Default::default()).await.unwrap();
    let logs = w.call("read_system_logs", json!({"level": "error"})).await.content;
    assert!(logs.starts_with("📋 System Logs (showing 1 of max 50):\n["), "{logs}");
    assert!(logs.contains("ERROR: disk full on /tmp") && !logs.contains("all fine"), "{logs}");
    let logs = w.call("read_system_logs", json!({"message_contains": "DISK"})).await.content;
    assert!(logs.contains("disk full"), "case-insensitive: {logs}");
    let none = w.call("read_system_logs", json!({"message_contains": "nothing like this"})).await.content;
    assert_eq!(none, "📋 No system logs found matching the criteria");
    let bad = w.call("read_system_logs", json!({"level": "LOUD"})).await;
    assert!(bad.is_error && bad.content.contains("unknown level 'LOUD'"), "{}", bad.content);

    let cost = w.call("report_cost", json!({})).await.content;
    assert!(cost.starts_with("💰 Orchestrator Cost Report:\nOrchestrator ID: "), "{cost}");
    assert!(cost.contains(&w.orch.id().to_string()), "reports the current orchestrator: {cost}");
    assert!(cost.contains("Session ID: Not set yet") && cost.contains("Context Usage: 0.0%"), "{cost}");

    let out = w.call("delete_agent", json!({"agent_name": "alice"})).await;
    assert_eq!(out.content, "✅ Deleted agent 'alice'");
    assert_eq!(w.call("list_agents", json!({})).await.content, "No agents found");
    let again = w.call("create_agent", json!({"name": "alice", "system_prompt": "again"})).await;
    assert!(!again.is_error, "a deleted agent's name is free: {}", again.content);
}

#[tokio::test]
async fn report_cost_is_for_the_current_orchestrator_and_warns_at_80_percent() {
    let script = r#"{"steps": [
        {"agent": "^orchestrator$", "when": "^read", "reply": [{"type": "text", "text": "read it all"}], "usage": {"input_tokens": 10, "output_tokens": 5}},
        {"agent": "^orchestrator$", "when": "spent", "reply": [{"type": "tool_use", "name": "report_cost", "input": {}}], "usage": {"input_tokens": 170000, "output_tokens": 10}},
        {"agent": "^orchestrator$", "when": "Cost Report", "reply": [{"type": "text", "text": "reported"}], "usage": {"input_tokens": 10, "output_tokens": 5}}
    ]}"#;
    let w = world(script).await;
    // An older orchestrator in the same store must not be the one reported.
    let older = orch_core::store::testkit::fixtures::orchestrator(1);
    w.store.commit(Batch::new().change(Change::CreateOrchestrator(Box::new(older.clone())))).await.unwrap();
    w.orch.chat("read the whole repository", None).await.unwrap();
    w.orch.chat("how much have we spent?", None).await.unwrap();
    let results: Vec<String> = w
        .events()
        .await
        .into_iter()
        .filter_map(|r| match r.event {
            Event::ToolResult { tool_name, content, .. } if tool_name == "report_cost" => Some(content),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 1);
    assert!(results[0].contains(&w.orch.id().to_string()), "{}", results[0]);
    assert!(results[0].contains("Context Usage: 85.0%"), "the latest recorded call's context: {}", results[0]);
    assert!(results[0].contains("Total Tokens: 170,025"), "includes the running turn: {}", results[0]);
    assert!(results[0].contains("consider compacting"), "{}", results[0]);
    let o = w.orch.record().await.unwrap();
    assert_eq!(o.usage.input_tokens, 170_020, "the turns' tokens are added to the orchestrator");
    assert!(w.events().await.iter().any(|r| matches!(r.event, Event::OrchestratorCostsUpdated { .. })));
}

#[tokio::test]
async fn two_agents_run_at_once_and_a_busy_agent_is_never_run_twice() {
    let script = r#"{"steps": [
        {"agent": "^(alice|bob)$", "when": "^wait", "repeat": true, "reply": [{"type": "tool_use", "name": "Wait", "input": {}}]},
        {"agent": "^(alice|bob)$", "when": "quick", "repeat": true, "reply": [{"type": "text", "text": "quick done"}]},
        {"agent": "^(alice|bob)$", "repeat": true, "reply": [{"type": "text", "text": "stopped"}]}
    ]}"#;
    let w = world(script).await;
    let m = w.manager();
    for n in ["alice", "bob"] {
        m.create_agent(CreateAgent { name: n.into(), system_prompt: Some("p".into()), ..Default::default() })
            .await
            .unwrap();
    }
    let alice = m.command_agent("alice", "wait for it").await.unwrap();
    let bob = m.command_agent("bob", "quick job").await.unwrap();
    // Bob finishes while Alice is still busy.
    let b = bob.wait().await;
    assert_eq!(b.result.unwrap().final_text.as_deref(), Some("quick done"));
    let a = m.agent("alice").await.unwrap();
    wait_status(&w.store, a.id, AgentStatus::Executing).await;

    // A second command to the busy agent is refused, and names the run in progress.
    let out = w.call("command_agent", json!({"agent_name": "alice", "command": "quick one"})).await;
    assert!(out.is_error, "{}", out.content);
    assert!(out.content.contains("Agent 'alice' is busy running a command (task wait-for-it-"), "{}", out.content);
    match m.command_agent("alice", "quick").await {
        Err(ManageError::Busy { .. }) => {}
        other => panic!("expected Busy, got {other:?}"),
    }
    let prompts = w.store.list_prompts(a.id).await.unwrap();
    assert_eq!(prompts.len(), 1, "the refused command never started a run");

    // Interrupt lands well before the 30 s tool would end.
    let started = std::time::Instant::now();
    let out = w.call("interrupt_agent", json!({"agent_name": "alice"})).await;
    assert_eq!(out.content, "✅ Interrupted agent 'alice'");
    let r = tokio::time::timeout(Duration::from_secs(10), alice.wait()).await.expect("run ended after the interrupt");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(r.result.unwrap().interrupted());
    wait_status(&w.store, a.id, AgentStatus::Idle).await;

    // Status changes were events: idle → executing → idle for both.
    let changes: Vec<(orch_core::wire::Id, AgentStatus)> = w
        .events()
        .await
        .into_iter()
        .filter_map(|r| match r.event {
            Event::AgentStatusChanged { new_status, .. } => Some((r.keys.agent_id.unwrap(), new_status)),
            _ => None,
        })
        .collect();
    for id in [a.id, m.agent("bob").await.unwrap().id] {
        let mine: Vec<AgentStatus> = changes.iter().filter(|c| c.0 == id).map(|c| c.1).collect();
        assert_eq!(mine, vec![AgentStatus::Executing, AgentStatus::Idle]);
    }

    // The conversation continues across commands: the second command's request holds the first.
    let again = m.command_agent("alice", "quick again").await.unwrap();
    again.wait().await.result.unwrap();
    assert!(w.store.load_conversation(a.id).await.unwrap().len() >= 4);
}

#[tokio::test]
async fn delete_interrupts_a_running_agent_and_frees_its_name() {
    let script = r#"{"steps": [
        {"agent": "^alice$", "when": "^wait", "repeat": true, "reply": [{"type": "tool_use", "name": "Wait", "input": {}}]},
        {"agent": "^alice$", "repeat": true, "reply": [{"type": "text", "text": "fine"}]}
    ]}"#;
    let w = world(script).await;
    w.call("create_agent", json!({"name": "alice", "system_prompt": "p"})).await;
    let a = w.manager().agent("alice").await.unwrap();
    let run = w.manager().command_agent("alice", "wait here").await.unwrap();
    wait_status(&w.store, a.id, AgentStatus::Executing).await;
    let out = w.call("delete_agent", json!({"agent_name": "alice"})).await;
    assert_eq!(out.content, "✅ Deleted agent 'alice' (its running command was interrupted first)");
    let r = tokio::time::timeout(Duration::from_secs(10), run.wait()).await.unwrap();
    assert!(r.result.unwrap().interrupted());
    let stored = w.store.get_agent(a.id).await.unwrap().unwrap();
    assert!(stored.archived);
    assert_ne!(stored.status, AgentStatus::Executing);
    let evs = w.events().await;
    let stop =
        evs.iter().position(|r| matches!(&r.event, Event::Stop { reason, .. } if reason == "interrupted")).unwrap();
    let deleted = evs.iter().position(|r| matches!(r.event, Event::AgentDeleted {})).unwrap();
    assert!(stop < deleted, "the run stopped before the agent was deleted");
    // The name is reusable at once, and the new agent runs.
    let out = w.call("create_agent", json!({"name": "alice", "system_prompt": "p2"})).await;
    assert!(!out.is_error, "{}", out.content);
    let t = w.manager().command_agent("alice", "hello").await.unwrap();
    assert_eq!(t.wait().await.result.unwrap().final_text.as_deref(), Some("fine"));
}

#[tokio::test]
async fn chat_end_to_end_creates_and_commands_an_agent() {
    let script = r#"{"steps": [
        {"agent": "^orchestrator$", "when": "create an agent called (\\w+)",
         "reply": [{"type": "thinking", "thinking": "Create $1 first."},
                   {"type": "text", "text": "Creating $1."},
                   {"type": "tool_use", "name": "create_agent", "input": {"name": "$1", "system_prompt": "You write Python."}}],
         "usage": {"input_tokens": 300, "output_tokens": 40}},
        {"agent": "^orchestrator$", "when": "Created agent '(\\w+)'",
         "reply": [{"type": "tool_use", "name": "command_agent", "input": {"agent_name": "$1", "command": "write hello.py"}}]},
        {"agent": "^orchestrator$", "when": "Command dispatched",
         "reply": [{"type": "text", "text": "Alice is writing hello.py."}]},
        {"agent": "^alice$", "when": "hello.py",
         "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "hello.py", "content": "print('hello')\n"}}],
         "usage": {"input_tokens": 100, "output_tokens": 20}},
        {"agent": "^alice$", "reply": [{"type": "text", "text": "hello.py written."}]}
    ]}"#;
    let w = world(script).await;
    let turn =
        w.orch.chat("create an agent called alice for python work, then have her write hello.py", None).await.unwrap();
    assert_eq!(turn.reply.as_deref(), Some("Alice is writing hello.py."));
    assert_eq!(turn.started_runs.len(), 1);
    let reports = [turn.started_runs[0].wait().await];
    assert!(w.manager().wait_all().await.len() <= 1);
    assert_eq!(reports[0].result.as_ref().unwrap().final_text.as_deref(), Some("hello.py written."));
    assert_eq!(std::fs::read_to_string(w.dir.path().join("hello.py")).unwrap(), "print('hello')\n");
    let alice = w.manager().agent("alice").await.unwrap();

    // The log: chat → orchestrator tool calls → agent events, in that order.
    let evs = w.events().await;
    let pos = |pred: &dyn Fn(&EventRecord) -> bool| evs.iter().position(pred).unwrap();
    let user_chat = pos(&|r| matches!(&r.event, Event::ChatMessage { message } if message.sender == Participant::User));
    let create = pos(&|r| matches!(&r.event, Event::ToolUse { tool_name, .. } if tool_name == "create_agent"));
    let created = pos(&|r| matches!(&r.event, Event::AgentCreated { agent } if agent.name == "alice"));
    let command = pos(&|r| matches!(&r.event, Event::ToolUse { tool_name, .. } if tool_name == "command_agent"));
    let alice_prompt = pos(&|r| r.keys.agent_id == Some(alice.id) && matches!(r.event, Event::UserPromptSubmit { .. }));
    let alice_write = pos(&|r| {
        r.keys.agent_id == Some(alice.id)
            && matches!(&r.event, Event::ToolUse { tool_name, .. } if tool_name == "Write")
    });
    assert!(
        user_chat < create
            && create < created
            && created < command
            && command < alice_prompt
            && alice_prompt < alice_write
    );
    assert!(evs.iter().all(|r| r.keys.agent_id != Some(alice.id) || r.keys.orchestrator_id == Some(w.orch.id())));
    assert!(
        evs.iter().any(|r| r.keys.agent_id == Some(w.orch.agent_id()) && matches!(r.event, Event::Thinking { .. })),
        "the orchestrator's thinking is recorded"
    );
    // Alice's run has a task slug and a file report for hello.py.
    let slug = reports[0].task_slug.clone();
    assert!(slug.starts_with("write-hello-py-"), "{slug}");
    let prompts = w.store.list_prompts(alice.id).await.unwrap();
    assert_eq!(prompts[0].task_slug.as_deref(), Some(slug.as_str()));

    // Chat rows: the user's message, then each text block of the orchestrator.
    let chat = w.orch.chat_history(50).await.unwrap();
    let texts: Vec<(Participant, &str)> = chat.iter().map(|m| (m.sender, m.message.as_str())).collect();
    assert_eq!(
        texts,
        vec![
            (Participant::User, "create an agent called alice for python work, then have her write hello.py"),
            (Participant::Orchestrator, "Creating alice."),
            (Participant::Orchestrator, "Alice is writing hello.py."),
        ]
    );
    let o = w.orch.record().await.unwrap();
    assert!(o.usage.input_tokens >= 300, "orchestrator tokens accumulated: {:?}", o.usage);
    assert_eq!(o.status, AgentStatus::Idle);
}

#[tokio::test]
async fn a_new_message_interrupts_the_running_turn_with_a_warning() {
    let script = r#"{"steps": [
        {"agent": "^orchestrator$", "when": "first", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 30"}}]},
        {"agent": "^orchestrator$", "when": "second", "reply": [{"type": "text", "text": "On the second one."}]},
        {"agent": "^orchestrator$", "repeat": true, "reply": [{"type": "text", "text": "other"}]}
    ]}"#;
    let w = world(script).await;
    let orch = w.orch.clone();
    let first = tokio::spawn(async move { orch.chat("first task", None).await });
    // Wait until the first turn is inside its Bash call.
    w.wait_for_tool_call().await;
    let second =
        tokio::time::timeout(Duration::from_secs(20), w.orch.chat("second task", None)).await.unwrap().unwrap();
    assert_eq!(second.reply.as_deref(), Some("On the second one."));
    let first = first.await.unwrap().unwrap();
    assert!(first.outcome.interrupted(), "the first turn was interrupted: {:?}", first.outcome);
    let warnings = w
        .store
        .list_system_logs(&SystemLogQuery { limit: 10, level: Some(LogLevel::Warning), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].message, REFOCUS_WARNING);
}

#[tokio::test]
async fn a_failed_command_blocks_the_agent_and_is_logged() {
    // No step answers bob: the model call fails.
    let w = world(r#"{"steps": [{"agent": "^nobody$", "reply": [{"type": "text", "text": "x"}]}]}"#).await;
    w.call("create_agent", json!({"name": "bob", "system_prompt": "p"})).await;
    let t = w.manager().command_agent("bob", "do it").await.unwrap();
    let _ = t.wait().await;
    let bob = w.manager().agent("bob").await.unwrap();
    assert_eq!(bob.status, AgentStatus::Blocked);
    let status = w.call("check_agent_status", json!({"agent_name": "bob"})).await.content;
    assert!(status.contains("Status: blocked"), "{status}");
    // A blocked agent can be commanded again.
    assert!(w.manager().command_agent("bob", "again").await.is_ok());
    w.manager().wait_all().await;
}

#[tokio::test]
async fn resuming_an_orchestrator_keeps_its_chat_and_costs() {
    let script = r#"{"steps": [{"agent": "^orchestrator$", "repeat": true, "reply": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": 10, "output_tokens": 1}}]}"#;
    let w = world(script).await;
    w.orch.chat("hello", None).await.unwrap();
    let model = Arc::new(ScriptedModel::from_json_str(script).unwrap());
    let agents = AgentRunner::builder(w.store.clone(), model.clone()).build();
    let again = Orchestrator::builder(agents, model)
        .config(OrchestratorConfig::new(w.dir.path(), "scripted"))
        .resume(Some(w.orch.id()))
        .open()
        .await
        .unwrap();
    assert_eq!(again.agent_id(), w.orch.agent_id(), "same conversation record");
    again.chat("hello again", None).await.unwrap();
    assert_eq!(again.chat_history(10).await.unwrap().len(), 4);
    assert_eq!(again.record().await.unwrap().usage.input_tokens, 20);
    let missing = Orchestrator::builder(
        AgentRunner::builder(w.store.clone(), Arc::new(ScriptedModel::from_json_str(script).unwrap())).build(),
        Arc::new(ScriptedModel::from_json_str(script).unwrap()),
    )
    .resume(Some(orch_core::wire::new_id()))
    .open()
    .await;
    assert!(matches!(missing, Err(orch_core::orchestrator::OrchestratorError::NotFound(_))));
}

#[tokio::test]
async fn the_prompt_file_is_read_each_turn() {
    let w = world(IDLE).await;
    let file = w.dir.path().join("prompt.md");
    std::fs::write(&file, "Agents: {{SUBAGENT_MAP}} / {{AVAILABLE_ADW_TYPES}}").unwrap();
    let model = Arc::new(ScriptedModel::from_json_str(IDLE).unwrap());
    let mut cfg = OrchestratorConfig::new(w.dir.path(), "scripted");
    cfg.prompt_file = Some(file.clone());
    cfg.workflow_types = vec![("plan_build".into(), "plan, then build".into())];
    let o = Orchestrator::builder(AgentRunner::builder(w.store.clone(), model.clone()).build(), model.clone())
        .config(cfg.clone())
        .open()
        .await
        .unwrap();
    let (p, _) = o.render_system_prompt();
    assert!(p.starts_with("Agents: No agent templates yet.") && p.ends_with("- `plan_build`: plan, then build"), "{p}");
    std::fs::write(&file, "changed").unwrap();
    assert_eq!(o.render_system_prompt().0, "changed");
    std::fs::remove_file(&file).unwrap();
    let (p, problem) = o.render_system_prompt();
    assert!(p.starts_with("# You are the orchestrator") && problem.unwrap().contains("cannot read"));
    // A missing file at start is a clear error.
    let e = Orchestrator::builder(AgentRunner::builder(w.store.clone(), model.clone()).build(), model)
        .config(cfg)
        .open()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ORCH_ORCHESTRATOR_PROMPT"), "{e}");
}

#[tokio::test]
async fn warm_up_turn_and_max_turns_follow_the_config() {
    let script = r#"{"steps": [
        {"agent": "^w$", "when": "Ready", "reply": [{"type": "text", "text": "Ready"}]},
        {"agent": "^w$", "repeat": true, "reply": [{"type": "tool_use", "name": "Glob", "input": {"pattern": "*"}}]}
    ]}"#;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let model = Arc::new(ScriptedModel::from_json_str(script).unwrap());
    let runner = AgentRunner::builder(store.clone(), model).build();
    let mut config = ManagerConfig::new(dir.path(), "scripted");
    config.warmup = true;
    config.max_turns = 3;
    let m = AgentManager::new(runner, None, config);
    let a = m
        .create_agent(CreateAgent { name: "w".into(), system_prompt: Some("p".into()), ..Default::default() })
        .await
        .unwrap();
    let prompts = store.list_prompts(a.id).await.unwrap();
    assert_eq!(prompts.len(), 1, "ORCH_AGENT_WARMUP runs one init turn");
    assert_eq!(prompts[0].task_slug.as_deref(), Some("w-greeting"));
    let r = m.command_agent("w", "loop forever").await.unwrap().wait().await;
    let o = r.result.unwrap();
    assert_eq!((o.stop_reason.to_string().as_str(), o.num_turns), ("max_turns", 3), "the manager's max_turns applies");
}

/// Hangs on its first call (the process "dies" there), answers later calls.
struct HangOnce(std::sync::atomic::AtomicUsize);

#[async_trait]
impl Tool for HangOnce {
    fn name(&self) -> &str {
        "HangOnce"
    }
    fn description(&self) -> &str {
        "hangs once"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn call(&self, _ctx: &ToolContext, _input: Value) -> Result<ToolOutput, ToolError> {
        if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            futures::future::pending::<()>().await;
        }
        Ok(ToolOutput::text("finished after all"))
    }
}

#[tokio::test]
async fn an_agent_left_mid_turn_by_a_dead_process_is_reset_resumed_and_commanded() {
    let script = r#"{"steps": [
        {"agent": "^c$", "when": "^crash", "reply": [{"type": "tool_use", "name": "HangOnce", "input": {}}]},
        {"agent": "^c$", "when": "finished after all", "reply": [{"type": "text", "text": "old turn done"}]},
        {"agent": "^c$", "when": "^next", "reply": [{"type": "text", "text": "next done"}]}
    ]}"#;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let model = Arc::new(ScriptedModel::from_json_str(script).unwrap());
    let mut tools = ToolRegistry::new();
    tools.register(HangOnce(Default::default()));
    let runner = AgentRunner::builder(store.clone(), model).tools(tools).build();
    let m = AgentManager::new(runner.clone(), None, ManagerConfig::new(dir.path(), "scripted"));
    let a = m
        .create_agent(CreateAgent { name: "c".into(), system_prompt: Some("p".into()), ..Default::default() })
        .await
        .unwrap();
    // The "process" running it dies inside the tool: the run future is dropped.
    let crashed = tokio::time::timeout(
        Duration::from_millis(300),
        runner.run(a.id, "crash here", orch_core::executor::RunOptions::default()),
    )
    .await;
    assert!(crashed.is_err());
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().status, AgentStatus::Executing);
    // Its run is over (its claim released), but it was left executing: an interrupt resets it at once.
    let r = m.interrupt_agent("c", Duration::from_millis(200)).await.unwrap();
    assert_eq!(r, orch_core::orchestrator::Interrupted::Requested);
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().status, AgentStatus::Idle);
    // The next command first finishes the old turn, then runs.
    let report = m.command_agent("c", "next job").await.unwrap().wait().await;
    assert_eq!(report.result.unwrap().final_text.as_deref(), Some("next done"));
    let texts: Vec<String> = store
        .read_events(&EventQuery { agent_id: Some(a.id), types: vec!["Text".into()], ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Text { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["old turn done", "next done"]);
}

#[tokio::test]
async fn a_slash_command_sent_to_an_agent_is_expanded_with_its_model_and_tools() {
    let script = r#"{"steps": [
        {"agent": "^t$", "when": "^Review (\\S+) carefully", "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "$1", "content": "x"}}]},
        {"agent": "^t$", "repeat": true, "reply": [{"type": "text", "text": "reviewed"}]}
    ]}"#;
    let w = world(script).await;
    let cmds = w.dir.path().join(".claude/commands");
    std::fs::create_dir_all(&cmds).unwrap();
    std::fs::write(cmds.join("review.md"), "---\nmodel: opus\nallowed-tools: Read, Grep\n---\nReview $1 carefully.\n")
        .unwrap();
    w.call("create_agent", json!({"name": "t", "system_prompt": "p"})).await;
    let r = w.manager().command_agent("t", "/review notes.md").await.unwrap().wait().await;
    assert_eq!(r.result.unwrap().final_text.as_deref(), Some("reviewed"));
    assert!(!w.dir.path().join("notes.md").exists(), "Write is not among the command's allowed tools");
    let evs = w.events().await;
    let models: Vec<&str> = evs
        .iter()
        .filter_map(|r| match &r.event {
            Event::AgentCostsUpdated { model, .. } => Some(model.as_str()),
            _ => None,
        })
        .collect();
    assert!(!models.is_empty() && models.iter().all(|m| *m == "claude-opus-4-8"), "{models:?}");
    let t = w.manager().agent("t").await.unwrap();
    assert_eq!(w.store.list_prompts(t.id).await.unwrap()[0].prompt_text.trim_end(), "Review notes.md carefully.");
    let bad = w.manager().command_agent("t", "/nosuch x").await.unwrap_err();
    assert!(bad.to_string().contains("nosuch"), "{bad}");
}

#[tokio::test]
async fn a_message_from_another_process_interrupts_the_running_turn() {
    let script = r#"{"steps": [
        {"agent": "^orchestrator$", "when": "first", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 30"}}]},
        {"agent": "^orchestrator$", "when": "second", "reply": [{"type": "text", "text": "On the second one."}]},
        {"agent": "^orchestrator$", "repeat": true, "reply": [{"type": "text", "text": "other"}]}
    ]}"#;
    let w = world(script).await;
    // "Another process": a second host of the same orchestrator on the same store, with its own runners.
    let model = Arc::new(ScriptedModel::from_json_str(script).unwrap());
    let other = Orchestrator::builder(AgentRunner::builder(w.store.clone(), model.clone()).build(), model)
        .config(OrchestratorConfig::new(w.dir.path(), "scripted"))
        .resume(Some(w.orch.id()))
        .open()
        .await
        .unwrap();
    let first_host = w.orch.clone();
    let first = tokio::spawn(async move { first_host.chat("first task", None).await });
    w.wait_for_tool_call().await;
    let second = tokio::time::timeout(Duration::from_secs(20), other.chat("second task", None)).await.unwrap().unwrap();
    assert_eq!(second.reply.as_deref(), Some("On the second one."));
    let first = tokio::time::timeout(Duration::from_secs(20), first).await.unwrap().unwrap().unwrap();
    assert!(first.outcome.interrupted(), "{:?}", first.outcome);
    let evs = w.events().await;
    let asked = evs.iter().position(|r| matches!(r.event, Event::InterruptRequested { .. })).unwrap();
    let stopped =
        evs.iter().position(|r| matches!(&r.event, Event::Stop { reason, .. } if reason == "interrupted")).unwrap();
    let answered =
        evs.iter().position(|r| matches!(&r.event, Event::Text { text } if text == "On the second one.")).unwrap();
    assert!(asked < stopped && stopped < answered, "the old turn stopped before the new one ran");
}
