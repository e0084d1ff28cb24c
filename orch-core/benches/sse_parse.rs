//! SSE decoding throughput of the HTTP model providers.
//!
//! `cargo bench -p orch-core --bench sse_parse` generates a ~10 MB recorded Anthropic stream and a
//! ~10 MB OpenAI stream (many small text deltas, some tool calls whose JSON input arrives in pieces), then
//!
//! - (a) decodes each in memory, fed in 16 KiB chunks, through the SSE parser and the provider's event
//!   mapping (and, separately, also through the `ResponseAssembler`) → MB/s, median of runs;
//! - (b) serves each from a loopback HTTP/1.1 server and times a full provider model call (request,
//!   stream, mapping, `ResponseAssembler`) against a raw reqwest read of the same bytes from the same
//!   server → ratio, median of interleaved runs in the same process.
//!
//! Set `SSE_BENCH_MB` to change the stream size (default 10) and `SSE_BENCH_RUNS` the runs (default 7).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/wire_server.rs"]
mod wire_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use orch_core::model::anthropic::AnthropicStreamMapper;
use orch_core::model::http::{EventMapper, HttpConfig, SseDecoder};
use orch_core::model::openai::OpenAiStreamMapper;
use orch_core::model::{
    AnthropicConfig, AnthropicProvider, ModelProvider, ModelRequest, OpenAiConfig, OpenAiProvider, ResponseAssembler,
};
use orch_core::wire::Message;
use serde_json::json;
use wire_server::{Reply, WireServer};

const CHUNK: usize = 16 * 1024;

const WORDS: &[&str] = &[
    "the",
    "agent",
    "reads",
    "a",
    "file,",
    "then",
    "writes",
    "tests",
    "for",
    "naïve",
    "edge",
    "cases",
    "— and",
    "\"quotes\"",
    "newlines\n",
    "tabs\t",
    "λ-calculus",
    "🚀",
    "done.",
    "Next,",
    "we",
    "check",
    "the",
    "diff",
];

fn text_piece(i: usize) -> String {
    let n = 2 + i % 5;
    (0..n).map(|k| WORDS[(i * 7 + k * 3) % WORDS.len()]).collect::<Vec<_>>().join(" ") + " "
}

fn tool_input(i: usize) -> String {
    let content: String = (0..40).map(|k| WORDS[(i + k) % WORDS.len()]).collect::<Vec<_>>().join(" ");
    json!({"file_path": format!("src/module_{i}.rs"), "content": content}).to_string()
}

/// Splits a string into pieces of about `n` bytes, on character boundaries.
fn pieces(s: &str, n: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + n).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push(&s[start..end]);
        start = end;
    }
    out
}

fn anthropic_stream(target: usize) -> Vec<u8> {
    let ev = |name: &str, data: serde_json::Value| format!("event: {name}\ndata: {data}\n\n");
    let mut s = ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_bench", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 2500, "cache_read_input_tokens": 12000, "output_tokens": 1}}}),
    );
    let mut index = 0;
    let mut i = 0;
    while s.len() < target {
        s += &ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        );
        for _ in 0..200 {
            s += &ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text_piece(i)}}),
            );
            i += 1;
        }
        s += &ev("content_block_stop", json!({"type": "content_block_stop", "index": index}));
        index += 1;
        s += &ev("ping", json!({"type": "ping"}));
        s += &ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": format!("toolu_{index}"), "name": "Write", "input": {}}}),
        );
        for p in pieces(&tool_input(i), 17) {
            s += &ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}),
            );
        }
        s += &ev("content_block_stop", json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    s += &ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 99999}}),
    );
    s += &ev("message_stop", json!({"type": "message_stop"}));
    s.into_bytes()
}

fn openai_stream(target: usize) -> Vec<u8> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o",
                   "system_fingerprint": "fp_bench", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let mut s = chunk(json!({"role": "assistant", "content": ""}), serde_json::Value::Null);
    let mut i = 0;
    // Text first, then tool calls (Chat Completions gives one text block, then one block per call).
    let text_target = target * 4 / 5;
    while s.len() < text_target {
        s += &chunk(json!({"content": text_piece(i)}), serde_json::Value::Null);
        i += 1;
    }
    let mut call = 0;
    while s.len() < target {
        let input = tool_input(call);
        let mut first = true;
        for p in pieces(&input, 17) {
            let tc = if first {
                json!({"index": call, "id": format!("call_{call}"), "type": "function", "function": {"name": "Write", "arguments": p}})
            } else {
                json!({"index": call, "function": {"arguments": p}})
            };
            first = false;
            s += &chunk(json!({"tool_calls": [tc]}), serde_json::Value::Null);
        }
        call += 1;
    }
    s += &chunk(json!({}), json!("tool_calls"));
    s += &format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": 14500, "completion_tokens": 99999, "prompt_tokens_details": {"cached_tokens": 12000}}})
    );
    s += "data: [DONE]\n\n";
    s.into_bytes()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_000_000.0
}

