//! The seed's HTTP routes (seed-contract.md §2 and §2.1), with its request and response shapes, over
//! the same engine as `/api`, so the seed's own dashboard and scripts talk to this server unchanged.
//! Where the seed answered 500 for a bad id, these answer 400/404 with the seed's `detail` key; where
//! it answered 200 with `status:"error"`, so do these.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use orch_core::orchestrator::autocomplete::Feedback;
use orch_core::store::{AgentFilter, EventQuery, SystemLogQuery};
use orch_core::wire::{Agent, ChatMessage, EventCategory, EventRecord, WorkflowRecord};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, SeedError, parse_id};
use super::frames::{adw_row, payload};
use super::state::AppState;

type SeedResult = Result<Json<Value>, SeedError>;

/// The seed's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/get_headers", get(headers))
        .route("/get_orchestrator", get(orchestrator))
        .route("/list_agents", get(list_agents))
        .route("/load_chat", post(load_chat))
        .route("/send_chat", post(send_chat))
        .route("/get_events", get(get_events))
        .route("/adws", post(list_adws))
        .route("/adws/{id}", get(get_adw))
        .route("/adws/{id}/events", post(adw_events))
        .route("/adws/{id}/summary", get(adw_summary))
        .route("/autocomplete-generate", post(autocomplete_generate))
        .route("/autocomplete-update", post(autocomplete_update))
        .route("/api/open-file", post(super::open_file::open_file))
}

/// The ten management tools, as the seed lists them (TypeScript-style signatures).
const ORCHESTRATOR_TOOLS: [&str; 10] = [
    "create_agent(name: string, system_prompt?: string, model?: string, subagent_template?: string)",
    "list_agents()",
    "command_agent(agent_name: string, command: string)",
    "check_agent_status(agent_name: string, tail_count?: number, offset?: number, verbose_logs?: boolean)",
    "delete_agent(agent_name: string)",
    "interrupt_agent(agent_name: string)",
    "read_system_logs(offset?: number, limit?: number, message_contains?: string, level?: string)",
    "report_cost()",
    "start_adw(name_of_adw: string, workflow_type: string, prompt: string, description?: string)",
    "check_adw(adw_id: string, tail_count?: number, event_type?: string, include_step_details?: boolean)",
];

async fn health(State(state): State<AppState>) -> Json<Value> {
    let sockets = state.websockets().load(std::sync::atomic::Ordering::Relaxed);
    Json(json!({"status": "healthy", "service": "orchestrator-3-stream", "websocket_connections": sockets}))
}

async fn headers(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"status": "success", "cwd": state.working_dir().display().to_string()}))
}

async fn orchestrator(State(state): State<AppState>) -> SeedResult {
    let o = state.orchestrator().record().await?;
    let cwd = state.working_dir().display().to_string();
    let templates = state.engine().templates();
    let commands: Vec<Value> = templates
        .commands()
        .iter()
        .map(|c| {
            json!({"name": c.name, "description": c.description, "arguments": c.argument_hint, "model": c.model,
                   "allowed_tools": c.allowed_tools, "disable_model_invocation": c.disable_model_invocation})
        })
        .collect();
    let agent_templates: Vec<Value> =
        templates.agents().iter().map(|a| json!({"name": a.name, "description": a.description})).collect();
    let workflows: Vec<Value> = state
        .engine()
        .workflows()
        .types()
        .specs
        .iter()
        .map(|s| json!({"type": s.name, "display_name": s.name.replace('_', "-"), "description": s.description}))
        .collect();
    let mut metadata = if o.metadata.is_object() { o.metadata.clone() } else { json!({}) };
    metadata["system_message_info"] = json!({"session_id": o.session_id, "cwd": cwd});
    Ok(Json(json!({
        "status": "success",
        "orchestrator": {"id": o.id, "session_id": o.session_id, "status": o.status.as_str(), "working_dir": o.working_dir,
                         "input_tokens": o.usage.input_tokens, "output_tokens": o.usage.output_tokens,
                         "total_cost": o.total_cost_usd, "context_used": o.context_used,
                         "context_window": o.context_window, "metadata": metadata},
        "slash_commands": commands,
        "agent_templates": agent_templates,
        "orchestrator_tools": ORCHESTRATOR_TOOLS,
        "adw_workflows": workflows,
    })))
}

