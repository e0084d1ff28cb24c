//! The agent-step workload (shared/bench/agent-step.md) with tracing export off and on, in one run.
//!
//! One agent on the in-memory store; model calls 1..N each ask for `Read {"file_path": "hello.txt"}`,
//! call N+1 answers. Per step = wall / (N+1). Three settings, each on a current-thread runtime under
//! its own `tracing` dispatcher:
//! - off: no subscriber at all;
//! - logs only: the `orch` binary's default logging (stderr at `warn`) and no exporter, which is what
//!   runs when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset;
//! - export on: that logging plus the OpenTelemetry layer, exporting over OTLP/HTTP to a collector
//!   stand-in on 127.0.0.1 (accepts and drops), flushed at the end of each run.
//!
//! Run: `cargo bench -p orch-tests --bench agent_step_otel` (env: N, RUNS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod allocator;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::prelude::*;
use orch_tests::median_p90;
use orch_web::telemetry::Exporter;
use serde_json::json;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

/// What observes the runs.
enum Mode<'a> {
    Off,
    Logs,
    Export(&'a Exporter),
}

/// Runs the workload `runs` times after 2 warm-ups under `mode`; µs per step of each run.
fn workload(n: usize, runs: usize, mode: Mode<'_>) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "Hello from the agent-step benchmark!\n").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let model = ScriptedModel::from_fn(move |_req: &ModelRequest| {
        let i = c2.fetch_add(1, Ordering::Relaxed);
        let usage = Usage { input_tokens: 100 + 40 * i as u64, output_tokens: 20, ..Usage::default() };
        Ok(if i < n {
            ScriptReply::tool_use(format!("call_{i}"), "Read", json!({"file_path": "hello.txt"})).with_usage(usage)
        } else {
            ScriptReply::text("The file says hello.").with_usage(usage)
        })
    });
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::EnvFilter::new("warn"));
    let dispatch = match mode {
        Mode::Off => tracing::Dispatch::none(),
        Mode::Logs => tracing::Dispatch::new(tracing_subscriber::registry().with(logs)),
        Mode::Export(e) => tracing::Dispatch::new(tracing_subscriber::registry().with(logs).with(e.layer())),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut per_step = Vec::new();
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let runner = AgentRunner::builder(Arc::new(MemoryStore::new()), Arc::new(model)).build();
            for run in 0..runs + 2 {
                calls.store(0, Ordering::Relaxed);
                let agent = runner
                    .ensure_agent(&format!("bench-{run}"), "scripted", dir.path().to_str().unwrap())
                    .await
                    .unwrap();
                let t = Instant::now();
                let out = runner.run(agent.id, "Read hello.txt.", RunOptions::default()).await.unwrap();
                let wall = t.elapsed().as_nanos() as f64;
                assert_eq!(out.num_turns as usize, n + 1);
                if run >= 2 {
                    per_step.push(wall / (n as f64 + 1.0) / 1000.0);
                }
            }
        });
    });
    per_step
}

/// A collector stand-in: answers every request 200 and counts them.
fn collector(received: Arc<AtomicU64>) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                received.fetch_add(body.len() as u64, Ordering::Relaxed);
                ""
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    (url, rt)
}

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    println!(
        "agent-step workload with tracing export off and on: N = {n} Read calls, {runs} runs after 2 warm-ups (µs per step, in-memory store)"
    );
    let mut off = workload(n, runs, Mode::Off);
    let (off_med, off_p90) = median_p90(&mut off);
    println!("  off (no subscriber):                           median {off_med:8.1}  p90 {off_p90:8.1}");
    let mut logs = workload(n, runs, Mode::Logs);
    let (logs_med, logs_p90) = median_p90(&mut logs);
    println!(
        "  logs only (orch's default, no OTEL endpoint):  median {logs_med:8.1}  p90 {logs_p90:8.1}  ratio {:.2}x",
        logs_med / off_med
    );
    let received = Arc::new(AtomicU64::new(0));
    let (url, _rt) = collector(received.clone());
    let exporter = Exporter::start(Some(&url), "orch-bench".into()).unwrap();
    let mut on = workload(n, runs, Mode::Export(&exporter));
    exporter.shutdown();
    let (on_med, on_p90) = median_p90(&mut on);
    println!(
        "  export on (OTLP/HTTP to 127.0.0.1):            median {on_med:8.1}  p90 {on_p90:8.1}  ratio {:.2}x",
        on_med / off_med
    );
    println!("  the collector received {} bytes of spans", received.load(Ordering::Relaxed));
}
