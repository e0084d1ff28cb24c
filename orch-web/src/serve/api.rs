//! orch's own REST API under `/api` (JSON): health, agents, events, the orchestrator's chat and
//! workflow runs. Errors are `{"error":{"code","message"}}` with the status of their kind.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use orch_core::store::{AgentFilter, EventQuery};
use orch_core::wire::{Agent, CreateAgent, EventCategory, EventRecord, Id, WorkflowRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, parse_id};
use super::state::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The routes of `/api`, documented: each handler's `#[utoipa::path]` gives both its route and its
/// operation in the OpenAPI document, so the two cannot differ.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, delete_agent))
        .routes(routes!(command_agent))
        .routes(routes!(interrupt_agent))
        .routes(routes!(agent_status))
        .routes(routes!(events))
        .routes(routes!(orchestrator))
        .routes(routes!(chat_history, chat_send))
        .routes(routes!(workflow_types))
        .routes(routes!(list_workflows, start_workflow))
        .routes(routes!(get_workflow))
        .routes(routes!(workflow_events))
        .routes(routes!(workflow_summary))
        .routes(routes!(cancel_workflow))
        .routes(routes!(resume_workflow))
        .merge(super::graphs::routes())
        .merge(super::costs::routes())
        .merge(super::autocomplete::routes())
        .merge(super::attention::routes())
}

/// The routes of `/api`, with `/api/openapi.json`.
pub fn routes() -> Router<AppState> {
    documented().split_for_parts().0.route("/openapi.json", get(openapi))
}

/// The OpenAPI 3.1 document of `/api` (built once).
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let api = OpenApiRouter::<AppState>::with_openapi(super::openapi::base()).nest("/api", documented());
        let mut doc = api.into_openapi();
        super::openapi::finish(&mut doc);
        doc.to_json().unwrap_or_else(|e| format!("{{\"error\": \"the document does not serialize: {e}\"}}"))
    })
}

/// `GET /api/openapi.json`.
async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document())
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "status, version, WebSocket connections", body = Object))
)]
async fn health(State(state): State<AppState>) -> Json<Value> {
    let sockets = state.websockets().load(std::sync::atomic::Ordering::Relaxed);
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "websocket_connections": sockets}))
}

/// Readiness: the store answers.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    summary = "Readiness: the store answers (503 when it does not)",
    responses((status = 200, description = "status and the last seq", body = Object))
)]
async fn ready(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    match state.engine().store().last_seq().await {
        Ok(seq) => Ok(Json(json!({"status": "ready", "last_seq": seq}))),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the store does not answer: {e}"),
        )),
    }
}

/// Prometheus text: answers by status class, rate-limited requests, WebSocket clients, events in the
/// log, agent and workflow runs this server runs.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    summary = "Prometheus text: answers, rate-limited requests, WebSocket clients, events, runs",
    responses((status = 200, description = "the metrics in Prometheus text format", body = String))
)]
async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let m = state.metrics();
    let mut out = String::new();
    let _ = writeln!(out, "# HELP orch_http_responses_total HTTP answers, by status class.");
    let _ = writeln!(out, "# TYPE orch_http_responses_total counter");
    for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
        let _ = writeln!(out, "orch_http_responses_total{{class=\"{class}\"}} {}", m.responses[i + 1].load(Relaxed));
    }
    let gauges = [
        (
            "orch_http_rate_limited_total",
            "counter",
            "Requests refused by the rate limit.",
            m.rate_limited.load(Relaxed),
        ),
        ("orch_websocket_clients", "gauge", "Open WebSocket connections.", state.websockets().load(Relaxed) as u64),
        (
            "orch_events_total",
            "counter",
            "Events in the log (its last seq).",
            state.engine().store().last_seq().await.unwrap_or(0),
        ),
        (
            "orch_agent_runs_active",
            "gauge",
            "Agent runs this server runs.",
            state.orchestrator().manager().active_runs().len() as u64,
        ),
        ("orch_workflow_runs_active", "gauge", "Workflow runs this server runs.", state.running_workflows() as u64),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    // The task queue: the tasks of running graphs, by status (ready ones wait for a worker).
    let mut depth: std::collections::BTreeMap<&'static str, u64> =
        ["ready", "running", "blocked", "pending"].into_iter().map(|s| (s, 0)).collect();
    if let Ok(graphs) = state.engine().store().list_graphs(200).await {
        for g in graphs.iter().filter(|g| g.status == orch_core::wire::GraphStatus::Running) {
            for t in state.engine().store().list_tasks(g.id).await.unwrap_or_default() {
                if let Some(n) = depth.get_mut(t.status.as_str()) {
                    *n += 1;
                }
            }
        }
    }
    let _ = writeln!(out, "# HELP orch_graph_tasks Tasks of running graphs, by status.\n# TYPE orch_graph_tasks gauge");
    for (status, n) in depth {
        let _ = writeln!(out, "orch_graph_tasks{{status=\"{status}\"}} {n}");
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

#[utoipa::path(
    get,
    path = "/agents",
    tag = "agents",
    summary = "Live agents",
    responses((status = 200, description = "`agents`: the agent records", body = Object))
)]
async fn list_agents(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let mut agents = state.engine().store().list_agents(&AgentFilter::default()).await?;
    // The orchestrators' own records are not agents anyone commands (as the seed's list hides them).
    agents.retain(|a| !orch_core::orchestrator::is_orchestrator_agent(a));
    Ok(Json(json!({"agents": agents})))
}

