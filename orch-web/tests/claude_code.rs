//! The Claude Code executor against a fake `claude` (tests/fixtures/fake_claude.py) replaying stream-json
//! transcripts written from the CLI's documented behaviour (shared/spec/claude-code-cli.md). Hooks go
//! through the real `orch hook-relay` binary, which the fake runs from the generated settings file the
//! way the CLI runs hook commands.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::executor::{
    AgentRunner, ClaudeCodeConfig, ClaudeCodeExecutor, NativeExecutor, RoutingExecutor, RunError, RunOptions,
};
use orch_core::hook::{FnHook, HookDecision, HookEvent, HookRegistry};
use orch_core::model::scripted::ScriptedModel;
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::wire::{Agent, AgentStatus, CompactTrigger, Event, EventRecord, Id, LogLevel};
use orch_store_sqlite::SqliteStore;

const SESSION: &str = "462b1f0e-7c4d-4a8e-9f3b-2d6c8e1a5b70";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
}

impl Harness {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), store: Arc::new(MemoryStore::new()) }
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("orch.db")).unwrap();
        Self { dir, store: Arc::new(store) }
    }

    fn work(&self) -> PathBuf {
        let w = self.dir.path().join("work");
        std::fs::create_dir_all(&w).unwrap();
        w.canonicalize().unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, transcript: &str) -> ClaudeCodeConfig {
        ClaudeCodeConfig::from_env()
            .with_binary(fixture("fake_claude.py"))
            .with_relay_command(vec![env!("CARGO_BIN_EXE_orch").to_string(), "hook-relay".to_string()])
            .with_env("FAKE_CLAUDE_TRANSCRIPT", fixture("claude").join(transcript).to_string_lossy())
            .with_env("FAKE_CLAUDE_ARGV_FILE", self.file("argv.jsonl").to_string_lossy())
            .with_env("FAKE_CLAUDE_PID_FILE", self.file("pids.txt").to_string_lossy())
            .with_env("FAKE_CLAUDE_HOOK_LOG", self.file("hooks.jsonl").to_string_lossy())
    }

    fn runner(&self, config: ClaudeCodeConfig, hooks: HookRegistry) -> AgentRunner {
        let provider = Arc::new(
            ScriptedModel::from_json_str(
                r#"{"steps": [{"repeat": true, "reply": [{"type": "text", "text": "native"}]}]}"#,
            )
            .unwrap(),
        );
        let router = RoutingExecutor::new(Arc::new(NativeExecutor::new(provider.clone())))
            .with_claude_code(Arc::new(ClaudeCodeExecutor::new(config)));
        AgentRunner::builder(self.store.clone(), provider).executor(Arc::new(router)).hooks(hooks).build()
    }

    async fn agent(&self, runner: &AgentRunner, name: &str, model: &str) -> Agent {
        runner.create_agent(Agent::new(name, model, self.work().to_string_lossy())).await.unwrap()
    }

    async fn events(&self, agent: Id) -> Vec<EventRecord> {
        self.store.read_events(&EventQuery { agent_id: Some(agent), ..EventQuery::default() }).await.unwrap()
    }

    fn argv(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.file("argv.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn kinds(events: &[EventRecord]) -> Vec<&str> {
    events.iter().map(|r| r.event.kind()).collect()
}

/// The value after `flag` in an argv.
fn flag<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter().position(|a| a == flag).and_then(|i| argv.get(i + 1)).map(String::as_str)
}

