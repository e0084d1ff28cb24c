//! Running task graphs from the command line: `orch graph run|resume|cancel`, `orch worker`,
//! `orch checkpoint list|resolve` and `orch budget [set]`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use futures::StreamExt;
use orch_core::config::OrchConfig;
use orch_core::engine::Engine;
use orch_core::graph::{GraphRunner, PlanOrigin, Resolution, read_plan_file};
use orch_core::store::{EventQuery, Store};
use orch_core::wire::{BudgetScope, Event, GraphStatus, Id, TaskGraph, TaskStatus, now};
use serde_json::json;

use crate::chat::Failure;
use crate::cli::engine;

/// `orch worker`: claims and runs tasks of running graphs until stopped (SIGINT or SIGTERM).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Tasks run at once [default: graphs.concurrency of the configuration, else 4].
    #[arg(long)]
    concurrency: Option<u32>,
    /// Only tasks of this graph.
    #[arg(long)]
    graph: Option<String>,
    /// Each task attempt works in a git worktree and branch of its own, merged into the main tree when
    /// the task completes [default: graphs.worktree].
    #[arg(long)]
    worktree: bool,
}

/// `orch checkpoint` subcommands: tasks waiting for a person.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Open checkpoints (blocked tasks), with why they wait.
    List {
        /// Only this graph's.
        #[arg(long)]
        graph: Option<String>,
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Resolve a checkpoint, named by its task's id.
    Resolve {
        /// The task's id.
        id: String,
        /// retry (with --guidance appended to its prompt), skip (its dependents run) or fail (they are
        /// cancelled).
        #[arg(long)]
        action: String,
        /// Guidance for the retry.
        #[arg(long)]
        guidance: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `orch budget`: today's and this month's spending against their limits.
#[derive(Debug, Args)]
pub struct BudgetArgs {
    #[command(subcommand)]
    command: Option<BudgetCommand>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// `orch budget` subcommands.
#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Set the daily and/or monthly USD limit (`off` removes it).
    Set {
        /// Daily limit, USD.
        #[arg(long, allow_hyphen_values = true)]
        daily: Option<String>,
        /// Monthly limit, USD.
        #[arg(long, allow_hyphen_values = true)]
        monthly: Option<String>,
    },
}

/// What `orch graph run` runs.
pub enum RunTarget {
    /// A plan (approved) or a graph, by id.
    Id(Id),
    /// A plan file: stored, approved and made a graph.
    File(PathBuf),
}

/// Options of `orch graph run` and `orch graph resume`.
pub struct RunOptions {
    /// Tasks run at once by the in-process worker.
    pub concurrency: Option<u32>,
    /// The graph's USD limit.
    pub budget: Option<f64>,
    /// Leave the work to `orch worker` processes.
    pub no_worker: bool,
    /// Wait for the graph to end (with --no-worker), and exit 0 only if every task completed or was
    /// skipped.
    pub wait: bool,
    /// JSON output.
    pub json: bool,
}

fn parse_id(what: &str, id: &str) -> Result<Id, Failure> {
    id.trim().parse().map_err(|_| Failure::usage(format!("'{id}' is not a {what} id (a UUID)")))
}

fn runner(engine: &Engine) -> Result<GraphRunner, Failure> {
    Ok(engine.graph_runner()?)
}

/// Parses `--budget`.
pub fn parse_usd(flag: &str, v: &str) -> Result<f64, Failure> {
    match v.trim().trim_start_matches('$').parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(Failure::usage(format!("{flag} '{v}': expected a number of USD, 0 or more (e.g. 2.50)"))),
    }
}

/// `orch graph run (PLAN_ID | GRAPH_ID | --file PLAN.json)`: makes the graph (of an approved plan; a
/// plan file is stored and approved first), starts it, prints its id first, and runs its tasks here
/// unless `--no-worker`.
pub async fn run(config: OrchConfig, target: RunTarget, options: RunOptions) -> Result<u8, Failure> {
    // Leaving the work to others needs no model here: the workers bring theirs.
    let engine = engine(config, !options.no_worker).await?;
    let graphs = engine.graphs();
    let graph = match target {
        RunTarget::Id(id) => match engine.store().get_graph(id).await? {
            Some(g) => g,
            None => graphs.create_graph(id, None).await?.0,
        },
        RunTarget::File(path) => {
            let read = read_plan_file(&path)
                .map_err(|e| Failure::new(e.kind(), format!("plan file {}: {e}", path.display())))?;
            let origin = PlanOrigin { source_file: Some(path.display().to_string()), ..PlanOrigin::default() };
            let plan = graphs.create_plan_from(None, read, origin).await?;
            graphs.approve(plan.id).await?;
            // Named after the file (`calc.json` → `calc`), not the plan's id.
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty());
            graphs.create_graph(plan.id, name).await?.0
        }
    };
    println!("{}", graph.id);
    drive(&engine, graph.id, options).await
}