/// An agent by id, or by name among the hosted orchestrator's agents.
async fn find_agent(state: &AppState, key: &str) -> ApiResult<Agent> {
    if let Ok(id) = key.trim().parse::<Id>() {
        return match state.engine().store().get_agent(id).await? {
            Some(a) if !a.archived => Ok(a),
            _ => Err(ApiError::not_found(format!("agent {id} not found"))),
        };
    }
    Ok(state.orchestrator().manager().agent(key).await?)
}

#[utoipa::path(
    get,
    path = "/agents/{agent}",
    tag = "agents",
    summary = "An agent",
    params(("agent" = String, Path, description = "the agent's id, or its name among the orchestrator's agents")),
    responses((status = 200, description = "the agent record", body = Object))
)]
async fn get_agent(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<Agent>> {
    Ok(Json(find_agent(&state, &key).await?))
}

#[utoipa::path(
    post,
    path = "/agents",
    tag = "agents",
    summary = "Creates an agent of the hosted orchestrator",
    request_body = CreateAgent,
    responses((status = 201, description = "the agent record", body = Object))
)]
async fn create_agent(
    State(state): State<AppState>,
    body: Result<Json<CreateAgent>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    let Json(request) = body?;
    let agent = state.orchestrator().manager().create_agent(request).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Command {
    prompt: String,
}

/// Starts a run of the agent in the background of this server: 202 with the run's slug; its events
/// follow on `/ws` and `/api/events`.
#[utoipa::path(
    post,
    path = "/agents/{agent}/command",
    tag = "agents",
    summary = "Starts a run of the agent in the background (its events follow on /ws)",
    params(("agent" = String, Path, description = "the agent's id, or its name among the orchestrator's agents")),
    request_body = inline(Command),
    responses((status = 202, description = "the run: agent_id, agent_name, task_slug", body = Object))
)]
async fn command_agent(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: Result<Json<Command>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(Command { prompt }) = body?;
    if prompt.trim().is_empty() {
        return Err(ApiError::bad_request("the prompt is empty"));
    }
    let agent = find_agent(&state, &key).await?;
    let ticket = state.orchestrator().manager().command_agent(&agent.name, &prompt).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"agent_id": ticket.agent_id, "agent_name": ticket.agent_name, "task_slug": ticket.task_slug})),
    ))
}

#[utoipa::path(
    post,
    path = "/agents/{agent}/interrupt",
    tag = "agents",
    summary = "Interrupts the agent's running turn",
    params(("agent" = String, Path, description = "the agent's id, or its name among the orchestrator's agents")),
    responses((status = 200, description = "what happened", body = Object))
)]
async fn interrupt_agent(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    let agent = find_agent(&state, &key).await?;
    let outcome = state.engine().supervisor().interrupt(&agent, "api", Duration::from_secs(10)).await?;
    Ok(Json(json!({"agent_id": agent.id, "interrupted": format!("{outcome:?}").to_lowercase()})))
}

#[utoipa::path(
    delete,
    path = "/agents/{agent}",
    tag = "agents",
    summary = "Deletes (archives) an agent",
    params(("agent" = String, Path, description = "the agent's id, or its name among the orchestrator's agents")),
    responses((status = 200, description = "the deleted id and name", body = Object))
)]
async fn delete_agent(State(state): State<AppState>, Path(key): Path<String>) -> ApiResult<Json<Value>> {
    let agent = find_agent(&state, &key).await?;
    let deleted = state.orchestrator().manager().delete_agent(&agent.name).await?;
    Ok(Json(json!({"deleted": deleted.id, "name": deleted.name})))
}

