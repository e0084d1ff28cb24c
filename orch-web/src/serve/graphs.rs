//! Plans and task graphs under `/api`: plan (from the planning model or a plan's JSON), approve, make
//! and run graphs, add tasks, resolve checkpoints, cancel and resume; and the task queue for external
//! agents (claim with a lease, heartbeat, complete, fail, release). The JSON of a plan and of a graph is
//! the CLI's `--json` output (`orch plan show`, `orch graph show`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use orch_core::graph::{ExternalClaim, ExternalEnd, NewTask, PlanOrigin, Resolution, read_plan_text};
use orch_core::store::AgentFilter;
use orch_core::wire::{Complexity, Fact, Task, TaskGraph, TaskStatus};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, parse_id};
use super::state::AppState;
use crate::plan::{graph_json, plan_estimates, plan_json};

type ApiResult<T> = Result<T, ApiError>;

/// The lease of an external claim when the request names none.
const DEFAULT_LEASE_SECS: u64 = 300;

/// The routes of plans, graphs, checkpoints and tasks (nested under `/api`), documented.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan))
        .routes(routes!(approve_plan))
        .routes(routes!(list_graphs, create_graph))
        .routes(routes!(get_graph))
        .routes(routes!(add_task))
        .routes(routes!(run_graph))
        .routes(routes!(cancel_graph))
        .routes(routes!(list_checkpoints))
        .routes(routes!(list_workers))
        .routes(routes!(resolve_checkpoint))
        .routes(routes!(claim_tasks))
        .routes(routes!(get_task))
        .routes(routes!(rerun_task))
        .routes(routes!(heartbeat))
        .routes(routes!(complete_task))
        .routes(routes!(fail_task))
        .routes(routes!(release_task))
}

/// A JSON body that may be left out (an empty body is `T::default()`): bad JSON is 400, JSON of the
/// wrong shape 422.
pub fn optional_body<T: DeserializeOwned + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", format!("the JSON body does not fit: {e}"))
        }
        _ => ApiError::bad_request(format!("the body is not valid JSON: {e}")),
    })
}

// ---- plans ----

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Limit {
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/plans",
    tag = "graphs",
    summary = "Plans, newest first",
    params(Limit),
    responses((status = 200, description = "`plans`", body = Object))
)]
async fn list_plans(
    State(state): State<AppState>,
    query: Result<Query<Limit>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let plans = state.engine().store().list_plans(q.limit.unwrap_or(200).clamp(1, 1000)).await?;
    Ok(Json(json!({"plans": plans.iter().map(plan_json).collect::<Vec<_>>()})))
}

/// `POST /api/plans`: `requirements` asks the planning model; `plan` (the planning model's JSON
/// format: `{"tasks": [...]}`) is checked and stored as it is. With `revise`, a new version of that plan.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePlan {
    requirements: Option<String>,
    #[schema(value_type = Option<Object>)]
    plan: Option<Value>,
    revise: Option<String>,
}

