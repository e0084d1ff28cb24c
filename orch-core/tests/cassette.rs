//! Cassettes: record model calls of real agent runs, replay them offline and deterministically.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, stream};
use orch_core::executor::{AgentRunner, RunError, RunOptions};
use orch_core::model::cassette::{
    CassetteError, MatchField, RecordedError, RecordedErrorKind, RecordingProvider, ReplayProvider, read_cassette,
};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{BlockStart, DeltaStream, ModelDelta, ModelError, ModelProvider, ModelRequest, ToolSpec};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Agent, ContentBlock, EventRecord, Id, Message, Role, Usage};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The content of the tool results in the request's last message.
fn last_results(req: &ModelRequest) -> Vec<String> {
    match req.messages.last() {
        Some(m) if m.role == Role::User => m
            .content
            .iter()
            .filter_map(|b| match b {
                ContentBlock::ToolResult { content, .. } => Some(content.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

/// A writer agent: thinks, writes a file, reads it, edits it, globs, then reports what it saw.
fn writer_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req| {
        let n = req.messages.len() as u64;
        let reply = match req.messages.len() {
            1 => ScriptReply::default()
                .with_thinking("I should write the greeting first.")
                .with_text("Writing the greeting.")
                .with_tool_use("", "Write", json!({"file_path": "greeting.txt", "content": "hello\nworld\n"})),
            3 => ScriptReply::tool_use("", "Read", json!({"file_path": "greeting.txt"})),
            5 => ScriptReply::tool_use(
                "",
                "Edit",
                json!({"file_path": "greeting.txt", "old_string": "hello", "new_string": "howdy"}),
            ),
            7 => ScriptReply::tool_use("", "Glob", json!({"pattern": "*.txt"})),
            _ => ScriptReply::text(format!("Done after {n} messages; last result: {}", last_results(req).join("|"))),
        };
        Ok(reply.with_usage(usage(100 + 10 * n, 20 + n)))
    })
}

/// Adds one `Retry` delta before the first answer of each agent, as a retrying transport does.
struct RetryOnce {
    inner: Arc<dyn ModelProvider>,
    seen: Mutex<HashSet<String>>,
}

impl RetryOnce {
    fn new(inner: impl ModelProvider) -> Self {
        Self { inner: Arc::new(inner), seen: Mutex::new(HashSet::new()) }
    }
}

#[async_trait]
impl ModelProvider for RetryOnce {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let first = self.seen.lock().unwrap().insert(request.agent_name.clone());
        let answer = self.inner.stream(request).await?;
        if first {
            let retry = ModelDelta::Retry { attempt: 1, wait_ms: 250, error: "provider overloaded: try later".into() };
            Ok(stream::iter([Ok(retry)]).chain(answer).boxed())
        } else {
            Ok(answer)
        }
    }
}

/// Streams the start of an answer, then breaks.
struct BreakingModel;

#[async_trait]
impl ModelProvider for BreakingModel {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn stream(&self, _request: ModelRequest) -> Result<DeltaStream, ModelError> {
        Ok(stream::iter([
            Ok(ModelDelta::BlockStart { index: 0, block: BlockStart::Text }),
            Ok(ModelDelta::Text { index: 0, text: "I was about to".into() }),
            Err(ModelError::StreamBroken { message: "connection reset by peer".into() }),
        ])
        .boxed())
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    runner: AgentRunner,
    dir: tempfile::TempDir,
}

fn setup(model: Arc<dyn ModelProvider>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), model).tools(ToolRegistry::with_builtins()).build();
    Setup { store, runner, dir }
}

impl Setup {
    async fn agent(&self, name: &str) -> Agent {
        self.runner.ensure_agent(name, "scripted", self.dir.path().to_str().unwrap()).await.unwrap()
    }

    async fn events(&self) -> Vec<EventRecord> {
        self.store.read_events(&EventQuery::default()).await.unwrap()
    }
}

/// Events without what differs between runs: seq, timestamps, ids, keys, durations, the created agent
/// record (reduced to its name and model).
fn normalized(evs: &[EventRecord]) -> Vec<Value> {
    evs.iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e.event).unwrap();
            let obj = v.as_object_mut().unwrap();
            obj.remove("duration_ms");
            if let Some(agent) = obj.get_mut("agent") {
                *agent = json!({"name": agent["name"], "model": agent["model"]});
            }
            v
        })
        .collect()
}

