//! The 100-agents workload: 100 agents commanded at once through an [`AgentManager`], the scripted
//! model making each do 10 tool calls and then answer. Measures wall time, tool calls per second, peak
//! RSS, OS threads while they run, and the resident memory each idle agent costs.
//!
//! The tool is `Ping`, a no-op (its body returns `pong`), so the figures are orch's own cost: model
//! stream, store commits, manager bookkeeping. The manager uses its default settings (file tracking on);
//! the agents' working directory is a fresh temporary directory outside any git work tree, so file
//! tracking runs no `git`; it collects the run's tool events as they are committed. A line with file
//! tracking off is printed too.
//!
//! Each store runs in a fresh child process of this binary, so its peak RSS and thread counts are its
//! own: the in-memory store, then SQLite (a file in a temporary directory; WAL, synchronous=FULL).
//!
//! Run: `cargo bench -p orch-tests --bench agents_100` (env: AGENTS = 100, CALLS = 10, RUNS = 5,
//! IDLE = 2000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod allocator;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orch_core::model::scripted::ScriptReply;
use orch_core::orchestrator::files::FileSnapshot;
use orch_core::orchestrator::{AgentManager, CreateAgent, ManagerConfig, RunReport};
use orch_core::prelude::*;
use orch_store_sqlite::SqliteStore;
use orch_tests::{median_p90, proc_status, reset_peak_rss};
use serde_json::{Value, json};

/// The environment variable telling a child process which store to measure.
const CHILD_ENV: &str = "ORCH_AGENTS_100_STORE";
/// The prompt of every command.
const PROMPT: &str = "Call Ping until told to stop, then say done.";
/// Tokio's default keep-alive of idle blocking-pool threads.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A tool that runs until its turn is interrupted.
struct Block;

#[async_trait]
impl Tool for Block {
    fn name(&self) -> &str {
        "Block"
    }
    fn description(&self) -> &str {
        "Waits until interrupted."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn call(&self, ctx: &ToolContext, _input: Value) -> Result<ToolOutput, ToolError> {
        ctx.interrupt.triggered().await;
        Err(ToolError::Interrupted)
    }
}

/// Interrupt latency: from `interrupt_agent` until the run has recorded its end, for an agent blocked in
/// a tool. Milliseconds, one per run.
async fn interrupt_latencies(store: Arc<dyn Store>, dir: &Path, runs: usize) -> Vec<f64> {
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        Ok(if tool_results_since_prompt(&req.messages) == 0 {
            ScriptReply::tool_use("", "Block", json!({}))
        } else {
            ScriptReply::text("stopped")
        })
    });
    let mut tools = ToolRegistry::new();
    tools.register(Block);
    let runner = AgentRunner::builder(store.clone(), Arc::new(model)).tools(tools).build();
    let manager = AgentManager::new(runner, None, ManagerConfig::new(dir, "scripted"));
    let mut out = Vec::new();
    for i in 0..=runs {
        let name = format!("blocker-{i}");
        let req = CreateAgent { name: name.clone(), system_prompt: Some("p".into()), ..CreateAgent::default() };
        let agent = manager.create_agent(req).await.unwrap();
        let ticket = manager.command_agent(&name, "block").await.unwrap();
        // Until the run is inside the tool.
        loop {
            let q = orch_core::store::EventQuery {
                agent_id: Some(agent.id),
                types: vec!["PreToolUse".into()],
                ..Default::default()
            };
            if !store.read_events(&q).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = Instant::now();
        manager.interrupt_agent(&name, Duration::from_secs(10)).await.unwrap();
        let report = ticket.wait().await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert!(report.result.unwrap().interrupted());
        if i > 0 {
            out.push(ms);
        }
    }
    out
}

/// A tool that does nothing.
struct Ping;

#[async_trait]
impl Tool for Ping {
    fn name(&self) -> &str {
        "Ping"
    }
    fn description(&self) -> &str {
        "Answers pong."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"n": {"type": "integer"}}})
    }
    async fn call(&self, _ctx: &ToolContext, _input: Value) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text("pong"))
    }
}