/// The seed's agent row.
fn agent_row(a: &Agent, log_count: usize) -> Value {
    let mut metadata = if a.metadata.is_object() { a.metadata.clone() } else { json!({}) };
    if let Some(t) = &a.template {
        metadata["template_name"] = json!(t.name);
        metadata["template_color"] = json!(t.color);
    }
    json!({
        "id": a.id, "orchestrator_agent_id": a.orchestrator_id, "name": a.name, "model": a.model,
        "system_prompt": a.system_prompt, "working_dir": a.working_dir, "git_worktree": Value::Null,
        "status": a.status.as_str(), "session_id": a.session_id, "adw_id": a.workflow_id, "adw_step": a.workflow_step,
        "input_tokens": a.usage.input_tokens, "output_tokens": a.usage.output_tokens, "total_cost": a.total_cost_usd,
        "context_used": a.context_used, "context_window": a.context_window,
        "archived": a.archived, "metadata": metadata, "created_at": a.created_at, "updated_at": a.updated_at,
        "log_count": log_count,
    })
}

async fn list_agents(State(state): State<AppState>) -> SeedResult {
    let store = state.engine().store();
    let filter = AgentFilter { orchestrator_id: Some(state.orchestrator().id()), include_archived: false };
    let mut agents = store.list_agents(&filter).await?;
    agents.retain(|a| !orch_core::orchestrator::is_orchestrator_agent(a));
    agents.sort_by_key(|a| std::cmp::Reverse(a.created_at));
    let mut rows = Vec::with_capacity(agents.len());
    for a in &agents {
        let q = EventQuery {
            agent_id: Some(a.id),
            categories: vec![EventCategory::Hook, EventCategory::Response],
            ..EventQuery::default()
        };
        let count = store.read_events(&q).await?.len();
        rows.push(agent_row(a, count));
    }
    Ok(Json(json!({"status": "success", "agents": rows})))
}

#[derive(Deserialize)]
struct LoadChat {
    orchestrator_agent_id: String,
    limit: Option<usize>,
}

/// The seed's chat row.
fn chat_row(m: &ChatMessage) -> Value {
    json!({"id": m.id, "orchestrator_agent_id": m.orchestrator_id, "sender_type": m.sender, "receiver_type": m.receiver,
           "message": m.message, "agent_id": m.agent_id, "metadata": m.metadata,
           "created_at": m.created_at, "updated_at": m.created_at})
}

async fn load_chat(State(state): State<AppState>, body: Result<Json<LoadChat>, JsonRejection>) -> SeedResult {
    let Json(req) = body.map_err(ApiError::from)?;
    let id = parse_id("orchestrator_agent_id", &req.orchestrator_agent_id)?;
    let limit = req.limit.unwrap_or(50).min(10_000);
    let messages = state.engine().store().list_chat(id, limit).await?;
    let turns = messages.iter().filter(|m| m.sender == orch_core::wire::Participant::User).count();
    Ok(Json(
        json!({"status": "success", "messages": messages.iter().map(chat_row).collect::<Vec<_>>(), "turn_count": turns}),
    ))
}

#[derive(Deserialize)]
struct SendChat {
    message: String,
    orchestrator_agent_id: String,
}

async fn send_chat(State(state): State<AppState>, body: Result<Json<SendChat>, JsonRejection>) -> SeedResult {
    let Json(req) = body.map_err(ApiError::from)?;
    let id = parse_id("orchestrator_agent_id", &req.orchestrator_agent_id)?;
    if id != state.orchestrator().id() {
        return Err(ApiError::not_found(format!("orchestrator {id} is not the one this server runs")).into());
    }
    if req.message.trim().is_empty() {
        return Err(ApiError::bad_request("the message is empty").into());
    }
    super::chat::spawn_turn(&state, req.message);
    Ok(Json(json!({"status": "success", "message": "Message received, processing with streaming"})))
}

