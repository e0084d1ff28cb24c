//! Tests of the scripted model: matching, substitution, streaming, usage, errors, concurrency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use orch_core::model::scripted::{ScriptError, ScriptReply, ScriptedModel};
use orch_core::model::{
    AssembledResponse, ModelDelta, ModelError, ModelProvider, ModelRequest, ResponseAssembler, StopReason,
};
use orch_core::wire::{ContentBlock, Message, Role, Usage};
use serde_json::json;

fn request(agent: &str, messages: Vec<Message>) -> ModelRequest {
    ModelRequest {
        model: "scripted".into(),
        system: Some("You are a test agent.".into()),
        messages: messages.into(),
        tools: Default::default(),
        max_tokens: 1024,
        thinking: None,
        agent_name: agent.into(),
    }
}

fn prompt(agent: &str, text: &str) -> ModelRequest {
    request(agent, vec![Message::user_text(text)])
}

async fn deltas(model: &ScriptedModel, req: ModelRequest) -> Result<Vec<ModelDelta>, ModelError> {
    let mut stream = model.stream(req).await?;
    let mut out = Vec::new();
    while let Some(d) = stream.next().await {
        out.push(d?);
    }
    Ok(out)
}

async fn ask(model: &ScriptedModel, req: ModelRequest) -> Result<AssembledResponse, ModelError> {
    let mut asm = ResponseAssembler::new();
    for d in deltas(model, req).await? {
        asm.push(d)?;
    }
    asm.finish()
}

fn text_of(r: &AssembledResponse) -> String {
    r.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn tool_uses(r: &AssembledResponse) -> Vec<(String, String, serde_json::Value)> {
    r.content
        .iter()
        .filter_map(|b| match b {
            ContentBlock::ToolUse { id, name, input } => Some((id.clone(), name.clone(), input.clone())),
            _ => None,
        })
        .collect()
}

fn model(json: &str) -> ScriptedModel {
    ScriptedModel::from_json_str(json).unwrap()
}

#[tokio::test]
async fn first_matching_step_in_file_order_answers() {
    let m = model(
        r#"{"steps": [
            {"when": "nothing like this", "reply": [{"type": "text", "text": "never"}]},
            {"reply": [{"type": "text", "text": "first"}]},
            {"reply": [{"type": "text", "text": "second"}]}
        ]}"#,
    );
    assert_eq!(m.name(), "scripted");
    assert_eq!(text_of(&ask(&m, prompt("a", "hi")).await.unwrap()), "first");
    assert_eq!(text_of(&ask(&m, prompt("a", "hi")).await.unwrap()), "second");
    assert_eq!(m.calls(), 2);
    assert_eq!(m.unused_steps(), vec![0]);
}

#[tokio::test]
async fn agent_regex_filters_steps() {
    let m = model(
        r#"{"steps": [
            {"agent": "^alice$", "repeat": true, "reply": [{"type": "text", "text": "for alice"}]},
            {"agent": "bob", "repeat": true, "reply": [{"type": "text", "text": "for a bob"}]}
        ]}"#,
    );
    assert_eq!(text_of(&ask(&m, prompt("alice", "x")).await.unwrap()), "for alice");
    assert_eq!(text_of(&ask(&m, prompt("bobby", "x")).await.unwrap()), "for a bob");
    // Unanchored: `bob` matches inside a longer name; `^alice$` does not match `alice2`.
    let err = ask(&m, prompt("alice2", "x")).await.unwrap_err();
    assert!(matches!(err, ModelError::NoAnswer { .. }), "{err:?}");
}

#[tokio::test]
async fn when_matches_the_prompt_and_tool_results() {
    let m = model(
        r#"{"steps": [
            {"when": "^deploy", "reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "make deploy"}}]},
            {"when": "exit code (\\d+)", "reply": [{"type": "text", "text": "deployed with $1"}]}
        ]}"#,
    );
    let r = ask(&m, prompt("ops", "deploy the site")).await.unwrap();
    let calls = tool_uses(&r);
    assert_eq!(calls.len(), 1);
    let (id, name, input) = &calls[0];
    assert_eq!(name, "Bash");
    assert_eq!(input, &json!({"command": "make deploy"}));

    let conversation = vec![
        Message::user_text("deploy the site"),
        Message { role: Role::Assistant, content: r.content.clone() },
        Message {
            role: Role::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: id.clone(),
                content: "done, exit code 0".into(),
                is_error: false,
            }],
        },
    ];
    let r = ask(&m, request("ops", conversation)).await.unwrap();
    assert_eq!(text_of(&r), "deployed with 0");
    assert_eq!(r.stop_reason, StopReason::EndTurn);
}