/// `?tail=&offset=` of an agent's status.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatusQuery {
    /// Entries of the latest run (default 20, at most 1,000).
    tail: Option<usize>,
    /// Newest entries to skip first.
    #[serde(default)]
    offset: usize,
}

#[utoipa::path(
    get,
    path = "/agents/{agent}/status",
    tag = "agents",
    summary = "An agent's status and its latest run's recent activity (each entry with its summary)",
    params(("agent" = String, Path, description = "the agent's id, or its name among the orchestrator's agents"), StatusQuery),
    responses((status = 200, description = "`agent`, `task_slug`, `entries`", body = Object))
)]
async fn agent_status(
    State(state): State<AppState>,
    Path(key): Path<String>,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let agent = find_agent(&state, &key).await?;
    let tail = q.tail.unwrap_or(20).clamp(1, 1000);
    let report = state.orchestrator().manager().status(&agent.name, tail, q.offset).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}

/// Filters of `GET /api/events`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this seq.
    #[serde(default)]
    pub since: u64,
    /// At most this many (default 100, at most 10,000).
    pub limit: Option<usize>,
    /// Skip this many of the matching events.
    #[serde(default)]
    pub offset: usize,
    /// Only this agent's (id).
    pub agent: Option<String>,
    /// Only this orchestrator's (id).
    pub orchestrator: Option<String>,
    /// Only this workflow run's (id).
    pub workflow: Option<String>,
    /// Only this step's.
    pub step: Option<String>,
    /// Only this run's (its task slug, e.g. `build-1a2b3c4d`).
    pub run: Option<String>,
    /// Only this graph task's attempts (the task's id), or, for compatibility, a run's task slug.
    pub task: Option<String>,
    /// Only these categories (comma-separated).
    pub category: Option<String>,
    /// Only these types (comma-separated).
    #[serde(rename = "type")]
    pub types: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    pub order: Option<String>,
}

/// The maximum page of `GET /api/events`.
const MAX_EVENTS: usize = 10_000;

impl EventsQuery {
    /// The store query these filters make (without paging).
    pub fn to_query(&self) -> ApiResult<EventQuery> {
        let id = |what: &str, v: &Option<String>| v.as_deref().map(|t| parse_id(what, t)).transpose();
        let list = |v: &Option<String>| -> Vec<String> {
            v.as_deref()
                .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default()
        };
        let categories = list(&self.category)
            .iter()
            .map(|c| {
                EventCategory::parse(c).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown category '{c}' (agent, hook, response, system, chat, workflow)"
                    ))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(EventQuery {
            after_seq: self.since,
            agent_id: id("agent", &self.agent)?,
            orchestrator_id: id("orchestrator", &self.orchestrator)?,
            workflow_id: id("workflow", &self.workflow)?,
            step: self.step.clone(),
            task_slug: self.run.clone().or_else(|| self.task.clone()),
            categories,
            types: list(&self.types),
            ..EventQuery::default()
        })
    }
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    summary = "The event log, filtered and paged",
    params(EventsQuery),
    responses((status = 200, description = "`events` and the `last_seq`", body = Object))
)]
async fn events(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_EVENTS {
        return Err(ApiError::bad_request(format!("limit must be 1 to {MAX_EVENTS}")));
    }
    let newest_first = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(ApiError::bad_request(format!("order '{other}': asc or desc"))),
    };
    let mut query = q.to_query()?;
    // A graph task's attempts run under the slug `graph-<graph>-<key>`.
    if q.run.is_none()
        && let Some(Ok(id)) = q.task.as_deref().map(|t| t.trim().parse::<Id>())
    {
        let task = state
            .engine()
            .store()
            .get_task(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
        query.task_slug = Some(format!("graph-{}-{}", orch_core::wire::short_id(task.graph_id), task.key));
    }
    let store = state.engine().store();
    let last_seq = store.last_seq().await?;
    let page = if newest_first {
        newest(store.as_ref(), query, last_seq, q.offset + limit).await?.into_iter().skip(q.offset).collect()
    } else {
        let all = store.read_events(&EventQuery { limit: Some(q.offset + limit), ..query }).await?;
        all.into_iter().skip(q.offset).take(limit).collect::<Vec<_>>()
    };
    Ok(Json(json!({"events": page, "last_seq": last_seq})))
}

