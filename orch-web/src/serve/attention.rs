//! A person in the loop, over HTTP: the attention inbox (`GET /api/attention`), the parked tool calls
//! (`/api/approvals`) and their resolution (approve, deny with a reason, answer), and the follower
//! that continues, in this server, the runs people resolve from other processes (`orch approve`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures::StreamExt;
use orch_core::approval::{Approval, ApprovalError, Approvals};
use orch_core::graph::run::{forget_gone_workers, this_process};
use orch_core::store::{Batch, Change, EventQuery, Store};
use orch_core::wire::{ApprovalDecision, Event, Id, WorkerRole, now};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, parse_id};
use super::graphs::optional_body;
use super::state::AppState;

type ApiResult<T> = Result<T, ApiError>;

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        Self::of_kind(e.kind(), e.to_string())
    }
}

/// The routes of the inbox and the approvals (under `/api`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(attention))
        .routes(routes!(list_approvals))
        .routes(routes!(get_approval))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(answer))
}

fn approvals(state: &AppState) -> Approvals {
    Approvals::new(state.engine().supervisor().clone())
}

/// Everything waiting for a person, oldest first.
#[utoipa::path(
    get,
    path = "/attention",
    tag = "attention",
    summary = "Everything waiting for a person, oldest first: approvals, questions, checkpoints, failed runs",
    responses((status = 200, description = "`count` and `items` (kind, id, agent/graph/workflow ids and names, question, tool, input, created_at)", body = Object))
)]
async fn attention(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let items = approvals(&state).attention().await?;
    Ok(Json(json!({"count": items.len(), "items": items})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Resolved ones too.
    #[serde(default)]
    all: bool,
}

/// An approval as JSON.
fn to_json(a: &Approval) -> Value {
    let resolution =
        a.resolution.as_ref().map(|r| json!({"decision": r.decision, "text": r.text, "by": r.by, "at": r.at}));
    json!({
        "id": a.id,
        "agent_id": a.agent_id,
        "agent_name": a.agent_name,
        "workflow_id": a.workflow_id,
        "tool": a.tool_name,
        "input": a.tool_input,
        "tool_use_id": a.tool_use_id,
        "question": a.question,
        "created_at": a.requested_at,
        "seq": a.seq,
        "status": a.resolution.as_ref().map_or("pending", |r| r.decision.past()),
        "resolution": resolution,
    })
}

/// The parked tool calls waiting for a person (`?all=true`: resolved ones too), oldest first.
#[utoipa::path(
    get,
    path = "/approvals",
    tag = "attention",
    summary = "Parked tool calls waiting for a person (all=true: resolved ones too), oldest first",
    params(ListQuery),
    responses((status = 200, description = "`approvals`", body = Object))
)]
async fn list_approvals(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let list = if q.all { approvals(&state).list(false).await? } else { approvals(&state).pending().await? };
    Ok(Json(json!({"approvals": list.iter().map(to_json).collect::<Vec<_>>()})))
}

#[utoipa::path(
    get,
    path = "/approvals/{id}",
    tag = "attention",
    summary = "One approval, pending or resolved",
    params(("id" = String, Path, description = "the approval's id")),
    responses((status = 200, description = "the approval", body = Object))
)]
async fn get_approval(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_id("approval", &id)?;
    Ok(Json(to_json(&approvals(&state).get(id).await?)))
}

/// `POST /api/approvals/{id}/deny`: why (the model gets it as the tool's error).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Deny {
    reason: Option<String>,
}

/// `POST /api/approvals/{id}/answer`: the answer (the model gets it as the tool's result).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Answer {
    answer: Option<String>,
}

/// Records the decision and continues the run in this server's background.
async fn resolve(
    state: &AppState,
    id: &str,
    decision: ApprovalDecision,
    text: Option<String>,
) -> ApiResult<Json<Value>> {
    let id: Id = parse_id("approval", id)?;
    let resolved = approvals(state).resolve(id, decision, text, "api").await?;
    let approval = to_json(&resolved.approval);
    let ticket = resolved.continue_in_background(state.engine().supervisor());
    Ok(Json(
        json!({"approval": approval, "agent_id": ticket.agent_id, "agent_name": ticket.agent_name, "continued": true}),
    ))
}

/// Approves: the tool runs with the input shown, and the run continues.
#[utoipa::path(
    post,
    path = "/approvals/{id}/approve",
    tag = "attention",
    summary = "Approves a parked tool call: it runs and the agent's turn continues",
    params(("id" = String, Path, description = "the approval's id")),
    responses((status = 200, description = "`approval` (as resolved), `agent_id`, `agent_name`", body = Object))
)]
async fn approve(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    resolve(&state, &id, ApprovalDecision::Approve, None).await
}

