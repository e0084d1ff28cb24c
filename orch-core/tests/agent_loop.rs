//! Acceptance tests of the native agent loop on the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orch_core::Interrupt;
use orch_core::executor::{AgentRunner, RunError, RunOptions, RunOutcome};
use orch_core::hook::{FnHook, HookDecision, HookEvent, HookRegistry};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{ModelProvider, ModelRequest};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry};
use orch_core::wire::{Agent, AgentStatus, ContentBlock, Event, EventRecord, Role};
use serde_json::{Value, json};
use support::StallingModel;

fn last_text(req: &ModelRequest) -> String {
    req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string()
}

/// All tool results the model was given in a request's last message.
fn last_results(req: &ModelRequest) -> Vec<(String, bool)> {
    match req.messages.last() {
        Some(m) if m.role == Role::User => m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolResult { content, is_error, .. } => Some((content.clone(), *is_error)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    runner: AgentRunner,
    agent: Agent,
    dir: tempfile::TempDir,
}

async fn setup(model: Arc<dyn ModelProvider>, tools: ToolRegistry, hooks: HookRegistry) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), model).tools(tools).hooks(hooks).build();
    let agent = runner.ensure_agent("tester", "scripted", dir.path().to_str().unwrap()).await.unwrap();
    Setup { store, runner, agent, dir }
}

async fn events(store: &MemoryStore) -> Vec<EventRecord> {
    store.read_events(&EventQuery::default()).await.unwrap()
}

fn kinds(evs: &[EventRecord]) -> Vec<&str> {
    evs.iter().map(|e| e.event.kind()).filter(|k| *k != "HookInvoked").collect()
}

#[tokio::test]
async fn multi_turn_tool_use_writes_reads_and_continues_the_conversation() {
    let seen = Arc::new(Mutex::new(Vec::<ModelRequest>::new()));
    let seen2 = seen.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        seen2.lock().unwrap().push(req.clone());
        let last = last_text(req);
        Ok(if last.starts_with("Say hi") {
            ScriptReply::tool_use("w1", "Write", json!({"file_path": "hello.txt", "content": "hi there\n"}))
        } else if last.starts_with("Wrote") {
            ScriptReply::tool_use("r1", "Read", json!({"file_path": "hello.txt"}))
        } else if last.contains("hi there") {
            ScriptReply::text("The file says hi there.")
        } else {
            ScriptReply::text(format!("second prompt seen after {} messages", req.messages.len()))
        })
    });
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), HookRegistry::new()).await;
    let out = s.runner.run(s.agent.id, "Say hi in hello.txt", RunOptions::default()).await.unwrap();
    assert_eq!(out.stop_reason, "end_turn");
    assert_eq!(out.num_turns, 3);
    assert_eq!(out.final_text.as_deref(), Some("The file says hi there."));
    assert_eq!(std::fs::read_to_string(s.dir.path().join("hello.txt")).unwrap(), "hi there\n");
    let evs = events(&s.store).await;
    let k = kinds(&evs);
    let expected = [
        "AgentCreated",
        "AgentStatusChanged",
        "UserPromptSubmit",
        "AgentCostsUpdated",
        "ToolUse",
        "PreToolUse",
        "PostToolUse",
        "ToolResult",
        "AgentCostsUpdated",
        "ToolUse",
        "PreToolUse",
        "PostToolUse",
        "ToolResult",
        "AgentCostsUpdated",
        "Text",
        "Stop",
        "Result",
        "AgentStatusChanged",
    ];
    assert_eq!(k, expected);
    // seq is gap-free and increasing.
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    // Every event of the run carries the agent and the run slug.
    assert!(evs[1..].iter().all(|e| e.keys.agent_id == Some(s.agent.id)));
    assert!(evs[2].keys.task_slug.as_deref().unwrap().starts_with("say-hi-in-hello-txt-"));
    let agent = s.store.get_agent(s.agent.id).await.unwrap().unwrap();
    assert_eq!(agent.status, AgentStatus::Idle);
    assert!(agent.usage.input_tokens > 0 && agent.usage.output_tokens > 0);

    // A later prompt continues the same conversation.
    let out2 = s.runner.run(s.agent.id, "And again?", RunOptions::default()).await.unwrap();
    assert_eq!(out2.final_text.as_deref(), Some("second prompt seen after 7 messages"));
    let reqs = seen.lock().unwrap().clone();
    let last = reqs.last().unwrap();
    assert_eq!(last.messages[0].last_text(), Some("Say hi in hello.txt"));
    assert_eq!(last.messages.len(), 7);
    assert_eq!(s.store.load_conversation(s.agent.id).await.unwrap().len(), 8);
}

