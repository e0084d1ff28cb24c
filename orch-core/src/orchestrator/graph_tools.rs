//! Tools for plans, task graphs and the task queue: `plan_graph`, `approve_plan`, `run_graph`,
//! `graph_status`, and for an agent working as an external worker `claim_task`, `heartbeat_task`,
//! `complete_task` and `fail_task`. They are offered over MCP (`orch mcp`, `/mcp`), so Claude Code,
//! Codex or any MCP client can plan and run graphs, or take tasks from the queue as `orch worker`s do.
//! Results are JSON text; errors come back as tool errors naming what was wrong.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::graph::{ExternalClaim, ExternalEnd, GraphError, GraphRunner, PlanOrigin, Planner, read_plan_text};
use crate::tool::{ToolContext, ToolError, ToolOutput, ToolRegistry, TypedTool};
use crate::wire::{Fact, Id, Plan, Task, TaskGraph};

/// The names of the graph tools, in the order they are offered.
pub const GRAPH_TOOLS: [&str; 8] = [
    "plan_graph",
    "approve_plan",
    "run_graph",
    "graph_status",
    "claim_task",
    "heartbeat_task",
    "complete_task",
    "fail_task",
];

/// A lease when the caller names none.
const DEFAULT_LEASE_SECS: u64 = 300;

struct Ctx {
    runner: GraphRunner,
    planner: Option<Planner>,
}

/// Registers the graph tools over `runner` into `registry`; `planner` (when a planning model is
/// configured) lets `plan_graph` plan from requirements.
pub fn register_graph_tools(registry: &mut ToolRegistry, runner: GraphRunner, planner: Option<Planner>) {
    let ctx = Arc::new(Ctx { runner, planner });
    registry.register(PlanGraph(ctx.clone()));
    registry.register(ApprovePlan(ctx.clone()));
    registry.register(RunGraph(ctx.clone()));
    registry.register(GraphStatus(ctx.clone()));
    registry.register(ClaimTask(ctx.clone()));
    registry.register(HeartbeatTask(ctx.clone()));
    registry.register(CompleteTask(ctx.clone()));
    registry.register(FailTask(ctx));
}

fn failed(e: GraphError) -> ToolError {
    ToolError::Failed(e.to_string())
}

fn id(what: &str, text: &str) -> Result<Id, ToolError> {
    text.trim().parse().map_err(|_| ToolError::InvalidInput(format!("{what} '{text}' is not an id (a UUID)")))
}

fn out(v: Value) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(serde_json::to_string_pretty(&v).unwrap_or_default()))
}

fn plan_json(p: &Plan) -> Value {
    let waves = crate::graph::waves::plan_waves(&p.tasks);
    let tasks: Vec<Value> = p
        .tasks
        .iter()
        .zip(waves)
        .map(|(t, w)| json!({"key": t.key, "title": t.title, "wave": w, "depends_on": t.depends_on}))
        .collect();
    json!({"plan_id": p.id, "version": p.version, "status": p.status, "tasks": tasks})
}

fn task_json(t: &Task) -> Value {
    json!({"task_id": t.id, "key": t.key, "title": t.title, "wave": t.wave, "status": t.status,
           "attempt": t.attempt, "model": t.model, "cost_usd": t.cost_usd, "error": t.error,
           "checkpoint": t.checkpoint})
}

fn graph_json(g: &TaskGraph, tasks: &[Task]) -> Value {
    json!({"graph_id": g.id, "name": g.name, "status": g.status, "error": g.error, "waves": g.waves,
           "cost_usd": g.cost_usd, "budget_usd": g.budget_usd,
           "tasks": tasks.iter().map(task_json).collect::<Vec<_>>()})
}

/// `plan_graph` arguments.
#[derive(Deserialize, JsonSchema)]
struct PlanArgs {
    /// What to build; the planning model decomposes it into tasks.
    requirements: Option<String>,
    /// Or the tasks themselves: `[{"id", "title", "description"?, "task_type"?, "complexity"?,
    /// "depends_on"?: [ids], "model"?, "tools"?, "verification"?}]`.
    tasks: Option<Vec<Value>>,
}

struct PlanGraph(Arc<Ctx>);

