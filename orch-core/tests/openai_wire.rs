//! The OpenAI-compatible provider at the wire: a local HTTP server speaks streamed Chat Completions.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::executor::{AgentRunner, RunOptions};
use orch_core::model::http::HttpConfig;
use orch_core::model::openai::MaxTokensField;
use orch_core::model::{
    AssembledResponse, ModelDelta, ModelError, ModelProvider, ModelRequest, OpenAiConfig, OpenAiProvider, PriceTable,
    StopReason, ToolSpec,
};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::wire::{ContentBlock, Event, Message, Role, Usage};
use serde_json::{Value, json};
use support::wire_server::{Reply, WireServer, data};

const DONE: &str = "data: [DONE]\n\n";

fn http_config() -> HttpConfig {
    HttpConfig {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        idle_timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    }
}

fn config(server: &WireServer, http: HttpConfig) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(Some("sk-test".into()));
    c.base_url = format!("{}/v1", server.url());
    c.http = http;
    c
}

fn provider(server: &WireServer) -> OpenAiProvider {
    OpenAiProvider::new(config(server, http_config())).unwrap()
}

fn request(messages: Vec<Message>) -> ModelRequest {
    support::request("gpt-4o", messages)
}

async fn call(p: &OpenAiProvider, req: ModelRequest) -> (Vec<ModelDelta>, Result<AssembledResponse, ModelError>) {
    support::call(p, req).await
}

fn chunk(delta: Value, finish_reason: Value) -> String {
    data(&json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o",
                 "system_fingerprint": "fp_1", "usage": null,
                 "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]}))
}

fn usage_chunk(prompt: u64, completion: u64, cached: u64) -> String {
    data(&json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o",
                 "choices": [],
                 "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                           "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                           "completion_tokens_details": {"reasoning_tokens": 0}}}))
}

fn text_answer(text: &str) -> String {
    chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null)
        + &chunk(json!({"content": text}), Value::Null)
        + &chunk(json!({}), json!("stop"))
        + &usage_chunk(10, 5, 0)
        + DONE
}