#[utoipa::path(
    post,
    path = "/plans",
    tag = "graphs",
    summary = "Plans requirements with the planning model, or stores a plan's JSON",
    request_body = inline(CreatePlan),
    responses((status = 201, description = "the plan (a draft)", body = Object))
)]
async fn create_plan(
    State(state): State<AppState>,
    body: Result<Json<CreatePlan>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    let revise = req.revise.as_deref().map(|r| parse_id("plan", r)).transpose()?;
    let requirements = req.requirements.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let (requirements, tasks, origin) = match (req.plan, requirements) {
        (Some(plan), requirements) => {
            let read = read_plan_text(&plan.to_string())?;
            (requirements.map(str::to_string).or(read.requirements), read.tasks, PlanOrigin::default())
        }
        (None, Some(requirements)) => {
            let drafted = state.engine().planner()?.draft(requirements).await?;
            let origin = PlanOrigin { model: Some(drafted.model), source_file: None, cost_usd: drafted.cost_usd };
            (Some(requirements.to_string()), drafted.tasks, origin)
        }
        (None, None) => {
            return Err(ApiError::bad_request("give `requirements` (planned by the model) or `plan` (its JSON)"));
        }
    };
    let graphs = state.engine().graphs();
    let plan = match revise {
        Some(id) => graphs.revise_plan(id, requirements.as_deref(), tasks, origin).await?,
        None => graphs.create_plan(requirements.as_deref().unwrap_or_default(), tasks, origin).await?,
    };
    Ok((StatusCode::CREATED, Json(plan_json(&plan))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Version {
    version: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/plans/{id}",
    tag = "graphs",
    summary = "A plan (its latest version, or `version`)",
    params(("id" = String, Path, format = Uuid, description = "the plan's id"), Version),
    responses((status = 200, description = "the plan", body = Object))
)]
async fn get_plan(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Version>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let plan = state.engine().graphs().plan(parse_id("plan", &id)?, q.version).await?;
    Ok(Json(plan_json(&plan)))
}

#[utoipa::path(
    post,
    path = "/plans/{id}/approve",
    tag = "graphs",
    summary = "Approves a plan",
    params(("id" = String, Path, format = Uuid, description = "the plan's id")),
    responses((status = 200, description = "the plan", body = Object))
)]
async fn approve_plan(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let plan = state.engine().graphs().approve(parse_id("plan", &id)?).await?;
    Ok(Json(plan_json(&plan)))
}

// ---- graphs ----

#[utoipa::path(
    get,
    path = "/graphs",
    tag = "graphs",
    summary = "Task graphs, newest first",
    params(Limit),
    responses((status = 200, description = "`graphs`", body = Object))
)]
async fn list_graphs(
    State(state): State<AppState>,
    query: Result<Query<Limit>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let graphs = state.engine().store().list_graphs(q.limit.unwrap_or(200).clamp(1, 1000)).await?;
    Ok(Json(json!({"graphs": graphs})))
}

/// `POST /api/graphs`: the graph of an approved plan, started at once unless `start` is false.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateGraph {
    plan_id: String,
    name: Option<String>,
    #[serde(default = "yes")]
    start: bool,
    budget_usd: Option<f64>,
}

fn yes() -> bool {
    true
}

fn check_usd(v: Option<f64>) -> ApiResult<Option<f64>> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => {
            Err(ApiError::bad_request(format!("budget_usd {x} is not a number of USD (0 or more)")))
        }
        v => Ok(v),
    }
}

#[utoipa::path(
    post,
    path = "/graphs",
    tag = "graphs",
    summary = "The graph of an approved plan, started unless `start` is false",
    request_body = inline(CreateGraph),
    responses((status = 201, description = "the graph, its tasks, waves and costs", body = Object))
)]
async fn create_graph(
    State(state): State<AppState>,
    body: Result<Json<CreateGraph>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    let plan_id = parse_id("plan", &req.plan_id)?;
    let budget = check_usd(req.budget_usd)?;
    let (mut graph, tasks) = state.engine().graphs().create_graph(plan_id, req.name).await?;
    if req.start {
        graph = state.graphs().start(graph.id, budget).await?;
    } else if budget.is_some() {
        graph = state.graphs().set_graph_budget(graph.id, budget).await?;
    }
    let estimates = plan_estimates(state.engine().store().as_ref(), &graph).await;
    Ok((StatusCode::CREATED, Json(graph_json(&graph, &tasks, estimates))))
}

#[utoipa::path(
    get,
    path = "/graphs/{id}",
    tag = "graphs",
    summary = "A graph with its tasks, waves, costs and its plan's estimates per task key",
    params(("id" = String, Path, format = Uuid, description = "the task graph's id")),
    responses((status = 200, description = "the graph, its tasks, waves and costs", body = Object))
)]
async fn get_graph(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (graph, tasks) = state.engine().graphs().graph(parse_id("task graph", &id)?).await?;
    let estimates = plan_estimates(state.engine().store().as_ref(), &graph).await;
    Ok(Json(graph_json(&graph, &tasks, estimates)))
}