#[tokio::test]
async fn captures_are_substituted_everywhere_in_the_reply() {
    let m = model(
        r#"{"steps": [
            {"when": "write (\\w+) to (\\S+)",
             "reply": [
                {"type": "thinking", "thinking": "I will write $1"},
                {"type": "text", "text": "Writing $1 to $2 ($3 missing, $$1 literal, $HOME kept, cost $)"},
                {"type": "tool_use", "name": "Write",
                 "input": {"file_path": "$2", "content": "hello $1",
                           "nested": {"list": ["$1", {"deep": "$2$$"}, 7, null, true]},
                           "$1_key": 3}}
             ]}
        ]}"#,
    );
    let r = ask(&m, prompt("w", "please write greeting to out/\"q\".txt now")).await.unwrap();
    assert_eq!(
        r.content[0],
        ContentBlock::Thinking { thinking: "I will write greeting".into(), signature: Some("scripted".into()) }
    );
    assert_eq!(text_of(&r), "Writing greeting to out/\"q\".txt ( missing, $1 literal, $HOME kept, cost $)");
    let (_, name, input) = &tool_uses(&r)[0];
    assert_eq!(name, "Write");
    assert_eq!(
        input,
        &json!({
            "file_path": "out/\"q\".txt",
            "content": "hello greeting",
            "nested": {"list": ["greeting", {"deep": "out/\"q\".txt$"}, 7, null, true]},
            "greeting_key": 3
        })
    );
}

#[tokio::test]
async fn dollar_groups_without_when_become_empty() {
    let m = model(r#"{"steps": [{"reply": [{"type": "text", "text": "[$1]"}]}]}"#);
    assert_eq!(text_of(&ask(&m, prompt("a", "x")).await.unwrap()), "[]");
}

#[tokio::test]
async fn once_only_steps_are_used_up_and_repeat_steps_are_not() {
    let m = model(
        r#"{"steps": [
            {"when": "ping", "reply": [{"type": "text", "text": "pong once"}]},
            {"when": "ping", "repeat": true, "reply": [{"type": "text", "text": "pong again"}]}
        ]}"#,
    );
    assert_eq!(text_of(&ask(&m, prompt("a", "ping")).await.unwrap()), "pong once");
    for _ in 0..5 {
        assert_eq!(text_of(&ask(&m, prompt("a", "ping")).await.unwrap()), "pong again");
    }
    assert_eq!(m.calls(), 6);
    assert!(m.unused_steps().is_empty());

    let once = model(r#"{"steps": [{"reply": [{"type": "text", "text": "only once"}]}]}"#);
    assert_eq!(text_of(&ask(&once, prompt("a", "x")).await.unwrap()), "only once");
    assert!(matches!(ask(&once, prompt("a", "x")).await, Err(ModelError::NoAnswer { .. })));
    assert_eq!(once.calls(), 1);
}

#[tokio::test]
async fn no_match_error_names_the_agent_and_quotes_the_message() {
    let m = model(r#"{"steps": [{"agent": "^bob$", "reply": [{"type": "text", "text": "x"}]}]}"#);
    let err = ask(&m, prompt("alice", "deploy it")).await.unwrap_err();
    assert!(matches!(err, ModelError::NoAnswer { .. }));
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(msg.starts_with("scripted model: no step matches agent 'alice' and last message \"deploy it\""), "{msg}");

    let long = "é".repeat(500);
    let msg = ask(&m, prompt("carol", &long)).await.unwrap_err().to_string();
    assert!(msg.contains("agent 'carol'"), "{msg}");
    assert!(msg.contains(&format!("\"{}…\"", "é".repeat(200))), "{msg}");
    assert!(!msg.contains(&"é".repeat(201)), "{msg}");
    assert_eq!(m.calls(), 0);
}

#[tokio::test]
async fn usage_is_estimated_or_taken_from_the_step() {
    let m = model(
        r#"{"steps": [
            {"reply": [{"type": "text", "text": "a fairly long answer, long enough to count a few tokens"}]},
            {"reply": [{"type": "text", "text": "x"}], "usage": {"input_tokens": 120, "output_tokens": 30}}
        ]}"#,
    );
    let r = ask(&m, prompt("a", "hello there, model")).await.unwrap();
    assert!(r.usage.input_tokens > 0);
    assert!(r.usage.output_tokens > 0);
    assert!(r.usage.output_tokens >= 10, "{:?}", r.usage);
    let r = ask(&m, prompt("a", "hello")).await.unwrap();
    assert_eq!(r.usage, Usage { input_tokens: 120, output_tokens: 30, ..Usage::default() });
}