fn deny_rm_rf() -> HookRegistry {
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::PreToolUse,
            Some("Bash"),
            FnHook::new("no-rm-rf", |input| {
                let cmd =
                    input.tool_input.as_ref().and_then(|v| v.get("command")).and_then(Value::as_str).unwrap_or("");
                if cmd.contains("rm -rf") {
                    HookDecision::Deny { reason: "rm -rf is not allowed here".into() }
                } else {
                    HookDecision::Continue
                }
            }),
        )
        .unwrap();
    hooks
}

#[tokio::test]
async fn pre_tool_use_deny_keeps_the_tool_from_running_and_tells_the_model() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let r2 = results.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let res = last_results(req);
        if res.is_empty() {
            return Ok(ScriptReply::tool_use("b1", "Bash", json!({"command": "rm -rf keep"})));
        }
        r2.lock().unwrap().extend(res);
        Ok(ScriptReply::text("ok"))
    });
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), deny_rm_rf()).await;
    std::fs::create_dir(s.dir.path().join("keep")).unwrap();
    s.runner.run(s.agent.id, "clean up", RunOptions::default()).await.unwrap();
    assert!(s.dir.path().join("keep").exists(), "the denied command must not run");
    let res = results.lock().unwrap().clone();
    assert_eq!(res.len(), 1);
    assert!(res[0].1, "a denial is a tool error");
    assert!(res[0].0.contains("rm -rf is not allowed here"), "{}", res[0].0);
    let evs = events(&s.store).await;
    assert!(evs.iter().any(|e| matches!(&e.event,
        Event::HookInvoked { decision, hook_name, .. } if decision == "deny" && hook_name == "no-rm-rf")));
}

#[tokio::test]
async fn hooks_rewrite_input_and_replace_output() {
    let results = Arc::new(Mutex::new(Vec::new()));
    let r2 = results.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let res = last_results(req);
        let n = {
            let mut g = r2.lock().unwrap();
            g.extend(res);
            g.len()
        };
        Ok(match n {
            0 => ScriptReply::tool_use("w", "Write", json!({"file_path": "a.txt", "content": "original"})),
            1 => ScriptReply::tool_use("r", "Read", json!({"file_path": "a.txt"})),
            _ => ScriptReply::text("done"),
        })
    });
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::PreToolUse,
            Some("Write|Edit"),
            FnHook::new("rewriter", |input| {
                let mut v = input.tool_input.clone().unwrap();
                v["content"] = json!("rewritten");
                HookDecision::RewriteInput { input: v }
            }),
        )
        .unwrap();
    hooks
        .register(
            HookEvent::PostToolUse,
            Some("Read"),
            FnHook::new("redactor", |_| HookDecision::ReplaceOutput { output: "[redacted]".into(), is_error: false }),
        )
        .unwrap();
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), hooks).await;
    s.runner.run(s.agent.id, "go", RunOptions::default()).await.unwrap();
    assert_eq!(std::fs::read_to_string(s.dir.path().join("a.txt")).unwrap(), "rewritten");
    let res = results.lock().unwrap().clone();
    assert_eq!(res[1], ("[redacted]".to_string(), false));
}