fn api_error(kind: &str, message: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn tool_call(index: usize, id: Option<&str>, name: Option<&str>, args: &str) -> Value {
    let mut function = json!({"arguments": args});
    if let Some(n) = name {
        function["name"] = json!(n);
    }
    let mut tc = json!({"index": index, "function": function});
    if let Some(id) = id {
        tc["id"] = json!(id);
        tc["type"] = json!("function");
    }
    json!({"tool_calls": [tc]})
}

#[tokio::test]
async fn streams_text_cut_anywhere_and_sends_a_well_formed_request() {
    let body = chunk(json!({"role": "assistant", "content": ""}), Value::Null)
        + &chunk(json!({"content": "Grüße, "}), Value::Null)
        + &chunk(json!({"content": "wörld 🌍"}), Value::Null)
        + &chunk(json!({}), json!("stop"))
        + &usage_chunk(20, 6, 0)
        + DONE;
    let server = WireServer::start(vec![Reply::sse_split(body.replace('\n', "\r\n").as_bytes(), 5)]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    let resp = resp.unwrap();
    assert_eq!(resp.content, vec![ContentBlock::Text { text: "Grüße, wörld 🌍".into() }]);
    assert_eq!(resp.stop_reason, StopReason::EndTurn);
    assert_eq!(resp.usage, Usage { input_tokens: 20, output_tokens: 6, ..Usage::default() });
    assert_eq!(deltas.last(), Some(&ModelDelta::Stop { reason: StopReason::EndTurn }));
    assert!(deltas.contains(&ModelDelta::BlockStop { index: 0 }));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = r.json();
    assert_eq!(b["model"], "gpt-4o");
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["max_completion_tokens"], 4096);
    assert!(b.get("max_tokens").is_none());
    assert_eq!(
        b["messages"],
        json!([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hi"}])
    );
    assert!(b.get("tools").is_none());
}

#[tokio::test]
async fn ollama_is_named_ollama_sends_max_tokens_and_no_key() {
    let server = WireServer::start(vec![Reply::sse(text_answer("llama says hi"))]).await;
    let mut c = OpenAiConfig::ollama(&server.url());
    c.http = http_config();
    assert_eq!(c.base_url, format!("{}/v1", server.url()));
    assert_eq!(c.max_tokens_field, MaxTokensField::MaxTokens);
    let p = OpenAiProvider::new(c).unwrap();
    assert_eq!(p.name(), "ollama");
    let mut req = request(vec![Message::user_text("hi")]);
    req.model = "ollama:llama3.2".into();
    let resp = call(&p, req).await.1.unwrap();
    assert_eq!(resp.content, vec![ContentBlock::Text { text: "llama says hi".into() }]);
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), None);
    let b = r.json();
    assert_eq!(b["model"], "llama3.2");
    assert_eq!(b["max_tokens"], 4096);
    assert!(b.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn two_tool_calls_in_one_turn_with_arguments_split_anywhere() {
    let answer = chunk(json!({"role": "assistant", "content": null}), Value::Null)
        + &chunk(json!({"content": "Let me look."}), Value::Null)
        + &chunk(tool_call(0, Some("call_a"), Some("Read"), ""), Value::Null)
        + &chunk(tool_call(0, None, None, "{\"file_"), Value::Null)
        + &chunk(tool_call(0, None, None, "path\": \"a.t"), Value::Null)
        + &chunk(tool_call(0, None, None, "xt\"}"), Value::Null)
        + &chunk(tool_call(1, Some("call_b"), Some("Write"), "{\"file_path\""), Value::Null)
        + &chunk(tool_call(1, None, None, ": \"b.txt\", \"content\": \"caf\\u00"), Value::Null)
        + &chunk(tool_call(1, None, None, "e9\"}"), Value::Null)
        + &chunk(json!({}), json!("tool_calls"))
        + &usage_chunk(80, 30, 0)
        + DONE;
    let server =
        WireServer::start(vec![Reply::sse_split(answer.as_bytes(), 11), Reply::sse(text_answer("done"))]).await;
    let p = provider(&server);
    let tools = vec![
        ToolSpec {
            name: "Read".into(),
            description: "Reads a file.".into(),
            input_schema: json!({"type": "object", "properties": {"file_path": {"type": "string"}}}),
        },
        ToolSpec {
            name: "Write".into(),
            description: "Writes a file.".into(),
            input_schema: json!({"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}),
        },
    ];
    let mut req = request(vec![Message::user_text("copy a to b")]);
    req.tools = Arc::new(tools);
    let (deltas, resp) = call(&p, req.clone()).await;
    let resp = resp.unwrap();
    assert_eq!(resp.stop_reason, StopReason::ToolUse);
    assert_eq!(
        resp.content,
        vec![
            ContentBlock::Text { text: "Let me look.".into() },
            ContentBlock::ToolUse { id: "call_a".into(), name: "Read".into(), input: json!({"file_path": "a.txt"}) },
            ContentBlock::ToolUse {
                id: "call_b".into(),
                name: "Write".into(),
                input: json!({"file_path": "b.txt", "content": "café"})
            },
        ]
    );
    let starts: Vec<usize> = deltas
        .iter()
        .filter_map(|d| match d {
            ModelDelta::BlockStart { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![0, 1, 2]);

    // Next turn: the assistant's calls and their results, linked by id; thinking is dropped.
    let mut messages = (*req.messages).clone();
    let mut content =
        vec![ContentBlock::Thinking { thinking: "secret thoughts".into(), signature: Some("sig".into()) }];
    content.extend(resp.content);
    messages.push(Message { role: Role::Assistant, content });
    messages.push(Message {
        role: Role::User,
        content: vec![
            ContentBlock::ToolResult { tool_use_id: "call_a".into(), content: "AAA".into(), is_error: false },
            ContentBlock::ToolResult { tool_use_id: "call_b".into(), content: "denied by hook".into(), is_error: true },
        ],
    });
    req.messages = Arc::new(messages);
    call(&p, req).await.1.unwrap();

    let reqs = server.requests();
    assert_eq!(
        reqs[0].json()["tools"],
        json!([
            {"type": "function", "function": {"name": "Read", "description": "Reads a file.",
              "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "Write", "description": "Writes a file.",
              "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}}},
        ])
    );
    let b = reqs[1].json();
    let msgs = b["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 5, "{msgs:?}");
    let assistant = &msgs[2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"], "Let me look.");
    let calls = assistant["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_a");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "Read");
    let args: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"file_path": "a.txt"}));
    let args: Value = serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"file_path": "b.txt", "content": "café"}));
    assert_eq!(msgs[3], json!({"role": "tool", "tool_call_id": "call_a", "content": "AAA"}));
    assert_eq!(msgs[4], json!({"role": "tool", "tool_call_id": "call_b", "content": "Error: denied by hook"}));
    assert!(!b.to_string().contains("secret thoughts"), "thinking blocks are dropped");
}

#[tokio::test]
async fn usage_with_cached_tokens_is_split_and_priced() {
    let answer = chunk(json!({"content": "cached"}), Value::Null)
        + &chunk(json!({}), json!("stop"))
        + &usage_chunk(1000, 100, 400)
        + DONE;
    let server = WireServer::start(vec![Reply::sse(answer)]).await;
    let resp = call(&provider(&server), request(vec![Message::user_text("hi")])).await.1.unwrap();
    assert_eq!(
        resp.usage,
        Usage { input_tokens: 600, output_tokens: 100, cache_read_input_tokens: 400, ..Usage::default() }
    );
    // gpt-4o: $2.50 in, $10 out, $1.25 cached per MTok.
    let cost = PriceTable::default().cost("gpt-4o", &resp.usage).unwrap();
    let expected = (600.0 * 2.5 + 100.0 * 10.0 + 400.0 * 1.25) / 1e6;
    assert!((cost - expected).abs() < 1e-12 && (cost - 0.003).abs() < 1e-12, "{cost}");
}

#[tokio::test]
async fn rate_limit_with_retry_after_date_is_retried_and_announced() {
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc2822().replace("+0000", "GMT");
    let server = WireServer::start(vec![
        Reply::json(
            429,
            &api_error(
                "requests",
                "Rate limit reached for gpt-4o on requests per min (RPM)",
                json!("rate_limit_exceeded"),
            ),
        )
        .header("retry-after", &at),
        Reply::sse(text_answer("after the wait")),
    ])
    .await;
    let started = Instant::now();
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    assert_eq!(resp.unwrap().content, vec![ContentBlock::Text { text: "after the wait".into() }]);
    match &deltas[0] {
        ModelDelta::Retry { attempt: 1, wait_ms, error } => {
            assert!(*wait_ms <= 2000 && *wait_ms >= 500, "{wait_ms}");
            assert!(error.contains("Rate limit reached"), "{error}");
            assert!(started.elapsed() >= Duration::from_millis(*wait_ms) - Duration::from_millis(50));
        }
        other => panic!("first delta should announce the retry: {other:?}"),
    }
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn overloaded_and_server_errors_are_retried() {
    let server = WireServer::start(vec![
        Reply::json(529, &json!({"error": {"message": "overloaded", "type": "overloaded_error"}})),
        Reply::json(502, &json!({"error": "upstream connect error"})),
        Reply::sse(text_answer("finally")),
    ])
    .await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    assert_eq!(resp.unwrap().content, vec![ContentBlock::Text { text: "finally".into() }]);
    let retries: Vec<(u32, String)> = deltas
        .iter()
        .filter_map(|d| match d {
            ModelDelta::Retry { attempt, error, .. } => Some((*attempt, error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!((retries[0].0, retries[1].0), (1, 2));
    assert!(retries[0].1.contains("overloaded"), "{}", retries[0].1);
    assert!(retries[1].1.contains("502") && retries[1].1.contains("upstream connect error"), "{}", retries[1].1);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_bad_request_reports_the_api_message() {
    let msg = "Invalid schema for function 'Write': 'strng' is not valid under any of the given schemas.";
    let server = WireServer::start(vec![
        Reply::json(400, &api_error("invalid_request_error", msg, json!("invalid_function_parameters"))),
        Reply::json(404, &json!({"error": {"message": "model \"llama9\" not found, try pulling it first", "type": "api_error", "param": null, "code": null}})),
    ])
    .await;
    let p = provider(&server);
    let err = call(&p, request(vec![Message::user_text("hi")])).await.1.unwrap_err();
    match &err {
        ModelError::InvalidRequest { kind, message } => {
            assert_eq!(kind, "invalid_request_error");
            assert_eq!(message, msg);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(msg), "{err}");
    let err = call(&p, request(vec![Message::user_text("hi")])).await.1.unwrap_err();
    assert!(matches!(err, ModelError::InvalidRequest { .. }), "{err:?}");
    assert!(err.to_string().contains("model \"llama9\" not found"), "{err}");
    assert_eq!(server.requests().len(), 2, "neither was retried");
}

#[tokio::test]
async fn an_error_chunk_mid_stream_reaches_the_user() {
    let partial = chunk(json!({"role": "assistant", "content": "Half an "}), Value::Null)
        + &data(
            &json!({"error": {"message": "The server had an error while processing your request. Sorry about that!",
                                  "type": "server_error", "param": null, "code": null}}),
        );
    let server = WireServer::start(vec![Reply::sse(partial), Reply::sse(text_answer("not asked for"))]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::Server { .. }), "{err:?}");
    assert!(err.to_string().contains("server_error") && err.to_string().contains("Sorry about that!"), "{err}");
    assert!(!deltas.iter().any(|d| matches!(d, ModelDelta::BlockStop { .. } | ModelDelta::Stop { .. })));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_a_broken_stream() {
    let partial = chunk(json!({"role": "assistant", "content": "The answer"}), Value::Null)
        + &chunk(tool_call(0, Some("call_x"), Some("Write"), "{\"file_path\": \"x"), Value::Null)
        + "data: {\"id\": \"chatcmpl-1\", \"choi";
    let server = WireServer::start(vec![Reply::sse(partial).cut(), Reply::sse(text_answer("not asked for"))]).await;
    let (deltas, resp) = call(&provider(&server), request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::StreamBroken { .. }), "{err:?}");
    assert!(deltas.iter().any(|d| matches!(d, ModelDelta::Text { .. })));
    assert!(
        !deltas.iter().any(|d| matches!(d, ModelDelta::BlockStop { .. } | ModelDelta::Stop { .. })),
        "no block was finished: {deltas:?}"
    );
    assert_eq!(server.requests().len(), 1);

    // A server that ends the body after the finish_reason but without `[DONE]` gave a whole answer.
    let no_done = chunk(json!({"content": "complete"}), Value::Null) + &chunk(json!({}), json!("stop"));
    let server = WireServer::start(vec![Reply::sse(no_done)]).await;
    let resp = call(&provider(&server), request(vec![Message::user_text("hi")])).await.1.unwrap();
    assert_eq!(resp.content, vec![ContentBlock::Text { text: "complete".into() }]);
}

#[tokio::test]
async fn a_stalled_server_times_out() {
    let http = HttpConfig {
        idle_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(500),
        max_retries: 0,
        ..http_config()
    };
    let partial = chunk(json!({"role": "assistant", "content": "Thinking very slo"}), Value::Null);
    let server = WireServer::start(vec![Reply::sse(partial).stall()]).await;
    let started = Instant::now();
    let (deltas, resp) =
        call(&OpenAiProvider::new(config(&server, http)).unwrap(), request(vec![Message::user_text("hi")])).await;
    let err = resp.unwrap_err();
    assert!(matches!(err, ModelError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(!deltas.iter().any(|d| matches!(d, ModelDelta::BlockStop { .. } | ModelDelta::Stop { .. })));
}

#[tokio::test]
async fn end_to_end_an_agent_writes_a_file_through_the_wire() {
    let tool_answer = chunk(json!({"role": "assistant", "content": null}), Value::Null)
        + &chunk(tool_call(0, Some("call_w1"), Some("Write"), ""), Value::Null)
        + &chunk(tool_call(0, None, None, "{\"file_path\": \"hel"), Value::Null)
        + &chunk(tool_call(0, None, None, "lo.txt\", \"content\": \"hi from the wire\\n\"}"), Value::Null)
        + &chunk(json!({}), json!("tool_calls"))
        + &usage_chunk(1500, 40, 1024)
        + DONE;
    let server = WireServer::start(vec![
        Reply::json(529, &json!({"error": {"message": "overloaded", "type": "overloaded_error"}})),
        Reply::sse_split(tool_answer.as_bytes(), 64),
        Reply::sse(text_answer("Done: hello.txt written.")),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(provider(&server))).build();
    let agent = runner.ensure_agent("wire-agent", "openai:gpt-4o", dir.path().to_str().unwrap()).await.unwrap();
    let out = runner.run(agent.id, "Write hello.txt", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("Done: hello.txt written."));
    assert_eq!(std::fs::read_to_string(dir.path().join("hello.txt")).unwrap(), "hi from the wire\n");

    let events: Vec<Event> =
        store.read_events(&EventQuery::default()).await.unwrap().into_iter().map(|r| r.event).collect();
    assert!(events.iter().any(|e| matches!(e, Event::ModelRetry { attempt: 1, .. })));
    assert!(events.iter().any(|e| matches!(e, Event::ToolUse { tool_name, tool_use_id, .. } if tool_name == "Write" && tool_use_id == "call_w1")));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::ToolResult { tool_use_id, is_error: false, .. } if tool_use_id == "call_w1"))
    );
    let costs: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            Event::AgentCostsUpdated { model, cost_usd, .. } => {
                assert_eq!(model, "gpt-4o");
                Some(*cost_usd)
            }
            _ => None,
        })
        .collect();
    assert_eq!(costs.len(), 2);
    let first = (476.0 * 2.5 + 40.0 * 10.0 + 1024.0 * 1.25) / 1e6;
    assert!((costs[0] - first).abs() < 1e-12, "{costs:?}");
    assert!(costs[1] > 0.0);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let msgs = reqs[2].json()["messages"].as_array().unwrap().clone();
    let tool_msg = msgs.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool_msg["tool_call_id"], "call_w1");
}

/// Tool arguments: an object nesting objects and arrays `depth` levels deep.
fn nested_arguments(depth: usize) -> String {
    let mut s = String::from("1");
    for i in 0..depth {
        s = if (depth - 1 - i).is_multiple_of(2) { format!("{{\"k\":{s}}}") } else { format!("[{s}]") };
    }
    s
}

#[tokio::test]
async fn a_tool_call_nested_too_deeply_is_refused_and_leaves_the_agent_and_its_log_readable() {
    for depth in [124, 125, 126, 200] {
        let deep = chunk(json!({"role": "assistant", "content": null}), Value::Null)
            + &chunk(tool_call(0, Some("call_deep"), Some("Write"), &nested_arguments(depth)), Value::Null)
            + &chunk(json!({}), json!("tool_calls"))
            + &usage_chunk(100, 40, 0)
            + DONE;
        let server = WireServer::start(vec![
            Reply::sse(deep),
            Reply::sse(text_answer("Understood.")),
            Reply::sse(text_answer("Still here.")),
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemoryStore::new());
        let runner = AgentRunner::builder(store.clone(), Arc::new(provider(&server))).build();
        let agent = runner.ensure_agent("deep", "openai:gpt-4o", dir.path().to_str().unwrap()).await.unwrap();
        let out = runner.run(agent.id, "go", RunOptions::default()).await.unwrap_or_else(|e| panic!("{depth}: {e}"));
        assert_eq!(out.final_text.as_deref(), Some("Understood."), "depth {depth}");
        // The model was told why, as the call's tool error.
        let reqs = server.requests();
        let msgs = reqs[1].json()["messages"].as_array().unwrap().clone();
        let tool_msg = msgs.iter().find(|m| m["role"] == "tool").unwrap();
        assert_eq!(tool_msg["tool_call_id"], "call_deep");
        assert!(
            tool_msg["content"].as_str().unwrap().contains("tool input nested deeper than 64 levels"),
            "{tool_msg}"
        );
        // The agent's next prompt works.
        let out = runner.run(agent.id, "again", RunOptions::default()).await.unwrap_or_else(|e| panic!("{depth}: {e}"));
        assert_eq!(out.final_text.as_deref(), Some("Still here."), "depth {depth}");

        // Everything stored reads back from JSON, as a database store reads it.
        let records = store.read_events(&EventQuery::default()).await.unwrap();
        assert!(
            records
                .iter()
                .any(|r| matches!(&r.event, Event::ToolRefused { tool_use_id, .. } if tool_use_id == "call_deep"))
        );
        for r in &records {
            let text = serde_json::to_string(r).unwrap();
            let back: orch_core::wire::EventRecord = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("depth {depth}: {} does not read back: {e}", r.event.kind()));
            assert_eq!(&back, r);
        }
        for m in store.load_conversation(agent.id).await.unwrap() {
            let back: Message = serde_json::from_str(&serde_json::to_string(&m).unwrap())
                .unwrap_or_else(|e| panic!("depth {depth}: a conversation message does not read back: {e}"));
            assert_eq!(back, m);
        }
        let stored = store.get_agent(agent.id).await.unwrap().unwrap();
        let text = serde_json::to_string(&stored).unwrap();
        serde_json::from_str::<orch_core::wire::Agent>(&text)
            .unwrap_or_else(|e| panic!("depth {depth}: the agent does not read back: {e}"));
    }
}
