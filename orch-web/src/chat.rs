//! `orch chat` and `orch agent create|command|status|interrupt|delete`: the orchestrator and its agents
//! from a terminal. A CLI process is a foreground host: it streams what it started and returns when
//! that ends; Ctrl-C interrupts it.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use orch_core::ErrorKind;
use orch_core::engine::{Engine, EngineError};
use orch_core::executor::DeltaCallback;
use orch_core::model::{BlockStart, ModelDelta};
use orch_core::orchestrator::summary::SummarizerHandle;
use orch_core::orchestrator::{
    AgentManager, CreateAgent, Interrupted, ManageError, Orchestrator, OrchestratorError, RunReport, format_status,
};
use orch_core::runtime::TokioRuntime;
use orch_core::store::Store;
use orch_core::wire::{Event, EventRecord, Id, PromptAuthor};

use crate::signals::Sigint;

/// A failure of a command: its [`ErrorKind`] gives the exit code ([`ErrorKind::exit_code`]: 2 for bad
/// usage or input, 1 for runtime failures, 130 when interrupted).
#[derive(Debug)]
pub struct Failure {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Message.
    pub message: String,
}

impl Failure {
    /// A failure of this kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
    /// Bad usage or input: exit code 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    /// A runtime failure: exit code 1.
    pub fn runtime(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// The exit code.
    pub fn code(&self) -> u8 {
        self.kind.exit_code()
    }
}

/// Every engine error converts by its kind.
macro_rules! failure_from_kind {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Self::new(e.kind(), e.to_string())
            }
        }
    )*};
}

failure_from_kind!(
    ManageError,
    OrchestratorError,
    EngineError,
    orch_core::config::ConfigError,
    orch_core::store::StoreError,
    orch_core::executor::RunError,
);

/// Parses `--orchestrator`.
pub fn parse_orchestrator_id(s: &str) -> Result<Id, Failure> {
    s.trim().parse::<Id>().map_err(|_| Failure::usage(format!("--orchestrator '{s}': not an orchestrator id (a UUID)")))
}

/// Opens the orchestrator: `id`, else the newest live one, else (with `new` or when there is none)
/// a new one; it follows interrupt requests from other processes.
pub async fn orchestrator(engine: &Engine, id: Option<Id>, new: bool) -> Result<Orchestrator, Failure> {
    let resume = match (id, new) {
        (Some(id), _) => Some(id),
        (None, true) => None,
        (None, false) => Orchestrator::latest(engine.store().as_ref()).await?.map(|o| o.id),
    };
    // Its runner follows the log for interrupt requests from other processes by itself.
    Ok(engine.open_orchestrator(resume).await?)
}