#[tokio::test]
async fn stop_hook_can_send_the_model_back_to_work_and_tool_hook_can_stop_the_turn() {
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        Ok(if last_text(req).contains("run the tests") {
            ScriptReply::text("tests pass")
        } else {
            ScriptReply::text("all done")
        })
    });
    let blocked = Arc::new(AtomicUsize::new(0));
    let b2 = blocked.clone();
    let mut hooks = HookRegistry::new();
    hooks
        .register(
            HookEvent::Stop,
            None,
            FnHook::new("insist", move |_| {
                if b2.fetch_add(1, Ordering::SeqCst) == 0 {
                    HookDecision::Deny { reason: "You did not run the tests yet.".into() }
                } else {
                    HookDecision::Continue
                }
            }),
        )
        .unwrap();
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), hooks).await;
    let out = s.runner.run(s.agent.id, "work", RunOptions::default()).await.unwrap();
    assert_eq!(out.num_turns, 2);
    assert_eq!(out.final_text.as_deref(), Some("tests pass"));

    // A PreToolUse hook that stops ends the turn after that tool.
    let model =
        ScriptedModel::from_fn(|_req: &ModelRequest| Ok(ScriptReply::tool_use("g", "Glob", json!({"pattern": "*"}))));
    let mut hooks = HookRegistry::new();
    hooks
        .register(HookEvent::PreToolUse, None, FnHook::new("halt", |_| HookDecision::Stop { reason: "enough".into() }))
        .unwrap();
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), hooks).await;
    let out = s.runner.run(s.agent.id, "look", RunOptions::default()).await.unwrap();
    assert_eq!(out.stop_reason, "hook: enough");
    assert_eq!(out.num_turns, 1);
}

#[tokio::test]
async fn max_turns_ends_the_turn() {
    let model =
        ScriptedModel::from_fn(|_req: &ModelRequest| Ok(ScriptReply::tool_use("g", "Glob", json!({"pattern": "*"}))));
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), HookRegistry::new()).await;
    let out =
        s.runner.run(s.agent.id, "loop forever", RunOptions { max_turns: 3, ..RunOptions::default() }).await.unwrap();
    assert_eq!(out.stop_reason, "max_turns");
    assert_eq!(out.num_turns, 3);
    let evs = events(&s.store).await;
    assert!(evs.iter().any(|e| matches!(&e.event, Event::Stop { reason, num_turns: 3, .. } if reason == "max_turns")));
    // The conversation stays valid: it ends with the last tool results.
    let conv = s.store.load_conversation(s.agent.id).await.unwrap();
    assert_eq!(conv.last().unwrap().role, Role::User);
}

/// A model that streams one text delta, then stalls forever.
async fn run_and_interrupt(s: &Setup, after: Duration) -> RunOutcome {
    let interrupt = Interrupt::new();
    let i2 = interrupt.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        i2.trigger();
    });
    let opts = RunOptions { interrupt: Some(interrupt), ..RunOptions::default() };
    tokio::time::timeout(Duration::from_secs(20), s.runner.run(s.agent.id, "go", opts))
        .await
        .expect("the interrupted run must end")
        .unwrap()
}

#[tokio::test]
async fn interrupt_mid_stream_leaves_the_agent_idle_with_a_stop_event() {
    let s = setup(Arc::new(StallingModel), ToolRegistry::with_builtins(), HookRegistry::new()).await;
    let out = run_and_interrupt(&s, Duration::from_millis(150)).await;
    assert!(out.interrupted());
    let agent = s.store.get_agent(s.agent.id).await.unwrap().unwrap();
    assert_eq!(agent.status, AgentStatus::Idle);
    let evs = events(&s.store).await;
    assert!(evs.iter().any(|e| matches!(&e.event, Event::Stop { reason, .. } if reason == "interrupted")));
    // Nothing of the half answer was recorded as a block.
    assert!(!evs.iter().any(|e| matches!(e.event, Event::Text { .. })));
    assert!(!s.runner.is_running(s.agent.id));
}

