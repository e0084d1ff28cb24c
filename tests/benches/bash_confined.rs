//! What confining `Bash` costs: the same command through the `Bash` tool, confined (Landlock, a private
//! TMPDIR made and removed) and unconfined, interleaved in one run.
//!
//! Run: `cargo bench -p orch-tests --bench bash_confined` (env: RUNS, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod allocator;

use std::sync::Arc;
use std::time::Instant;

use orch_core::Interrupt;
use orch_core::runtime::TokioRuntime;
use orch_core::tool::builtin::{Bash, BashSandbox};
use orch_core::tool::{Tool, ToolContext};
use orch_tests::median_p90;
use serde_json::json;

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext {
        working_dir: dir.path().to_path_buf(),
        agent_id: orch_core::wire::new_id(),
        agent_name: "bench".into(),
        tool_use_id: "toolu_bench".into(),
        interrupt: Interrupt::new(),
        runtime: Arc::new(TokioRuntime),
    };
    let confined = Bash::with_sandbox(BashSandbox::default());
    let unconfined = Bash::with_sandbox(BashSandbox::unconfined());
    let first = confined.call(&ctx, json!({"command": "true"})).await.unwrap();
    let note = if first.content.contains("unconfined") { " (this kernel lacks Landlock: ran unconfined)" } else { "" };
    let (mut on, mut off) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        for (tool, times) in [(&confined, &mut on), (&unconfined, &mut off)] {
            let t = Instant::now();
            let out = tool.call(&ctx, json!({"command": "echo ok > f.txt"})).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(!out.is_error, "{}", out.content);
        }
    }
    let (on_med, on_p90) = median_p90(&mut on);
    let (off_med, off_p90) = median_p90(&mut off);
    println!("Bash `echo ok > f.txt`, {runs} calls each, interleaved{note}:");
    println!("  unconfined (baseline): median {off_med:.2} ms, p90 {off_p90:.2} ms");
    println!("  confined (Landlock):   median {on_med:.2} ms, p90 {on_p90:.2} ms");
    println!("  ratio {:.2}x, +{:.2} ms per call", on_med / off_med, on_med - off_med);
}
