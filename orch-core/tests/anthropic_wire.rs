//! The Anthropic provider at the wire: a local HTTP server speaks the Messages API's streamed format.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::executor::{AgentRunner, RunOptions};
use orch_core::model::http::HttpConfig;
use orch_core::model::{
    AnthropicConfig, AnthropicProvider, AssembledResponse, ModelDelta, ModelError, ModelProvider, ModelRequest,
    PriceTable, StopReason, ThinkingConfig, ToolSpec,
};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::wire::{ContentBlock, Event, Message, Role, Usage};
use serde_json::{Value, json};
use support::wire_server::{Reply, Step, WireServer, event};

const SIG: &str = "EqQBCkgIARABGAIiQL2+/sig==";

fn http_config() -> HttpConfig {
    HttpConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        idle_timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    }
}

fn provider_with(server: &WireServer, http: HttpConfig) -> AnthropicProvider {
    let mut config = AnthropicConfig::new("test-key");
    config.base_url = format!("{}/", server.url());
    config.http = http;
    AnthropicProvider::new(config).unwrap()
}

fn provider(server: &WireServer) -> AnthropicProvider {
    provider_with(server, http_config())
}

fn request(messages: Vec<Message>) -> ModelRequest {
    support::request("claude-sonnet-4-5", messages)
}

async fn call(p: &AnthropicProvider, req: ModelRequest) -> (Vec<ModelDelta>, Result<AssembledResponse, ModelError>) {
    support::call(p, req).await
}

fn message_start(usage: Value) -> String {
    event(
        "message_start",
        &json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage}}),
    )
}

fn block_start(index: usize, block: Value) -> String {
    event("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": block}))
}

fn delta(index: usize, delta: Value) -> String {
    event("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}))
}

fn block_stop(index: usize) -> String {
    event("content_block_stop", &json!({"type": "content_block_stop", "index": index}))
}

fn message_end(stop_reason: &str, output_tokens: u64) -> String {
    event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output_tokens}}),
    ) + &event("message_stop", &json!({"type": "message_stop"}))
}

fn text_block(index: usize, parts: &[&str]) -> String {
    let mut s = block_start(index, json!({"type": "text", "text": ""}));
    for p in parts {
        s += &delta(index, json!({"type": "text_delta", "text": p}));
    }
    s + &block_stop(index)
}

fn text_answer(text: &str) -> String {
    message_start(json!({"input_tokens": 10, "output_tokens": 1}))
        + &event("ping", &json!({"type": "ping"}))
        + &text_block(0, &[text])
        + &message_end("end_turn", 5)
}