fn normalized_for(evs: &[EventRecord], agent: Id) -> Vec<Value> {
    let mine: Vec<EventRecord> = evs.iter().filter(|e| e.keys.agent_id == Some(agent)).cloned().collect();
    normalized(&mine)
}

fn kinds(evs: &[EventRecord]) -> Vec<&str> {
    evs.iter().map(|e| e.event.kind()).collect()
}

fn cassette_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("cassettes").join("nested").join("run.jsonl")
}

fn no_answer(e: RunError) -> String {
    match e {
        RunError::Model(ModelError::NoAnswer { message }) => message,
        other => panic!("expected a NoAnswer model error, got {other:?}"),
    }
}

async fn stream_err(provider: &dyn ModelProvider, request: ModelRequest) -> ModelError {
    match provider.stream(request).await {
        Err(e) => e,
        Ok(_) => panic!("expected the call to fail"),
    }
}

async fn collect(provider: &dyn ModelProvider, request: ModelRequest) -> Vec<Result<ModelDelta, String>> {
    match provider.stream(request).await {
        Ok(s) => s.map(|r| r.map_err(|e| e.to_string())).collect().await,
        Err(e) => vec![Err(e.to_string())],
    }
}

fn request(agent: &str, system: Option<&str>, tools: Vec<ToolSpec>, prompt: &str) -> ModelRequest {
    ModelRequest {
        model: "claude-test".into(),
        system: system.map(str::to_owned),
        messages: Arc::new(vec![Message::user_text(prompt)]),
        tools: Arc::new(tools),
        max_tokens: 4096,
        thinking: None,
        agent_name: agent.into(),
    }
}

fn tool(name: &str, required: &[&str]) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("The {name} tool."),
        input_schema: json!({"type": "object", "properties": {"file_path": {"type": "string"}}, "required": required}),
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------
// Record, then replay.