/// The newest `n` events matching `query`, newest first: windows of the log read backwards from
/// `last_seq` until there are enough.
async fn newest(
    store: &dyn orch_core::store::Store,
    query: EventQuery,
    last_seq: u64,
    n: usize,
) -> ApiResult<Vec<EventRecord>> {
    let mut out: Vec<EventRecord> = Vec::new();
    let mut until = last_seq;
    // The first window is the page itself (all of it when nothing is filtered out), then 4x larger.
    let mut window = u64::try_from(n).unwrap_or(u64::MAX).max(64);
    while until > query.after_seq && out.len() < n {
        let from = until.saturating_sub(window).max(query.after_seq);
        let mut part = store
            .read_events(&EventQuery { after_seq: from, until_seq: Some(until), limit: None, ..query.clone() })
            .await?;
        part.reverse();
        out.extend(part);
        until = from;
        window = window.saturating_mul(4);
    }
    out.truncate(n);
    Ok(out)
}

#[utoipa::path(
    get,
    path = "/orchestrator",
    tag = "orchestrator",
    summary = "The hosted orchestrator",
    responses((status = 200, description = "`orchestrator`: its record; `agent_id`: the agent its own turns run as (its events carry it; `/api/agents` does not list it)", body = Object))
)]
async fn orchestrator(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let record = state.orchestrator().record().await?;
    Ok(Json(json!({"orchestrator": record, "agent_id": state.orchestrator().agent_id()})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/orchestrator/chat",
    tag = "orchestrator",
    summary = "The orchestrator's chat",
    params(HistoryQuery),
    responses((status = 200, description = "`messages`, oldest first", body = Object))
)]
async fn chat_history(
    State(state): State<AppState>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let messages = state.orchestrator().chat_history(q.limit.unwrap_or(200).min(MAX_EVENTS)).await?;
    Ok(Json(json!({"messages": messages})))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ChatSend {
    message: String,
}

/// Sends a chat message: 202 at once; the turn runs in the background of this server and its reply
/// arrives as events (`/ws`, `/api/events`, `GET /api/orchestrator/chat`).
#[utoipa::path(
    post,
    path = "/orchestrator/chat",
    tag = "orchestrator",
    summary = "Sends a chat message; the turn runs in the background",
    request_body = inline(ChatSend),
    responses((status = 202, description = "accepted", body = Object))
)]
async fn chat_send(
    State(state): State<AppState>,
    body: Result<Json<ChatSend>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(ChatSend { message }) = body?;
    if message.trim().is_empty() {
        return Err(ApiError::bad_request("the message is empty"));
    }
    super::chat::spawn_turn(&state, message);
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted", "orchestrator_id": state.orchestrator().id()}))))
}

#[utoipa::path(
    get,
    path = "/adws/types",
    tag = "workflows",
    summary = "Workflow types, and the files that failed to load",
    responses((status = 200, description = "`types` and `broken`", body = Object))
)]
async fn workflow_types(State(state): State<AppState>) -> Json<Value> {
    let types = state.engine().workflows().types();
    let specs: Vec<Value> = types
        .specs
        .iter()
        .map(|s| {
            let steps: Vec<&str> = s.steps.iter().map(|st| st.name.as_str()).collect();
            json!({"type": s.name, "description": s.description, "steps": steps, "inputs": s.inputs,
                   "source": s.source.as_ref().map(|p| p.display().to_string())})
        })
        .collect();
    let broken: Vec<Value> =
        types.broken.iter().map(|b| json!({"file": b.path.display().to_string(), "error": b.to_string()})).collect();
    Json(json!({"types": specs, "broken": broken}))
}

/// A run with whether its process is gone.
fn with_stale(r: &WorkflowRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["stale"] = json!(orch_core::workflow::is_stale(r));
    v
}

#[utoipa::path(
    get,
    path = "/adws",
    tag = "workflows",
    summary = "Workflow runs",
    responses((status = 200, description = "`adws`: the runs, each with `stale`", body = Object))
)]
async fn list_workflows(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let runs = state.engine().store().list_workflows(None, 1000).await?;
    Ok(Json(json!({"adws": runs.iter().map(with_stale).collect::<Vec<_>>()})))
}

async fn load_workflow(state: &AppState, id: &str) -> ApiResult<WorkflowRecord> {
    let id = parse_id("workflow run", id)?;
    state
        .engine()
        .store()
        .get_workflow(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("workflow run {id} not found")))
}

#[utoipa::path(
    get,
    path = "/adws/{id}",
    tag = "workflows",
    summary = "A workflow run",
    params(("id" = String, Path, format = Uuid, description = "the workflow run's id")),
    responses((status = 200, description = "the run, with `stale`", body = Object))
)]
async fn get_workflow(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(with_stale(&load_workflow(&state, &id).await?)))
}