#[derive(Deserialize)]
struct EventsQuery {
    agent_id: Option<String>,
    task_slug: Option<String>,
    event_types: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// The seed's agent_log row of an event.
fn agent_log_row(r: &EventRecord, agent_name: Option<&str>) -> Value {
    let payload = payload(r);
    json!({"id": r.seq.to_string(), "agent_id": r.keys.agent_id, "session_id": Value::Null, "task_slug": r.keys.task_slug,
           "adw_id": r.keys.workflow_id, "adw_step": r.keys.step, "entry_index": r.seq,
           "event_category": r.event.category().as_str(), "event_type": r.event.kind(), "content": r.event.summary(),
           "payload": payload, "summary": r.event.summary(), "timestamp": r.timestamp, "agent_name": agent_name,
           "sourceType": "agent_log"})
}

async fn get_events(State(state): State<AppState>, query: Result<Query<EventsQuery>, QueryRejection>) -> SeedResult {
    let Query(q) = query.map_err(ApiError::from)?;
    let limit = q.limit.unwrap_or(50).min(10_000);
    let offset = q.offset.unwrap_or(0);
    let agent_id = q.agent_id.as_deref().map(|a| parse_id("agent_id", a)).transpose()?;
    let kinds: Vec<String> = match q.event_types.as_deref().unwrap_or("all") {
        "all" => vec!["agent_logs".into(), "orchestrator_chat".into()],
        list => list.split(',').map(|s| s.trim().to_string()).collect(),
    };
    if let Some(bad) = kinds.iter().find(|k| !["agent_logs", "system_logs", "orchestrator_chat"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown event_types '{bad}' (all, agent_logs, system_logs, orchestrator_chat)"
        ))
        .into());
    }
    let store = state.engine().store();
    let mut merged: Vec<(chrono::DateTime<chrono::Utc>, Value)> = Vec::new();
    if kinds.iter().any(|k| k == "agent_logs") {
        let query = EventQuery {
            agent_id,
            task_slug: q.task_slug.clone(),
            categories: vec![EventCategory::Hook, EventCategory::Response],
            ..EventQuery::default()
        };
        let orchestrator_agent = state.orchestrator().agent_id();
        let mut logs = store.read_events(&query).await?;
        logs.retain(|r| r.keys.agent_id.is_some() && r.keys.agent_id != Some(orchestrator_agent));
        let mut names = std::collections::HashMap::new();
        for r in logs.iter().rev().skip(offset).take(limit) {
            let id = r.keys.agent_id.unwrap_or_default();
            if agent_id.is_none() && !names.contains_key(&id) {
                let name = store.get_agent(id).await?.map(|a| a.name);
                names.insert(id, name);
            }
            let name = names.get(&id).cloned().flatten();
            merged.push((r.timestamp, agent_log_row(r, name.as_deref())));
        }
    }
    if kinds.iter().any(|k| k == "orchestrator_chat") {
        let chat = store.list_chat(state.orchestrator().id(), offset + limit).await?;
        for m in chat.iter().rev().skip(offset).take(limit) {
            let mut row = chat_row(m);
            row["sourceType"] = json!("orchestrator_chat");
            merged.push((m.created_at, row));
        }
    }
    if kinds.iter().any(|k| k == "system_logs") {
        let logs = store.list_system_logs(&SystemLogQuery { offset, limit, ..SystemLogQuery::default() }).await?;
        for l in logs {
            merged.push((
                l.created_at,
                json!({"id": l.id, "file_path": l.file_path, "adw_id": l.workflow_id, "level": l.level, "message": l.message,
                       "summary": l.summary, "metadata": l.metadata, "timestamp": l.created_at, "sourceType": "system_log"}),
            ));
        }
    }
    // Newest first, cut to the limit, then oldest first (as the seed answers).
    merged.sort_by_key(|m| std::cmp::Reverse(m.0));
    merged.truncate(limit);
    merged.reverse();
    let events: Vec<Value> = merged.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({"status": "success", "count": events.len(), "events": events})))
}

#[derive(Deserialize)]
struct ListAdws {
    orchestrator_agent_id: String,
    status: Option<String>,
    limit: Option<usize>,
}

/// The seed's ADW list row.
fn adw_list_row(w: &WorkflowRecord) -> Value {
    let mut row = adw_row(w);
    if let Some(o) = row.as_object_mut() {
        for k in ["input_data", "output_data", "error_step", "error_count", "metadata"] {
            o.remove(k);
        }
    }
    row
}