/// The manager owning agent `name`: the orchestrator's (`id`, else the newest), else the
/// free-standing agents of `orch run`.
async fn manager_for(engine: &Engine, id: Option<Id>, name: &str) -> Result<AgentManager, Failure> {
    let scope = match id {
        Some(id) => Some(id),
        None => Orchestrator::latest(engine.store().as_ref()).await?.map(|o| o.id),
    };
    if let Some(scope) = scope {
        let m = engine.agent_manager(Some(scope));
        match m.agent(name).await {
            Ok(_) => return Ok(m),
            Err(ManageError::NotFound(_)) if id.is_none() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let free = engine.agent_manager(None);
    free.agent(name).await?;
    Ok(free)
}

/// Starts the summarizer (if configured) on the events after `since`.
fn summarize_from(engine: &Engine, since: u64) -> Option<SummarizerHandle> {
    engine.summarizer().cloned().map(|s| s.follow(engine.store().clone(), engine.runtime().clone(), since))
}

/// Lets the summarizer catch up with what this process recorded (bounded), then stops it.
async fn finish_summaries(handle: Option<SummarizerHandle>, store: &dyn Store) {
    if let Some(h) = handle {
        if let Ok(last) = store.last_seq().await {
            h.drain(last, Duration::from_secs(30), &TokioRuntime).await;
        }
        h.stop();
    }
}

/// Text deltas to stdout as they stream, blocks separated by a line break.
fn print_deltas(prefix: Option<String>) -> DeltaCallback {
    let at_line_start = Arc::new(AtomicBool::new(true));
    Arc::new(move |d: &ModelDelta| {
        let mut out = std::io::stdout().lock();
        match d {
            ModelDelta::BlockStart { block: BlockStart::Text, .. } => {
                if !at_line_start.load(Ordering::Relaxed) {
                    let _ = out.write_all(b"\n");
                }
                if let Some(p) = &prefix {
                    let _ = write!(out, "{p}");
                }
                at_line_start.store(prefix.is_none(), Ordering::Relaxed);
            }
            ModelDelta::Text { text, .. } if !text.is_empty() => {
                let _ = out.write_all(text.as_bytes());
                at_line_start.store(text.ends_with('\n'), Ordering::Relaxed);
            }
            // A finished block ends its line, so other output (agent replies) starts on a fresh one.
            ModelDelta::BlockStop { .. } | ModelDelta::Stop { .. } if !at_line_start.load(Ordering::Relaxed) => {
                let _ = out.write_all(b"\n");
                at_line_start.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
        let _ = out.flush();
    })
}

/// Which events a follower prints.
#[derive(Clone)]
pub enum Filter {
    /// An orchestrator's events (its own turn's untagged, its agents' tagged with their names).
    Orchestrator {
        /// The orchestrator.
        id: Id,
        /// The agent record of its own turns.
        own_agent: Id,
    },
    /// One agent's events.
    Agent(Id),
}

/// Prints events from `since` until the log has been read up to the seq sent on `done`: JSON lines, or
/// (human mode) tool activity and agent replies.
pub async fn follow(
    store: Arc<dyn Store>,
    since: u64,
    filter: Filter,
    mut done: tokio::sync::watch::Receiver<Option<u64>>,
    json: bool,
) {
    let mut names: std::collections::HashMap<Id, String> = std::collections::HashMap::new();
    let mut stream = store.subscribe(since);
    let mut seen = since;
    loop {
        if done.borrow().is_some_and(|target| seen >= target) {
            return;
        }
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(r)) => {
                    seen = r.seq;
                    if let Event::AgentCreated { agent } = &r.event {
                        names.insert(agent.id, agent.name.clone());
                    }
                    let (wanted, own) = match &filter {
                        Filter::Orchestrator { id, own_agent } => (r.keys.orchestrator_id == Some(*id), r.keys.agent_id == Some(*own_agent) || r.keys.agent_id.is_none()),
                        Filter::Agent(a) => (r.keys.agent_id == Some(*a), true),
                    };
                    if !wanted {
                        continue;
                    }
                    if json {
                        if let Ok(line) = serde_json::to_string(&r) {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "{line}");
                            let _ = out.flush();
                        }
                    } else if own {
                        activity(&r, None);
                    } else {
                        let name = match r.keys.agent_id.and_then(|id| names.get(&id)) {
                            Some(n) => n.clone(),
                            None => match r.keys.agent_id {
                                Some(id) => {
                                    let n = store.get_agent(id).await.ok().flatten().map(|a| a.name).unwrap_or_else(|| "agent".into());
                                    names.insert(id, n.clone());
                                    n
                                }
                                None => "agent".into(),
                            },
                        };
                        activity(&r, Some(&name));
                    }
                }
                _ => return,
            },
            changed = done.changed() => if changed.is_err() { return },
        }
    }
}

/// One line of human output for an event, if it deserves one. Agent replies (`Some(name)`) go to
/// stdout; tool activity to stderr.
fn activity(r: &EventRecord, agent: Option<&str>) {
    let tag = agent.map(|n| format!("[{n}] ")).unwrap_or_default();
    match &r.event {
        Event::ToolUse { .. } | Event::ToolRefused { .. } => eprintln!("  {tag}⏺ {}", r.event.summary()),
        Event::HookInvoked { decision, .. } if decision != "continue" => eprintln!("  {tag}⏺ {}", r.event.summary()),
        Event::ToolResult { content, is_error, .. } => {
            let first = content.lines().map(str::trim).find(|l| !l.is_empty() && !l.ends_with(':')).unwrap_or("");
            eprintln!("    {tag}⎿ {}{}", if *is_error { "error: " } else { "" }, first);
        }
        Event::Text { text } if agent.is_some() => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{tag}{}", text.trim_end());
        }
        Event::FileTracking { .. } | Event::AgentStatusChanged { .. } if agent.is_some() => {
            eprintln!("  {tag}{}", r.event.summary())
        }
        Event::Result { .. } if agent.is_some() => eprintln!("  {tag}── {}", r.event.summary()),
        Event::Compacted { summary, .. } => {
            eprintln!("  {tag}{}", r.event.summary());
            // The summary is what the conversation now starts with: the result of a compaction.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{tag}{}", summary.trim_end());
        }
        Event::SubagentStart { .. } | Event::SubagentStop { .. } => eprintln!("  {tag}⏺ {}", r.event.summary()),
        Event::ModelError { message, .. } => eprintln!("  {tag}✗ {message}"),
        Event::SystemLog { .. } => eprintln!("  {tag}{}", r.event.summary()),
        _ => {}
    }
}

