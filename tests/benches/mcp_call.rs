//! Overhead of an MCP tool call over stdio against a direct Rust tool, measured in the same run.
//!
//! 1. Per call: `echo` as a Rust tool (`Tool::call` in process) against `mcp__stub__echo` of the stub
//!    MCP server (`orch-mcp-stub`, rmcp on stdio), each called CALLS times on the same session.
//! 2. Per agent step: an agent whose scripted model calls the tool STEPS times, on the Rust tool and on
//!    the MCP tool (the server started with the turn and stopped after it), RUNS runs each, in-memory
//!    store; wall time per step. The MCP run's server start is reported on its own.
//!
//! Run: `cargo bench -p orch-tests --bench mcp_call` (env: CALLS, STEPS, RUNS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod allocator;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use orch_core::model::scripted::ScriptReply;
use orch_core::prelude::*;
use orch_core::tool::mcp::{McpSession, McpSettings};
use orch_tests::median_p90;
use serde_json::{Value, json};

const STUB: &str = env!("CARGO_BIN_EXE_orch-mcp-stub");

/// The same tool as the stub's `echo`, in Rust.
struct Echo;

#[async_trait]
impl Tool for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn description(&self) -> &str {
        "Echoes its text."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
    }
    async fn call(&self, _ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let text = input.get("text").and_then(Value::as_str).unwrap_or_default();
        Ok(ToolOutput::text(format!("echo: {text}")))
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn context(dir: &std::path::Path) -> ToolContext {
    ToolContext {
        working_dir: dir.to_path_buf(),
        agent_id: new_id(),
        agent_name: "bench".into(),
        tool_use_id: "call".into(),
        interrupt: Interrupt::new(),
        runtime: Arc::new(TokioRuntime),
    }
}

async fn time_calls(tool: &dyn Tool, ctx: &ToolContext, calls: usize) -> Vec<f64> {
    let mut us = Vec::with_capacity(calls);
    for i in 0..calls {
        let input = json!({"text": format!("hello {i}")});
        let t = Instant::now();
        let out = tool.call(ctx, input).await.unwrap();
        us.push(t.elapsed().as_nanos() as f64 / 1000.0);
        assert_eq!(out.content, format!("echo: hello {i}"));
    }
    us
}

/// Wall µs per step of RUNS runs whose model calls `tool` STEPS times.
async fn per_step(dir: &std::path::Path, tool: &'static str, steps: usize, runs: usize) -> Vec<f64> {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let model = ScriptedModel::from_fn(move |_req: &ModelRequest| {
        let i = c.fetch_add(1, Ordering::Relaxed);
        Ok(if i < steps {
            ScriptReply::tool_use(format!("call_{i}"), tool, json!({"text": "hello"}))
        } else {
            ScriptReply::text("done")
        })
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut tools = ToolRegistry::new();
    tools.register(Echo);
    let runner = AgentRunner::builder(store, Arc::new(model)).tools(tools).mcp_settings(McpSettings::default()).build();
    let mut out = Vec::new();
    for run in 0..runs + 1 {
        calls.store(0, Ordering::Relaxed);
        let agent = runner.ensure_agent(&format!("{tool}-{run}"), "scripted", dir.to_str().unwrap()).await.unwrap();
        let t = Instant::now();
        let o = runner.run(agent.id, "go", RunOptions::default()).await.unwrap();
        let wall = t.elapsed().as_nanos() as f64 / 1000.0;
        assert_eq!(o.num_turns as usize, steps + 1);
        if run > 0 {
            out.push(wall / (steps as f64 + 1.0));
        }
    }
    out
}

fn main() {
    let calls = env_usize("CALLS", 2000);
    let steps = env_usize("STEPS", 50);
    let runs = env_usize("RUNS", 20);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(".mcp.json"), json!({"mcpServers": {"stub": {"command": STUB}}}).to_string()).unwrap();
        let ctx = context(d);

        // Server start (spawn, initialize, tools/list) and stop.
        let mut start_ms = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let s = McpSession::start(d, None, &McpSettings::default()).await;
            start_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(s.problems().is_empty(), "{:?}", s.problems());
            s.shutdown().await;
        }

        let session = McpSession::start(d, None, &McpSettings::default()).await;
        let remote = session.tools().get("mcp__stub__echo").unwrap().clone();
        let direct: Arc<dyn Tool> = Arc::new(Echo);
        time_calls(direct.as_ref(), &ctx, 200).await;
        time_calls(remote.as_ref(), &ctx, 200).await;
        let mut direct_us = time_calls(direct.as_ref(), &ctx, calls).await;
        let mut mcp_us = time_calls(remote.as_ref(), &ctx, calls).await;
        session.shutdown().await;

        let mut step_direct = per_step(d, "echo", steps, runs).await;
        let mut step_mcp = per_step(d, "mcp__stub__echo", steps, runs).await;

        let (sm, sp) = median_p90(&mut start_ms);
        let (dm, dp) = median_p90(&mut direct_us);
        let (mm, mp) = median_p90(&mut mcp_us);
        let (pdm, pdp) = median_p90(&mut step_direct);
        let (pmm, pmp) = median_p90(&mut step_mcp);
        println!("mcp_call: CALLS={calls} STEPS={steps} RUNS={runs}");
        println!("server start + stop (stdio, spawn + initialize + tools/list): median {sm:.1} ms, p90 {sp:.1} ms");
        println!("per call, direct Rust tool:       median {dm:>9.2} µs, p90 {dp:>9.2} µs");
        println!("per call, MCP tool over stdio:    median {mm:>9.2} µs, p90 {mp:>9.2} µs");
        println!("  MCP − direct: {:.1} µs per call; ratio {:.0}x", mm - dm, mm / dm.max(1e-9));
        println!("per agent step, direct Rust tool: median {pdm:>9.1} µs, p90 {pdp:>9.1} µs");
        println!("per agent step, MCP tool (stdio): median {pmm:>9.1} µs, p90 {pmp:>9.1} µs (server start included)");
        println!("  ratio {:.2}x", pmm / pdm.max(1e-9));
    });
}