#[tokio::test]
async fn a_recorded_tool_using_run_replays_identically_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let path = cassette_path(&tmp);

    // Record.
    let recorder = Arc::new(RecordingProvider::create(Arc::new(RetryOnce::new(writer_model())), &path).unwrap());
    assert_eq!(recorder.name(), "scripted");
    let rec = setup(recorder.clone());
    let agent = rec.agent("writer").await;
    let out = rec.runner.run(agent.id, "Write a greeting", RunOptions::default()).await.unwrap();
    assert_eq!(out.num_turns, 5);
    let out2 = rec.runner.run(agent.id, "Anything else?", RunOptions::default()).await.unwrap();
    assert_eq!(recorder.recorded(), 6);
    assert_eq!(std::fs::read_to_string(rec.dir.path().join("greeting.txt")).unwrap(), "howdy\nworld\n");
    let recorded_events = rec.events().await;
    assert!(kinds(&recorded_events).contains(&"ModelRetry"));
    assert!(kinds(&recorded_events).contains(&"Thinking"));

    // Replay in a fresh store and a fresh working directory, with no model at all.
    let replay = Arc::new(ReplayProvider::from_file(&path).unwrap());
    assert_eq!(replay.name(), "scripted");
    assert_eq!((replay.len(), replay.remaining()), (6, 6));
    assert_eq!(replay.agents(), ["writer"]);
    let rep = setup(replay.clone());
    let agent = rep.agent("writer").await;
    let again = rep.runner.run(agent.id, "Write a greeting", RunOptions::default()).await.unwrap();
    let again2 = rep.runner.run(agent.id, "Anything else?", RunOptions::default()).await.unwrap();
    assert_eq!(replay.remaining(), 0);

    // Same outcome, same event log (kinds, texts, tool inputs and results, usage, retries).
    assert_eq!((again.final_text, again.usage, again.num_turns), (out.final_text, out.usage, out.num_turns));
    assert_eq!((again2.final_text, again2.usage), (out2.final_text, out2.usage));
    let replayed_events = rep.events().await;
    assert_eq!(kinds(&replayed_events), kinds(&recorded_events));
    assert_eq!(normalized(&replayed_events), normalized(&recorded_events));
    // The tools really ran again, in the new directory.
    assert_eq!(std::fs::read_to_string(rep.dir.path().join("greeting.txt")).unwrap(), "howdy\nworld\n");

    // The cassette: valid JSON Lines, one per call, plain readable JSON.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["provider"], "scripted");
        assert_eq!(v["request"]["agent_name"], "writer");
        assert_eq!(v["request"]["model"], "scripted");
        assert!(v["request"]["messages"].is_array() && v["request"]["tools"].is_array());
        assert!(v["response"]["deltas"].as_array().unwrap().iter().all(|d| d["delta"].is_string()));
        assert!(v["response"].get("error").is_none());
        assert!(v["recorded_at"].as_str().unwrap().contains('T'));
    }
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        first["response"]["deltas"][0],
        json!({"delta": "retry", "attempt": 1, "wait_ms": 250, "error": "provider overloaded: try later"})
    );
    assert!(text.contains("I should write the greeting first."), "thinking is readable text");
    assert!(text.contains("Write a greeting"), "prompts are readable text");
    assert!(lines[5].contains("Anything else?"));
    assert_eq!(read_cassette(&path).unwrap().iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn a_failed_call_replays_the_same_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("errors.jsonl");
    // One agent whose call fails before streaming (overloaded), one whose stream breaks mid-answer.
    struct Mixed {
        overloaded: ScriptedModel,
    }
    #[async_trait]
    impl ModelProvider for Mixed {
        fn name(&self) -> &str {
            "scripted"
        }
        async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
            if request.agent_name == "breaker" {
                BreakingModel.stream(request).await
            } else {
                self.overloaded.stream(request).await
            }
        }
    }
    let model = Mixed {
        overloaded: ScriptedModel::from_fn(|_| Err(ModelError::Overloaded { message: "529 overloaded_error".into() })),
    };
    let rec = setup(Arc::new(RecordingProvider::create(Arc::new(model), &path).unwrap()));
    let a = rec.agent("busy").await;
    let b = rec.agent("breaker").await;
    let e1 = rec.runner.run(a.id, "hello", RunOptions::default()).await.unwrap_err();
    let e2 = rec.runner.run(b.id, "hello", RunOptions::default()).await.unwrap_err();
    assert!(matches!(&e1, RunError::Model(e @ ModelError::Overloaded { .. }) if e.is_retryable()), "{e1:?}");
    assert!(matches!(&e2, RunError::Model(ModelError::StreamBroken { .. })), "{e2:?}");

    let l = lines(&path);
    assert_eq!(l.len(), 2);
    let v1: Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(
        v1["response"],
        json!({"error": {"kind": "overloaded", "message": "529 overloaded_error", "retryable": true}})
    );
    let v2: Value = serde_json::from_str(&l[1]).unwrap();
    assert_eq!(v2["response"]["deltas"].as_array().unwrap().len(), 2);
    assert_eq!(
        v2["response"]["error"],
        json!({"kind": "stream_broken", "message": "connection reset by peer", "retryable": false})
    );

    let rep = setup(Arc::new(ReplayProvider::from_file(&path).unwrap()));
    let a2 = rep.agent("busy").await;
    let b2 = rep.agent("breaker").await;
    let r1 = rep.runner.run(a2.id, "hello", RunOptions::default()).await.unwrap_err();
    let r2 = rep.runner.run(b2.id, "hello", RunOptions::default()).await.unwrap_err();
    assert_eq!(r1.to_string(), e1.to_string());
    assert_eq!(r2.to_string(), e2.to_string());
    assert!(matches!(&r1, RunError::Model(e @ ModelError::Overloaded { .. }) if e.is_retryable()));
    assert!(matches!(&r2, RunError::Model(e @ ModelError::StreamBroken { .. }) if !e.is_retryable()));
    assert_eq!(normalized(&rep.events().await), normalized(&rec.events().await));
}