#[derive(Clone, Copy)]
struct Params {
    agents: usize,
    calls: usize,
    runs: usize,
    idle: usize,
}

impl Params {
    fn from_env() -> Self {
        let var = |name: &str, default: usize| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
        };
        Self { agents: var("AGENTS", 100), calls: var("CALLS", 10), runs: var("RUNS", 5), idle: var("IDLE", 2000) }
    }
}

/// Tool results in the conversation since the last prompt (a user message without tool results).
fn tool_results_since_prompt(messages: &[Message]) -> usize {
    let mut n = 0;
    for m in messages.iter().rev() {
        let results = m.content.iter().filter(|b| matches!(b, ContentBlock::ToolResult { .. })).count();
        if results == 0 && matches!(m.role, Role::User) {
            break;
        }
        n += results;
    }
    n
}

/// The model: `calls` Ping calls per command, then a text answer. Reports a fixed usage (no size estimate).
fn scripted(calls: usize) -> ScriptedModel {
    ScriptedModel::from_fn(move |req: &ModelRequest| {
        let done = tool_results_since_prompt(&req.messages);
        let usage = Usage { input_tokens: 100 + 40 * done as u64, output_tokens: 20, ..Usage::default() };
        let reply = if done < calls {
            ScriptReply::tool_use("", "Ping", json!({"n": done}))
        } else {
            ScriptReply::text(format!("Done after {done} pings."))
        };
        Ok(reply.with_usage(usage))
    })
}

/// Creates `n` agents named `{prefix}-{i}`.
async fn create_agents(manager: &AgentManager, prefix: &str, n: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        let req = CreateAgent { name: name.clone(), system_prompt: Some("You ping.".into()), ..CreateAgent::default() };
        manager.create_agent(req).await.unwrap();
        names.push(name);
    }
    names
}

fn check(reports: &[RunReport], n: usize, calls: usize) {
    assert_eq!(reports.len(), n, "every run must report");
    for r in reports {
        let out = r.result.as_ref().unwrap_or_else(|e| panic!("run of {} failed: {e}", r.agent_name));
        assert_eq!(out.num_turns as usize, calls + 1, "{} made the wrong number of model calls", r.agent_name);
        assert_eq!(out.stop_reason, "end_turn");
    }
}

/// Commands every agent at once and waits for all (`wait_all`). Wall seconds, checked afterwards.
async fn command_all(manager: &AgentManager, names: &[String], calls: usize) -> f64 {
    let t = Instant::now();
    let mut tickets = Vec::with_capacity(names.len());
    for name in names {
        tickets.push(manager.command_agent(name, PROMPT).await.unwrap());
    }
    manager.wait_all().await;
    let wall = t.elapsed().as_secs_f64();
    // `wait_all` reports only the runs still going when it was called; the tickets have every report.
    let mut reports = Vec::with_capacity(tickets.len());
    for ticket in &tickets {
        reports.push(ticket.wait().await);
    }
    check(&reports, names.len(), calls);
    wall
}

/// Commands the agents one after another, each waited for before the next. Wall seconds.
async fn command_one_by_one(manager: &AgentManager, names: &[String], calls: usize) -> f64 {
    let t = Instant::now();
    let mut reports = Vec::with_capacity(names.len());
    for name in names {
        reports.push(manager.command_agent(name, PROMPT).await.unwrap().wait().await);
    }
    let wall = t.elapsed().as_secs_f64();
    check(&reports, names.len(), calls);
    wall
}

