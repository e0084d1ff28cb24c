//! `orch attention`, `orch approve`, `orch deny` and `orch answer`: what waits for a person, and the
//! decisions on tool calls that hooks parked.
//!
//! A decision is recorded at once. The run then continues where a server follows the store (it
//! notices the decision and continues the run in its own process): when the store's heartbeat rows
//! show a live server (`orch serve` beats one), this process waits for it to take the run up, up to
//! `--server-wait`; with no server, or none taking it up in time, this process continues the run in
//! the foreground, as `orch resume` does.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use orch_core::approval::{ApprovalError, Approvals, resume_options};
use orch_core::config::OrchConfig;
use orch_core::executor::{AgentRunner, Supervisor, lease};
use orch_core::wire::{ApprovalDecision, AttentionItem, Id, WorkerRole};

use crate::chat::Failure;
use crate::signals::Sigint;

/// `orch attention`.
#[derive(Debug, Args)]
pub struct AttentionArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// How the run continues after a decision (`orch approve`, `deny`, `answer`).
#[derive(Debug, Args)]
pub struct Continuation {
    /// Record the decision and return; a server following the store (or `orch resume`) continues the run.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the continued run's events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// When a server follows the store: how long to wait for it to take the run up before continuing
    /// it here (it returns as soon as one does). With no server, the run continues here at once.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    pub server_wait: Duration,
}