fn statuses(events: &[EventRecord]) -> Vec<(AgentStatus, AgentStatus)> {
    events
        .iter()
        .filter_map(|r| match r.event {
            Event::AgentStatusChanged { old_status, new_status } => Some((old_status, new_status)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn tool_use_run_records_the_same_events_and_costs_as_a_native_run() {
    let h = Harness::sqlite();
    let runner = h.runner(h.config("tool_use_write.jsonl"), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code:claude-sonnet-4-5").await;
    let outcome = runner.run(agent.id, "write target.txt", RunOptions::default()).await.unwrap();

    assert_eq!(outcome.stop_reason, "end_turn");
    assert_eq!(outcome.num_turns, 2);
    assert_eq!(outcome.final_text.as_deref(), Some("Done: the file is written."));
    assert!((outcome.cost_usd - 0.00876).abs() < 1e-12);
    assert_eq!(std::fs::read_to_string(h.work().join("target.txt")).unwrap(), "written through the wire\n");

    let events = h.events(agent.id).await;
    assert_eq!(
        kinds(&events),
        [
            "AgentCreated",
            "AgentStatusChanged",
            "UserPromptSubmit",
            "SystemLog",
            "Thinking",
            "Text",
            "ToolUse",
            "PreToolUse",
            "PostToolUse",
            "ToolResult",
            "Text",
            "AgentCostsUpdated",
            "Stop",
            "Result",
            "AgentStatusChanged"
        ]
    );
    assert_eq!(
        statuses(&events),
        [(AgentStatus::Idle, AgentStatus::Executing), (AgentStatus::Executing, AgentStatus::Idle)]
    );
    let costs = events
        .iter()
        .find_map(|r| match &r.event {
            Event::AgentCostsUpdated { model, usage, cost_usd, total_usage, total_cost_usd, .. } => {
                Some((model.clone(), *usage, *cost_usd, *total_usage, *total_cost_usd))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(costs.0, "claude-sonnet-4-5");
    assert_eq!((costs.1.input_tokens, costs.1.output_tokens, costs.1.cache_read_input_tokens), (2400, 92, 600));
    assert!((costs.2 - 0.00876).abs() < 1e-12);
    assert_eq!(costs.3, costs.1);
    assert!((costs.4 - 0.00876).abs() < 1e-12);
    let result = events.iter().find(|r| r.event.kind() == "ToolResult").unwrap();
    match &result.event {
        Event::ToolResult { tool_name, is_error, content, tool_use_id } => {
            assert_eq!((tool_name.as_str(), *is_error, tool_use_id.as_str()), ("Write", false, "toolu_0003"));
            assert!(content.starts_with("File created successfully"));
        }
        _ => unreachable!(),
    }
    let init = events.iter().find(|r| r.event.kind() == "SystemLog").unwrap();
    assert!(
        matches!(&init.event, Event::SystemLog { level: LogLevel::Info, message, .. } if message.contains(SESSION))
    );

    // Stored on the agent: session, usage and cost.
    let a = h.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(a.session_id.as_deref(), Some(SESSION));
    assert_eq!(a.status, AgentStatus::Idle);
    assert_eq!((a.usage.input_tokens, a.usage.output_tokens, a.usage.cache_read_input_tokens), (2400, 92, 600));
    assert!((a.total_cost_usd - 0.00876).abs() < 1e-12);

    // The command line.
    let argv = &h.argv()[0];
    assert_eq!(argv[0], "-p");
    assert_eq!(argv[1], "write target.txt");
    assert_eq!(flag(argv, "--output-format"), Some("stream-json"));
    assert!(argv.iter().any(|a| a == "--verbose"));
    assert_eq!(flag(argv, "--model"), Some("claude-sonnet-4-5"));
    assert_eq!(flag(argv, "--permission-mode"), Some("acceptEdits"));
    assert_eq!(flag(argv, "--allowedTools"), Some("Bash,Edit,Glob,Grep,Read,Write"));
    assert_eq!(flag(argv, "--max-turns"), Some("500"));
    assert!(!argv.iter().any(|a| a == "--resume" || a == "--settings"), "{argv:?}");

    // A native turn doing the same work records the same kinds of events, plus per-call costs.
    let native = Harness::new();
    let script = r#"{"steps": [
        {"reply": [{"type": "thinking", "thinking": "use Write"}, {"type": "text", "text": "I'll write the file now."},
                   {"type": "tool_use", "name": "Write", "input": {"file_path": "target.txt", "content": "x\n"}}]},
        {"reply": [{"type": "text", "text": "Done: the file is written."}]}]}"#;
    let provider = Arc::new(ScriptedModel::from_json_str(script).unwrap());
    let nrunner = AgentRunner::builder(native.store.clone(), provider.clone())
        .executor(Arc::new(RoutingExecutor::new(Arc::new(NativeExecutor::new(provider)))))
        .build();
    let nagent = native.agent(&nrunner, "native", "scripted").await;
    nrunner.run(nagent.id, "write target.txt", RunOptions::default()).await.unwrap();
    let nevents = native.events(nagent.id).await;
    let mut nk: Vec<_> = kinds(&nevents);
    nk.sort();
    nk.dedup();
    let mut ck: Vec<_> = kinds(&events).into_iter().filter(|k| *k != "SystemLog").collect();
    ck.sort();
    ck.dedup();
    assert_eq!(ck, nk);
    assert_eq!(statuses(&nevents), statuses(&events));
}

#[tokio::test]
async fn second_turn_resumes_the_session() {
    let h = Harness::new();
    let runner = h.runner(h.config("tool_use_write.jsonl"), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code").await;
    runner.run(agent.id, "write target.txt", RunOptions::default()).await.unwrap();

    let runner2 = h.runner(h.config("resume.jsonl"), HookRegistry::new());
    let outcome = runner2.run(agent.id, "what do you see?", RunOptions::default()).await.unwrap();
    assert_eq!(outcome.final_text.as_deref(), Some("Resumed: I can see 4 earlier messages."));

    let argv = h.argv();
    assert_eq!(argv.len(), 2);
    assert_eq!(flag(&argv[0], "--resume"), None);
    assert_eq!(flag(&argv[1], "--resume"), Some(SESSION));
    // Bare `claude-code`: the CLI's default model.
    assert_eq!(flag(&argv[1], "--model"), None);

    let a = h.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(a.session_id.as_deref(), Some(SESSION));
    assert!((a.total_cost_usd - (0.00876 + 0.00384)).abs() < 1e-12);
    assert_eq!(a.usage.input_tokens, 2400 + 1200);
}

#[tokio::test]
async fn resuming_an_unknown_session_blocks_the_agent_with_the_cli_error() {
    let h = Harness::new();
    let runner = h.runner(h.config("resume.jsonl"), HookRegistry::new());
    let mut agent = Agent::new("cc", "claude-code", h.work().to_string_lossy());
    agent.session_id = Some("0000-unknown".into());
    let agent = runner.create_agent(agent).await.unwrap();
    let err = runner.run(agent.id, "hello", RunOptions::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("error_during_execution") && msg.contains("No conversation found"), "{msg}");
    let a = h.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(a.status, AgentStatus::Blocked);
    // No session started: the agent keeps its own id.
    assert_eq!(a.session_id.as_deref(), Some("0000-unknown"));
}

#[tokio::test]
async fn error_result_blocks_the_agent_with_a_clear_error() {
    let h = Harness::new();
    let runner = h.runner(h.config("error_max_turns.jsonl"), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code:claude-sonnet-4-5").await;
    let options = RunOptions { max_turns: 1, ..RunOptions::default() };
    let err = runner.run(agent.id, "list the files", options).await.unwrap_err();
    assert!(matches!(err, RunError::Model(_)));
    let msg = err.to_string();
    assert!(msg.contains("error_max_turns") && msg.contains("Reached maximum number of turns (1)"), "{msg}");
    assert_eq!(flag(&h.argv()[0], "--max-turns"), Some("1"));

    let events = h.events(agent.id).await;
    let result = events.iter().find(|r| r.event.kind() == "Result").unwrap();
    match &result.event {
        Event::Result { is_error, stop_reason, result, cost_usd, num_turns, .. } => {
            assert!(*is_error);
            assert_eq!(stop_reason, "max_turns");
            assert_eq!(*num_turns, 2);
            assert_eq!(result.as_deref(), Some("Reached maximum number of turns (1)"));
            assert!((cost_usd - 0.00372).abs() < 1e-12);
        }
        _ => unreachable!(),
    }
    assert_eq!(statuses(&events).last(), Some(&(AgentStatus::Executing, AgentStatus::Blocked)));
    let a = h.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(a.status, AgentStatus::Blocked);
    // The cost of a failed run still counts.
    assert!((a.total_cost_usd - 0.00372).abs() < 1e-12);
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => false,
        // A zombie waits for a reaper that may not be us (the grandchild was re-parented): it is dead.
        Ok(s) => !s.lines().any(|l| l.starts_with("State:") && l.contains("zombie")),
    }
}

#[tokio::test]
async fn interrupt_kills_the_whole_process_group() {
    let h = Harness::new();
    let runner = h.runner(h.config("interrupt.jsonl"), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code").await;
    let task = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.run(agent.id, "take your time", RunOptions::default()).await })
    };
    // The fake writes its child's pid, then its own, then sleeps 30 s.
    let pids: Vec<u32> = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(h.file("pids.txt")).unwrap_or_default();
            let pids: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.len() == 2 {
                break pids;
            }
            assert!(Instant::now() < deadline, "the fake never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(pids.iter().all(|p| alive(*p)));
    // Progress is visible while the CLI runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.events(agent.id).await.iter().any(|r| r.event.kind() == "Text") {
        assert!(Instant::now() < deadline, "the Text event was not committed while the CLI ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let t = Instant::now();
    assert!(runner.interrupt(agent.id));
    let outcome = task.await.unwrap().unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "interrupt took {took:?}");
    assert!(outcome.interrupted());
    let deadline = Instant::now() + Duration::from_secs(1);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "still alive: {:?}", pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(10));
    }

    let events = h.events(agent.id).await;
    assert!(
        events.iter().any(|r| matches!(&r.event, Event::Stop { reason, .. } if reason == "interrupted")),
        "{:?}",
        kinds(&events)
    );
    assert_eq!(statuses(&events).last(), Some(&(AgentStatus::Executing, AgentStatus::Idle)));
    assert_eq!(h.store.get_agent(agent.id).await.unwrap().unwrap().status, AgentStatus::Idle);
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let h = Harness::new();
    let config = h.config("tool_use_write.jsonl").with_binary("/nonexistent/dir/claude");
    let runner = h.runner(config, HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code").await;
    let err = runner.run(agent.id, "hello", RunOptions::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RunError::Config { .. }));
    assert!(msg.contains("ORCH_CLAUDE_BIN") && msg.contains("/nonexistent/dir/claude"), "{msg}");
    // Nothing ran, nothing changed.
    assert_eq!(kinds(&h.events(agent.id).await), ["AgentCreated"]);
    assert_eq!(h.store.get_agent(agent.id).await.unwrap().unwrap().status, AgentStatus::Idle);
}

#[tokio::test]
async fn garbage_lines_are_warnings_and_the_run_completes() {
    let h = Harness::new();
    let runner = h.runner(h.config("garbage.jsonl"), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code:haiku").await;
    let outcome = runner.run(agent.id, "hello", RunOptions::default()).await.unwrap();
    assert_eq!(outcome.final_text.as_deref(), Some("Still here."));
    assert!((outcome.cost_usd - 0.00128).abs() < 1e-12);
    let events = h.events(agent.id).await;
    let warnings: Vec<&String> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::SystemLog { level: LogLevel::Warning, message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("not JSON") && warnings[0].contains("this is not JSON {"), "{}", warnings[0]);
    assert!(warnings[1].contains("unknown type 'mystery_event'"), "{}", warnings[1]);
    assert!(events.iter().any(|r| matches!(&r.event, Event::ModelRetry { attempt: 1, wait_ms: 1000, .. })));
    // The CLI's own alias is passed through (orch does not resolve `haiku`).
    assert_eq!(flag(&h.argv()[0], "--model"), Some("haiku"));
    assert!(
        events
            .iter()
            .any(|r| matches!(&r.event, Event::AgentCostsUpdated { model, .. } if model == "claude-haiku-4-5"))
    );
}

#[tokio::test]
async fn exit_without_result_is_an_error_with_the_stderr_tail() {
    let h = Harness::new();
    let runner = h.runner(h.config("crash.jsonl"), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code").await;
    let err = runner.run(agent.id, "hello", RunOptions::default()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("exited with code 3") && msg.contains("lost its connection to the API"), "{msg}");
    assert!(msg.contains("without a result line"), "{msg}");
    let events = h.events(agent.id).await;
    assert!(events.iter().any(|r| r.event.kind() == "ModelError"));
    assert_eq!(h.store.get_agent(agent.id).await.unwrap().unwrap().status, AgentStatus::Blocked);
}

#[tokio::test]
async fn rust_hooks_run_through_the_settings_file_and_the_relay() {
    let h = Harness::new();
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::PreToolUse,
            Some("Bash"),
            FnHook::new("no-rm-rf", |input| {
                let cmd = input.tool_input.as_ref().and_then(|i| i["command"].as_str()).unwrap_or_default();
                if cmd.contains("rm -rf") {
                    HookDecision::Deny { reason: format!("refusing to run `{cmd}`: rm -rf is not allowed") }
                } else {
                    HookDecision::Continue
                }
            }),
        )
        .unwrap();
    hooks
        .register(
            HookEvent::PreToolUse,
            Some("Write"),
            FnHook::new("rewrite", |input| {
                let mut new = input.tool_input.clone().unwrap_or_default();
                new["content"] = "rewritten by a hook\n".into();
                HookDecision::RewriteInput { input: new }
            }),
        )
        .unwrap();
    hooks.register(HookEvent::Stop, None, FnHook::new("on-stop", |_| HookDecision::Continue)).unwrap();
    let runner = h.runner(h.config("hook_bash.jsonl"), hooks);
    let agent = h.agent(&runner, "cc", "claude-code").await;
    let outcome = runner.run(agent.id, "clean up and take notes", RunOptions::default()).await.unwrap();
    assert_eq!(outcome.stop_reason, "end_turn");

    let events = h.events(agent.id).await;
    let pos = |pred: &dyn Fn(&Event) -> bool| events.iter().position(|r| pred(&r.event)).unwrap();
    let tool_use = pos(&|e| matches!(e, Event::ToolUse { tool_use_id, .. } if tool_use_id == "toolu_0301"));
    let denied = pos(
        &|e| matches!(e, Event::HookInvoked { decision, hook_name, .. } if decision == "deny" && hook_name == "no-rm-rf"),
    );
    let result = pos(&|e| matches!(e, Event::ToolResult { tool_use_id, .. } if tool_use_id == "toolu_0301"));
    assert!(tool_use < denied && denied < result, "{:?}", kinds(&events));
    match &events[result].event {
        Event::ToolResult { content, is_error, .. } => {
            assert!(*is_error);
            assert_eq!(content, "refusing to run `rm -rf build`: rm -rf is not allowed");
        }
        _ => unreachable!(),
    }
    // The rewrite reached the tool.
    assert_eq!(std::fs::read_to_string(h.work().join("notes.txt")).unwrap(), "rewritten by a hook\n");
    assert!(
        events.iter().any(|r| matches!(&r.event, Event::HookInvoked { decision, .. } if decision == "rewrite_input"))
    );
    // The Stop hook was called by the CLI (once, not again by the executor).
    let stops = events
        .iter()
        .filter(|r| matches!(&r.event, Event::HookInvoked { hook_event, .. } if hook_event == "Stop"))
        .count();
    assert_eq!(stops, 1);

    // The fake ran the hook command from the generated settings file, as the CLI does.
    let argv = &h.argv()[0];
    let settings = flag(argv, "--settings").unwrap();
    assert!(settings.ends_with("settings.json"));
    assert!(!Path::new(settings).exists(), "the relay dir is removed after the run");
    let log: Vec<serde_json::Value> = std::fs::read_to_string(h.file("hooks.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events_seen: Vec<&str> = log.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events_seen, ["PreToolUse", "PreToolUse", "PostToolUse", "Stop"]);
    assert!(log[0]["command"].as_str().unwrap().contains("hook-relay --socket"));
    assert_eq!(log[0]["exit_code"], 0);
    let deny: serde_json::Value = serde_json::from_str(log[0]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(deny["hookSpecificOutput"]["permissionDecision"], "deny");
}

#[test]
fn hook_relay_without_a_listener_lets_the_cli_go_on() {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["hook-relay", "--socket", "/nonexistent/relay.sock"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(br#"{"hook_event_name":"PreToolUse","tool_name":"Bash"}"#).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/relay.sock") && stderr.contains("skipped"), "{stderr}");
}

#[tokio::test]
async fn router_refuses_claude_code_models_without_the_executor() {
    let h = Harness::new();
    let provider =
        Arc::new(ScriptedModel::from_json_str(r#"{"steps": [{"reply": [{"type": "text", "text": "hi"}]}]}"#).unwrap());
    let runner = AgentRunner::builder(h.store.clone(), provider.clone())
        .executor(Arc::new(RoutingExecutor::new(Arc::new(NativeExecutor::new(provider)))))
        .build();
    let agent = h.agent(&runner, "cc", "claude-code:sonnet").await;
    let err = runner.run(agent.id, "hello", RunOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("no Claude Code executor"), "{err}");
    let native = h.agent(&runner, "n", "scripted").await;
    let outcome = runner.run(native.id, "hello", RunOptions::default()).await.unwrap();
    assert_eq!(outcome.final_text.as_deref(), Some("hi"));
}

#[tokio::test]
async fn awkward_prompts_system_prompt_and_restricted_tools_reach_the_cli() {
    let h = Harness::new();
    let runner = h.runner(h.config("garbage.jsonl"), HookRegistry::new());
    let mut agent = Agent::new("cc", "claude-code", h.work().to_string_lossy());
    agent.system_prompt = Some("- be terse".into());
    let agent = runner.create_agent(agent).await.unwrap();
    let options = RunOptions { allowed_tools: Some(vec!["Read".into()]), ..RunOptions::default() };
    runner.run(agent.id, "--help me", options).await.unwrap();
    let argv = &h.argv()[0];
    assert_eq!(argv[0], "-p");
    assert_eq!(&argv[argv.len() - 2..], ["--", "--help me"]);
    assert!(argv.iter().any(|a| a == "--append-system-prompt=- be terse"), "{argv:?}");
    assert_eq!(flag(argv, "--permission-mode"), Some("dontAsk"));
    assert_eq!(flag(argv, "--allowedTools"), Some("Read"));
}

#[tokio::test]
async fn hooks_without_a_relay_command_are_refused() {
    let h = Harness::new();
    let mut hooks = HookRegistry::new();
    hooks.register(HookEvent::PreToolUse, None, FnHook::new("guard", |_| HookDecision::Continue)).unwrap();
    let runner = h.runner(h.config("tool_use_write.jsonl").with_relay_command(Vec::new()), hooks);
    let agent = h.agent(&runner, "cc", "claude-code").await;
    let err = runner.run(agent.id, "hello", RunOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("relay_command"), "{err}");
    assert!(h.argv().is_empty(), "the CLI must not run with unguarded tools");
}

#[tokio::test]
async fn a_tool_input_nested_past_the_limit_is_stored_as_the_marker() {
    let h = Harness::sqlite();
    // The Write transcript, its tool call's input replaced by one nested 100 levels deep.
    let mut deep = serde_json::json!(1);
    for _ in 0..99 {
        deep = serde_json::json!([deep]);
    }
    let deep = serde_json::json!({ "file_path": "{{CWD}}/target.txt", "content": "x", "extra": deep });
    let lines: Vec<String> = std::fs::read_to_string(fixture("claude").join("tool_use_write.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["message"]["content"][0]["type"] == "tool_use" {
                v["message"]["content"][0]["input"] = deep.clone();
            }
            v.to_string()
        })
        .collect();
    let transcript = h.file("deep.jsonl");
    std::fs::write(&transcript, lines.join("\n") + "\n").unwrap();
    let runner = h.runner(h.config(transcript.to_str().unwrap()), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code:claude-sonnet-4-5").await;
    let outcome = runner.run(agent.id, "write target.txt", RunOptions::default()).await.unwrap();
    assert_eq!(outcome.stop_reason, "end_turn");
    let inputs: Vec<serde_json::Value> = h
        .events(agent.id)
        .await
        .into_iter()
        .filter_map(|r| match r.event {
            Event::ToolUse { tool_input, .. } | Event::PreToolUse { tool_input, .. } => Some(tool_input),
            _ => None,
        })
        .collect();
    assert_eq!(inputs.len(), 2);
    for input in inputs {
        assert_eq!(input, orch_core::wire::too_deep_input_marker());
    }
}

const TASK_ID: &str = "toolu_01TaskPortLookup";
const SUB_READ_ID: &str = "toolu_01SubRead";

/// A `Task` subagent and an automatic compaction, as the CLI prints them, map to the events a native
/// agent records: `SubagentStart`/`SubagentStop` around the subagent's own calls, `PreCompact` then
/// `Compacted`, and the context on the costs event and the agent row.
#[tokio::test]
async fn subagent_and_compaction_transcript_maps_to_the_native_events() {
    let h = Harness::sqlite();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut hooks = HookRegistry::new();
    {
        let seen = seen.clone();
        hooks
            .register(
                HookEvent::SubagentStop,
                None,
                FnHook::new("on-subagent-stop", move |input| {
                    seen.lock().unwrap().push((
                        input.subagent_id.clone(),
                        input.last_message.clone(),
                        input.stop_reason.clone(),
                    ));
                    HookDecision::Continue
                }),
            )
            .unwrap();
    }
    let runner = h.runner(h.config("subagent_compact.jsonl"), hooks);
    let agent = h.agent(&runner, "cc", "claude-code:claude-sonnet-4-5").await;
    let outcome = runner.run(agent.id, "where is the port set?", RunOptions::default()).await.unwrap();
    assert_eq!(outcome.stop_reason, "end_turn");
    assert_eq!(outcome.final_text.as_deref(), Some("The server listens on port 8080, set in config.toml."));
    assert!((outcome.cost_usd - 0.05592).abs() < 1e-12);

    let events = h.events(agent.id).await;
    let pos = |pred: &dyn Fn(&Event) -> bool| {
        events.iter().position(|r| pred(&r.event)).unwrap_or_else(|| panic!("missing in {:?}", kinds(&events)))
    };
    let count = |kind: &str| events.iter().filter(|r| r.event.kind() == kind).count();

    // The subagent starts after its Task call and before its own calls.
    let task_use = pos(&|e| matches!(e, Event::PreToolUse { tool_use_id, .. } if tool_use_id == TASK_ID));
    let start = pos(&|e| matches!(e, Event::SubagentStart { .. }));
    let sub_use = pos(&|e| matches!(e, Event::ToolUse { tool_use_id, .. } if tool_use_id == SUB_READ_ID));
    let sub_result = pos(&|e| matches!(e, Event::ToolResult { tool_use_id, .. } if tool_use_id == SUB_READ_ID));
    let task_result = pos(&|e| matches!(e, Event::ToolResult { tool_use_id, .. } if tool_use_id == TASK_ID));
    let hook = pos(&|e| matches!(e, Event::HookInvoked { hook_event, .. } if hook_event == "SubagentStop"));
    let stop = pos(&|e| matches!(e, Event::SubagentStop { .. }));
    assert!(task_use < start && start < sub_use && sub_use < sub_result, "{:?}", kinds(&events));
    assert!(sub_result < task_result && task_result < hook && hook < stop, "{:?}", kinds(&events));
    assert_eq!((count("SubagentStart"), count("SubagentStop")), (1, 1));
    match &events[start].event {
        Event::SubagentStart { subagent_id, subagent_type, description, tool_use_id } => {
            assert_eq!(
                (subagent_id.as_str(), subagent_type.as_str(), description.as_str(), tool_use_id.as_str()),
                (TASK_ID, "Explore", "Find the port setting", TASK_ID)
            );
        }
        _ => unreachable!(),
    }
    match &events[stop].event {
        Event::SubagentStop { subagent_id, tool_use_id, reason, cost_usd } => {
            assert_eq!(subagent_id, TASK_ID);
            assert_eq!(tool_use_id.as_deref(), Some(TASK_ID));
            assert_eq!(reason.as_ref().map(ToString::to_string).as_deref(), Some("end_turn"));
            assert_eq!(*cost_usd, 0.0);
        }
        _ => unreachable!(),
    }
    // The subagent's tool call is recorded with its name.
    assert!(matches!(&events[sub_result].event, Event::ToolResult { tool_name, .. } if tool_name == "Read"));
    // The Rust SubagentStop hook ran once, in process, with the subagent's last text.
    let sub_text = format!("The port is configured in {}/config.toml: port = 8080.", h.work().display());
    assert_eq!(
        *seen.lock().unwrap(),
        [(Some(TASK_ID.to_string()), Some(sub_text.clone()), Some("end_turn".to_string()))]
    );

    // The compaction: PreCompact, then Compacted with the CLI's figures and summary, before the next call.
    let pre = pos(&|e| matches!(e, Event::PreCompact { tokens_before: 150_000 }));
    let compacted = pos(&|e| matches!(e, Event::Compacted { .. }));
    let last_text = pos(&|e| matches!(e, Event::Text { text } if text.starts_with("The server listens")));
    assert!(stop < pre && pre < compacted && compacted < last_text, "{:?}", kinds(&events));
    assert_eq!((count("PreCompact"), count("Compacted")), (1, 1));
    match &events[compacted].event {
        Event::Compacted {
            trigger,
            tokens_before,
            tokens_after,
            messages_replaced,
            messages_kept,
            summary,
            replaced,
        } => {
            assert_eq!(*trigger, CompactTrigger::Auto);
            assert_eq!(*tokens_before, 150_000);
            // The first call after it used 4200 input + 800 cache-read tokens.
            assert_eq!(*tokens_after, 5_000);
            assert_eq!((*messages_replaced, *messages_kept), (0, 0));
            assert!(summary.starts_with("This session is being continued from a previous conversation"), "{summary}");
            assert!(summary.contains("port = 8080"), "{summary}");
            assert!(replaced.is_empty());
        }
        _ => unreachable!(),
    }

    // The texts: the agent's, the subagent's (recorded, but not the agent's), the agent's final one.
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            "I'll have a subagent look for the port setting.",
            sub_text.as_str(),
            "The server listens on port 8080, set in config.toml."
        ]
    );

    // The context: the last call's, and the window from `modelUsage`; on the agent row too.
    let context = events
        .iter()
        .find_map(|r| match &r.event {
            Event::AgentCostsUpdated { context_used, context_window, .. } => Some((*context_used, *context_window)),
            _ => None,
        })
        .unwrap();
    assert_eq!(context, (Some(5_000), Some(200_000)));
    let a = h.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!((a.context_used, a.context_window), (5_000, Some(200_000)));
    assert!((a.total_cost_usd - 0.05592).abs() < 1e-12);
    assert_eq!(statuses(&events).last(), Some(&(AgentStatus::Executing, AgentStatus::Idle)));
}

/// Without a final answer after the subagent, the turn's text is still the agent's own, never the
/// subagent's; a compaction the result line follows directly is recorded all the same.
#[tokio::test]
async fn a_subagents_text_never_becomes_the_agents_answer() {
    let h = Harness::new();
    // The transcript without the agent's last message and without the result's `result` text.
    let lines: Vec<String> = std::fs::read_to_string(fixture("claude").join("subagent_compact.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["message"]["id"] == "msg_fake_0404" {
                return None;
            }
            if v["type"] == "result" {
                v.as_object_mut().unwrap().remove("result");
            }
            Some(v.to_string())
        })
        .collect();
    let transcript = h.file("no_final_text.jsonl");
    std::fs::write(&transcript, lines.join("\n") + "\n").unwrap();
    let runner = h.runner(h.config(transcript.to_str().unwrap()), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code").await;
    let outcome = runner.run(agent.id, "where is the port set?", RunOptions::default()).await.unwrap();
    assert_eq!(outcome.final_text.as_deref(), Some("I'll have a subagent look for the port setting."));

    let events = h.events(agent.id).await;
    let result = events.iter().rev().find(|r| r.event.kind() == "Result").unwrap();
    assert!(
        matches!(&result.event, Event::Result { result: Some(t), .. } if t.starts_with("I'll have a subagent")),
        "{:?}",
        result.event
    );
    let compacted = events
        .iter()
        .find_map(|r| match &r.event {
            Event::Compacted { tokens_before, tokens_after, summary, .. } => {
                Some((*tokens_before, *tokens_after, summary.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Compacted in {:?}", kinds(&events)));
    assert_eq!((compacted.0, compacted.1), (150_000, 0));
    assert!(compacted.2.starts_with("This session is being continued"), "{}", compacted.2);
    // No call after the compaction: what the context is now is not known, the window is.
    let context = events
        .iter()
        .find_map(|r| match &r.event {
            Event::AgentCostsUpdated { context_used, context_window, .. } => Some((*context_used, *context_window)),
            _ => None,
        })
        .unwrap();
    assert_eq!(context, (None, Some(200_000)));
}

/// A CLI that dies while its subagent runs: the subagent still gets its `SubagentStop` (an error), and
/// the agent row keeps the context of the agent's last call.
#[tokio::test]
async fn a_subagent_cut_off_by_a_crash_is_stopped_with_the_turn() {
    let h = Harness::new();
    let mut lines: Vec<String> = std::fs::read_to_string(fixture("claude").join("subagent_compact.jsonl"))
        .unwrap()
        .lines()
        .take_while(|l| !l.contains("msg_fake_0403"))
        .map(str::to_string)
        .collect();
    lines.push(r#"{"fake": "stderr", "text": "fatal: lost its connection to the API"}"#.into());
    lines.push(r#"{"fake": "exit", "code": 3}"#.into());
    let transcript = h.file("crash_in_subagent.jsonl");
    std::fs::write(&transcript, lines.join("\n") + "\n").unwrap();
    let runner = h.runner(h.config(transcript.to_str().unwrap()), HookRegistry::new());
    let agent = h.agent(&runner, "cc", "claude-code").await;
    let err = runner.run(agent.id, "where is the port set?", RunOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("without a result line"), "{err}");

    let events = h.events(agent.id).await;
    let stops: Vec<_> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::SubagentStop { subagent_id, reason, .. } => Some((subagent_id.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(stops.len(), 1, "{:?}", kinds(&events));
    assert_eq!(stops[0].0, TASK_ID);
    assert_eq!(stops[0].1.as_ref().map(ToString::to_string).as_deref(), Some("error"));
    let a = h.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(a.status, AgentStatus::Blocked);
    // 3000 input + 1000 cache-read tokens; the window from orch's price table for the init's model.
    assert_eq!((a.context_used, a.context_window), (4_000, Some(200_000)));
}