#[test]
fn every_model_error_converts_to_its_recorded_form_and_back() {
    let errors = [
        ModelError::RateLimited { message: "slow down".into(), retry_after: Some(Duration::from_millis(1500)) },
        ModelError::RateLimited { message: "slow down".into(), retry_after: None },
        ModelError::Overloaded { message: "busy".into() },
        ModelError::Server { status: 503, message: "unavailable".into() },
        ModelError::Connection { message: "refused".into() },
        ModelError::Timeout { message: "no data for 60 s".into() },
        ModelError::Auth { message: "bad key".into() },
        ModelError::InvalidRequest { kind: "invalid_request_error".into(), message: "too long".into() },
        ModelError::StreamBroken { message: "reset".into() },
        ModelError::Protocol { message: "bad event".into() },
        ModelError::NoAnswer { message: "nothing".into() },
        ModelError::Other { message: "else".into() },
    ];
    for e in errors {
        let recorded = RecordedError::from(&e);
        assert_eq!(recorded.retryable, e.is_retryable());
        let json = serde_json::to_string(&recorded).unwrap();
        let back: RecordedError = serde_json::from_str(&json).unwrap();
        let e2 = ModelError::from(&back);
        assert_eq!(format!("{e2:?}"), format!("{e:?}"), "{json}");
        assert_eq!(e2.is_retryable(), e.is_retryable());
    }
    let rate = RecordedError::from(&ModelError::RateLimited {
        message: "x".into(),
        retry_after: Some(Duration::from_secs(2)),
    });
    assert_eq!((rate.kind, rate.retry_after_ms), (RecordedErrorKind::RateLimited, Some(2000)));
    assert_eq!(
        serde_json::to_value(RecordedError::from(&ModelError::Server { status: 502, message: "bad gateway".into() }))
            .unwrap(),
        json!({"kind": "server", "message": "bad gateway", "retryable": true, "status": 502})
    );
}

// ---------------------------------------------------------------------------------------------
// Mismatches.

#[tokio::test]
async fn a_changed_prompt_fails_with_a_diff_naming_the_message_and_both_texts() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("prompt.jsonl");
    let rec = setup(Arc::new(RecordingProvider::create(Arc::new(writer_model()), &path).unwrap()));
    let agent = rec.agent("writer").await;
    rec.runner.run(agent.id, "Write a greeting for the team", RunOptions::default()).await.unwrap();

    let replay = Arc::new(ReplayProvider::from_file(&path).unwrap());
    let rep = setup(replay.clone());
    let agent = rep.agent("writer").await;
    let err = rep.runner.run(agent.id, "Write a farewell for the team", RunOptions::default()).await.unwrap_err();
    let message = no_answer(err);
    println!("{message}");
    assert!(message.contains("call #1 of agent 'writer'"), "{message}");
    assert!(message.contains(&format!("cassette {}, line 1", path.display())), "{message}");
    assert!(message.contains("messages[0].content[0].text"), "{message}");
    assert!(message.contains("recorded: \"Write a greeting for the team\""), "{message}");
    assert!(message.contains("actual:   \"Write a farewell for the team\""), "{message}");
    assert!(
        !message.contains("- tools") && !message.contains("- system"),
        "only the differing field is named: {message}"
    );
    // The failed call did not use up the interaction; the model error is in the log.
    assert_eq!(replay.remaining(), 5);
    assert!(kinds(&rep.events().await).contains(&"ModelError"));
}