#[async_trait]
impl TypedTool for PlanGraph {
    type Args = PlanArgs;
    const NAME: &'static str = "plan_graph";
    fn description(&self) -> &str {
        "Plans work as a graph of tasks: from `requirements` (the planning model writes the tasks) or from \
         `tasks` given as JSON. The plan is stored as a draft; approve it with approve_plan, then run_graph."
    }
    async fn call(&self, _ctx: &ToolContext, args: PlanArgs) -> Result<ToolOutput, ToolError> {
        let graphs = crate::graph::TaskGraphs::new(self.0.runner.store().clone());
        let requirements = args.requirements.as_deref().map(str::trim).filter(|r| !r.is_empty());
        let plan = match (args.tasks, requirements) {
            (Some(tasks), requirements) => {
                let read = read_plan_text(&json!({"tasks": tasks}).to_string()).map_err(failed)?;
                graphs
                    .create_plan(requirements.unwrap_or_default(), read.tasks, PlanOrigin::default())
                    .await
                    .map_err(failed)?
            }
            (None, Some(requirements)) => {
                let planner = self.0.planner.as_ref().ok_or_else(|| {
                    ToolError::Failed("no planning model is configured: give the tasks instead".into())
                })?;
                let drafted = planner.draft(requirements).await.map_err(failed)?;
                let origin = PlanOrigin { model: Some(drafted.model), source_file: None, cost_usd: drafted.cost_usd };
                graphs.create_plan(requirements, drafted.tasks, origin).await.map_err(failed)?
            }
            (None, None) => return Err(ToolError::InvalidInput("give `requirements` or `tasks`".into())),
        };
        out(plan_json(&plan))
    }
}

/// `approve_plan` arguments.
#[derive(Deserialize, JsonSchema)]
struct PlanId {
    /// The plan's id.
    plan_id: String,
}

struct ApprovePlan(Arc<Ctx>);

#[async_trait]
impl TypedTool for ApprovePlan {
    type Args = PlanId;
    const NAME: &'static str = "approve_plan";
    fn description(&self) -> &str {
        "Approves a plan (its latest version), so a graph can be made of it."
    }
    async fn call(&self, _ctx: &ToolContext, args: PlanId) -> Result<ToolOutput, ToolError> {
        let graphs = crate::graph::TaskGraphs::new(self.0.runner.store().clone());
        let plan = graphs.approve(id("plan", &args.plan_id)?).await.map_err(failed)?;
        out(plan_json(&plan))
    }
}

/// `run_graph` arguments.
#[derive(Deserialize, JsonSchema)]
struct RunArgs {
    /// An approved plan: its graph is made and started.
    plan_id: Option<String>,
    /// Or a graph: started, or resumed when paused or failed.
    graph_id: Option<String>,
    /// The graph's USD limit.
    budget_usd: Option<f64>,
}

struct RunGraph(Arc<Ctx>);

#[async_trait]
impl TypedTool for RunGraph {
    type Args = RunArgs;
    const NAME: &'static str = "run_graph";
    fn description(&self) -> &str {
        "Runs a task graph: makes the graph of an approved plan (plan_id) or resumes one (graph_id), and \
         marks it running, so workers (orch worker, orch serve, or agents using claim_task) take its tasks."
    }
    async fn call(&self, _ctx: &ToolContext, args: RunArgs) -> Result<ToolOutput, ToolError> {
        let r = &self.0.runner;
        let graph_id = match (args.plan_id, args.graph_id) {
            (Some(p), None) => {
                let graphs = crate::graph::TaskGraphs::new(r.store().clone());
                graphs.create_graph(id("plan", &p)?, None).await.map_err(failed)?.0.id
            }
            (None, Some(g)) => id("graph", &g)?,
            _ => return Err(ToolError::InvalidInput("give either plan_id or graph_id".into())),
        };
        let graph = r.start(graph_id, args.budget_usd).await.map_err(failed)?;
        let tasks = r.store().list_tasks(graph.id).await.map_err(|e| ToolError::Failed(e.to_string()))?;
        out(graph_json(&graph, &tasks))
    }
}

/// `graph_status` arguments.
#[derive(Deserialize, JsonSchema)]
struct GraphId {
    /// The graph's id.
    graph_id: String,
}

struct GraphStatus(Arc<Ctx>);

#[async_trait]
impl TypedTool for GraphStatus {
    type Args = GraphId;
    const NAME: &'static str = "graph_status";
    fn description(&self) -> &str {
        "A task graph's status, cost and tasks (status, attempt, model, cost, error, checkpoint)."
    }
    async fn call(&self, _ctx: &ToolContext, args: GraphId) -> Result<ToolOutput, ToolError> {
        let graphs = crate::graph::TaskGraphs::new(self.0.runner.store().clone());
        let (graph, tasks) = graphs.graph(id("graph", &args.graph_id)?).await.map_err(failed)?;
        out(graph_json(&graph, &tasks))
    }
}

/// `claim_task` arguments.
#[derive(Deserialize, JsonSchema)]
struct ClaimArgs {
    /// The worker's name (reports must give it again).
    worker: String,
    /// Only tasks of this graph.
    graph_id: Option<String>,
    /// How long the task is the worker's without a heartbeat (5 to 86,400 s; default 300).
    lease_secs: Option<u64>,
}

struct ClaimTask(Arc<Ctx>);