/// A duration in seconds (`0.5`, `3`): from 0 to a day.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    const DAY: f64 = 86_400.0;
    let secs: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.0..=DAY).contains(&secs) {
        return Err(format!("'{s}' is not a wait from 0 to {DAY} seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `orch approve ID`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The approval's id (from `orch attention`).
    pub id: String,
    /// How the run continues.
    #[command(flatten)]
    pub then: Continuation,
}

/// `orch deny ID`.
#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The approval's id (from `orch attention`).
    pub id: String,
    /// Why: the model gets it as the tool's error.
    #[arg(long)]
    pub reason: Option<String>,
    /// How the run continues.
    #[command(flatten)]
    pub then: Continuation,
}

/// `orch answer ID TEXT`.
#[derive(Debug, Args)]
pub struct AnswerArgs {
    /// The approval's id (from `orch attention`).
    pub id: String,
    /// The answer: the model gets it as the tool's result (the tool does not run).
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
    /// How the run continues.
    #[command(flatten)]
    pub then: Continuation,
}

impl From<ApprovalError> for Failure {
    fn from(e: ApprovalError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

/// `orch attention`: everything waiting for a person, oldest first.
pub async fn attention(config: OrchConfig, args: &AttentionArgs) -> Result<u8, Failure> {
    let engine = crate::cli::engine(config, false).await?;
    let items = Approvals::new(engine.supervisor().clone()).attention().await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for item in &items {
            let line = serde_json::to_string(item).map_err(|e| Failure::runtime(e.to_string()))?;
            let _ = writeln!(out, "{line}");
        }
        return Ok(0);
    }
    if items.is_empty() {
        let _ = writeln!(out, "Nothing waits for a person");
        return Ok(0);
    }
    let _ = writeln!(out, "{:<11} {:<36} {:<19} {:<16} WHAT", "KIND", "ID", "SINCE", "WHO");
    for item in &items {
        let _ = writeln!(
            out,
            "{:<11} {:<36} {:<19} {:<16} {}",
            kind_name(item),
            item.id,
            item.created_at.format("%Y-%m-%d %H:%M:%S"),
            who(item),
            what(item)
        );
    }
    if items.iter().any(|i| i.tool.is_some()) {
        let _ =
            writeln!(out, "\nDecide with `orch approve ID`, `orch deny ID --reason TEXT` or `orch answer ID TEXT`.");
    }
    Ok(0)
}

fn kind_name(item: &AttentionItem) -> String {
    serde_json::to_value(item.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn who(item: &AttentionItem) -> String {
    let name = item.agent_name.as_ref().or(item.workflow_name.as_ref()).or(item.graph_name.as_ref());
    clip(name.map_or("-", String::as_str), 16)
}

fn what(item: &AttentionItem) -> String {
    let question = item.question.replace('\n', " ");
    match (&item.tool, &item.input) {
        (Some(tool), Some(input)) => {
            let arg =
                ["file_path", "command", "path", "url"].iter().find_map(|k| input.get(*k).and_then(|v| v.as_str()));
            match arg {
                Some(a) => format!("{tool}({}) — {question}", clip(a, 60)),
                None => format!("{tool} — {question}"),
            }
        }
        _ => question,
    }
}

/// Tells a person which of the agent's tool calls waits for them, and how to decide (after a run
/// parked).
pub async fn print_waiting(runner: &AgentRunner, agent_id: Id) {
    let approvals = Approvals::new(Supervisor::new(runner.clone(), Vec::new()));
    let pending = approvals.pending().await.unwrap_or_default();
    let Some(a) = pending.iter().find(|a| a.agent_id == agent_id) else {
        eprintln!("orch: the run waits for a person: see `orch attention`");
        return;
    };
    eprintln!("orch: the run waits for a person: {}", a.question.replace('\n', " "));
    eprintln!("  {} {}", a.tool_name, clip(&a.tool_input.to_string(), 200));
    eprintln!("  orch approve {id} | orch deny {id} --reason TEXT | orch answer {id} TEXT", id = a.id);
}

/// The first `n` characters of `s`, with `…` when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `orch approve|deny|answer`: records the decision, then continues the run (see the module docs).
pub async fn resolve(
    config: OrchConfig,
    decision: ApprovalDecision,
    id: &str,
    text: Option<String>,
    then: &Continuation,
) -> Result<u8, Failure> {
    let (no_wait, json) = (then.no_wait, then.json);
    let id: Id = id
        .trim()
        .parse()
        .map_err(|_| Failure::usage(format!("'{id}' is not an approval id (a UUID; see `orch attention`)")))?;
    // An unknown id, or one decided already, is told before a model is needed to continue.
    let store = crate::cli::open_store(&config).await?;
    if let Some(r) = orch_core::approval::find(store.as_ref(), id).await?.resolution {
        return Err(ApprovalError::AlreadyResolved { id, decision: r.decision, by: r.by }.into());
    }
    drop(store);
    let stale_after = orch_core::graph::GraphSettings::from_config(&config.graphs).stale_after;
    let sigint = Sigint::install()?;
    let engine = crate::cli::engine(config, !no_wait).await?;
    let approvals = Approvals::new(engine.supervisor().clone());
    let resolved = approvals.resolve(id, decision, text, "cli").await?;
    let agent = resolved.agent.clone();
    eprintln!(
        "orch: {} the {} call of agent '{}' (approval {id})",
        decision.past(),
        resolved.approval.tool_name,
        agent.name
    );
    resolved.claim.release().await;
    if no_wait {
        eprintln!("orch: a server following this store continues the run (or: orch resume --agent {})", agent.name);
        return Ok(0);
    }
    let store = engine.store().clone();
    let servers = match live_servers(store.as_ref(), stale_after).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the store's heartbeat rows");
            0
        }
    };
    let deadline = Instant::now() + if servers > 0 { then.server_wait } else { Duration::ZERO };
    if servers == 0 {
        eprintln!("orch: no server follows this store; the run continues here");
    }
    loop {
        let current = store.get_agent(agent.id).await?;
        let holder = current.as_ref().and_then(|a| a.run.clone()).filter(|l| !lease::is_stale(l));
        if let Some(holder) = holder {
            eprintln!("orch: the run continues in {holder}");
            return Ok(0);
        }
        if !approvals.awaits_continuation(id).await? {
            eprintln!("orch: the run was continued by another process");
            return Ok(0);
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if servers > 0 {
        eprintln!("orch: no server took the run up within {} s; it continues here", then.server_wait.as_secs_f64());
    }
    // No server took it up: continue it here, in the foreground.
    match crate::cli::drive(engine.runner(), store, sigint, agent.id, None, resume_options(&agent), json).await {
        Err(f) if f.kind == orch_core::ErrorKind::Busy => {
            eprintln!("orch: the run continues in another process ({})", f.message);
            Ok(0)
        }
        other => other,
    }
}

/// How many servers follow the store: their presence rows beat within `stale_after`.
async fn live_servers(
    store: &dyn orch_core::store::Store,
    stale_after: Duration,
) -> orch_core::store::StoreResult<usize> {
    let at = orch_core::wire::now();
    let rows = store.list_workers().await?;
    Ok(rows.iter().filter(|w| w.role == WorkerRole::Server && w.is_alive(stale_after, at)).count())
}