/// `orch graph resume ID`: a paused, failed or pending graph runs again (with a new limit, if given).
pub async fn resume(config: OrchConfig, id: Id, options: RunOptions) -> Result<u8, Failure> {
    let engine = engine(config, !options.no_worker).await?;
    drive(&engine, id, options).await
}

/// Starts the graph and runs it (or waits for others to) until it ends or pauses.
async fn drive(engine: &Engine, id: Id, options: RunOptions) -> Result<u8, Failure> {
    let runner = runner(engine)?;
    let graph = runner.start(id, options.budget).await?;
    if !options.json {
        eprintln!(
            "orch: graph {} running: {} tasks in {} waves{}",
            graph.name,
            graph.total_tasks,
            graph.waves,
            graph.budget_usd.map(|b| format!(", budget ${b:.2}")).unwrap_or_default()
        );
    }
    // Followed from here, before the worker's first claim: a task started by it is shown too.
    let since = if options.json { 0 } else { engine.store().last_seq().await? };
    let progress = (!options.json).then(|| tokio::spawn(print_progress(engine.store().clone(), id, since)));
    let result = if options.no_worker {
        if !options.wait {
            if !options.json {
                eprintln!("orch: its tasks are left to workers: orch worker");
            }
            if let Some(p) = progress {
                p.abort();
            }
            return Ok(0);
        }
        wait_for_end(engine.store().as_ref(), id).await
    } else {
        let mut worker = runner.worker(Some(id));
        if let Some(n) = options.concurrency {
            worker = worker.concurrency(n);
        }
        let stop = worker.stopper();
        let sigint = tokio::spawn(async move {
            crate::signals::terminated().await;
            eprintln!("orch: stopping: running tasks are interrupted and go back to the queue");
            stop.trigger();
        });
        let report = worker.run().await;
        sigint.abort();
        report.map_err(Failure::from).and_then(|r| r.graph.ok_or_else(|| Failure::runtime("the graph is gone")))
    };
    if let Some(p) = progress {
        // Let the last events print.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        p.abort();
    }
    let graph = result?;
    finish(engine.store().as_ref(), &graph, options.json).await
}

