//! `orch plan …` and `orch graph …`: plans from the planning model or a file, approval, graphs of
//! approved plans, listings and details.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use orch_core::engine::Engine;
use orch_core::graph::{GraphError, NewTask, PlanOrigin, TaskGraphs, read_plan_file, waves::plan_waves};
use orch_core::store::Store;
use orch_core::wire::{Complexity, Id, Plan, Task, TaskGraph};
use serde_json::{Value, json};

use crate::chat::Failure;

impl From<GraphError> for Failure {
    fn from(e: GraphError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

/// What `orch plan` makes a plan from.
pub enum Source<'a> {
    /// Requirements, planned by the model.
    Requirements(&'a str),
    /// A plan file, with requirements that replace the file's own.
    File(&'a Path, Option<&'a str>),
}

/// Parses a plan or graph id.
pub fn parse_id(what: &str, id: &str) -> Result<Id, Failure> {
    id.trim().parse().map_err(|_| Failure::usage(format!("'{id}' is not a {what} id (a UUID)")))
}

/// Reads a plan file, naming the file in the error.
pub fn read_file(path: &Path) -> Result<orch_core::graph::ReadPlan, Failure> {
    read_plan_file(path).map_err(|e| match e {
        GraphError::File { .. } => e.into(),
        other => Failure::new(other.kind(), format!("plan file {}: {other}", path.display())),
    })
}

/// `orch plan REQUIREMENTS | --file PLAN.json [--revise ID]`: the planning model's plan (or the file's),
/// checked and stored as a draft (a new version of plan `revise`), then printed.
pub async fn plan(
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
pub async fn approve(store: Arc<dyn Store>, id: &str, json: bool) -> Result<u8, Failure> {
    let id = parse_id("plan", id)?;
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
pub async fn show(store: Arc<dyn Store>, id: &str, version: Option<u32>, json: bool) -> Result<u8, Failure> {
    let id = parse_id("plan", id)?;
    let plan = TaskGraphs::new(store).plan(id, version).await?;
    print_plan(&plan, json, false);
    Ok(0)
}

/// `orch plan list`.
pub async fn list(store: Arc<dyn Store>, json: bool) -> Result<u8, Failure> {
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
fn plan_json(plan: &Plan) -> Value {
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
pub async fn create_graph(
    store: Arc<dyn Store>,
    plan_id: &str,
    name: Option<String>,
    json: bool,
) -> Result<u8, Failure> {
    let plan_id = parse_id("plan", plan_id)?;
    let (graph, tasks) = TaskGraphs::new(store).create_graph(plan_id, name).await?;
    if !json {
        println!("{}", graph.id);
    }
    print_graph(&graph, &tasks, json);
    Ok(0)
}

/// `orch graph show ID`.
pub async fn show_graph(store: Arc<dyn Store>, id: &str, json: bool) -> Result<u8, Failure> {
    let id = parse_id("task graph", id)?;
    let (graph, tasks) = TaskGraphs::new(store).graph(id).await?;
    print_graph(&graph, &tasks, json);
    Ok(0)
}

/// `orch graph list`.
pub async fn list_graphs(store: Arc<dyn Store>, json: bool) -> Result<u8, Failure> {
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

/// What `orch graph add` adds.
pub struct AddArgs {
    /// Key.
    pub key: Option<String>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Task type.
    pub task_type: Option<String>,
    /// Complexity as written.
    pub complexity: Option<String>,
    /// Dependencies (keys, ids or positions).
    pub depends_on: Vec<String>,
    /// Model.
    pub model: Option<String>,
}

/// `orch graph add ID --title TITLE …`: adds a task to a graph; prints it.
pub async fn add_task(store: Arc<dyn Store>, id: &str, args: AddArgs, json: bool) -> Result<u8, Failure> {
    let id = parse_id("task graph", id)?;
    let complexity = match args.complexity.as_deref() {
        None => Complexity::default(),
        Some(c) => Complexity::parse(c)
            .ok_or_else(|| Failure::usage(format!("--complexity '{c}': expected simple, medium or complex")))?,
    };
    let new = NewTask {
        key: args.key.unwrap_or_default(),
        title: args.title,
        description: args.description.unwrap_or_default(),
        task_type: args.task_type.unwrap_or_default(),
        complexity,
        depends_on: args.depends_on,
        model: args.model,
        tools: Vec::new(),
        verification: Vec::new(),
    };
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
    if json {
        let _ = writeln!(out, "{}", json!({"graph": graph, "tasks": tasks}));
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
        let _ = writeln!(out, "Wave {w}");
        for t in tasks.iter().filter(|t| t.wave == w) {
            let deps: Vec<&str> = t.depends_on.iter().map(|d| keys.get(d).copied().unwrap_or("?")).collect();
            let deps = if deps.is_empty() { String::new() } else { format!(" ← {}", deps.join(", ")) };
            let cost = if t.cost_usd > 0.0 { format!(" ${:.4}", t.cost_usd) } else { String::new() };
            let _ = writeln!(out, "  {:<10} {:<width$}  {}{cost}{deps}", t.status.as_str(), t.key, t.title);
        }
    }
}