#[tokio::test]
async fn interrupt_mid_bash_kills_the_command() {
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        Ok(if last_results(req).is_empty() {
            ScriptReply::tool_use("b", "Bash", json!({"command": "echo $$ > pid; sleep 30"}))
        } else {
            ScriptReply::text("unexpected")
        })
    });
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), HookRegistry::new()).await;
    let out = run_and_interrupt(&s, Duration::from_millis(500)).await;
    assert!(out.interrupted());
    let evs = events(&s.store).await;
    assert!(evs.iter().any(|e| matches!(&e.event, Event::Stop { reason, .. } if reason == "interrupted")));
    // The tool call got a result so the conversation stays valid.
    let conv = s.store.load_conversation(s.agent.id).await.unwrap();
    let last = conv.last().unwrap();
    assert!(matches!(&last.content[0],
        ContentBlock::ToolResult { is_error: true, content, .. } if content.contains("Interrupted")));
    // The shell is gone.
    let pid = std::fs::read_to_string(s.dir.path().join("pid")).unwrap();
    let proc_path = format!("/proc/{}", pid.trim());
    for _ in 0..50 {
        if !std::path::Path::new(&proc_path).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!std::path::Path::new(&proc_path).exists(), "the Bash process survived the interrupt");
}

/// A tool that counts its calls; `block_first` makes its first call hang (to simulate a crash there).
struct Counter {
    name: &'static str,
    calls: Arc<AtomicUsize>,
    block_first: bool,
}

#[async_trait]
impl Tool for Counter {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "counts"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn call(&self, _ctx: &ToolContext, _input: Value) -> Result<ToolOutput, ToolError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.block_first && n == 0 {
            futures::future::pending::<()>().await;
        }
        Ok(ToolOutput::text(format!("{} call {}", self.name, n + 1)))
    }
}

#[tokio::test]
async fn resume_after_a_crash_does_not_rerun_completed_tools() {
    let a_calls = Arc::new(AtomicUsize::new(0));
    let b_calls = Arc::new(AtomicUsize::new(0));
    let mut tools = ToolRegistry::new();
    tools.register(Counter { name: "A", calls: a_calls.clone(), block_first: false });
    tools.register(Counter { name: "B", calls: b_calls.clone(), block_first: true });
    let model_calls = Arc::new(AtomicUsize::new(0));
    let mc = model_calls.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        mc.fetch_add(1, Ordering::SeqCst);
        let res = last_results(req);
        Ok(if res.is_empty() {
            ScriptReply {
                content: vec![
                    ContentBlock::ToolUse { id: "a".into(), name: "A".into(), input: json!({}) },
                    ContentBlock::ToolUse { id: "b".into(), name: "B".into(), input: json!({}) },
                ],
                usage: None,
            }
        } else {
            ScriptReply::text(format!("results: {}", res.iter().map(|r| r.0.as_str()).collect::<Vec<_>>().join(", ")))
        })
    });
    let s = setup(Arc::new(model), tools, HookRegistry::new()).await;
    // The "process" dies while B runs: the run future is dropped.
    let crashed =
        tokio::time::timeout(Duration::from_millis(500), s.runner.run(s.agent.id, "do both", RunOptions::default()))
            .await;
    assert!(crashed.is_err(), "the run should have been cut off while B ran");
    assert_eq!(a_calls.load(Ordering::SeqCst), 1);
    assert_eq!(b_calls.load(Ordering::SeqCst), 1);

    // A new prompt is refused until the turn is resumed.
    let err = s.runner.run(s.agent.id, "something else", RunOptions::default()).await.unwrap_err();
    assert!(matches!(err, RunError::UnfinishedTurn(_)), "{err}");

    let out = s.runner.resume(s.agent.id, RunOptions::default()).await.unwrap();
    assert_eq!(a_calls.load(Ordering::SeqCst), 1, "A had completed and must not run again");
    assert_eq!(b_calls.load(Ordering::SeqCst), 2, "B had not completed and runs again");
    assert_eq!(model_calls.load(Ordering::SeqCst), 2, "the model is not asked again for the same step");
    assert_eq!(out.final_text.as_deref(), Some("results: A call 1, B call 2"));
    assert_eq!(out.num_turns, 2);
    let agent = s.store.get_agent(s.agent.id).await.unwrap().unwrap();
    assert_eq!(agent.status, AgentStatus::Idle);
    // Nothing to resume any more.
    assert!(matches!(s.runner.resume(s.agent.id, RunOptions::default()).await, Err(RunError::NothingToResume(_))));
}