async fn list_adws(State(state): State<AppState>, body: Result<Json<ListAdws>, JsonRejection>) -> SeedResult {
    let Json(req) = body.map_err(ApiError::from)?;
    let id = parse_id("orchestrator_agent_id", &req.orchestrator_agent_id)?;
    let limit = req.limit.unwrap_or(20).min(10_000);
    // Runs of this orchestrator, and the runs started outside any (by `orch adw start`).
    let mut runs = state.engine().store().list_workflows(None, 10_000).await?;
    runs.retain(|w| w.orchestrator_id.is_none_or(|o| o == id));
    if let Some(s) = &req.status {
        runs.retain(|w| w.status.as_str() == s);
    }
    runs.truncate(limit);
    let rows: Vec<Value> = runs.iter().map(adw_list_row).collect();
    Ok(Json(json!({"status": "success", "count": rows.len(), "adws": rows})))
}

async fn load_adw(state: &AppState, id: &str) -> Result<WorkflowRecord, SeedError> {
    let id = parse_id("adw id", id)?;
    state
        .engine()
        .store()
        .get_workflow(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ADW not found: {id}")).into())
}

async fn get_adw(State(state): State<AppState>, Path(id): Path<String>) -> SeedResult {
    let w = load_adw(&state, &id).await?;
    Ok(Json(json!({"status": "success", "adw": adw_row(&w)})))
}

#[derive(Deserialize)]
struct AdwEvents {
    #[allow(dead_code)]
    adw_id: String,
    limit: Option<usize>,
    event_type: Option<String>,
    include_payload: Option<bool>,
}

/// The seed's AdwEvent row of an event.
fn adw_event_row(r: &EventRecord, include_payload: bool) -> Value {
    let payload = payload(r);
    json!({"id": r.seq.to_string(), "agent_id": r.keys.agent_id, "adw_id": r.keys.workflow_id, "adw_step": r.keys.step,
           "event_category": r.event.category().as_str(), "event_type": r.event.kind(), "summary": r.event.summary(),
           "payload": if include_payload { payload } else { Value::Null }, "timestamp": r.timestamp})
}

async fn adw_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<AdwEvents>, JsonRejection>,
) -> SeedResult {
    let Json(req) = body.map_err(ApiError::from)?;
    let w = load_adw(&state, &id).await?;
    let limit = req.limit.unwrap_or(2000).min(10_000);
    let mut query = EventQuery { workflow_id: Some(w.id), ..EventQuery::default() };
    if let Some(t) = req.event_type.clone().filter(|t| !t.is_empty()) {
        query.types = vec![t];
    }
    let mut events = state.engine().store().read_events(&query).await?;
    let skip = events.len().saturating_sub(limit);
    events.drain(..skip);
    let include = req.include_payload.unwrap_or(true);
    let rows: Vec<Value> = events.iter().map(|r| adw_event_row(r, include)).collect();
    let mut by_step: serde_json::Map<String, Value> = serde_json::Map::new();
    for row in &rows {
        let step = row["adw_step"].as_str().unwrap_or("_workflow").to_string();
        if let Some(list) = by_step.entry(step).or_insert_with(|| json!([])).as_array_mut() {
            list.push(row.clone());
        }
    }
    Ok(Json(
        json!({"status": "success", "adw_id": w.id, "events": rows, "events_by_step": by_step, "count": rows.len()}),
    ))
}

async fn adw_summary(State(state): State<AppState>, Path(id): Path<String>) -> SeedResult {
    let w = load_adw(&state, &id).await?;
    let (steps, total) = step_summary(&state, &w).await?;
    Ok(Json(json!({"status": "success", "adw": adw_row(&w), "steps": steps, "total_events": total})))
}