#[tokio::test]
async fn stop_reason_follows_tool_use() {
    let m = model(
        r#"{"steps": [
            {"reply": [{"type": "text", "text": "just text"}]},
            {"reply": [{"type": "text", "text": "let me"}, {"type": "tool_use", "name": "Read"}]}
        ]}"#,
    );
    let ds = deltas(&m, prompt("a", "x")).await.unwrap();
    assert_eq!(ds.last(), Some(&ModelDelta::Stop { reason: StopReason::EndTurn }));
    let ds = deltas(&m, prompt("a", "x")).await.unwrap();
    assert_eq!(ds.last(), Some(&ModelDelta::Stop { reason: StopReason::ToolUse }));
    let mut asm = ResponseAssembler::new();
    for d in ds {
        asm.push(d).unwrap();
    }
    let r = asm.finish().unwrap();
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(tool_uses(&r)[0].2, json!({}));
}

#[tokio::test]
async fn tool_call_ids_are_deterministic_across_calls() {
    let script = r#"{"steps": [
        {"repeat": true, "when": "two",
         "reply": [{"type": "tool_use", "name": "A"}, {"type": "tool_use", "name": "B", "id": "mine"},
                   {"type": "tool_use", "name": "C"}]},
        {"repeat": true, "reply": [{"type": "tool_use", "name": "D", "input": {"k": "v"}}]}
    ]}"#;
    let run = |m: ScriptedModel| async move {
        let mut ids = Vec::new();
        for p in ["one", "two", "one"] {
            for (id, name, _) in tool_uses(&ask(&m, prompt("a", p)).await.unwrap()) {
                ids.push(format!("{name}:{id}"));
            }
        }
        ids
    };
    let first = run(model(script)).await;
    assert_eq!(first, ["D:call_0", "A:call_1", "B:mine", "C:call_2", "D:call_3"]);
    assert_eq!(run(model(script)).await, first);
}

#[tokio::test]
async fn deltas_stream_like_a_provider() {
    let long = "The quick brown fox jumps over the lazy dog, again and again and again.";
    let script = json!({"steps": [{"reply": [
        {"type": "thinking", "thinking": long},
        {"type": "text", "text": long},
        {"type": "tool_use", "name": "Write", "input": {"file_path": "a.txt", "content": long}},
        {"type": "redacted_thinking", "data": "opaque"}
    ]}]});
    let m = model(&script.to_string());
    let ds = deltas(&m, prompt("a", "x")).await.unwrap();
    let count = |f: fn(&ModelDelta) -> bool| ds.iter().filter(|d| f(d)).count();
    assert_eq!(count(|d| matches!(d, ModelDelta::BlockStart { .. })), 4);
    assert_eq!(count(|d| matches!(d, ModelDelta::BlockStop { .. })), 4);
    assert!(count(|d| matches!(d, ModelDelta::Text { .. })) >= 2);
    assert!(count(|d| matches!(d, ModelDelta::Thinking { .. })) >= 2);
    assert!(count(|d| matches!(d, ModelDelta::InputJson { .. })) >= 2);
    assert_eq!(count(|d| matches!(d, ModelDelta::Signature { .. })), 1);
    let n = ds.len();
    assert!(matches!(ds[n - 2], ModelDelta::Usage(_)));
    assert!(matches!(ds[n - 1], ModelDelta::Stop { .. }));
    // Each block opens before its pieces and closes after them.
    let mut open = HashSet::new();
    let mut closed = HashSet::new();
    for d in &ds {
        match d {
            ModelDelta::BlockStart { index, .. } => assert!(open.insert(*index)),
            ModelDelta::BlockStop { index } => assert!(open.contains(index) && closed.insert(*index)),
            ModelDelta::Text { index, .. }
            | ModelDelta::Thinking { index, .. }
            | ModelDelta::Signature { index, .. }
            | ModelDelta::InputJson { index, .. } => assert!(open.contains(index) && !closed.contains(index)),
            _ => {}
        }
    }
    let mut asm = ResponseAssembler::new();
    for d in ds {
        asm.push(d).unwrap();
    }
    let r = asm.finish().unwrap();
    assert_eq!(
        r.content,
        vec![
            ContentBlock::Thinking { thinking: long.into(), signature: Some("scripted".into()) },
            ContentBlock::Text { text: long.into() },
            ContentBlock::ToolUse {
                id: "call_0".into(),
                name: "Write".into(),
                input: json!({"file_path": "a.txt", "content": long})
            },
            ContentBlock::RedactedThinking { data: "opaque".into() },
        ]
    );
}