/// `POST /api/graphs/{id}/tasks`: a task added to a graph that has not ended.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddTask {
    title: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    task_type: String,
    complexity: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    model: Option<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    verification: Vec<String>,
    /// Estimated cost, USD (0 or more).
    estimated_cost_usd: Option<f64>,
    /// Estimated duration, minutes (0 or more).
    estimated_minutes: Option<f64>,
}

#[utoipa::path(
    post,
    path = "/graphs/{id}/tasks",
    tag = "graphs",
    summary = "Adds a task to a graph that has not ended",
    params(("id" = String, Path, format = Uuid, description = "the task graph's id")),
    request_body = inline(AddTask),
    responses((status = 201, description = "the task", body = Object))
)]
async fn add_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AddTask>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    let id = parse_id("task graph", &id)?;
    let Json(req) = body?;
    let complexity = match req.complexity.as_deref() {
        None => Complexity::default(),
        Some(c) => Complexity::parse(c)
            .ok_or_else(|| ApiError::bad_request(format!("complexity '{c}': expected simple, medium or complex")))?,
    };
    let new = NewTask {
        key: req.key,
        title: req.title,
        description: req.description,
        task_type: req.task_type,
        complexity,
        depends_on: req.depends_on,
        model: req.model,
        tools: req.tools,
        verification: req.verification,
        estimated_cost_usd: req.estimated_cost_usd,
        estimated_minutes: req.estimated_minutes,
    };
    let task = state.graphs().add_task(id, new).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// `POST /api/graphs/{id}/run`: starts or resumes the graph (optionally with a new USD limit).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RunGraph {
    budget_usd: Option<f64>,
}

#[utoipa::path(
    post,
    path = "/graphs/{id}/run",
    tag = "graphs",
    summary = "Starts or resumes a graph (optionally with a new USD limit)",
    params(("id" = String, Path, format = Uuid, description = "the task graph's id")),
    request_body = Option<RunGraph>,
    responses((status = 200, description = "the graph", body = Object))
)]
async fn run_graph(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<TaskGraph>> {
    let id = parse_id("task graph", &id)?;
    let req: RunGraph = optional_body(&body)?;
    Ok(Json(state.graphs().start(id, check_usd(req.budget_usd)?).await?))
}

#[utoipa::path(
    post,
    path = "/graphs/{id}/cancel",
    tag = "graphs",
    summary = "Cancels a graph",
    params(("id" = String, Path, format = Uuid, description = "the task graph's id")),
    responses((status = 200, description = "the graph", body = Object))
)]
async fn cancel_graph(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<TaskGraph>> {
    Ok(Json(state.graphs().cancel(parse_id("task graph", &id)?).await?))
}

// ---- checkpoints ----

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GraphFilter {
    graph: Option<String>,
}

#[utoipa::path(
    get,
    path = "/checkpoints",
    tag = "graphs",
    summary = "Tasks waiting for a person",
    params(GraphFilter),
    responses((status = 200, description = "`checkpoints`: the blocked tasks", body = Object))
)]
async fn list_checkpoints(
    State(state): State<AppState>,
    query: Result<Query<GraphFilter>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let graph = q.graph.as_deref().map(|g| parse_id("task graph", g)).transpose()?;
    Ok(Json(json!({"checkpoints": state.graphs().checkpoints(graph).await?})))
}