/// A workflow run's steps in order: each with its event count, counts by event type, its agent, and
/// when it started and ended; and the run's event count.
pub(super) async fn step_summary(state: &AppState, w: &WorkflowRecord) -> Result<(Vec<Value>, usize), ApiError> {
    let events =
        state.engine().store().read_events(&EventQuery { workflow_id: Some(w.id), ..EventQuery::default() }).await?;
    let mut steps: Vec<Value> = Vec::new();
    for r in &events {
        let Some(step) = r.keys.step.clone() else { continue };
        let i = match steps.iter().position(|s| s["step"] == step.as_str()) {
            Some(i) => i,
            None => {
                steps.push(json!({"step": step, "event_count": 0, "event_types": {}, "agent_id": Value::Null,
                                  "started_at": Value::Null, "ended_at": Value::Null}));
                steps.len() - 1
            }
        };
        let s = &mut steps[i];
        s["event_count"] = json!(s["event_count"].as_u64().unwrap_or(0) + 1);
        let kind = r.event.kind().to_string();
        s["event_types"][&kind] = json!(s["event_types"][&kind].as_u64().unwrap_or(0) + 1);
        match &r.event {
            orch_core::wire::Event::StepStart { .. } => {
                s["started_at"] = json!(r.timestamp);
                s["agent_id"] = json!(r.keys.agent_id);
            }
            orch_core::wire::Event::StepEnd { .. } => s["ended_at"] = json!(r.timestamp),
            _ => {}
        }
    }
    Ok((steps, events.len()))
}

#[derive(Deserialize)]
struct AutocompleteGenerate {
    user_input: String,
    orchestrator_agent_id: String,
}

/// The seed's answer: suggestions from the autocomplete expert; `status: "error"` with none (still
/// 200) when the orchestrator id is not this server's, as the seed answers.
async fn autocomplete_generate(
    State(state): State<AppState>,
    body: Result<Json<AutocompleteGenerate>, JsonRejection>,
) -> SeedResult {
    let Json(req) = body.map_err(ApiError::from)?;
    let now = chrono::Utc::now().to_rfc3339();
    let mine = req.orchestrator_agent_id.trim() == state.orchestrator().id().to_string();
    if !mine {
        return Ok(Json(json!({"status": "error", "autocompletes": [], "total_items": 0,
                              "orchestrator_agent_id": req.orchestrator_agent_id, "timestamp": now,
                              "error": "the orchestrator_agent_id is not this server's orchestrator"})));
    }
    let items = super::autocomplete::suggest(&state, &req.user_input).await;
    Ok(Json(json!({"status": "success", "total_items": items.len(), "autocompletes": items,
                   "orchestrator_agent_id": req.orchestrator_agent_id, "timestamp": now})))
}

#[derive(Deserialize)]
struct AutocompleteUpdate {
    #[allow(dead_code)]
    orchestrator_agent_id: String,
    completion_type: String,
    user_input_on_enter: Option<String>,
    user_input_before_completion: Option<String>,
    autocomplete_item: Option<String>,
    reasoning: Option<String>,
}

/// Validated as the seed does (422 when a field its type needs is missing).
async fn autocomplete_update(
    State(state): State<AppState>,
    body: Result<Json<AutocompleteUpdate>, JsonRejection>,
) -> SeedResult {
    let Json(req) = body.map_err(ApiError::from)?;
    let unprocessable = |m: &str| -> SeedError {
        ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m.to_string()).into()
    };
    let kind = req.completion_type.clone();
    let feedback = match (kind.as_str(), req) {
        ("none", AutocompleteUpdate { user_input_on_enter: Some(user_input_on_enter), .. }) => {
            Feedback::None { user_input_on_enter }
        }
        ("none", _) => return Err(unprocessable("completion_type 'none' needs user_input_on_enter")),
        (
            "autocomplete",
            AutocompleteUpdate {
                user_input_before_completion: Some(user_input_before_completion),
                autocomplete_item: Some(autocomplete_item),
                reasoning: Some(reasoning),
                ..
            },
        ) => Feedback::Autocomplete { user_input_before_completion, autocomplete_item, reasoning },
        ("autocomplete", _) => {
            return Err(unprocessable(
                "completion_type 'autocomplete' needs user_input_before_completion, autocomplete_item and reasoning",
            ));
        }
        (other, _) => return Err(unprocessable(&format!("completion_type '{other}': none or autocomplete"))),
    };
    // Without a model nothing is learned, and the seed's dashboard is still told it went well.
    if state.autocomplete().is_some() {
        super::autocomplete::remember(&state, feedback)?;
    }
    Ok(Json(json!({"status": "success"})))
}