#[async_trait]
impl TypedTool for ClaimTask {
    type Args = ClaimArgs;
    const NAME: &'static str = "claim_task";
    fn description(&self) -> &str {
        "Takes the next due task of the queue (wave order) with a lease: returns its id, attempt and the \
         prompt to work on, or none. Keep the lease with heartbeat_task; end with complete_task or fail_task."
    }
    async fn call(&self, _ctx: &ToolContext, args: ClaimArgs) -> Result<ToolOutput, ToolError> {
        let claim = ExternalClaim {
            worker: args.worker,
            graph_id: args.graph_id.as_deref().map(|g| id("graph", g)).transpose()?,
            limit: 1,
            lease: Duration::from_secs(args.lease_secs.unwrap_or(DEFAULT_LEASE_SECS)),
        };
        let claimed = self.0.runner.claim_external(claim).await.map_err(failed)?;
        match claimed.into_iter().next() {
            Some(c) => out(json!({"task_id": c.task.id, "attempt": c.task.attempt, "key": c.task.key,
                                  "graph_id": c.task.graph_id, "lease_until": c.task.lease_until,
                                  "prompt": c.prompt})),
            None => out(json!({"task": null, "message": "no task is due now"})),
        }
    }
}

/// Who reports: the task, the worker that claimed it and the attempt it was given.
#[derive(Deserialize, JsonSchema)]
struct HeartbeatArgs {
    /// The task's id.
    task_id: String,
    /// The worker that claimed it.
    worker: String,
    /// The attempt claim_task gave.
    attempt: u32,
    /// The new lease from now (default 300 s).
    lease_secs: Option<u64>,
}

struct HeartbeatTask(Arc<Ctx>);

#[async_trait]
impl TypedTool for HeartbeatTask {
    type Args = HeartbeatArgs;
    const NAME: &'static str = "heartbeat_task";
    fn description(&self) -> &str {
        "Extends the lease of a claimed task. Fails if the lease already ran out and the task went to another worker."
    }
    async fn call(&self, _ctx: &ToolContext, a: HeartbeatArgs) -> Result<ToolOutput, ToolError> {
        let lease = Duration::from_secs(a.lease_secs.unwrap_or(DEFAULT_LEASE_SECS));
        let task = self.0.runner.extend_lease(id("task", &a.task_id)?, &a.worker, a.attempt, lease).await;
        let task = task.map_err(failed)?;
        out(json!({"task_id": task.id, "lease_until": task.lease_until}))
    }
}

/// A fact for later tasks.
#[derive(Deserialize, JsonSchema)]
struct FactArg {
    /// The fact.
    text: String,
    /// Task types or tags it is for; none: every later task.
    #[serde(default)]
    tags: Vec<String>,
}

/// `complete_task` arguments.
#[derive(Deserialize, JsonSchema)]
struct CompleteArgs {
    /// The task's id.
    task_id: String,
    /// The worker that claimed it.
    worker: String,
    /// The attempt claim_task gave.
    attempt: u32,
    /// The result, for the tasks that depend on it.
    output: String,
    /// Facts later tasks of the graph should know.
    #[serde(default)]
    knowledge: Vec<FactArg>,
    /// What the work cost, USD (counted against the budgets).
    #[serde(default)]
    cost_usd: f64,
}

struct CompleteTask(Arc<Ctx>);

#[async_trait]
impl TypedTool for CompleteTask {
    type Args = CompleteArgs;
    const NAME: &'static str = "complete_task";
    fn description(&self) -> &str {
        "Completes a claimed task with its output (and facts for later tasks): its dependents become due."
    }
    async fn call(&self, _ctx: &ToolContext, a: CompleteArgs) -> Result<ToolOutput, ToolError> {
        let knowledge = a.knowledge.into_iter().map(|f| Fact { text: f.text, tags: f.tags }).collect();
        let end = ExternalEnd::Completed { output: a.output, knowledge, cost_usd: a.cost_usd };
        let task = self.0.runner.finish_external(id("task", &a.task_id)?, &a.worker, a.attempt, end).await;
        out(task_json(&task.map_err(failed)?))
    }
}

/// `fail_task` arguments.
#[derive(Deserialize, JsonSchema)]
struct FailArgs {
    /// The task's id.
    task_id: String,
    /// The worker that claimed it.
    worker: String,
    /// The attempt claim_task gave.
    attempt: u32,
    /// What went wrong.
    error: String,
    /// Whether another attempt may help (default true); false asks a person at once (a checkpoint).
    retry: Option<bool>,
    /// What the attempt cost, USD.
    #[serde(default)]
    cost_usd: f64,
}

struct FailTask(Arc<Ctx>);

#[async_trait]
impl TypedTool for FailTask {
    type Args = FailArgs;
    const NAME: &'static str = "fail_task";
    fn description(&self) -> &str {
        "Fails a claimed task: it is retried after a backoff until its attempts run out, then waits for a \
         person (a checkpoint); with retry false it waits for a person at once."
    }
    async fn call(&self, _ctx: &ToolContext, a: FailArgs) -> Result<ToolOutput, ToolError> {
        let end = ExternalEnd::Failed { error: a.error, retry: a.retry.unwrap_or(true), cost_usd: a.cost_usd };
        let task = self.0.runner.finish_external(id("task", &a.task_id)?, &a.worker, a.attempt, end).await;
        out(task_json(&task.map_err(failed)?))
    }
}