/// `orch chat`.
pub async fn chat(
    engine: &Engine,
    sigint: Sigint,
    orchestrator: Option<Id>,
    new: bool,
    message: &str,
    json: bool,
    no_wait: bool,
) -> Result<u8, Failure> {
    if message.trim().is_empty() {
        return Err(Failure::usage("the message is empty"));
    }
    let orch = self::orchestrator(engine, orchestrator, new).await?;
    let store = engine.store().clone();
    let since = store.last_seq().await?;
    let summaries = summarize_from(engine, since);
    let (done_tx, done_rx) = tokio::sync::watch::channel(None);
    let filter = Filter::Orchestrator { id: orch.id(), own_agent: orch.agent_id() };
    let printer = tokio::spawn(follow(store.clone(), since, filter, done_rx, json));
    let interrupted = Arc::new(AtomicBool::new(false));
    let ctrl_c = {
        let orch = orch.clone();
        let interrupted = interrupted.clone();
        sigint.spawn_each(move || {
            interrupted.store(true, Ordering::SeqCst);
            orch.interrupt();
            for t in orch.manager().active_runs() {
                orch.manager().runner().interrupt(t.agent_id);
            }
        })
    };
    let on_delta = if json { None } else { Some(print_deltas(None)) };
    let turn = orch.chat(message, on_delta).await;
    let mut failed = Vec::new();
    if let Ok(turn) = &turn {
        if no_wait || interrupted.load(Ordering::SeqCst) {
            // This process hosts the runs: leaving would cut them off, so they are stopped and say so.
            for t in &turn.started_runs {
                let _ = orch.manager().interrupt_agent(&t.agent_name, Duration::from_secs(5)).await;
            }
            for w in &turn.started_workflows {
                w.interrupt();
            }
        }
        for w in &turn.started_workflows {
            match w.wait().await {
                Ok(r) if r.status == orch_core::wire::WorkflowStatus::Completed => {}
                Ok(r) => failed.push(format!(
                    "workflow {} {}{}",
                    r.name,
                    r.status.as_str(),
                    r.error_message.map(|e| format!(": {e}")).unwrap_or_default()
                )),
                Err(e) => failed.push(format!("workflow {}: {e}", w.name)),
            }
        }
        for t in &turn.started_runs {
            let r: RunReport = t.wait().await;
            if let Err(e) = &r.result {
                failed.push(format!("{}: {e}", r.agent_name));
            }
        }
    }
    ctrl_c.abort();
    finish_summaries(summaries, store.as_ref()).await;
    let last = store.last_seq().await.unwrap_or(since);
    let _ = done_tx.send(Some(last));
    let _ = tokio::time::timeout(Duration::from_secs(10), printer).await;
    let turn = turn?;
    if !json {
        let o = orch.record().await?;
        eprintln!(
            "── orchestrator {}: {} after {} model call(s); {} agent run(s), {} workflow run(s); total ${:.4}",
            o.id,
            turn.outcome.stop_reason,
            turn.outcome.num_turns,
            turn.started_runs.len(),
            turn.started_workflows.len(),
            o.total_cost_usd
        );
    }
    for f in &failed {
        eprintln!("orch: agent run failed: {f}");
    }
    Ok(if interrupted.load(Ordering::SeqCst) || turn.outcome.interrupted() {
        130
    } else if failed.is_empty() {
        0
    } else {
        1
    })
}