#[tokio::test]
async fn one_agent_never_runs_twice_at_once() {
    let s = setup(Arc::new(StallingModel), ToolRegistry::with_builtins(), HookRegistry::new()).await;
    let r = s.runner.clone();
    let id = s.agent.id;
    let first = tokio::spawn(async move { r.run(id, "one", RunOptions::default()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = s.runner.run(id, "two", RunOptions::default()).await.unwrap_err();
    assert!(matches!(err, RunError::AgentBusy { .. }), "{err}");
    assert!(s.runner.interrupt(id));
    let out = tokio::time::timeout(Duration::from_secs(10), first).await.unwrap().unwrap().unwrap();
    assert!(out.interrupted());
}

#[tokio::test]
async fn sandbox_refusals_are_recorded_and_reported_to_the_model() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "s3cret").unwrap();
    let secret = outside.path().join("secret.txt").to_str().unwrap().to_string();
    let results = Arc::new(Mutex::new(Vec::new()));
    let r2 = results.clone();
    let secret2 = secret.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let res = last_results(req);
        let n = {
            let mut g = r2.lock().unwrap();
            g.extend(res);
            g.len()
        };
        Ok(match n {
            0 => ScriptReply::tool_use("t1", "Read", json!({"file_path": "../escape.txt"})),
            1 => ScriptReply::tool_use("t2", "Read", json!({"file_path": secret2})),
            2 => ScriptReply::tool_use("t3", "Read", json!({"file_path": "link.txt"})),
            _ => ScriptReply::text("ok"),
        })
    });
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), HookRegistry::new()).await;
    std::os::unix::fs::symlink(&secret, s.dir.path().join("link.txt")).unwrap();
    s.runner.run(s.agent.id, "try to escape", RunOptions::default()).await.unwrap();
    let res = results.lock().unwrap().clone();
    assert_eq!(res.len(), 3);
    for (content, is_error) in res.iter() {
        assert!(*is_error, "refusal must be a tool error: {content}");
        assert!(!content.contains("s3cret"), "the secret leaked: {content}");
    }
    let refused = events(&s.store).await.into_iter().filter(|e| matches!(e.event, Event::ToolRefused { .. })).count();
    assert_eq!(refused, 3);
}

#[tokio::test]
async fn unknown_model_costs_zero_and_warns_once_known_model_is_priced() {
    let model = ScriptedModel::from_fn(|_req: &ModelRequest| Ok(ScriptReply::text("hi")));
    let s = setup(Arc::new(model), ToolRegistry::with_builtins(), HookRegistry::new()).await;
    let agent = Agent::new("pricey", "some-unknown-model", s.dir.path().to_str().unwrap());
    let agent = s.runner.create_agent(agent).await.unwrap();
    s.runner.run(agent.id, "a", RunOptions::default()).await.unwrap();
    s.runner.run(agent.id, "b", RunOptions::default()).await.unwrap();
    let warnings = events(&s.store)
        .await
        .into_iter()
        .filter(|e| matches!(&e.event, Event::SystemLog { message, .. } if message.contains("some-unknown-model")))
        .count();
    assert_eq!(warnings, 1);
    let a = s.store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(a.total_cost_usd, 0.0);

    // A known model (by alias) is priced, and the agent's total matches the turn's cost.
    let known =
        s.runner.create_agent(Agent::new("sonnet-agent", "sonnet", s.dir.path().to_str().unwrap())).await.unwrap();
    let out = s.runner.run(known.id, "a", RunOptions::default()).await.unwrap();
    assert!(out.cost_usd > 0.0);
    let a = s.store.get_agent(known.id).await.unwrap().unwrap();
    assert!((a.total_cost_usd - out.cost_usd).abs() < 1e-12);
}
