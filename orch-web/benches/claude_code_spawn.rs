//! Claude Code executor start-up: from `AgentRunner::run` to the first event that comes from the CLI's
//! output (the `init` line's `SystemLog`), with the fake `claude` (tests/fixtures/fake_claude.py)
//! replaying a tool-use transcript.
//!
//! Baseline in the same run: the same fake, with the same arguments, spawned directly, from spawn to its
//! first stdout line. The difference is what orch adds (prompt row, first commit, argument building,
//! spawn, line parsing, commit and publish). Also reported: whole turns without hooks and with one Rust
//! hook (every PreToolUse/PostToolUse/Stop then goes through `orch hook-relay`).
//!
//! Run: `cargo bench -p orch-web --bench claude_code_spawn`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use orch_core::executor::{
    AgentRunner, ClaudeCodeConfig, ClaudeCodeExecutor, NativeExecutor, RoutingExecutor, RunOptions,
};
use orch_core::hook::{FnHook, HookDecision, HookEvent, HookRegistry};
use orch_core::model::scripted::ScriptedModel;
use orch_core::store::{MemoryStore, Store};
use orch_core::wire::Agent;
use tokio::io::{AsyncBufReadExt, BufReader};

const WARMUPS: usize = 3;
const RUNS: usize = 20;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn transcript() -> String {
    fixture("claude").join("tool_use_write.jsonl").to_string_lossy().into_owned()
}

fn runner(store: Arc<dyn Store>, hooks: HookRegistry) -> AgentRunner {
    let config = ClaudeCodeConfig::from_env()
        .with_binary(fixture("fake_claude.py"))
        .with_relay_command(vec![env!("CARGO_BIN_EXE_orch").to_string(), "hook-relay".to_string()])
        .with_env("FAKE_CLAUDE_TRANSCRIPT", transcript());
    let provider =
        Arc::new(ScriptedModel::from_json_str(r#"{"steps": [{"reply": [{"type": "text", "text": "x"}]}]}"#).unwrap());
    let router = RoutingExecutor::new(Arc::new(NativeExecutor::new(provider.clone())))
        .with_claude_code(Arc::new(ClaudeCodeExecutor::new(config)));
    AgentRunner::builder(store, provider).executor(Arc::new(router)).hooks(hooks).build()
}

/// One turn; returns (run start → first CLI-derived event published, whole turn).
async fn executor_once(runner: &AgentRunner, store: &Arc<dyn Store>, work: &Path, i: usize) -> (f64, f64) {
    let agent = runner.create_agent(Agent::new(format!("a{i}"), "claude-code", work.to_string_lossy())).await.unwrap();
    let since = store.last_seq().await.unwrap();
    let mut stream = store.subscribe(since);
    let t0 = Instant::now();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(r)) = stream.next().await {
            if r.keys.agent_id == Some(agent.id) && r.event.kind() == "SystemLog" {
                return t0.elapsed();
            }
        }
        panic!("no SystemLog event");
    });
    runner.run(agent.id, "write target.txt", RunOptions::default()).await.unwrap();
    let total = t0.elapsed();
    let first = watcher.await.unwrap();
    (ms(first), ms(total))
}

/// The fake spawned directly with the executor's arguments; returns spawn → first stdout line.
async fn direct_once(work: &Path) -> f64 {
    let t0 = Instant::now();
    let mut child = tokio::process::Command::new(fixture("fake_claude.py"))
        .args(["-p", "write target.txt", "--output-format", "stream-json", "--verbose", "--permission-mode"])
        .args(["acceptEdits", "--allowedTools", "Bash,Edit,Glob,Grep,Read,Write", "--max-turns", "500"])
        .env("FAKE_CLAUDE_TRANSCRIPT", transcript())
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    lines.next_line().await.unwrap().unwrap();
    let first = t0.elapsed();
    while lines.next_line().await.unwrap().is_some() {}
    assert!(child.wait().await.unwrap().success());
    ms(first)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().canonicalize().unwrap();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let plain = runner(store.clone(), HookRegistry::new());
        let mut hooks = HookRegistry::new();
        hooks.register(HookEvent::PreToolUse, None, FnHook::new("noop", |_| HookDecision::Continue)).unwrap();
        let hooked = runner(store.clone(), hooks);

        let (mut exec_first, mut exec_total, mut hook_total, mut direct) = (vec![], vec![], vec![], vec![]);
        for i in 0..WARMUPS + RUNS {
            // Interleaved, so machine noise hits all series alike.
            let d = direct_once(&work).await;
            let (first, total) = executor_once(&plain, &store, &work, i).await;
            let (_, with_hooks) = executor_once(&hooked, &store, &work, 10_000 + i).await;
            if i >= WARMUPS {
                direct.push(d);
                exec_first.push(first);
                exec_total.push(total);
                hook_total.push(with_hooks);
            }
        }
        let (dmin, fmin) = (min(&direct), min(&exec_first));
        let (d, f, t, h) = (median(&mut direct), median(&mut exec_first), median(&mut exec_total), median(&mut hook_total));
        println!("Claude Code executor, fake CLI (python3), MemoryStore; median (min) over {RUNS} runs:");
        println!("  run() → first CLI-derived event published:    {f:8.2} ms ({fmin:.2})");
        println!("  baseline: fake spawned directly → first line: {d:8.2} ms ({dmin:.2})");
        println!("  ratio {:.2}x; orch adds {:+.2} ms at the median, {:+.2} ms at the min", f / d, f - d, fmin - dmin);
        println!("  whole tool-use turn, no hooks:                {t:8.2} ms");
        println!(
            "  whole tool-use turn, one Rust hook (3 relay calls via `orch hook-relay`): {h:.2} ms (+{:.2} ms, {:.2} ms per call)",
            h - t,
            (h - t) / 3.0
        );
    });
}