#[test]
fn malformed_json_reports_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.json");
    // Line 3 lacks the comma after the first step.
    std::fs::write(
        &path,
        "{\"steps\": [\n  {\"reply\": [{\"type\": \"text\", \"text\": \"a\"}]}\n  {\"reply\": [{\"type\": \"text\", \"text\": \"b\"}]}\n]}\n",
    )
    .unwrap();
    let err = ScriptedModel::from_file(&path).unwrap_err();
    match &err {
        ScriptError::Parse { path: p, line, column, message } => {
            assert_eq!(*line, 3);
            assert_eq!(*column, 3);
            assert_eq!(p.as_deref(), Some(path.display().to_string().as_str()));
            assert!(!message.contains("at line"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.starts_with("scripted model file "), "{shown}");
    assert!(shown.contains("demo.json: line 3, column 3: expected"), "{shown}");
}

#[test]
fn unknown_keys_are_parse_errors_naming_the_key() {
    let err = ScriptedModel::from_json_str("{\"steps\": [\n  {\"agnet\": \"x\", \"reply\": []}\n]}").unwrap_err();
    match &err {
        ScriptError::Parse { path: None, line: 2, message, .. } => assert!(message.contains("`agnet`"), "{message}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(err.to_string().contains("line 2, column"), "{err}");

    let err = ScriptedModel::from_json_str(r#"{"steps": [{"reply": [{"type": "text", "txt": "x"}]}]}"#).unwrap_err();
    assert!(matches!(&err, ScriptError::Parse { message, .. } if message.contains("`txt`")), "{err:?}");

    let err = ScriptedModel::from_json_str(r#"{"steps": [], "extra": 1}"#).unwrap_err();
    assert!(matches!(&err, ScriptError::Parse { message, .. } if message.contains("`extra`")), "{err:?}");

    let err = ScriptedModel::from_json_str(
        r#"{"steps": [{"reply": [{"type": "text", "text": "x"}], "usage": {"input": 1}}]}"#,
    )
    .unwrap_err();
    assert!(matches!(&err, ScriptError::Parse { message, .. } if message.contains("`input`")), "{err:?}");
}

#[test]
fn semantic_problems_are_invalid_errors_naming_the_step() {
    let invalid = |json: &str| match ScriptedModel::from_json_str(json) {
        Err(ScriptError::Invalid { path: None, message }) => message,
        other => panic!("expected an invalid-script error, got {other:?}"),
    };
    let msg = invalid(
        r#"{"steps": [{"reply": [{"type": "text", "text": "ok"}]},
                      {"when": "(unclosed", "reply": [{"type": "text", "text": "x"}]}]}"#,
    );
    assert!(msg.contains("steps[1]") && msg.contains("`when`") && msg.contains("(unclosed"), "{msg}");
    assert!(msg.to_lowercase().contains("unclosed group"), "{msg}");

    let msg = invalid(r#"{"steps": [{"agent": "[a-", "reply": [{"type": "text", "text": "x"}]}]}"#);
    assert!(msg.contains("steps[0]") && msg.contains("`agent`"), "{msg}");

    let msg = invalid(r#"{"steps": [{"reply": [{"type": "text", "text": "x"}, {"type": "tool_use", "input": {}}]}]}"#);
    assert!(msg.contains("steps[0].reply[1]") && msg.contains("name"), "{msg}");

    let msg = invalid(r#"{"steps": [{"reply": [{"type": "picture", "text": "x"}]}]}"#);
    assert!(msg.contains("unknown block type") && msg.contains("picture"), "{msg}");

    let msg = invalid(r#"{"steps": [{"reply": []}]}"#);
    assert!(msg.contains("steps[0]") && msg.contains("empty reply"), "{msg}");

    let msg = invalid(r#"{"steps": [{"reply": [{"type": "text", "name": "x", "text": "y"}]}]}"#);
    assert!(msg.contains("`name`"), "{msg}");

    let msg = invalid(r#"{"steps": [{"reply": [{"type": "tool_use", "name": "X", "input": [1]}]}]}"#);
    assert!(msg.contains("object"), "{msg}");

    let msg = invalid(r#"{"steps": [{"reply": [{"type": "text"}]}]}"#);
    assert!(msg.contains("without `text`"), "{msg}");

    let err = ScriptedModel::from_json_str(r#"{"steps": [{"reply": []}]}"#).unwrap_err();
    assert!(err.to_string().starts_with("scripted model script: steps[0]"), "{err}");
}

#[test]
fn missing_file_is_an_io_error() {
    let err = ScriptedModel::from_file("/definitely/not/here.json").unwrap_err();
    assert!(matches!(&err, ScriptError::Io { path, .. } if path == "/definitely/not/here.json"), "{err:?}");
    assert!(err.to_string().starts_with("scripted model file /definitely/not/here.json: "), "{err}");
}

#[tokio::test]
async fn closure_answers_each_call() {
    let m = ScriptedModel::from_fn(|req| {
        let last = req.messages.last().and_then(Message::last_text).unwrap_or("");
        match last {
            "fail" => Err(ModelError::Overloaded { message: "busy".into() }),
            "tool" => Ok(ScriptReply::text("calling")
                .with_tool_use("", "Read", json!({"file_path": "a"}))
                .with_tool_use("given", "Read", json!({}))),
            other => Ok(ScriptReply::text(format!("{}: {other}", req.agent_name))
                .with_thinking("hmm")
                .with_usage(Usage { input_tokens: 5, output_tokens: 7, ..Usage::default() })),
        }
    });
    let r = ask(&m, prompt("zed", "hi")).await.unwrap();
    assert_eq!(text_of(&r), "zed: hi");
    assert_eq!(r.usage, Usage { input_tokens: 5, output_tokens: 7, ..Usage::default() });
    assert_eq!(r.content[1], ContentBlock::Thinking { thinking: "hmm".into(), signature: Some("scripted".into()) });
    assert_eq!(r.stop_reason, StopReason::EndTurn);

    let r = ask(&m, prompt("zed", "tool")).await.unwrap();
    let ids: Vec<_> = tool_uses(&r).into_iter().map(|(id, _, _)| id).collect();
    assert_eq!(ids, ["call_0", "given"]);
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert!(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);

    assert!(matches!(ask(&m, prompt("zed", "fail")).await, Err(ModelError::Overloaded { .. })));
    assert_eq!(m.calls(), 2);
    assert!(m.unused_steps().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_never_share_a_once_only_step() {
    const STEPS: usize = 400;
    let steps: Vec<_> = (0..STEPS).map(|i| json!({"reply": [{"type": "text", "text": format!("step {i}")}]})).collect();
    let m = Arc::new(model(&json!({ "steps": steps }).to_string()));
    let worker = |name: &'static str| {
        let m = m.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                match ask(&m, prompt(name, "go")).await {
                    Ok(r) => got.push(text_of(&r)),
                    Err(ModelError::NoAnswer { .. }) => return got,
                    Err(e) => panic!("{e}"),
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let (a, b) = (worker("a"), worker("b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.len() + b.len(), STEPS);
    let all: HashSet<_> = a.iter().chain(&b).cloned().collect();
    assert_eq!(all.len(), STEPS, "a step answered twice");
    assert_eq!(m.calls(), STEPS);
    assert!(m.unused_steps().is_empty());
}