fn api_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test]
async fn streams_text_cut_anywhere_and_sends_a_well_formed_request() {
    let body = message_start(json!({"input_tokens": 12, "output_tokens": 1}))
        + ": a comment line\n\n"
        + &event("ping", &json!({"type": "ping"}))
        + &text_block(0, &["Héllo, ", "wörld 😀", "!"])
        + &message_end("end_turn", 7);
    // CRLF line ends, and 7-byte pieces: cuts fall inside JSON tokens and UTF-8 characters.
    let body = body.replace('\n', "\r\n");
    let server = WireServer::start(vec![Reply::sse_split(body.as_bytes(), 7)]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    let resp = resp.unwrap();
    assert_eq!(resp.content, vec![ContentBlock::Text { text: "Héllo, wörld 😀!".into() }]);
    assert_eq!(resp.stop_reason, StopReason::EndTurn);
    assert_eq!(resp.usage, Usage { input_tokens: 12, output_tokens: 7, ..Usage::default() });
    assert!(deltas.contains(&ModelDelta::BlockStop { index: 0 }));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(r.header("x-api-key"), Some("test-key"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = r.json();
    assert_eq!(b["model"], "claude-sonnet-4-5");
    assert_eq!(b["max_tokens"], 4096);
    assert_eq!(b["stream"], true);
    assert_eq!(
        b["system"],
        json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(
        b["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}])
    );
    assert!(b.get("tools").is_none(), "no tools key without tools: {b}");
    assert!(b.get("thinking").is_none());
}

#[tokio::test]
async fn thinking_and_its_signature_are_passed_back_unchanged() {
    let answer = message_start(json!({"input_tokens": 30, "output_tokens": 1}))
        + &block_start(0, json!({"type": "thinking", "thinking": ""}))
        + &delta(0, json!({"type": "thinking_delta", "thinking": "Let me think"}))
        + &delta(0, json!({"type": "thinking_delta", "thinking": " about it."}))
        + &delta(0, json!({"type": "signature_delta", "signature": SIG}))
        + &block_stop(0)
        + &block_start(1, json!({"type": "redacted_thinking", "data": "c2VjcmV0"}))
        + &block_stop(1)
        + &text_block(2, &["42"])
        + &message_end("end_turn", 20);
    let server = WireServer::start(vec![Reply::sse(answer), Reply::sse(text_answer("ok"))]).await;
    let p = provider(&server);
    let mut req = request(vec![Message::user_text("What is 6 x 7?")]);
    req.thinking = Some(ThinkingConfig { budget_tokens: 2048 });
    let resp = call(&p, req.clone()).await.1.unwrap();
    assert_eq!(
        resp.content,
        vec![
            ContentBlock::Thinking { thinking: "Let me think about it.".into(), signature: Some(SIG.into()) },
            ContentBlock::RedactedThinking { data: "c2VjcmV0".into() },
            ContentBlock::Text { text: "42".into() },
        ]
    );

    let mut messages = (*req.messages).clone();
    messages.push(Message { role: Role::Assistant, content: resp.content });
    messages.push(Message::user_text("And 7 x 8?"));
    req.messages = Arc::new(messages);
    call(&p, req).await.1.unwrap();

    let b = server.requests()[1].json();
    assert_eq!(b["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Let me think about it.", "signature": SIG},
            {"type": "redacted_thinking", "data": "c2VjcmV0"},
            {"type": "text", "text": "42"},
        ]})
    );
    // The signature's bytes are untouched (no re-encoding of `+`, `/`, `=`).
    assert!(String::from_utf8(server.requests()[1].body.clone()).unwrap().contains(SIG));
}

#[tokio::test]
async fn tool_use_with_input_split_mid_token_and_results_linked_by_id() {
    let answer = message_start(json!({"input_tokens": 50, "output_tokens": 1}))
        + &text_block(0, &["I'll write it."])
        + &block_start(1, json!({"type": "tool_use", "id": "toolu_01A", "name": "Write", "input": {}}))
        + &delta(1, json!({"type": "input_json_delta", "partial_json": ""}))
        + &delta(1, json!({"type": "input_json_delta", "partial_json": "{\"file_pa"}))
        + &delta(1, json!({"type": "input_json_delta", "partial_json": "th\": \"a.t"}))
        + &delta(1, json!({"type": "input_json_delta", "partial_json": "xt\", \"content\": \"h\\u00e"}))
        + &delta(1, json!({"type": "input_json_delta", "partial_json": "9\"}"}))
        + &block_stop(1)
        + &message_end("tool_use", 40);
    let server =
        WireServer::start(vec![Reply::sse_split(answer.as_bytes(), 13), Reply::sse(text_answer("done"))]).await;
    let p = provider(&server);
    let tools = vec![
        ToolSpec {
            name: "Read".into(),
            description: "Reads a file.".into(),
            input_schema: json!({"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}),
        },
        ToolSpec {
            name: "Write".into(),
            description: "Writes a file.".into(),
            input_schema: json!({"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}),
        },
    ];
    let mut req = request(vec![Message::user_text("write a.txt")]);
    req.tools = Arc::new(tools);
    let resp = call(&p, req.clone()).await.1.unwrap();
    assert_eq!(resp.stop_reason, StopReason::ToolUse);
    assert_eq!(
        resp.content[1],
        ContentBlock::ToolUse {
            id: "toolu_01A".into(),
            name: "Write".into(),
            input: json!({"file_path": "a.txt", "content": "hé"})
        }
    );

    let mut messages = (*req.messages).clone();
    messages.push(Message { role: Role::Assistant, content: resp.content });
    messages.push(Message {
        role: Role::User,
        content: vec![ContentBlock::ToolResult {
            tool_use_id: "toolu_01A".into(),
            content: "disk full".into(),
            is_error: true,
        }],
    });
    req.messages = Arc::new(messages);
    let resp = call(&p, req).await.1.unwrap();
    assert_eq!(resp.content, vec![ContentBlock::Text { text: "done".into() }]);

    let reqs = server.requests();
    let first = reqs[0].json();
    assert_eq!(
        first["tools"],
        json!([
            {"name": "Read", "description": "Reads a file.",
             "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
            {"name": "Write", "description": "Writes a file.",
             "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}},
             "cache_control": {"type": "ephemeral"}},
        ])
    );
    let second = reqs[1].json();
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(
        msgs[0],
        json!({"role": "user", "content": [{"type": "text", "text": "write a.txt"}]}),
        "only the latest user turn is a breakpoint"
    );
    assert_eq!(
        msgs[1]["content"][1],
        json!({"type": "tool_use", "id": "toolu_01A", "name": "Write", "input": {"file_path": "a.txt", "content": "hé"}})
    );
    assert_eq!(
        msgs[2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "disk full",
               "is_error": true, "cache_control": {"type": "ephemeral"}}]})
    );
    // Three breakpoints: system, last tool, latest user turn (the API allows four).
    assert_eq!(count(&second.to_string(), "cache_control"), 3);
}

#[tokio::test]
async fn usage_with_cache_tokens_is_priced() {
    let answer = message_start(json!({"input_tokens": 100, "cache_read_input_tokens": 2000,
                                      "cache_creation_input_tokens": 500, "output_tokens": 1}))
        + &text_block(0, &["cached"])
        + &message_end("end_turn", 50);
    let server = WireServer::start(vec![Reply::sse(answer)]).await;
    let resp = call(&provider(&server), request(vec![Message::user_text("hi")])).await.1.unwrap();
    let want =
        Usage { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 2000, cache_creation_input_tokens: 500 };
    assert_eq!(resp.usage, want);
    // claude-sonnet-4-5: $3 in, $15 out, $0.30 cache read, $3.75 cache write per MTok.
    let cost = PriceTable::default().cost("claude-sonnet-4-5", &resp.usage).unwrap();
    let expected = (100.0 * 3.0 + 50.0 * 15.0 + 2000.0 * 0.30 + 500.0 * 3.75) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    assert!((cost - 0.003525).abs() < 1e-12);
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried_and_announced() {
    let server = WireServer::start(vec![
        Reply::json(429, &api_error("rate_limit_error", "Number of request tokens has exceeded your rate limit"))
            .header("retry-after", "1"),
        Reply::sse(text_answer("after the wait")),
    ])
    .await;
    let started = Instant::now();
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    assert_eq!(resp.unwrap().content, vec![ContentBlock::Text { text: "after the wait".into() }]);
    match &deltas[0] {
        ModelDelta::Retry { attempt: 1, wait_ms: 1000, error } => {
            assert!(error.contains("rate_limit_error") && error.contains("exceeded your rate limit"), "{error}")
        }
        other => panic!("first delta should announce the retry: {other:?}"),
    }
    assert_eq!(deltas.iter().filter(|d| matches!(d, ModelDelta::Retry { .. })).count(), 1);
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn overloaded_and_server_errors_are_retried_with_backoff() {
    let server = WireServer::start(vec![
        Reply::json(529, &api_error("overloaded_error", "Overloaded")),
        Reply::json(500, &api_error("api_error", "Internal server error")),
        Reply::sse(text_answer("third time lucky")),
    ])
    .await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    assert_eq!(resp.unwrap().content, vec![ContentBlock::Text { text: "third time lucky".into() }]);
    let retries: Vec<_> = deltas
        .iter()
        .filter_map(|d| match d {
            ModelDelta::Retry { attempt, wait_ms, error } => Some((*attempt, *wait_ms, error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!((retries[0].0, retries[1].0), (1, 2));
    assert!(retries[0].2.contains("overloaded"), "{}", retries[0].2);
    assert!(retries[1].2.contains("500") && retries[1].2.contains("Internal server error"), "{}", retries[1].2);
    assert!(retries[0].1 <= 10 && retries[1].1 <= 20, "backoff with jitter: {retries:?}");
    assert!(matches!(deltas[0], ModelDelta::Retry { .. }) && matches!(deltas[1], ModelDelta::Retry { .. }));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn retries_stop_at_the_configured_maximum() {
    let server = WireServer::start(vec![
        Reply::json(529, &api_error("overloaded_error", "Overloaded")),
        Reply::json(529, &api_error("overloaded_error", "Still overloaded")),
        Reply::sse(text_answer("never reached")),
    ])
    .await;
    let p = provider_with(&server, HttpConfig { max_retries: 1, ..http_config() });
    let (deltas, resp) = call(&p, request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::Overloaded { .. }), "{err:?}");
    assert!(err.to_string().contains("Still overloaded"));
    assert_eq!(deltas.len(), 1);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_bad_request_reports_the_api_message_and_is_not_retried() {
    let msg = "max_tokens: 999999 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-5";
    let server = WireServer::start(vec![
        Reply::json(400, &api_error("invalid_request_error", msg)),
        Reply::json(401, &api_error("authentication_error", "invalid x-api-key")),
    ])
    .await;
    let p = provider(&server);
    let (deltas, resp) = call(&p, request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    match &err {
        ModelError::InvalidRequest { kind, message } => {
            assert_eq!(kind, "invalid_request_error");
            assert_eq!(message, msg);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(msg) && err.to_string().contains("invalid_request_error"), "{err}");
    assert!(deltas.is_empty());
    let err = call(&p, request(vec![Message::user_text("hi")])).await.1.unwrap_err();
    assert!(matches!(err, ModelError::Auth { .. }) && err.to_string().contains("invalid x-api-key"), "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn an_error_event_mid_stream_reaches_the_user() {
    let partial = message_start(json!({"input_tokens": 10, "output_tokens": 1}))
        + &block_start(0, json!({"type": "text", "text": ""}))
        + &delta(0, json!({"type": "text_delta", "text": "Half an ans"}))
        + &event("error", &api_error("overloaded_error", "Overloaded"));
    let server = WireServer::start(vec![Reply::sse(partial), Reply::sse(text_answer("not asked for"))]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::Overloaded { .. }), "{err:?}");
    assert!(err.to_string().contains("overloaded_error: Overloaded"), "{err}");
    assert!(!deltas.iter().any(|d| matches!(d, ModelDelta::BlockStop { .. } | ModelDelta::Stop { .. })));
    assert_eq!(server.requests().len(), 1, "no retry once output began");

    // Before any output, an overloaded_error event is retried.
    let early = message_start(json!({"input_tokens": 10, "output_tokens": 1}))
        + &event("ping", &json!({"type": "ping"}))
        + &event("error", &api_error("overloaded_error", "Overloaded"));
    let server = WireServer::start(vec![Reply::sse(early), Reply::sse(text_answer("recovered"))]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    assert_eq!(resp.unwrap().content, vec![ContentBlock::Text { text: "recovered".into() }]);
    assert!(matches!(deltas[0], ModelDelta::Retry { attempt: 1, .. }));
    assert_eq!(
        deltas.iter().filter(|d| matches!(d, ModelDelta::Usage(_))).count(),
        2,
        "the failed attempt's usage is dropped"
    );
    assert_eq!(server.requests().len(), 2);

    // A non-retryable error event keeps the API's type and message.
    let bad = message_start(json!({"input_tokens": 10}))
        + &event("error", &api_error("invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"));
    let server = WireServer::start(vec![Reply::sse(bad)]).await;
    let err = call(&provider(&server), request(vec![Message::user_text("hi")])).await.1.unwrap_err();
    assert!(matches!(&err, ModelError::InvalidRequest { kind, .. } if kind == "invalid_request_error"), "{err:?}");
    assert!(err.to_string().contains("prompt is too long"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_a_broken_stream_not_half_an_answer() {
    let partial = message_start(json!({"input_tokens": 10, "output_tokens": 1}))
        + &block_start(0, json!({"type": "text", "text": ""}))
        + &delta(0, json!({"type": "text_delta", "text": "The answer is"}))
        + "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"ind";
    let server = WireServer::start(vec![Reply::sse(partial).cut(), Reply::sse(text_answer("not asked for"))]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::StreamBroken { .. }), "{err:?}");
    assert!(deltas.contains(&ModelDelta::Text { index: 0, text: "The answer is".into() }));
    assert!(
        !deltas.iter().any(|d| matches!(d, ModelDelta::BlockStop { .. } | ModelDelta::Stop { .. })),
        "the assembler never saw a finished block: {deltas:?}"
    );
    assert_eq!(server.requests().len(), 1, "never retried once output began");

    // A cut before any output is a connection error, and is retried.
    let early = message_start(json!({"input_tokens": 10, "output_tokens": 1}));
    let server = WireServer::start(vec![Reply::sse(early).cut(), Reply::sse(text_answer("second try"))]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    assert_eq!(resp.unwrap().content, vec![ContentBlock::Text { text: "second try".into() }]);
    assert!(matches!(&deltas[0], ModelDelta::Retry { error, .. } if error.contains("connection")), "{deltas:?}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_stalled_server_times_out() {
    let idle = HttpConfig {
        idle_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(500),
        max_retries: 0,
        ..http_config()
    };
    let partial = message_start(json!({"input_tokens": 10, "output_tokens": 1}))
        + &block_start(0, json!({"type": "text", "text": ""}))
        + &delta(0, json!({"type": "text_delta", "text": "Thinking very slo"}));
    let server = WireServer::start(vec![Reply::sse(partial).stall()]).await;
    let started = Instant::now();
    let (deltas, resp) = call(&provider_with(&server, idle.clone()), request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("300 ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(!deltas.iter().any(|d| matches!(d, ModelDelta::BlockStop { .. } | ModelDelta::Stop { .. })));

    // Pings keep a slow stream alive: silence, not slowness, is what times out.
    let mut slow = Reply::sse_chunks(vec![message_start(json!({"input_tokens": 1})).into_bytes()]);
    for _ in 0..4 {
        slow = slow
            .then(Step::Sleep(Duration::from_millis(150)))
            .then(Step::Send(event("ping", &json!({"type": "ping"})).into_bytes()));
    }
    let slow = slow.then(Step::Send((text_block(0, &["slow but alive"]) + &message_end("end_turn", 3)).into_bytes()));
    let server = WireServer::start(vec![slow, Reply::sse("").stall_before_headers()]).await;
    let p = provider_with(&server, idle);
    let resp = call(&p, request(vec![Message::user_text("hi")])).await.1.unwrap();
    assert_eq!(resp.content, vec![ContentBlock::Text { text: "slow but alive".into() }]);

    // No headers at all: a timeout too.
    let err = call(&p, request(vec![Message::user_text("hi")])).await.1.unwrap_err();
    assert!(matches!(err, ModelError::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn end_to_end_an_agent_writes_a_file_through_the_wire() {
    let tool_answer = message_start(json!({"input_tokens": 900, "cache_read_input_tokens": 1200,
                                           "cache_creation_input_tokens": 300, "output_tokens": 1}))
        + &text_block(0, &["Writing it."])
        + &block_start(1, json!({"type": "tool_use", "id": "toolu_w1", "name": "Write", "input": {}}))
        + &delta(1, json!({"type": "input_json_delta", "partial_json": "{\"file_path\": \"hel"}))
        + &delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "lo.txt\", \"content\": \"hi from the wire\\n\"}"}),
        )
        + &block_stop(1)
        + &message_end("tool_use", 60);
    let server = WireServer::start(vec![
        Reply::json(529, &api_error("overloaded_error", "Overloaded")),
        Reply::sse_split(tool_answer.as_bytes(), 64),
        Reply::sse(text_answer("Done: hello.txt written.")),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(provider(&server))).build();
    let agent =
        runner.ensure_agent("wire-agent", "anthropic:claude-sonnet-4-5", dir.path().to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "Write hello.txt", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("Done: hello.txt written."));
    assert_eq!(std::fs::read_to_string(dir.path().join("hello.txt")).unwrap(), "hi from the wire\n");
    assert!(out.cost_usd > 0.0);

    let events: Vec<Event> =
        store.read_events(&EventQuery::default()).await.unwrap().into_iter().map(|r| r.event).collect();
    let retry =
        events.iter().position(|e| matches!(e, Event::ModelRetry { attempt: 1, .. })).expect("a ModelRetry event");
    let tool_use = events
        .iter()
        .position(|e| matches!(e, Event::ToolUse { tool_name, tool_use_id, .. } if tool_name == "Write" && tool_use_id == "toolu_w1"))
        .expect("a ToolUse event");
    assert!(retry < tool_use);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ToolResult { tool_use_id, is_error: false, .. } if tool_use_id == "toolu_w1"))
    );
    let costs: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            Event::AgentCostsUpdated { model, cost_usd, .. } => {
                assert_eq!(model, "claude-sonnet-4-5");
                Some(*cost_usd)
            }
            _ => None,
        })
        .collect();
    assert_eq!(costs.len(), 2);
    let first = (900.0 * 3.0 + 60.0 * 15.0 + 1200.0 * 0.30 + 300.0 * 3.75) / 1e6;
    assert!((costs[0] - first).abs() < 1e-12, "{costs:?}");
    assert!(costs[1] > 0.0);

    // The follow-up request carried the tool result, linked by id, as the cached latest user turn.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let last = reqs[2].json();
    let msgs = last["messages"].as_array().unwrap();
    let result = &msgs.last().unwrap()["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_w1");
    assert_eq!(result["cache_control"], json!({"type": "ephemeral"}));
    assert!(last["tools"].as_array().unwrap().iter().any(|t| t["name"] == "Write"));
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = AnthropicConfig::new("test-key");
    config.base_url = format!("http://127.0.0.1:{port}");
    config.http = HttpConfig { max_retries: 1, ..http_config() };
    let p = AnthropicProvider::new(config).unwrap();
    let (deltas, resp) = call(&p, request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::Connection { .. }), "{err:?}");
    assert_eq!(deltas.len(), 1);
    assert!(
        matches!(&deltas[0], ModelDelta::Retry { attempt: 1, error, .. } if error.contains("connection")),
        "{deltas:?}"
    );
}

/// Events of a store with the parts that differ between runs (seq, time, ids, durations) removed.
async fn comparable_events(store: &MemoryStore) -> Vec<serde_json::Value> {
    store
        .read_events(&EventQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r.event).unwrap();
            if let Some(o) = v.as_object_mut() {
                for k in ["duration_ms", "agent", "task_slug"] {
                    o.remove(k);
                }
            }
            v
        })
        .collect()
}

#[tokio::test]
async fn a_run_recorded_against_the_wire_replays_offline_with_the_same_events() {
    use orch_core::model::cassette::{RecordingProvider, ReplayProvider};
    let tool_answer = message_start(json!({"input_tokens": 500, "output_tokens": 1}))
        + &block_start(0, json!({"type": "tool_use", "id": "toolu_r1", "name": "Write", "input": {}}))
        + &delta(
            0,
            json!({"type": "input_json_delta", "partial_json": "{\"file_path\": \"a.txt\", \"content\": \"recorded\"}"}),
        )
        + &block_stop(0)
        + &message_end("tool_use", 30);
    let server = WireServer::start(vec![
        Reply::json(529, &api_error("overloaded_error", "Overloaded")),
        Reply::sse_split(tool_answer.as_bytes(), 48),
        Reply::sse(text_answer("All written.")),
    ])
    .await;
    let cassette_dir = tempfile::tempdir().unwrap();
    let cassette = cassette_dir.path().join("run.jsonl");

    // Record against the local server.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let recorder = RecordingProvider::create(Arc::new(provider(&server)), &cassette).unwrap();
    let runner = AgentRunner::builder(store.clone(), Arc::new(recorder)).build();
    let agent = runner.ensure_agent("rec", "anthropic:claude-sonnet-4-5", dir.path().to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "Write a.txt", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("All written."));
    let recorded = comparable_events(&store).await;
    let requests_made = server.requests().len();
    drop(server);

    // Replay with the server gone, in a fresh store and directory.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Arc::new(MemoryStore::new());
    let replay = ReplayProvider::from_file(&cassette).unwrap();
    assert_eq!(replay.name(), "anthropic");
    let runner2 = AgentRunner::builder(store2.clone(), Arc::new(replay)).build();
    let agent2 =
        runner2.ensure_agent("rec", "anthropic:claude-sonnet-4-5", dir2.path().to_str().unwrap()).await.unwrap();
    let out2 = runner2.run(agent2.id, "Write a.txt", RunOptions::default()).await.unwrap();
    assert_eq!(out2.final_text.as_deref(), Some("All written."));
    assert_eq!(std::fs::read_to_string(dir2.path().join("a.txt")).unwrap(), "recorded");
    let replayed = comparable_events(&store2).await;
    assert_eq!(replayed, recorded, "replayed events differ from the recorded run");
    assert!(replayed.iter().any(|e| e["type"] == "ModelRetry"), "the retry is part of the recording");
    assert_eq!(requests_made, 3);
}