#[tokio::test]
async fn a_changed_tool_result_mid_run_is_named_with_the_call_number() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("midrun.jsonl");
    let rec = setup(Arc::new(RecordingProvider::create(Arc::new(writer_model()), &path).unwrap()));
    let agent = rec.agent("writer").await;
    rec.runner.run(agent.id, "Write a greeting", RunOptions::default()).await.unwrap();

    // The replay's directory holds one more file: the Glob result (the 5th call's last message) differs.
    let rep = setup(Arc::new(ReplayProvider::from_file(&path).unwrap()));
    std::fs::write(rep.dir.path().join("extra.txt"), "x").unwrap();
    let agent = rep.agent("writer").await;
    let message = no_answer(rep.runner.run(agent.id, "Write a greeting", RunOptions::default()).await.unwrap_err());
    println!("{message}");
    assert!(message.contains("call #5 of agent 'writer'"), "{message}");
    assert!(message.contains("line 5"), "{message}");
    assert!(message.contains("messages[8].content[0].content"), "{message}");
    assert!(message.contains("extra.txt"), "{message}");
}

#[tokio::test]
async fn changed_system_prompt_and_tools_are_named_compactly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("direct.jsonl");
    let long_system = format!("{}You are careful.{}", "a".repeat(50_000), "z".repeat(50_000));
    let tools = vec![tool("Read", &["file_path"]), tool("Write", &["file_path", "content"])];
    let recorder =
        RecordingProvider::create(Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("ok")))), &path).unwrap();
    let ok = collect(&recorder, request("alice", Some(&long_system), tools.clone(), "go")).await;
    assert!(ok.iter().all(Result::is_ok));
    let ok = collect(&recorder, request("alice", Some("short"), tools.clone(), "go on")).await;
    assert!(ok.iter().all(Result::is_ok));

    // System prompt: named, both values shown around the difference, the message stays small.
    let replay = ReplayProvider::from_file(&path).unwrap();
    let changed = long_system.replace("careful", "careless");
    let e = stream_err(&replay, request("alice", Some(&changed), tools.clone(), "go")).await;
    let ModelError::NoAnswer { message } = &e else { panic!("{e:?}") };
    println!("{message}");
    assert!(!e.is_retryable());
    assert!(message.contains("- system: differs at offset 50012 (recorded 100016 chars, actual 100017)"), "{message}");
    assert!(message.contains("recorded: \"…aaaa") && message.contains("aaaaYou are careful.zzz"), "{message}");
    assert!(message.contains("actual:   \"…aaaa") && message.contains("aaaaYou are careless.zzz"), "{message}");
    assert!(message.len() < 1000, "{} bytes", message.len());

    // Tools: the name lists and the changed schema.
    let mut changed_tools = vec![tool("Read", &["file_path"]), tool("Write", &["file_path"])];
    changed_tools.push(tool("Bash", &[]));
    let e = stream_err(&replay, request("alice", Some(&long_system), changed_tools.clone(), "go")).await;
    let ModelError::NoAnswer { message } = &e else { panic!("{e:?}") };
    println!("{message}");
    assert!(message.contains("tools (names): recorded [Read, Write], actual [Read, Write, Bash]"), "{message}");
    assert!(message.contains("tools[\"Write\"].input_schema.required: recorded 2 items, actual 1 item"), "{message}");
    assert!(message.contains("tools[\"Write\"].input_schema.required[1]: recorded \"content\", actual (absent)"));
    assert!(!message.contains("- system"), "{message}");

    // max_tokens and a missing system prompt.
    let mut req = request("alice", None, tools.clone(), "go");
    req.max_tokens = 8192;
    let e = stream_err(&replay, req.clone()).await;
    let ModelError::NoAnswer { message } = &e else { panic!("{e:?}") };
    assert!(message.contains("- max_tokens: recorded 4096, actual 8192"), "{message}");
    assert!(message.contains("- system:") && message.contains("actual:   (none)"), "{message}");

    // Leaving fields out of the comparison: the changed requests replay.
    let replay = ReplayProvider::from_file(&path).unwrap().ignoring(&["system", "tools", "max_tokens"]).unwrap();
    let mut req = request("alice", Some("whatever"), changed_tools, "go");
    req.max_tokens = 1;
    assert_eq!(
        collect(&replay, req).await.last(),
        Some(&Ok(ModelDelta::Stop { reason: orch_core::model::StopReason::EndTurn }))
    );
    // The messages are still compared.
    let e = stream_err(&replay, request("alice", None, vec![], "go further")).await;
    assert!(e.to_string().contains("messages[0].content[0].text: differs at offset 3"), "{e}");
    let replay = replay.ignore(MatchField::Messages);
    assert!(collect(&replay, request("alice", None, vec![], "go further")).await.iter().all(Result::is_ok));

    // No more interactions for the agent; an agent never recorded.
    let e = stream_err(&replay, request("alice", None, vec![], "again")).await;
    assert!(e.to_string().contains("agent 'alice' made call #3, but cassette"), "{e}");
    assert!(e.to_string().contains("recorded only 2 calls of it"), "{e}");
    let e = stream_err(&replay, request("zed", None, vec![], "hi")).await;
    assert!(e.to_string().contains("holds no interaction of agent 'zed' (agents recorded: alice)"), "{e}");

    let bad = ReplayProvider::from_file(&path).unwrap().ignoring(&["max_token"]).unwrap_err();
    assert!(matches!(&bad, CassetteError::UnknownField { field } if field == "max_token"));
    assert!(bad.to_string().contains("model, system, messages, tools, max_tokens, thinking"), "{bad}");
}

