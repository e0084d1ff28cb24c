//! `orch plan …` and `orch graph …`: plans from the planning model or a file, approval, graphs of
//! approved plans, listings and details.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use orch_core::config::OrchConfig;

use orch_core::engine::Engine;
use orch_core::graph::{GraphError, NewTask, PlanOrigin, TaskGraphs, read_plan_file, waves::plan_waves};
use orch_core::store::Store;
use orch_core::wire::{Complexity, Id, Plan, Task, TaskGraph, TaskStatus};
use serde_json::{Value, json};

use crate::chat::Failure;
use crate::cli::{engine, open_store};
use crate::graph_run::{RunOptions, RunTarget, parse_usd};

/// `orch plan`: a plan of REQUIREMENTS or of a file, or a subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: Option<PlanCommand>,
    /// Read the plan from this JSON file instead of asking the model (same format and checks).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Store the plan as the next version of this plan.
    #[arg(long)]
    revise: Option<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// The requirements (with --file: replaces the file's own).
    requirements: Option<String>,
}

/// `orch plan` subcommands.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Approve a plan's latest version, so a task graph can be made of it.
    Approve {
        /// The plan's id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// A plan: its tasks by wave, with their dependencies.
    Show {
        /// The plan's id.
        id: String,
        /// This version (default: the latest).
        #[arg(long)]
        version: Option<u32>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Plans at their latest versions, newest first.
    List {
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
}

/// `orch graph` subcommands.
#[derive(Debug, Subcommand)]
pub enum GraphCommand {
    /// Make the task graph of an approved plan (its latest version). Prints the graph's id first.
    Create {
        /// The plan's id.
        plan_id: String,
        /// A name for the graph (default: the first line of the requirements).
        #[arg(long)]
        name: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// A graph: status, cost, and its tasks by wave with status and dependencies.
    Show {
        /// The graph's id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run a graph: of an approved plan (made now), an existing graph, or a plan file (stored, approved
    /// and made a graph). Prints the graph's id first, then runs its tasks here until it ends or pauses
    /// (exit 0 only if every task completed or was skipped).
    Run {
        /// A plan's or a graph's id.
        id: Option<String>,
        /// A plan file instead.
        #[arg(long, conflicts_with = "id")]
        file: Option<PathBuf>,
        /// Tasks run at once [default: graphs.concurrency, else 4].
        #[arg(long)]
        concurrency: Option<u32>,
        /// The graph's USD limit: it pauses (budget_exhausted) rather than pass it.
        #[arg(long, allow_hyphen_values = true)]
        budget: Option<String>,
        /// Leave the tasks to `orch worker` processes.
        #[arg(long)]
        no_worker: bool,
        /// Each task attempt works in a git worktree and branch of its own, merged into the main tree
        /// when the task completes [default: graphs.worktree].
        #[arg(long)]
        worktree: bool,
        /// With --no-worker: wait for the graph to end or pause.
        #[arg(long)]
        wait: bool,
        /// JSON output at the end.
        #[arg(long)]
        json: bool,
    },
    /// Resume a paused, failed or pending graph (optionally with a new limit) and run its tasks here.
    Resume {
        /// The graph's id.
        id: String,
        /// A new USD limit.
        #[arg(long, allow_hyphen_values = true)]
        budget: Option<String>,
        /// Tasks run at once.
        #[arg(long)]
        concurrency: Option<u32>,
        /// Leave the tasks to `orch worker` processes.
        #[arg(long)]
        no_worker: bool,
        /// Each task attempt works in a git worktree and branch of its own, merged into the main tree
        /// when the task completes [default: graphs.worktree].
        #[arg(long)]
        worktree: bool,
        /// With --no-worker: wait for the graph to end or pause.
        #[arg(long)]
        wait: bool,
        /// JSON output at the end.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a graph: its open tasks are cancelled, running ones interrupted.
    Cancel {
        /// The graph's id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Task graphs, newest first.
    List {
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Add a task to a graph that has not ended; its wave follows from its dependencies.
    Add {
        /// The graph's id.
        id: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Key, unique in the graph (default: task-N).
        #[arg(long)]
        key: Option<String>,
        /// What to do.
        #[arg(long)]
        description: Option<String>,
        /// Kind of work (default: code).
        #[arg(long = "type")]
        task_type: Option<String>,
        /// simple, medium or complex (default: medium).
        #[arg(long)]
        complexity: Option<String>,
        /// A task it depends on: its key, id or position (repeat for several).
        #[arg(long = "depends-on")]
        depends_on: Vec<String>,
        /// Model tier or model for the task.
        #[arg(long = "task-model")]
        task_model: Option<String>,
        /// A tool it needs, e.g. Bash (repeat for several).
        #[arg(long = "tool")]
        tools: Vec<String>,
        /// How to tell it is done (repeat for several criteria).
        #[arg(long = "verify")]
        verification: Vec<String>,
        /// Its estimated cost, USD (0 or more).
        #[arg(long = "estimated-cost", value_name = "USD", allow_negative_numbers = true)]
        estimated_cost: Option<f64>,
        /// Its estimated duration, minutes (0 or more).
        #[arg(long = "estimated-minutes", value_name = "MINUTES", allow_negative_numbers = true)]
        estimated_minutes: Option<f64>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `orch plan …`. Ids are checked before the store is opened.
pub async fn run_plan(args: &PlanArgs, config: OrchConfig) -> Result<u8, Failure> {
    match &args.command {
        None => {
            let revise = args.revise.as_deref().map(|r| parse_id("plan", r)).transpose()?;
            let requirements = args.requirements.as_deref().map(str::trim).filter(|r| !r.is_empty());
            match (&args.file, requirements) {
                (Some(path), requirements) => {
                    let store = open_store(&config).await?;
                    plan(None, store, Source::File(path, requirements), revise, args.json).await
                }
                (None, Some(requirements)) => {
                    let engine = engine(config, true).await?;
                    let store = engine.store().clone();
                    plan(Some(&engine), store, Source::Requirements(requirements), revise, args.json).await
                }
                (None, None) => Err(Failure::usage(
                    "give the requirements (orch plan \"REQUIREMENTS\") or a plan file (orch plan --file PLAN.json)",
                )),
            }
        }
        Some(PlanCommand::Approve { id, json }) => {
            let id = parse_id("plan", id)?;
            approve(open_store(&config).await?, id, *json).await
        }
        Some(PlanCommand::Show { id, version, json }) => {
            let id = parse_id("plan", id)?;
            show(open_store(&config).await?, id, *version, *json).await
        }
        Some(PlanCommand::List { json }) => list(open_store(&config).await?, *json).await,
    }
}

/// The configuration with `graphs.worktree` on when `--worktree` was given.
pub(crate) fn with_worktree(mut config: OrchConfig, worktree: bool) -> OrchConfig {
    if worktree {
        config.graphs.worktree = Some(true);
    }
    config
}

/// Runs `orch graph …`. Ids and values are checked before the store is opened.
pub async fn run_graph(command: &GraphCommand, config: OrchConfig) -> Result<u8, Failure> {
    match command {
        GraphCommand::Create { plan_id, name, json } => {
            let plan_id = parse_id("plan", plan_id)?;
            create_graph(open_store(&config).await?, plan_id, name.clone(), *json).await
        }
        GraphCommand::Show { id, json } => {
            let id = parse_id("task graph", id)?;
            show_graph(open_store(&config).await?, id, *json).await
        }
        GraphCommand::List { json } => list_graphs(open_store(&config).await?, *json).await,
        GraphCommand::Run { id, file, concurrency, budget, no_worker, worktree, wait, json } => {
            let target = match (id, file) {
                (Some(id), _) => RunTarget::Id(parse_id("plan or graph", id)?),
                (None, Some(f)) => RunTarget::File(f.clone()),
                (None, None) => return Err(Failure::usage("give a plan's or graph's id, or --file PLAN.json")),
            };
            let budget = budget.as_deref().map(|b| parse_usd("--budget", b)).transpose()?;
            let options =
                RunOptions { concurrency: *concurrency, budget, no_worker: *no_worker, wait: *wait, json: *json };
            crate::graph_run::run(with_worktree(config, *worktree), target, options).await
        }
        GraphCommand::Resume { id, budget, concurrency, no_worker, worktree, wait, json } => {
            let id = parse_id("task graph", id)?;
            let budget = budget.as_deref().map(|b| parse_usd("--budget", b)).transpose()?;
            let options =
                RunOptions { concurrency: *concurrency, budget, no_worker: *no_worker, wait: *wait, json: *json };
            crate::graph_run::resume(with_worktree(config, *worktree), id, options).await
        }
        GraphCommand::Cancel { id, json } => crate::graph_run::cancel(config, parse_id("task graph", id)?, *json).await,
        GraphCommand::Add {
            id,
            title,
            key,
            description,
            task_type,
            complexity,
            depends_on,
            task_model,
            tools,
            verification,
            estimated_cost,
            estimated_minutes,
            json,
        } => {
            let id = parse_id("task graph", id)?;
            let complexity = match complexity.as_deref() {
                None => Complexity::default(),
                Some(c) => Complexity::parse(c)
                    .ok_or_else(|| Failure::usage(format!("--complexity '{c}': expected simple, medium or complex")))?,
            };
            let new = NewTask {
                key: key.clone().unwrap_or_default(),
                title: title.clone(),
                description: description.clone().unwrap_or_default(),
                task_type: task_type.clone().unwrap_or_default(),
                complexity,
                depends_on: depends_on.clone(),
                model: task_model.clone(),
                tools: tools.clone(),
                verification: verification.clone(),
                estimated_cost_usd: *estimated_cost,
                estimated_minutes: *estimated_minutes,
            };
            add_task(open_store(&config).await?, id, new, *json).await
        }
    }
}

impl From<GraphError> for Failure {
    fn from(e: GraphError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

/// What `orch plan` makes a plan from.
enum Source<'a> {
    /// Requirements, planned by the model.
    Requirements(&'a str),
    /// A plan file, with requirements that replace the file's own.
    File(&'a Path, Option<&'a str>),
}

/// Parses a plan or graph id.
fn parse_id(what: &str, id: &str) -> Result<Id, Failure> {
    id.trim().parse().map_err(|_| Failure::usage(format!("'{id}' is not a {what} id (a UUID)")))
}

/// Reads a plan file, naming the file in the error.
fn read_file(path: &Path) -> Result<orch_core::graph::ReadPlan, Failure> {
    read_plan_file(path).map_err(|e| match e {
        GraphError::File { .. } => e.into(),
        other => Failure::new(other.kind(), format!("plan file {}: {other}", path.display())),
    })
}

/// `orch plan REQUIREMENTS | --file PLAN.json [--revise ID]`: the planning model's plan (or the file's),
/// checked and stored as a draft (a new version of plan `revise`), then printed.
async fn plan(
    engine: Option<&Engine>,
    store: Arc<dyn Store>,
    source: Source<'_>,
    revise: Option<Id>,
    json: bool,
) -> Result<u8, Failure> {
    let graphs = TaskGraphs::new(store);
    let (requirements, tasks, origin) = match source {
        Source::Requirements(requirements) => {
            let engine = engine.ok_or_else(|| Failure::runtime("planning needs the engine"))?;
            let planner = engine.planner()?;
            let drafted = planner.draft(requirements).await?;
            if drafted.attempts > 1 && !json {
                eprintln!("orch: the planning model's first plan was invalid; its second one is used");
            }
            let origin = PlanOrigin { model: Some(drafted.model), source_file: None, cost_usd: drafted.cost_usd };
            (Some(requirements.to_string()), drafted.tasks, origin)
        }
        Source::File(path, requirements) => {
            let read = read_file(path)?;
            let origin = PlanOrigin { source_file: Some(path.display().to_string()), ..PlanOrigin::default() };
            (requirements.map(str::to_string).or(read.requirements), read.tasks, origin)
        }
    };
    let plan = match revise {
        Some(id) => graphs.revise_plan(id, requirements.as_deref(), tasks, origin).await?,
        None => graphs.create_plan(requirements.as_deref().unwrap_or_default(), tasks, origin).await?,
    };
    print_plan(&plan, json, true);
    Ok(0)
}

/// `orch plan approve ID`.
async fn approve(store: Arc<dyn Store>, id: Id, json: bool) -> Result<u8, Failure> {
    let plan = TaskGraphs::new(store).approve(id).await?;
    if json {
        println!("{}", plan_json(&plan));
    } else {
        println!(
            "Approved plan {} version {} ({} tasks); make its graph: orch graph create {}",
            plan.id,
            plan.version,
            plan.tasks.len(),
            plan.id
        );
    }
    Ok(0)
}

/// `orch plan show ID [--version N]`.
async fn show(store: Arc<dyn Store>, id: Id, version: Option<u32>, json: bool) -> Result<u8, Failure> {
    let plan = TaskGraphs::new(store).plan(id, version).await?;
    print_plan(&plan, json, false);
    Ok(0)
}

/// `orch plan list`.
async fn list(store: Arc<dyn Store>, json: bool) -> Result<u8, Failure> {
    let plans = store.list_plans(1000).await?;
    let mut out = std::io::stdout().lock();
    if json {
        for p in &plans {
            let _ = writeln!(out, "{}", plan_json(p));
        }
    } else if plans.is_empty() {
        let _ = writeln!(out, "No plans");
    } else {
        let _ = writeln!(out, "{:<36} {:>3} {:<10} {:>5}  REQUIREMENTS", "ID", "V", "STATUS", "TASKS");
        for p in &plans {
            let _ = writeln!(
                out,
                "{:<36} {:>3} {:<10} {:>5}  {}",
                p.id,
                p.version,
                p.status.as_str(),
                p.tasks.len(),
                first_line(&p.requirements, 60)
            );
        }
    }
    Ok(0)
}

/// The plan as JSON: its fields, and `waves` (each task's wave, in the plan's order).
pub(crate) fn plan_json(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap_or_default();
    v["waves"] = json!(plan_waves(&plan.tasks));
    v
}

/// Prints a plan: its id alone on the first line (`with_id`), then its tasks by wave with their
/// dependencies; or its JSON.
fn print_plan(plan: &Plan, json: bool, with_id: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", plan_json(plan));
        return;
    }
    let waves = plan_waves(&plan.tasks);
    let count = waves.iter().copied().max().unwrap_or(0);
    if with_id {
        let _ = writeln!(out, "{}", plan.id);
    }
    let _ = writeln!(
        out,
        "Plan {} version {} ({}): {} tasks in {count} waves",
        plan.id,
        plan.version,
        plan.status.as_str(),
        plan.tasks.len()
    );
    if !plan.requirements.is_empty() {
        let _ = writeln!(out, "Requirements: {}", first_line(&plan.requirements, 100));
    }
    match (&plan.model, &plan.source_file) {
        (Some(model), _) => {
            let _ = writeln!(out, "Written by {model} for ${:.4}", plan.cost_usd);
        }
        (None, Some(file)) => {
            let _ = writeln!(out, "From {file}");
        }
        (None, None) => {}
    }
    let width = plan.tasks.iter().map(|t| t.key.chars().count()).max().unwrap_or(0);
    for w in 1..=count {
        let _ = writeln!(out, "Wave {w}");
        for (t, _) in plan.tasks.iter().zip(&waves).filter(|(_, tw)| **tw == w) {
            let model = t.model.as_deref().map(|m| format!(", {m}")).unwrap_or_default();
            let deps =
                if t.depends_on.is_empty() { String::new() } else { format!(" ← {}", t.depends_on.join(", ")) };
            let _ = writeln!(
                out,
                "  {:<width$}  {} [{}, {}{model}]{deps}",
                t.key,
                t.title,
                t.task_type,
                t.complexity.as_str()
            );
        }
    }
    if plan.status == orch_core::wire::PlanStatus::Draft {
        let _ = writeln!(out, "Approve it: orch plan approve {}", plan.id);
    }
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

// ---- graphs ----

/// `orch graph create PLAN_ID [--name NAME]`: the graph of an approved plan; its id first.
async fn create_graph(store: Arc<dyn Store>, plan_id: Id, name: Option<String>, json: bool) -> Result<u8, Failure> {
    let (graph, tasks) = TaskGraphs::new(store).create_graph(plan_id, name).await?;
    if !json {
        println!("{}", graph.id);
    }
    print_graph(&graph, &tasks, json);
    Ok(0)
}

/// `orch graph show ID`: with --json, what `GET /api/graphs/{id}` answers ([`graph_json`]).
async fn show_graph(store: Arc<dyn Store>, id: Id, json: bool) -> Result<u8, Failure> {
    let (graph, tasks) = TaskGraphs::new(store.clone()).graph(id).await?;
    if json {
        let estimates = plan_estimates(store.as_ref(), &graph).await;
        println!("{}", graph_json(&graph, &tasks, estimates));
        return Ok(0);
    }
    print_graph(&graph, &tasks, false);
    Ok(0)
}

/// The estimates the graph's plan gave its tasks, by task key: `{"cost_usd": …, "minutes": …}` with the
/// figures the plan has (tasks without any are left out). Empty when the graph has no plan or the plan
/// cannot be read. [`graph_json`] lays the tasks' own estimates over these (tasks stored before tasks
/// carried estimates have only their plan's; tasks added to a running graph only their own); the
/// dashboard derives figures for tasks without any, marked as estimates. `orch graph show --json` and
/// `GET /api/graphs/{id}` print the same.
pub(crate) async fn plan_estimates(store: &dyn Store, graph: &TaskGraph) -> Value {
    let mut out = serde_json::Map::new();
    let Some(plan_id) = graph.plan_id else { return Value::Object(out) };
    let plan = match store.get_plan(plan_id, graph.plan_version).await {
        Ok(Some(plan)) => plan,
        Ok(None) => return Value::Object(out),
        Err(e) => {
            tracing::debug!(error = %e, graph = %graph.id, "could not read the graph's plan for its estimates");
            return Value::Object(out);
        }
    };
    for t in plan.tasks {
        let mut e = serde_json::Map::new();
        if let Some(c) = t.estimated_cost_usd {
            e.insert("cost_usd".into(), json!(c));
        }
        if let Some(m) = t.estimated_minutes {
            e.insert("minutes".into(), json!(m));
        }
        if !e.is_empty() {
            out.insert(t.key, Value::Object(e));
        }
    }
    Value::Object(out)
}

/// A graph with its tasks, its waves (task ids and counts by status, in order), its costs by wave
/// and by model, and its estimates per task key: the plan's (see [`plan_estimates`]) with each task's
/// own laid over them.
pub(crate) fn graph_json(graph: &TaskGraph, tasks: &[Task], mut estimates: Value) -> Value {
    if let Value::Object(by_key) = &mut estimates {
        for t in tasks {
            for (field, value) in [("cost_usd", t.estimated_cost_usd), ("minutes", t.estimated_minutes)] {
                let Some(v) = value else { continue };
                if let Value::Object(e) = by_key.entry(t.key.clone()).or_insert_with(|| json!({})) {
                    e.insert(field.into(), json!(v));
                }
            }
        }
    }
    let (by_wave, by_model) = costs(tasks);
    let waves: Vec<Value> = (1..=graph.waves)
        .map(|w| {
            let in_wave: Vec<&Task> = tasks.iter().filter(|t| t.wave == w).collect();
            let mut counts = serde_json::Map::new();
            for t in &in_wave {
                let n = counts.get(t.status.as_str()).and_then(Value::as_u64).unwrap_or(0);
                counts.insert(t.status.as_str().to_string(), json!(n + 1));
            }
            json!({
                "wave": w,
                "tasks": in_wave.iter().map(|t| t.id).collect::<Vec<_>>(),
                "status": counts,
                "cost_usd": by_wave.get(&w).copied().unwrap_or(0.0),
            })
        })
        .collect();
    json!({"graph": graph, "tasks": tasks, "waves": waves, "cost": {"by_wave": by_wave, "by_model": by_model},
           "estimates": estimates})
}

/// `orch graph list`.
async fn list_graphs(store: Arc<dyn Store>, json: bool) -> Result<u8, Failure> {
    let graphs = store.list_graphs(1000).await?;
    let mut out = std::io::stdout().lock();
    if json {
        for g in &graphs {
            let _ = writeln!(out, "{}", serde_json::to_value(g).unwrap_or_default());
        }
    } else if graphs.is_empty() {
        let _ = writeln!(out, "No task graphs");
    } else {
        let _ = writeln!(out, "{:<36} {:<10} {:>5} {:>5} {:>9}  NAME", "ID", "STATUS", "TASKS", "WAVES", "COST");
        for g in &graphs {
            let _ = writeln!(
                out,
                "{:<36} {:<10} {:>5} {:>5} {:>9}  {}",
                g.id,
                g.status.as_str(),
                g.total_tasks,
                g.waves,
                format!("${:.4}", g.cost_usd),
                g.name
            );
        }
    }
    Ok(0)
}

/// `orch graph add ID --title TITLE …`: adds a task to a graph; prints it.
async fn add_task(store: Arc<dyn Store>, id: Id, new: NewTask, json: bool) -> Result<u8, Failure> {
    let task = TaskGraphs::new(store).add_task(id, new).await?;
    if json {
        println!("{}", serde_json::to_value(&task).unwrap_or_default());
    } else {
        println!("Added {} to graph {id} in wave {} ({})", task.key, task.wave, task.status.as_str());
    }
    Ok(0)
}

fn print_graph(graph: &TaskGraph, tasks: &[Task], json: bool) {
    let mut out = std::io::stdout().lock();
    let (by_wave, by_model) = costs(tasks);
    if json {
        // JSON object keys are strings: wave 1 is "1".
        let _ = writeln!(
            out,
            "{}",
            json!({"graph": graph, "tasks": tasks, "cost": {"by_wave": by_wave, "by_model": by_model}})
        );
        return;
    }
    let _ = writeln!(out, "Graph {} ({})", graph.name, graph.id);
    let plan = match (graph.plan_id, graph.plan_version) {
        (Some(p), Some(v)) => format!(", plan {p} version {v}"),
        _ => String::new(),
    };
    let budget = graph.budget_usd.map(|b| format!(" of ${b:.2}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {} tasks in {} waves, ${:.4}{budget}{plan}",
        graph.status.as_str(),
        graph.total_tasks,
        graph.waves,
        graph.cost_usd
    );
    if let Some(e) = &graph.error {
        let _ = writeln!(out, "error: {e}");
    }
    let keys: std::collections::HashMap<Id, &str> = tasks.iter().map(|t| (t.id, t.key.as_str())).collect();
    let width = tasks.iter().map(|t| t.key.chars().count()).max().unwrap_or(0);
    for w in 1..=graph.waves {
        match by_wave.get(&w) {
            Some(c) if *c > 0.0 => _ = writeln!(out, "Wave {w} (${c:.4})"),
            _ => _ = writeln!(out, "Wave {w}"),
        }
        for t in tasks.iter().filter(|t| t.wave == w) {
            let deps: Vec<&str> = t.depends_on.iter().map(|d| keys.get(d).copied().unwrap_or("?")).collect();
            let deps = if deps.is_empty() { String::new() } else { format!(" ← {}", deps.join(", ")) };
            let cost = if t.cost_usd > 0.0 { format!(" ${:.4}", t.cost_usd) } else { String::new() };
            let model = t.model.as_deref().map(|m| format!(" [{m}]")).unwrap_or_default();
            let _ = writeln!(out, "  {:<10} {:<width$}  {}{model}{cost}{deps}", t.status.as_str(), t.key, t.title);
            if let Some(why) = t.checkpoint.as_deref().filter(|_| t.status == TaskStatus::Blocked) {
                let _ = writeln!(out, "             checkpoint: {why} (orch checkpoint resolve {})", t.id);
            }
        }
    }
    if !by_model.is_empty() {
        let models: Vec<String> = by_model.iter().map(|(m, c)| format!("{m} ${c:.4}")).collect();
        let _ = writeln!(out, "Cost by model: {}", models.join(", "));
    }
}

/// The cost of a graph's tasks by wave, and by the model of each task's last attempt (tasks that cost
/// nothing are left out).
pub(crate) fn costs(tasks: &[Task]) -> (BTreeMap<u32, f64>, BTreeMap<String, f64>) {
    let mut by_wave = BTreeMap::new();
    let mut by_model = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.cost_usd > 0.0) {
        *by_wave.entry(t.wave).or_insert(0.0) += t.cost_usd;
        *by_model.entry(t.model.clone().unwrap_or_else(|| "?".into())).or_insert(0.0) += t.cost_usd;
    }
    (by_wave, by_model)
}