/// The most OS threads and live tokio tasks seen, sampled every millisecond until `done`.
async fn sample_until(done: &AtomicBool) -> (u64, usize) {
    let metrics = tokio::runtime::Handle::current().metrics();
    let (mut threads, mut tasks) = (0, 0);
    loop {
        threads = threads.max(proc_status("Threads").unwrap_or(0));
        tasks = tasks.max(metrics.num_alive_tasks());
        if done.load(Ordering::Relaxed) {
            return (threads, tasks);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Lets the tasks of runs that just reported finish returning (a run reports just before its task ends).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn rss_kb() -> u64 {
    proc_status("VmRSS").unwrap_or(0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn kb_each(before: u64, after: u64, n: usize) -> f64 {
    (after as f64 - before as f64) / n as f64
}

fn threads() -> u64 {
    proc_status("Threads").unwrap_or(0)
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Size of a file plus its `-wal` companion, bytes.
fn db_bytes(path: &Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path, wal.as_path()].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// One store, in this process: prints its section and one `@@` line for the parent.
async fn measure(label: &str, store: Arc<dyn Store>, db: Option<&Path>, p: Params) {
    let workdir = tempfile::tempdir().unwrap();
    let in_git = FileSnapshot::take(&TokioRuntime, workdir.path()).await.in_git();
    let mut tools = ToolRegistry::new();
    tools.register(Ping);
    let runner = AgentRunner::builder(store.clone(), Arc::new(scripted(p.calls))).tools(tools).build();
    let manager = AgentManager::new(runner.clone(), None, ManagerConfig::new(workdir.path(), "scripted"));
    let mut untracked_config = ManagerConfig::new(workdir.path(), "scripted");
    untracked_config.file_tracking = false;
    let untracked = AgentManager::new(runner, None, untracked_config);
    let (n, calls) = (p.agents, p.calls);
    let tool_calls = (n * calls) as f64;

    println!("== {label} (own process) ==");
    println!(
        "  {n} agents x {calls} Ping calls (+1 answer) per run, fresh agents each run; {} runs after 1 warm-up; working dir in git: {}",
        p.runs,
        if in_git { "yes (file tracking runs git status)" } else { "no" }
    );
    let rss_start = rss_kb();
    let threads_start = threads();
    let tasks_start = alive_tasks();
    let peak_reset = reset_peak_rss();

    let (mut conc, mut seq, mut off, mut off_seq) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut peaks, mut rises) = (Vec::new(), Vec::new());
    let (mut max_threads, mut max_tasks) = (0, 0);
    let mut threads_after = Vec::new();
    for run in 0..=p.runs {
        let names = create_agents(&manager, &format!("c{run}"), n).await;
        let rss_before = rss_kb();
        reset_peak_rss();
        let done = AtomicBool::new(false);
        let (wall, (t, k)) = tokio::join!(
            async {
                let wall = command_all(&manager, &names, calls).await;
                done.store(true, Ordering::Relaxed);
                wall
            },
            sample_until(&done)
        );
        let peak = proc_status("VmHWM").unwrap_or(0);
        settle().await;
        let threads_then = threads();

        let names = create_agents(&manager, &format!("s{run}"), n).await;
        let wall_seq = command_one_by_one(&manager, &names, calls).await;

        let names = create_agents(&untracked, &format!("u{run}"), n).await;
        let wall_off = command_all(&untracked, &names, calls).await;
        let names = create_agents(&untracked, &format!("v{run}"), n).await;
        let wall_off_seq = command_one_by_one(&untracked, &names, calls).await;
        if run > 0 {
            conc.push(wall * 1000.0);
            seq.push(wall_seq * 1000.0);
            off.push(wall_off * 1000.0);
            off_seq.push(wall_off_seq * 1000.0);
            peaks.push(mb(peak));
            rises.push(mb(peak.saturating_sub(rss_before)));
            max_threads = max_threads.max(t);
            max_tasks = max_tasks.max(k);
            threads_after.push(threads_then as f64);
        }
    }
    let (c_med, c_p90) = median_p90(&mut conc);
    let (s_med, s_p90) = median_p90(&mut seq);
    let (o_med, o_p90) = median_p90(&mut off);
    let (os_med, os_p90) = median_p90(&mut off_seq);
    println!("  default config (file tracking on: tool events collected as committed; no git outside a repository):");
    let line = |what: &str, med: f64, p90: f64| {
        println!(
            "    {what:<44} median {med:8.1} ms  p90 {p90:8.1} ms  -> {:7.0} tool calls/s",
            tool_calls / med * 1000.0
        );
    };
    line(&format!("concurrent: {n} commanded at once, wait_all"), c_med, c_p90);
    line(&format!("baseline: same {n} one at a time"), s_med, s_p90);
    println!("    ratio baseline / concurrent (same run): {:.2}x", s_med / c_med);
    println!("  file tracking off:");
    line(&format!("concurrent: {n} commanded at once, wait_all"), o_med, o_p90);
    line(&format!("baseline: same {n} one at a time"), os_med, os_p90);
    println!("    ratio baseline / concurrent (same run): {:.2}x", os_med / o_med);
    let (peak_med, _) = median_p90(&mut peaks);
    let (rise_med, _) = median_p90(&mut rises);
    if peak_reset {
        println!(
            "  peak RSS (VmHWM, reset before each concurrent run): median {peak_med:.1} MB, {rise_med:.1} MB above the RSS before the run (the {n} running agents plus the history they add)"
        );
    } else {
        println!("  peak RSS (VmHWM since the process started; could not reset it): {peak_med:.1} MB");
    }
    let (after_med, _) = median_p90(&mut threads_after);
    println!(
        "  OS threads: {threads_start} before; at most {max_threads} while {n} ran (sampled every ms; live tokio tasks at most {max_tasks}, {tasks_start} before); {after_med:.0} right after"
    );

    // Idle agents: created, then commanded once each (in waves of `n` at once), then left alone.
    let idle = p.idle;
    settle().await;
    let rss0 = rss_kb();
    let (threads0, tasks0) = (threads(), alive_tasks());
    let t = Instant::now();
    let names = create_agents(&manager, "idle", idle).await;
    let create_s = t.elapsed().as_secs_f64();
    let rss1 = rss_kb();
    let t = Instant::now();
    // RSS once half the agents ran, and how many had: the growth after it is the marginal cost.
    let mut half: Option<(u64, usize)> = None;
    for (i, wave) in names.chunks(n).enumerate() {
        command_all(&manager, wave, calls).await;
        let commanded = (i * n + wave.len()).min(idle);
        if half.is_none() && commanded >= idle / 2 && commanded < idle {
            half = Some((rss_kb(), commanded));
        }
    }
    let command_s = t.elapsed().as_secs_f64();
    settle().await;
    let rss2 = rss_kb();
    let (threads2, tasks2) = (threads(), alive_tasks());
    println!(
        "  idle agents: {idle} created ({create_s:.1} s), then each commanded once ({calls} Pings, in waves of {n}; {command_s:.1} s), then left idle"
    );
    println!(
        "    RSS {:.1} MB -> {:.1} MB after creating -> {:.1} MB after their command",
        mb(rss0),
        mb(rss1),
        mb(rss2)
    );
    println!(
        "    resident memory per idle agent: {:.1} KB (created, never run: {:.1} KB; its first command's history adds {:.1} KB)",
        kb_each(rss0, rss2, idle),
        kb_each(rss0, rss1, idle),
        kb_each(rss1, rss2, idle)
    );
    if let Some((rss_half, commanded)) = half {
        println!(
            "    the last {} commanded alone: {:.1} KB per agent (caches that fill up once are not in it)",
            idle - commanded,
            kb_each(rss_half, rss2, idle - commanded)
        );
    }
    let one = manager.agent("idle-0").await.unwrap();
    let events = store.read_events(&EventQuery { agent_id: Some(one.id), ..EventQuery::default() }).await.unwrap();
    let conversation = store.load_conversation(one.id).await.unwrap();
    let agents_total = manager.list_agents().await.unwrap().len();
    println!(
        "    one idle agent's data as JSON: agent row {:.1} KB, {} events {:.1} KB, {} messages {:.1} KB",
        serde_json::to_vec(&one).unwrap().len() as f64 / 1024.0,
        events.len(),
        serde_json::to_vec(&events).unwrap().len() as f64 / 1024.0,
        conversation.len(),
        serde_json::to_vec(&conversation).unwrap().len() as f64 / 1024.0
    );
    if db.is_none() {
        println!(
            "    (the in-memory store keeps all of it in the process: {} bytes inline per event record and {} per message, plus their strings and JSON values, in vectors that grow by doubling)",
            std::mem::size_of::<EventRecord>(),
            std::mem::size_of::<Message>()
        );
    }
    if let Some(db) = db {
        println!(
            "    database file + WAL: {:.1} MB for {agents_total} agents = {:.1} KB per agent (on disk, not resident)",
            db_bytes(db) as f64 / 1024.0 / 1024.0,
            db_bytes(db) as f64 / 1024.0 / agents_total as f64
        );
    }
    println!(
        "    an idle agent holds its store rows only: no task, no thread; live tokio tasks {tasks0} before the {idle} were made, {tasks2} once they were idle"
    );
    if threads2 > threads_start {
        // The blocking pool grew while the waves ran; its idle threads exit after 10 s.
        tokio::time::sleep(BLOCKING_KEEP_ALIVE + Duration::from_secs(1)).await;
    }
    println!(
        "    OS threads: {threads_start} at start with no agents; {threads0} before the waves, {threads2} right after the last one (idle blocking-pool threads, if any, live {} s); {} with {agents_total} idle agents {}",
        BLOCKING_KEEP_ALIVE.as_secs(),
        threads(),
        if threads2 > threads_start {
            format!("after {} s idle", BLOCKING_KEEP_ALIVE.as_secs() + 1)
        } else {
            "right away".to_string()
        }
    );
    println!(
        "  RSS {:.1} MB at start, {:.1} MB at the end; VmHWM at the end {:.1} MB",
        mb(rss_start),
        mb(rss_kb()),
        mb(proc_status("VmHWM").unwrap_or(0))
    );
    let mut lat = interrupt_latencies(store.clone(), workdir.path(), p.runs).await;
    let (lat_med, lat_p90) = median_p90(&mut lat);
    println!(
        "  interrupt latency (interrupt_agent until the run recorded Stop(interrupted), agent blocked in a tool): median {lat_med:.2} ms, p90 {lat_p90:.2} ms"
    );
    println!("@@ {c_med} {s_med} {}", kb_each(rss0, rss2, idle));
}

fn child(store: &str) {
    let p = Params::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        match store {
            "memory" => measure("in-memory store", Arc::new(MemoryStore::new()), None, p).await,
            "sqlite" => {
                let dir = tempfile::tempdir_in(".").unwrap_or_else(|_| tempfile::tempdir().unwrap());
                let path = dir.path().join("bench.db");
                let sqlite = SqliteStore::open(&path).unwrap();
                measure("SQLite file store (WAL, synchronous=FULL)", Arc::new(sqlite), Some(&path), p).await;
            }
            other => panic!("unknown store {other}"),
        }
    });
}

fn main() {
    if let Ok(store) = std::env::var(CHILD_ENV) {
        child(&store);
        return;
    }
    let p = Params::from_env();
    println!(
        "agents-100 workload: {} agents commanded concurrently, {} tool calls each; multi-thread tokio runtime, 2 workers",
        p.agents, p.calls
    );
    let exe = std::env::current_exe().unwrap();
    let mut results = Vec::new();
    for store in ["memory", "sqlite"] {
        let mut c = Command::new(&exe).env(CHILD_ENV, store).stdout(Stdio::piped()).spawn().unwrap();
        for line in BufReader::new(c.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            match line.strip_prefix("@@ ") {
                Some(data) => {
                    results.push(data.split_whitespace().map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>())
                }
                None => println!("{line}"),
            }
        }
        assert!(c.wait().unwrap().success(), "the {store} child failed");
    }
    if let [mem, file] = results.as_slice() {
        println!(
            "== summary: SQLite / in-memory (same run): concurrent {:.1}x, one-at-a-time {:.1}x; resident memory per idle agent: in-memory {:.1} KB, SQLite {:.1} KB (goal < 1024 KB)",
            file[0] / mem[0],
            file[1] / mem[1],
            mem[2],
            file[2]
        );
    }
}
