//! Suggestions for the command input (the autocomplete expert, see
//! `orch_core::orchestrator::autocomplete`), shared by the seed's `/autocomplete-generate` and
//! `/autocomplete-update` and orch's `/api/autocomplete`. Each query is announced by two log events
//! (`SystemLog` with `metadata.autocomplete` = `started` / `completed`), which reach the seed's
//! dashboard as its `autocomplete_started` / `autocomplete_completed` frames; `completed` is appended
//! however the query ended.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use orch_core::orchestrator::autocomplete::{Context, Feedback, Suggestion};
use orch_core::store::{AgentFilter, Batch};
use orch_core::wire::{Event, EventKeys, LogLevel};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::state::AppState;

/// What the model may complete with: the live agents, slash commands and agent templates.
async fn context(state: &AppState) -> Context {
    let agents = match state.engine().store().list_agents(&AgentFilter::default()).await {
        Ok(a) => a.into_iter().map(|a| a.name).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "autocomplete: could not list the agents");
            Vec::new()
        }
    };
    let templates = state.engine().templates();
    Context {
        agents,
        commands: templates.command_summaries().into_iter().map(|c| format!("/{}", c.name)).collect(),
        templates: templates.agent_summaries().into_iter().map(|t| t.name).collect(),
    }
}

async fn announce(state: &AppState, phase: &str, input: &str) {
    let orchestrator = state.orchestrator().id();
    let keys = EventKeys { orchestrator_id: Some(orchestrator), ..EventKeys::default() };
    let user_input: String = input.chars().take(100).collect();
    let event = Event::SystemLog {
        level: LogLevel::Debug,
        message: format!("autocomplete {phase}"),
        metadata: json!({"autocomplete": phase, "user_input": user_input}),
    };
    if let Err(e) = state.engine().store().commit(Batch::new().event(keys, event)).await {
        tracing::warn!(error = %e, "autocomplete: could not record the query");
    }
}

/// Suggestions for `input` (none when no model is configured or the query failed or was overtaken).
pub async fn suggest(state: &AppState, input: &str) -> Vec<Suggestion> {
    let Some(expert) = state.autocomplete() else { return Vec::new() };
    announce(state, "started", input).await;
    let context = context(state).await;
    let id = state.orchestrator().id().to_string();
    let out = match expert.suggest(&id, input, &context).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, model = expert.model(), "autocomplete query failed");
            Vec::new()
        }
    };
    announce(state, "completed", input).await;
    out
}

/// Remembers what a person did with the suggestions (refused with 503 when no model is configured).
pub fn remember(state: &AppState, feedback: Feedback) -> Result<(), ApiError> {
    let expert = state.autocomplete().ok_or_else(|| {
        ApiError::of_kind(orch_core::ErrorKind::Unavailable, "autocomplete has no model (set models.autocomplete)")
    })?;
    let id = state.orchestrator().id().to_string();
    expert.remember(&id, feedback).map_err(|e| ApiError::of_kind(e.kind(), e.to_string()))
}

/// The routes of `/api/autocomplete` (nested under `/api`), documented.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(generate)).routes(routes!(feedback))
}

/// `POST /api/autocomplete`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Generate {
    /// What the person has typed so far.
    input: String,
}

#[utoipa::path(
    post,
    path = "/autocomplete",
    tag = "orchestrator",
    summary = "Up to 3 suggestions to continue the command input (none when no model is configured)",
    request_body = inline(Generate),
    responses((status = 200, description = "`suggestions`: each `completion` and `reasoning`", body = Object))
)]
async fn generate(
    State(state): State<AppState>,
    body: Result<Json<Generate>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body?;
    let suggestions = suggest(&state, &req.input).await;
    Ok(Json(json!({"suggestions": suggestions})))
}

#[utoipa::path(
    post,
    path = "/autocomplete/feedback",
    tag = "orchestrator",
    summary = "Remembers an accepted suggestion (`autocomplete`) or input sent instead (`none`)",
    request_body(content = Object, description = "`{completion_type: \"none\", user_input_on_enter}` or \
`{completion_type: \"autocomplete\", user_input_before_completion, autocomplete_item, reasoning}`"),
    responses((status = 200, description = "remembered", body = Object))
)]
async fn feedback(
    State(state): State<AppState>,
    body: Result<Json<Feedback>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(f) = body?;
    remember(&state, f)?;
    Ok(Json(json!({"status": "success"})))
}