/// `orch agent create`.
pub async fn create(
    engine: &Engine,
    orchestrator: Option<Id>,
    request: CreateAgent,
    json: bool,
) -> Result<u8, Failure> {
    if request.system_prompt.is_none() && request.template.is_none() {
        return Err(Failure::usage("give --system-prompt TEXT or --template NAME"));
    }
    let orch = self::orchestrator(engine, orchestrator, false).await?;
    let a = orch.manager().create_agent(request).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string(&a).unwrap_or_default());
    } else {
        let _ = writeln!(out, "Created agent '{}' ({}) with model {}", a.name, a.id, a.model);
    }
    Ok(0)
}

/// `orch agent command`: runs in the foreground, streaming; Ctrl-C interrupts the agent.
pub async fn command(
    engine: &Engine,
    sigint: Sigint,
    orchestrator: Option<Id>,
    name: &str,
    prompt: &str,
    json: bool,
) -> Result<u8, Failure> {
    let manager = manager_for(engine, orchestrator, name).await?;
    let agent = manager.agent(name).await?;
    let store = engine.store().clone();
    let since = store.last_seq().await?;
    let summaries = summarize_from(engine, since);
    let (done_tx, done_rx) = tokio::sync::watch::channel(None);
    let on_delta = if json { None } else { Some(print_deltas(None)) };
    let ticket = manager.command_agent_streaming(name, prompt, PromptAuthor::Engineer, on_delta).await?;
    let printer = tokio::spawn(follow(store.clone(), since, Filter::Agent(agent.id), done_rx, json));
    let ctrl_c = {
        let runner = manager.runner().clone();
        sigint.spawn_each(move || {
            runner.interrupt(agent.id);
        })
    };
    let report = ticket.wait().await;
    ctrl_c.abort();
    finish_summaries(summaries, store.as_ref()).await;
    let last = store.last_seq().await.unwrap_or(since);
    let _ = done_tx.send(Some(last));
    let _ = tokio::time::timeout(Duration::from_secs(10), printer).await;
    match report.result {
        Ok(o) => {
            if !json {
                eprintln!(
                    "── {} after {} model call(s), {} in / {} out tokens, ${:.4}; task {}",
                    o.stop_reason,
                    o.num_turns,
                    o.usage.input_tokens,
                    o.usage.output_tokens,
                    o.cost_usd,
                    report.task_slug
                );
            }
            Ok(if o.interrupted() { 130 } else { 0 })
        }
        Err(e) => Err(Failure::runtime(e)),
    }
}

/// `orch agent status`.
pub async fn status(
    engine: &Engine,
    orchestrator: Option<Id>,
    name: &str,
    tail: usize,
    verbose: bool,
    json: bool,
) -> Result<u8, Failure> {
    let manager = manager_for(engine, orchestrator, name).await?;
    let report = manager.status(name, tail, 0).await?;
    let mut out = std::io::stdout().lock();
    if json {
        // `{"agent": …, "task_slug": …, "entries": [{"record": …, "summary": …}]}`
        if let Ok(v) = serde_json::to_string(&report) {
            let _ = writeln!(out, "{v}");
        }
    } else {
        let _ = writeln!(out, "{}", format_status(&report, verbose));
    }
    Ok(0)
}

/// `orch agent interrupt`.
pub async fn interrupt(engine: &Engine, orchestrator: Option<Id>, name: &str) -> Result<u8, Failure> {
    let manager = manager_for(engine, orchestrator, name).await?;
    let msg = match manager.interrupt_agent_by(name, Duration::from_secs(5), "cli").await? {
        Interrupted::Stopped => format!("Interrupted agent '{name}'"),
        Interrupted::Requested => format!("Interrupted agent '{name}' (its run was in another process)"),
        Interrupted::NotRunning => format!("Agent '{name}' is not currently running"),
    };
    println!("{msg}");
    Ok(0)
}

/// `orch agent delete`.
pub async fn delete(engine: &Engine, orchestrator: Option<Id>, name: &str) -> Result<u8, Failure> {
    let manager = manager_for(engine, orchestrator, name).await?;
    let a = manager.delete_agent(name).await?;
    println!("Deleted agent '{}' ({})", a.name, a.id);
    Ok(0)
}