/// Denies, with an optional `reason` the model gets as the tool's error.
#[utoipa::path(
    post,
    path = "/approvals/{id}/deny",
    tag = "attention",
    summary = "Denies a parked tool call: the model gets the reason as the tool's error",
    params(("id" = String, Path, description = "the approval's id")),
    request_body = inline(Deny),
    responses((status = 200, description = "`approval` (as resolved), `agent_id`, `agent_name`", body = Object))
)]
async fn deny(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let Deny { reason } = optional_body(&body)?;
    resolve(&state, &id, ApprovalDecision::Deny, reason).await
}

/// Answers: the model gets `answer` as the tool's result; the tool does not run.
#[utoipa::path(
    post,
    path = "/approvals/{id}/answer",
    tag = "attention",
    summary = "Answers a parked tool call or question: the model gets the answer as the tool's result",
    params(("id" = String, Path, description = "the approval's id")),
    request_body = inline(Answer),
    responses((status = 200, description = "`approval` (as resolved), `agent_id`, `agent_name`", body = Object))
)]
async fn answer(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    let Answer { answer } = optional_body(&body)?;
    let Some(text) = answer.filter(|a| !a.trim().is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "send {\"answer\": \"…\"} with a non-empty answer",
        ));
    };
    resolve(&state, &id, ApprovalDecision::Answer, Some(text)).await
}

/// This server's row in the store's heartbeat table ([`WorkerRole::Server`]): while it beats, `orch
/// approve` in another process knows a server will continue the run it decided and waits for it; with
/// no such row it continues the run itself at once.
pub struct Presence {
    id: String,
    store: Arc<dyn Store>,
    task: tokio::task::AbortHandle,
}

impl Presence {
    /// Stops beating and removes the row, so no process waits for this server any longer.
    pub async fn remove(self) {
        self.task.abort();
        let gone = Batch::new().change(Change::RemoveWorker { id: self.id });
        if let Err(e) = self.store.commit(gone).await {
            tracing::warn!(error = %e, "could not remove the server's presence row");
        }
    }
}

/// Continues, in this server, the runs people resolved while no process continued them (before it
/// started), and from now on those resolved by other processes (`orch approve --no-wait`, another
/// server): each `ApprovalResolved` appended elsewhere is followed by a claim of its agent here.
///
/// While it follows, it beats the server's [`Presence`] row every `beat` (none when the log cannot be
/// followed: then no process should wait for this server).
pub async fn follow(state: &AppState, beat: Duration) -> Option<Presence> {
    let store = state.engine().store().clone();
    let since = match store.last_seq().await {
        Ok(seq) => seq,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow the log for resolved approvals");
            return None;
        }
    };
    let only = EventQuery { types: vec!["ApprovalResolved".into()], ..EventQuery::default() };
    let mut stream = store.subscribe_foreign(since, only);
    // The row goes in before the runs resolved earlier are taken up, so a decision made from now on
    // is waited for.
    let mut row = this_process(WorkerRole::Server, 0);
    let id = row.id.clone();
    let first = Batch::new().change(Change::Heartbeat(Box::new(row.clone()))).change(forget_gone_workers());
    if let Err(e) = store.commit(first).await {
        tracing::warn!(error = %e, "could not record the server's presence");
    }
    match approvals(state).awaiting_continuation().await {
        Ok(ids) => {
            for id in ids {
                continue_resolved(state, id).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not list the resolved approvals to continue"),
    }
    let state = state.clone();
    let beats = store.clone();
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(rec)) => {
                        if let Event::ApprovalResolved { approval, .. } = rec.event {
                            continue_resolved(&state, approval).await;
                        }
                    }
                    Some(Err(e)) => {
                        // The row goes stale: other processes stop waiting for this server.
                        tracing::warn!(error = %e, "stopped following the log for resolved approvals");
                        return;
                    }
                    None => return,
                },
                _ = ticker.tick() => {
                    row.heartbeat_at = now();
                    let batch = Batch::new().change(Change::Heartbeat(Box::new(row.clone()))).relaxed();
                    if let Err(e) = beats.commit(batch).await {
                        tracing::warn!(error = %e, "the server's presence heartbeat failed");
                    }
                }
            }
        }
    });
    Some(Presence { id, store, task: task.abort_handle() })
}

/// Continues the run of a resolved approval here, unless another process does or it was continued.
async fn continue_resolved(state: &AppState, id: Id) {
    match approvals(state).claim_resolved(id).await {
        Ok(Some(resolved)) => {
            eprintln!("orch serve: continuing agent {} after approval {id}", resolved.agent.name);
            resolved.continue_in_background(state.engine().supervisor());
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, approval = %id, "could not continue a resolved approval"),
    }
}