#[utoipa::path(
    get,
    path = "/workers",
    tag = "graphs",
    summary = "The workers and servers on this store",
    responses((status = 200, description = "`workers`: their heartbeat rows, most recent first, each with `alive` and \
        `silent_secs`; `count`", body = Object))
)]
async fn list_workers(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let rows = state.engine().store().list_workers().await?;
    let (stale_after, at) = (state.graphs().settings().stale_after, orch_core::wire::now());
    let workers: Vec<Value> = rows.iter().map(|w| crate::graph_run::worker_json(w, stale_after, at)).collect();
    Ok(Json(json!({"count": workers.len(), "workers": workers})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Resolve {
    action: String,
    guidance: Option<String>,
}

#[utoipa::path(
    post,
    path = "/checkpoints/{task}/resolve",
    tag = "graphs",
    summary = "Resolves a checkpoint: retry (with guidance), skip or fail",
    params(("task" = String, Path, format = Uuid, description = "the task's id")),
    request_body = inline(Resolve),
    responses((status = 200, description = "the task", body = Object))
)]
async fn resolve_checkpoint(
    State(state): State<AppState>,
    Path(task): Path<String>,
    body: Result<Json<Resolve>, JsonRejection>,
) -> ApiResult<Json<Task>> {
    let task = parse_id("task", &task)?;
    let Json(req) = body?;
    let action = Resolution::parse(&req.action)
        .ok_or_else(|| ApiError::bad_request(format!("action '{}': expected retry, skip or fail", req.action)))?;
    Ok(Json(state.graphs().resolve(task, action, req.guidance.as_deref()).await?))
}

// ---- tasks ----

/// Rerun from a task: it and the tasks depending on it (transitively) are queued again; a graph that
/// ended runs again. 409 while one of them runs, or when the task's own dependency failed.
#[utoipa::path(
    post,
    path = "/tasks/{task}/rerun",
    tag = "tasks",
    summary = "Reruns a task and everything depending on it",
    params(("task" = String, Path, format = Uuid, description = "the task's id")),
    responses(
        (status = 200, description = "`tasks`: the tasks queued again, the named one first", body = Object),
        (status = 404, description = "no such task"),
        (status = 409, description = "a task of them is running, or a dependency failed"),
    )
)]
async fn rerun_task(State(state): State<AppState>, Path(task): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id("task", &task)?;
    let tasks = state.graphs().rerun_from(id).await?;
    Ok(Json(json!({"tasks": tasks})))
}

/// A task with its attempts' agents (their runs' events: `/api/events?agent=ID`).
#[utoipa::path(
    get,
    path = "/tasks/{task}",
    tag = "tasks",
    summary = "A task and its attempts' agents",
    params(("task" = String, Path, format = Uuid, description = "the task's id")),
    responses((status = 200, description = "`task` and `sessions`", body = Object))
)]
async fn get_task(State(state): State<AppState>, Path(task): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id("task", &task)?;
    let store = state.engine().store();
    let task = store.get_task(id).await?.ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
    let filter = AgentFilter { include_archived: true, ..AgentFilter::default() };
    let mut sessions: Vec<Value> = store
        .list_agents(&filter)
        .await?
        .into_iter()
        .filter(|a| a.metadata.get("task_id").and_then(Value::as_str) == Some(id.to_string().as_str()))
        .map(|a| {
            json!({
                "agent_id": a.id, "name": a.name, "attempt": a.metadata.get("attempt"), "model": a.model,
                "status": a.status, "cost_usd": a.total_cost_usd, "created_at": a.created_at,
            })
        })
        .collect();
    sessions.sort_by_key(|s| s["attempt"].as_u64().unwrap_or(0));
    Ok(Json(json!({"task": task, "sessions": sessions})))
}

/// `POST /api/tasks/claim`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Claim {
    worker: String,
    graph_id: Option<String>,
    limit: Option<u32>,
    lease_secs: Option<u64>,
}

fn lease(secs: Option<u64>) -> Duration {
    Duration::from_secs(secs.unwrap_or(DEFAULT_LEASE_SECS))
}

#[utoipa::path(
    post,
    path = "/tasks/claim",
    tag = "tasks",
    summary = "Claims due tasks for an external agent, with a lease",
    request_body = inline(Claim),
    responses((status = 200, description = "`tasks`: each `task` and its `prompt`", body = Object))
)]
async fn claim_tasks(
    State(state): State<AppState>,
    body: Result<Json<Claim>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(req) = body?;
    let claim = ExternalClaim {
        worker: req.worker,
        graph_id: req.graph_id.as_deref().map(|g| parse_id("task graph", g)).transpose()?,
        limit: req.limit.unwrap_or(1),
        lease: lease(req.lease_secs),
    };
    let tasks = state.graphs().claim_external(claim).await?;
    Ok(Json(json!({"tasks": tasks})))
}