#[tokio::test]
async fn many_differences_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("many.jsonl");
    let recorder =
        RecordingProvider::create(Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("ok")))), &path).unwrap();
    let many = |suffix: &str| -> Vec<ToolSpec> {
        (0..30).map(|i| ToolSpec { description: format!("tool {i}{suffix}"), ..tool(&format!("T{i}"), &[]) }).collect()
    };
    collect(&recorder, request("a", None, many(""), "go")).await;
    let replay = ReplayProvider::from_file(&path).unwrap();
    let e = stream_err(&replay, request("a", None, many("!"), "go")).await;
    let message = e.to_string();
    assert!(message.contains("… and 18 more differences"), "{message}");
    assert!(message.lines().count() < 50, "{message}");
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

/// Each agent writes its own file, reads it back, then reports.
fn two_agent_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req| {
        let me = req.agent_name.clone();
        Ok(match req.messages.len() {
            1 => ScriptReply::tool_use("", "Write", json!({"file_path": format!("{me}.txt"), "content": me})),
            3 => ScriptReply::tool_use("", "Read", json!({"file_path": format!("{me}.txt")})),
            _ => ScriptReply::text(format!("{me} read: {}", last_results(req).join(""))),
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_recorded_concurrently_replay_per_agent_in_any_order() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("two.jsonl");
    let recorder = Arc::new(RecordingProvider::create(Arc::new(two_agent_model()), &path).unwrap());
    let rec = setup(recorder.clone());
    let (alice, bob) = (rec.agent("alice").await, rec.agent("bob").await);
    let (ra, rb) = tokio::join!(
        rec.runner.run(alice.id, "go", RunOptions::default()),
        rec.runner.run(bob.id, "go", RunOptions::default())
    );
    assert!(ra.unwrap().final_text.unwrap().starts_with("alice read: "));
    assert!(rb.unwrap().final_text.unwrap().starts_with("bob read: "));
    let recorded = rec.events().await;
    // Whole lines only, three per agent.
    let l = lines(&path);
    assert_eq!(l.len(), 6);
    let mut per_agent = HashMap::<String, usize>::new();
    for line in &l {
        let v: Value = serde_json::from_str(line).unwrap();
        *per_agent.entry(v["request"]["agent_name"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(per_agent, HashMap::from([("alice".to_owned(), 3), ("bob".to_owned(), 3)]));

    // Replay sequentially, bob first: each agent still gets its own answers in its own order.
    let rep = setup(Arc::new(ReplayProvider::from_file(&path).unwrap()));
    let (alice2, bob2) = (rep.agent("alice").await, rep.agent("bob").await);
    rep.runner.run(bob2.id, "go", RunOptions::default()).await.unwrap();
    rep.runner.run(alice2.id, "go", RunOptions::default()).await.unwrap();
    let replayed = rep.events().await;
    assert_eq!(normalized_for(&replayed, alice2.id), normalized_for(&recorded, alice.id));
    assert_eq!(normalized_for(&replayed, bob2.id), normalized_for(&recorded, bob.id));

    // And concurrently again.
    let rep = setup(Arc::new(ReplayProvider::from_file(&path).unwrap()));
    let (alice3, bob3) = (rep.agent("alice").await, rep.agent("bob").await);
    let (ra, rb) = tokio::join!(
        rep.runner.run(alice3.id, "go", RunOptions::default()),
        rep.runner.run(bob3.id, "go", RunOptions::default())
    );
    ra.unwrap();
    rb.unwrap();
    let replayed = rep.events().await;
    assert_eq!(normalized_for(&replayed, alice3.id), normalized_for(&recorded, alice.id));
    assert_eq!(normalized_for(&replayed, bob3.id), normalized_for(&recorded, bob.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_never_interleave_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("many-calls.jsonl");
    let big = "x".repeat(100_000);
    let recorder = Arc::new(
        RecordingProvider::create(Arc::new(ScriptedModel::from_fn(move |_| Ok(ScriptReply::text(big.clone())))), &path)
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for i in 0..16 {
        let r = recorder.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..4 {
                collect(&*r, request(&format!("agent{i}"), None, vec![], &format!("call {j}"))).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(recorder.recorded(), 64);
    let all = read_cassette(&path).unwrap();
    assert_eq!(all.len(), 64);
    // Per agent, the calls are in order.
    let replay = ReplayProvider::from_file(&path).unwrap();
    for i in 0..16 {
        for j in 0..4 {
            let out = collect(&replay, request(&format!("agent{i}"), None, vec![], &format!("call {j}"))).await;
            assert!(out.iter().all(Result::is_ok));
        }
    }
    assert_eq!(replay.remaining(), 0);
}

// ---------------------------------------------------------------------------------------------
// Bad cassettes and I/O.

#[tokio::test]
async fn bad_cassette_lines_are_reported_with_their_line_number() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.jsonl");
    let recorder =
        RecordingProvider::create(Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("ok")))), &path).unwrap();
    collect(&recorder, request("a", None, vec![], "one")).await;
    collect(&recorder, request("a", None, vec![], "two")).await;
    let good = lines(&path);

    let write = |ls: &[&str]| std::fs::write(&path, ls.join("\n") + "\n").unwrap();
    // Not JSON, on line 3 (after a blank line).
    write(&[&good[0], "", "{\"v\": 1, \"provider\": oops}", &good[1]]);
    let e = ReplayProvider::from_file(&path).unwrap_err();
    assert!(matches!(&e, CassetteError::Parse { line: 3, column: 22, .. }), "{e:?}");
    assert_eq!(e.line(), Some(3));
    assert!(
        e.to_string().starts_with(&format!("cassette {}, line 3, column 22: expected value", path.display())),
        "{e}"
    );

    // JSON, but not an interaction.
    write(&[&good[0], r#"{"v": 1, "provider": "x"}"#]);
    let e = ReplayProvider::from_file(&path).unwrap_err();
    assert!(matches!(&e, CassetteError::Parse { line: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("missing field `request`"), "{e}");

    // A future version.
    let v2 = good[1].replacen("\"v\":1", "\"v\":2", 1);
    write(&[&good[0], &v2]);
    let e = ReplayProvider::from_file(&path).unwrap_err();
    assert!(matches!(&e, CassetteError::Invalid { line: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("unsupported cassette version 2"), "{e}");

    // An unknown error kind, and a retryable flag that contradicts the kind.
    let mut v: Value = serde_json::from_str(&good[1]).unwrap();
    v["response"] = json!({"error": {"kind": "exploded", "message": "boom", "retryable": false}});
    write(&[&good[0], &v.to_string()]);
    let e = ReplayProvider::from_file(&path).unwrap_err();
    assert!(
        matches!(&e, CassetteError::Parse { line: 2, .. }) && e.to_string().contains("unknown variant `exploded`"),
        "{e}"
    );
    v["response"] = json!({"error": {"kind": "auth", "message": "bad key", "retryable": true}});
    write(&[&good[0], &v.to_string()]);
    let e = ReplayProvider::from_file(&path).unwrap_err();
    assert!(matches!(&e, CassetteError::Invalid { line: 2, .. }) && e.to_string().contains("\"auth\""), "{e}");
    v["response"] = json!({});
    write(&[&v.to_string()]);
    let e = ReplayProvider::from_file(&path).unwrap_err();
    assert!(matches!(&e, CassetteError::Invalid { line: 1, .. }), "{e:?}");

    // Missing file.
    let e = ReplayProvider::from_file(tmp.path().join("nope.jsonl")).unwrap_err();
    assert!(matches!(&e, CassetteError::Io { .. }) && e.to_string().contains("nope.jsonl"), "{e}");

    // An empty cassette replays nothing and is named `replay`.
    std::fs::write(&path, "").unwrap();
    let empty = ReplayProvider::from_file(&path).unwrap();
    assert_eq!((empty.name(), empty.len(), empty.is_empty()), ("replay", 0, true));
    let e = stream_err(&empty, request("a", None, vec![], "x")).await;
    assert!(e.to_string().contains("holds no interaction of agent 'a' (agents recorded: none)"), "{e}");
}

#[tokio::test]
async fn create_truncates_append_appends_and_bad_paths_fail_early() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.jsonl");
    let model = || -> Arc<dyn ModelProvider> { Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("ok")))) };
    let r = RecordingProvider::create(model(), &path).unwrap();
    collect(&r, request("a", None, vec![], "one")).await;
    let r = RecordingProvider::append(model(), &path).unwrap();
    collect(&r, request("a", None, vec![], "two")).await;
    assert_eq!(lines(&path).len(), 2);
    let r = RecordingProvider::create(model(), &path).unwrap();
    assert_eq!(r.path(), path);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");

    // A parent that is a file.
    let e = RecordingProvider::create(model(), path.join("below.jsonl")).unwrap_err();
    assert!(matches!(&e, CassetteError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("below.jsonl") && e.to_string().contains("cannot create the directory"), "{e}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_cassette_that_cannot_be_written_fails_the_call_naming_the_file() {
    let model = || -> Arc<dyn ModelProvider> { Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("ok")))) };
    let r = RecordingProvider::append(model(), "/dev/full").unwrap();
    let out = collect(&r, request("a", None, vec![], "one")).await;
    let last = out.last().unwrap().as_ref().unwrap_err();
    assert!(last.starts_with("cassette /dev/full: could not record the model call of agent 'a': "), "{last}");
    assert_eq!(r.recorded(), 0);

    // Through the agent loop: the run fails with that error.
    let s = setup(Arc::new(r));
    let agent = s.agent("a").await;
    let e = s.runner.run(agent.id, "hi", RunOptions::default()).await.unwrap_err();
    assert!(e.to_string().contains("cassette /dev/full"), "{e}");

    // A call that failed is reported with both errors.
    let failing: Arc<dyn ModelProvider> =
        Arc::new(ScriptedModel::from_fn(|_| Err(ModelError::Auth { message: "bad key".into() })));
    let r = RecordingProvider::append(failing, "/dev/full").unwrap();
    let e = stream_err(&r, request("a", None, vec![], "one")).await;
    assert!(
        e.to_string().contains("cassette /dev/full") && e.to_string().contains("authentication failed: bad key"),
        "{e}"
    );
}