/// A run's events grouped by step (`_workflow` for the run's own).
#[utoipa::path(
    get,
    path = "/adws/{id}/events",
    tag = "workflows",
    summary = "A run's events grouped by step",
    params(("id" = String, Path, format = Uuid, description = "the workflow run's id")),
    responses((status = 200, description = "`events_by_step`", body = Object))
)]
async fn workflow_events(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let record = load_workflow(&state, &id).await?;
    let events = state
        .engine()
        .store()
        .read_events(&EventQuery { workflow_id: Some(record.id), ..EventQuery::default() })
        .await?;
    let mut by_step: serde_json::Map<String, Value> = serde_json::Map::new();
    for e in &events {
        let step = e.keys.step.clone().unwrap_or_else(|| "_workflow".to_string());
        if let Some(list) = by_step.entry(step).or_insert_with(|| json!([])).as_array_mut() {
            list.push(serde_json::to_value(e).unwrap_or_default());
        }
    }
    Ok(Json(json!({"adw_id": record.id, "count": events.len(), "events_by_step": by_step})))
}

#[utoipa::path(
    get,
    path = "/adws/{id}/summary",
    tag = "workflows",
    summary = "A run's steps: event counts (in all and by type), agent, start and end",
    params(("id" = String, Path, format = Uuid, description = "the workflow run's id")),
    responses((status = 200, description = "`adw`, `steps`, `total_events`", body = Object))
)]
async fn workflow_summary(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let record = load_workflow(&state, &id).await?;
    let (steps, total) = super::seed::step_summary(&state, &record).await?;
    Ok(Json(json!({"adw": with_stale(&record), "steps": steps, "total_events": total})))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct StartWorkflow {
    #[serde(rename = "type")]
    workflow_type: String,
    prompt: Option<String>,
    name: Option<String>,
    model: Option<String>,
    /// More inputs (e.g. `domain`, `worktree`).
    #[serde(default)]
    #[schema(value_type = Object)]
    input: serde_json::Map<String, Value>,
}

/// Starts a workflow run in the background of this server: 202 with its id.
#[utoipa::path(
    post,
    path = "/adws",
    tag = "workflows",
    summary = "Starts a workflow run in the background",
    request_body = inline(StartWorkflow),
    responses((status = 202, description = "its id, name and type", body = Object))
)]
async fn start_workflow(
    State(state): State<AppState>,
    body: Result<Json<StartWorkflow>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(req) = body?;
    let workflows = state.engine().workflows();
    let workflow = workflows.workflow(&req.workflow_type)?;
    let mut input = Value::Object(req.input);
    if let Some(p) = req.prompt {
        input["prompt"] = json!(p);
    }
    if let Some(m) = req.model {
        input["model"] = json!(m);
    }
    let record = workflows.create(workflow.as_ref(), input, req.name, Some(state.orchestrator().id())).await?;
    state.keep_workflow(workflows.spawn(&record));
    Ok((StatusCode::ACCEPTED, Json(json!({"id": record.id, "name": record.name, "type": record.workflow_type}))))
}

#[utoipa::path(
    post,
    path = "/adws/{id}/cancel",
    tag = "workflows",
    summary = "Cancels a workflow run (also one run by another process)",
    params(("id" = String, Path, format = Uuid, description = "the workflow run's id")),
    responses((status = 200, description = "the run", body = Object))
)]
async fn cancel_workflow(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let record = load_workflow(&state, &id).await?;
    let done = state.engine().workflows().cancel(record.id, "api", Duration::from_secs(30)).await?;
    Ok(Json(with_stale(&done)))
}

/// Resumes a run whose process is gone (or a cancelled one) in the background of this server.
#[utoipa::path(
    post,
    path = "/adws/{id}/resume",
    tag = "workflows",
    summary = "Resumes a run whose process is gone, or a cancelled one",
    params(("id" = String, Path, format = Uuid, description = "the workflow run's id")),
    responses((status = 202, description = "resuming", body = Object))
)]
async fn resume_workflow(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let record = load_workflow(&state, &id).await?;
    if record.status.is_final() && record.status != orch_core::wire::WorkflowStatus::Cancelled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("workflow run {} has already ended ({})", record.id, record.status.as_str()),
        ));
    }
    if !orch_core::workflow::is_stale(&record) && record.status != orch_core::wire::WorkflowStatus::Cancelled {
        let holder = record.run.as_ref().map_or_else(|| "no process yet".to_string(), |h| h.to_string());
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "busy",
            format!("workflow run {} is run by {holder}", record.id),
        ));
    }
    state.keep_workflow(state.engine().workflows().spawn(&record));
    Ok((StatusCode::ACCEPTED, Json(json!({"id": record.id, "status": "resuming"}))))
}