/// Who reports on a task: the worker that claimed it, at the attempt it was given.
#[derive(Deserialize, utoipa::ToSchema)]
struct Holder {
    worker: String,
    attempt: u32,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Heartbeat {
    worker: String,
    attempt: u32,
    lease_secs: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/tasks/{task}/heartbeat",
    tag = "tasks",
    summary = "Extends the lease of the caller's attempt",
    params(("task" = String, Path, format = Uuid, description = "the task's id")),
    request_body = inline(Heartbeat),
    responses((status = 200, description = "`task`", body = Object))
)]
async fn heartbeat(
    State(state): State<AppState>,
    Path(task): Path<String>,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let id = parse_id("task", &task)?;
    let Json(req) = body?;
    let task = state.graphs().extend_lease(id, &req.worker, req.attempt, lease(req.lease_secs)).await?;
    Ok(Json(json!({"task": task})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Complete {
    worker: String,
    attempt: u32,
    output: String,
    #[serde(default)]
    knowledge: Vec<Fact>,
    #[serde(default)]
    cost_usd: f64,
}

#[utoipa::path(
    post,
    path = "/tasks/{task}/complete",
    tag = "tasks",
    summary = "Completes the caller's attempt",
    params(("task" = String, Path, format = Uuid, description = "the task's id")),
    request_body = inline(Complete),
    responses((status = 200, description = "`task` and `next`", body = Object))
)]
async fn complete_task(
    State(state): State<AppState>,
    Path(task): Path<String>,
    body: Result<Json<Complete>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let id = parse_id("task", &task)?;
    let Json(req) = body?;
    let end = ExternalEnd::Completed { output: req.output, knowledge: req.knowledge, cost_usd: req.cost_usd };
    finished(state.graphs().finish_external(id, &req.worker, req.attempt, end).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Fail {
    worker: String,
    attempt: u32,
    error: String,
    #[serde(default = "yes")]
    retry: bool,
    #[serde(default)]
    cost_usd: f64,
}

#[utoipa::path(
    post,
    path = "/tasks/{task}/fail",
    tag = "tasks",
    summary = "Fails the caller's attempt",
    params(("task" = String, Path, format = Uuid, description = "the task's id")),
    request_body = inline(Fail),
    responses((status = 200, description = "`task` and `next`", body = Object))
)]
async fn fail_task(
    State(state): State<AppState>,
    Path(task): Path<String>,
    body: Result<Json<Fail>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let id = parse_id("task", &task)?;
    let Json(req) = body?;
    let end = ExternalEnd::Failed { error: req.error, retry: req.retry, cost_usd: req.cost_usd };
    finished(state.graphs().finish_external(id, &req.worker, req.attempt, end).await?)
}

#[utoipa::path(
    post,
    path = "/tasks/{task}/release",
    tag = "tasks",
    summary = "Gives the caller's attempt back, no failure counted",
    params(("task" = String, Path, format = Uuid, description = "the task's id")),
    request_body = inline(Holder),
    responses((status = 200, description = "`task` and `next`", body = Object))
)]
async fn release_task(
    State(state): State<AppState>,
    Path(task): Path<String>,
    body: Result<Json<Holder>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let id = parse_id("task", &task)?;
    let Json(req) = body?;
    finished(state.graphs().finish_external(id, &req.worker, req.attempt, ExternalEnd::Released).await?)
}

/// The answer of a report: the task as stored (`retrying` when a failure left it ready for another
/// attempt, `checkpoint` when it now waits for a person).
fn finished(task: Task) -> ApiResult<Json<Value>> {
    let next = match task.status {
        TaskStatus::Ready => "retrying",
        TaskStatus::Blocked => "checkpoint",
        s => s.as_str(),
    };
    Ok(Json(json!({"task": task, "next": next})))
}