/// Decodes `body` in memory; returns (deltas, blocks assembled).
fn decode<M: EventMapper>(mapper: M, body: &[u8], assemble: bool) -> (usize, usize) {
    let mut decoder = SseDecoder::new(mapper);
    let mut out = Vec::new();
    let mut asm = ResponseAssembler::new();
    let mut deltas = 0;
    for chunk in body.chunks(CHUNK) {
        decoder.feed(chunk, &mut out).unwrap();
        deltas += out.len();
        if assemble {
            for d in out.drain(..) {
                asm.push(d).unwrap();
            }
        } else {
            out.clear();
        }
    }
    decoder.finish(&mut out).unwrap();
    deltas += out.len();
    for d in out.drain(..) {
        asm.push(d).unwrap();
    }
    let blocks = if assemble { asm.finish().unwrap().content.len() } else { 0 };
    (deltas, blocks)
}

fn in_memory<M: EventMapper + Clone>(name: &str, mapper: M, body: &[u8], runs: usize) {
    let (deltas, _) = decode(mapper.clone(), body, false);
    let (_, blocks) = decode(mapper.clone(), body, true);
    for (label, assemble) in [("parse+map", false), ("parse+map+assemble", true)] {
        let mut rates = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            std::hint::black_box(decode(mapper.clone(), body, assemble));
            rates.push(mb(body.len()) / t.elapsed().as_secs_f64());
        }
        println!(
            "(a) {name:<9} {label:<19} {:>7.1} MB/s  (median of {runs}; {:.1} MB, {deltas} deltas, {blocks} blocks)",
            median(rates),
            mb(body.len())
        );
    }
}

fn request(model: &str) -> ModelRequest {
    ModelRequest {
        model: model.into(),
        system: Some("bench".into()),
        messages: Arc::new(vec![Message::user_text("go")]),
        tools: Arc::new(Vec::new()),
        max_tokens: 1024,
        thinking: None,
        agent_name: "bench".into(),
    }
}

fn reply(body: &[u8]) -> Reply {
    Reply::sse_chunks(body.chunks(CHUNK).map(<[u8]>::to_vec).collect())
}

async fn provider_call(p: &dyn ModelProvider, model: &str) -> usize {
    let mut stream = p.stream(request(model)).await.unwrap();
    let mut asm = ResponseAssembler::new();
    while let Some(d) = stream.next().await {
        asm.push(d.unwrap()).unwrap();
    }
    asm.finish().unwrap().content.len()
}

async fn raw_read(client: &reqwest::Client, url: &str) -> usize {
    let mut resp = client.post(url).body("{}").send().await.unwrap();
    let mut n = 0;
    while let Some(c) = resp.chunk().await.unwrap() {
        n += c.len();
    }
    n
}

async fn loopback(
    name: &str,
    body: &[u8],
    runs: usize,
    provider: &dyn ModelProvider,
    server: &WireServer,
    url: &str,
    model: &str,
) {
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    // Warm up both paths (connections, allocations).
    server.push(reply(body));
    provider_call(provider, model).await;
    server.push(reply(body));
    assert_eq!(raw_read(&client, url).await, body.len());
    let (mut ours, mut raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        server.push(reply(body));
        let t = Instant::now();
        std::hint::black_box(provider_call(provider, model).await);
        let a = t.elapsed().as_secs_f64();
        server.push(reply(body));
        let t = Instant::now();
        std::hint::black_box(raw_read(&client, url).await);
        let b = t.elapsed().as_secs_f64();
        ours.push(mb(body.len()) / a);
        raw.push(mb(body.len()) / b);
        ratios.push(a / b);
    }
    println!(
        "(b) {name:<9} provider call {:>7.1} MB/s, raw reqwest read {:>7.1} MB/s, time ratio provider/raw {:.2}x (median of {runs})",
        median(ours),
        median(raw),
        median(ratios)
    );
}

fn main() {
    let size_mb: usize = std::env::var("SSE_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let runs: usize = std::env::var("SSE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(7).max(1);
    let started = Instant::now();
    let anthropic = anthropic_stream(size_mb * 1_000_000);
    let openai = openai_stream(size_mb * 1_000_000);
    println!(
        "sse_parse: {:.1} MB Anthropic stream, {:.1} MB OpenAI stream, {CHUNK}-byte chunks",
        mb(anthropic.len()),
        mb(openai.len())
    );

    in_memory("anthropic", AnthropicStreamMapper::new(), &anthropic, runs);
    in_memory("openai", OpenAiStreamMapper::new(), &openai, runs);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let http = HttpConfig { idle_timeout: Duration::from_secs(30), ..HttpConfig::default() };

        let server = WireServer::start(Vec::new()).await;
        let mut config = AnthropicConfig::new("bench-key");
        config.base_url = server.url();
        config.http = http.clone();
        let p = AnthropicProvider::new(config).unwrap();
        loopback(
            "anthropic",
            &anthropic,
            runs,
            &p,
            &server,
            &format!("{}/v1/messages", server.url()),
            "claude-sonnet-4-5",
        )
        .await;

        let server = WireServer::start(Vec::new()).await;
        let mut config = OpenAiConfig::new(None);
        config.base_url = format!("{}/v1", server.url());
        config.http = http;
        let p = OpenAiProvider::new(config).unwrap();
        loopback("openai", &openai, runs, &p, &server, &format!("{}/v1/chat/completions", server.url()), "gpt-4o")
            .await;
    });
    println!("sse_parse: done in {:.1} s", started.elapsed().as_secs_f64());
}