/// Waits until graph `id` ends or pauses, polling.
async fn wait_for_end(store: &dyn Store, id: Id) -> Result<TaskGraph, Failure> {
    loop {
        let g = store.get_graph(id).await?.ok_or_else(|| Failure::runtime(format!("task graph {id} is gone")))?;
        if g.status.is_final() || g.status == GraphStatus::Paused {
            return Ok(g);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Prints the graph's end and returns the exit code: 0 when every task completed or was skipped.
async fn finish(store: &dyn Store, graph: &TaskGraph, json: bool) -> Result<u8, Failure> {
    let tasks = store.list_tasks(graph.id).await?;
    let count = |s: TaskStatus| tasks.iter().filter(|t| t.status == s).count();
    if json {
        println!("{}", json!({"graph": graph, "tasks": tasks}));
    } else {
        eprintln!(
            "orch: graph {} {}: {} completed, {} skipped, {} failed, {} cancelled, {} waiting; ${:.4}",
            graph.id,
            graph.status.as_str(),
            count(TaskStatus::Completed),
            count(TaskStatus::Skipped),
            count(TaskStatus::Failed),
            count(TaskStatus::Cancelled),
            tasks.len()
                - count(TaskStatus::Completed)
                - count(TaskStatus::Skipped)
                - count(TaskStatus::Failed)
                - count(TaskStatus::Cancelled),
            graph.cost_usd
        );
        if graph.status == GraphStatus::Paused {
            eprintln!(
                "orch: paused ({}); resume with: orch graph resume {} [--budget USD]",
                graph.error.as_deref().unwrap_or("paused"),
                graph.id
            );
        }
    }
    Ok(if graph.status == GraphStatus::Completed { 0 } else { 1 })
}

/// Prints the graph's task transitions recorded after `since` (to stderr).
async fn print_progress(store: Arc<dyn Store>, graph_id: Id, since: u64) {
    let filter = EventQuery { types: vec!["TaskUpdated".into(), "SystemLog".into()], ..EventQuery::default() };
    let mut events = store.subscribe_foreign(since, filter);
    while let Some(Ok(r)) = events.next().await {
        match r.event {
            Event::TaskUpdated { task } if task.graph_id == graph_id => {
                let line = match task.status {
                    TaskStatus::Running if task.agent_id.is_some() => format!(
                        "wave {} {} running (attempt {}, {})",
                        task.wave,
                        task.key,
                        task.attempt,
                        task.model.as_deref().unwrap_or("?")
                    ),
                    TaskStatus::Completed => {
                        format!("wave {} {} completed (${:.4})", task.wave, task.key, task.cost_usd)
                    }
                    TaskStatus::Blocked => format!(
                        "wave {} {} needs a person: {} (orch checkpoint resolve {} --action retry|skip|fail)",
                        task.wave,
                        task.key,
                        task.checkpoint.as_deref().unwrap_or("?"),
                        task.id
                    ),
                    TaskStatus::Failed | TaskStatus::Skipped | TaskStatus::Cancelled => {
                        format!("wave {} {} {}", task.wave, task.key, task.status.as_str())
                    }
                    _ => continue,
                };
                eprintln!("  {line}");
            }
            Event::SystemLog { message, metadata, .. }
                if metadata.get("graph_id").and_then(|g| g.as_str()) == Some(graph_id.to_string().as_str())
                    && (message.contains("retry in") || message.starts_with("budget_warning")) =>
            {
                eprintln!("  {message}");
            }
            _ => {}
        }
    }
}

/// `orch graph cancel ID`.
pub async fn cancel(config: OrchConfig, id: Id, json: bool) -> Result<u8, Failure> {
    let engine = engine(config, false).await?;
    let g = runner(&engine)?.cancel(id).await?;
    if json {
        println!("{}", json!(g));
    } else {
        println!("Cancelled graph {} ({})", g.id, g.name);
    }
    Ok(0)
}

/// `orch worker`.
pub async fn worker(config: OrchConfig, args: &WorkerArgs) -> Result<u8, Failure> {
    let graph = args.graph.as_deref().map(|g| parse_id("task graph", g)).transpose()?;
    let engine = engine(crate::plan::with_worktree(config, args.worktree), true).await?;
    let runner = runner(&engine)?;
    let mut worker = runner.worker(graph);
    if let Some(n) = args.concurrency {
        worker = worker.concurrency(n);
    }
    let stop = worker.stopper();
    eprintln!("orch: worker {} started; stop it with Ctrl-C", worker.id());
    let sigint = tokio::spawn(async move {
        crate::signals::terminated().await;
        eprintln!("orch: worker stopping: running tasks are interrupted and go back to the queue");
        stop.trigger();
    });
    let report = worker.run().await?;
    sigint.abort();
    eprintln!("orch: worker {} stopped after {} attempts", report.worker, report.attempts);
    Ok(0)
}

/// `orch workers`: the heartbeat rows, most recent first.
pub async fn workers(config: OrchConfig, json: bool) -> Result<u8, Failure> {
    let stale_after = orch_core::graph::GraphSettings::from_config(&config.graphs).stale_after;
    let store = crate::cli::open_store(&config).await?;
    let rows = store.list_workers().await?;
    let at = orch_core::wire::now();
    let mut out = std::io::stdout().lock();
    if json {
        for w in &rows {
            let line =
                serde_json::to_string(&worker_json(w, stale_after, at)).map_err(|e| Failure::runtime(e.to_string()))?;
            let _ = writeln!(out, "{line}");
        }
        return Ok(0);
    }
    if rows.is_empty() {
        let _ = writeln!(out, "No worker or server has beaten on this store");
        return Ok(0);
    }
    let _ = writeln!(out, "{:<7} {:<32} {:>8} {:>5} {:<19} STATE", "ROLE", "ID", "PID", "SLOTS", "STARTED");
    for w in &rows {
        let silent = w.silent_for(at).as_secs_f64();
        let state = if w.is_alive(stale_after, at) {
            format!("alive (beat {silent:.1} s ago)")
        } else {
            format!("silent for {}", human_secs(silent))
        };
        let _ = writeln!(
            out,
            "{:<7} {:<32} {:>8} {:>5} {:<19} {state}",
            w.role.as_str(),
            w.id,
            w.pid,
            w.concurrency,
            w.started_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(0)
}

/// A heartbeat row as `orch workers --json` and `GET /api/workers` give it: the row, whether it is
/// alive (beat within `stale_after` of `at`) and how long it has been silent.
pub fn worker_json(
    w: &orch_core::wire::WorkerInfo,
    stale_after: std::time::Duration,
    at: orch_core::wire::Timestamp,
) -> serde_json::Value {
    let mut v = serde_json::to_value(w).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("alive".into(), w.is_alive(stale_after, at).into());
        m.insert("silent_secs".into(), w.silent_for(at).as_secs_f64().into());
    }
    v
}

/// `95 s`, `12 min`, `3.5 h`, `2.0 d`.
fn human_secs(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// `orch checkpoint …`.
pub async fn checkpoint(config: OrchConfig, command: &CheckpointCommand) -> Result<u8, Failure> {
    match command {
        CheckpointCommand::List { graph, json } => {
            let graph = graph.as_deref().map(|g| parse_id("task graph", g)).transpose()?;
            let engine = engine(config, false).await?;
            let open = runner(&engine)?.checkpoints(graph).await?;
            let mut out = std::io::stdout().lock();
            if *json {
                for t in &open {
                    let _ = writeln!(out, "{}", json!(t));
                }
            } else if open.is_empty() {
                let _ = writeln!(out, "No open checkpoints");
            } else {
                for t in &open {
                    let _ = writeln!(
                        out,
                        "{}  graph {}  {} ({}): {}",
                        t.id,
                        t.graph_id,
                        t.key,
                        t.title,
                        t.checkpoint.as_deref().unwrap_or("")
                    );
                }
                let _ =
                    writeln!(out, "Resolve one: orch checkpoint resolve ID --action retry|skip|fail [--guidance TEXT]");
            }
            Ok(0)
        }
        CheckpointCommand::Resolve { id, action, guidance, json } => {
            let id = parse_id("task", id)?;
            let action = Resolution::parse(action)
                .ok_or_else(|| Failure::usage(format!("--action '{action}': expected retry, skip or fail")))?;
            if guidance.is_some() && action != Resolution::Retry {
                return Err(Failure::usage("--guidance goes with --action retry"));
            }
            let engine = engine(config, false).await?;
            let t = runner(&engine)?.resolve(id, action, guidance.as_deref()).await?;
            if *json {
                println!("{}", json!(t));
            } else {
                println!("Task {} ({}) is now {}", t.key, t.id, t.status.as_str());
            }
            Ok(0)
        }
    }
}

/// `orch budget [set …]`.
pub async fn budget(config: OrchConfig, args: &BudgetArgs) -> Result<u8, Failure> {
    let engine = engine(config, false).await?;
    let runner = runner(&engine)?;
    if let Some(BudgetCommand::Set { daily, monthly }) = &args.command {
        if daily.is_none() && monthly.is_none() {
            return Err(Failure::usage("give --daily USD and/or --monthly USD (or `off`)"));
        }
        for (scope, v, flag) in [(BudgetScope::Daily, daily, "--daily"), (BudgetScope::Monthly, monthly, "--monthly")] {
            let Some(v) = v else { continue };
            let limit = match v.trim() {
                "off" | "none" => None,
                v => Some(parse_usd(flag, v)?),
            };
            runner.set_limit(scope, limit).await?;
        }
    }
    let at = now();
    let status = engine.store().budget(&at.format("%Y-%m-%d").to_string(), &at.format("%Y-%m").to_string()).await?;
    let graphs = engine.store().list_graphs(20).await?;
    if args.json {
        println!("{}", json!({"daily": status.daily, "monthly": status.monthly, "graphs": graphs}));
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    for line in [&status.daily, &status.monthly] {
        let limit = line.limit_usd.map(|l| format!("limit ${l:.2}")).unwrap_or_else(|| "no limit".into());
        let _ = writeln!(
            out,
            "{:<8} {:<10} spent ${:.4}, reserved ${:.4}, {limit}",
            line.scope.as_str(),
            line.period,
            line.spent_usd,
            line.reserved_usd
        );
    }
    for g in graphs.iter().filter(|g| g.cost_usd > 0.0 || g.budget_usd.is_some()) {
        let limit = g.budget_usd.map(|l| format!(" of ${l:.2}")).unwrap_or_default();
        let _ = writeln!(out, "graph    {} ${:.4}{limit} ({}, {})", g.id, g.cost_usd, g.status.as_str(), g.name);
    }
    Ok(0)
}
