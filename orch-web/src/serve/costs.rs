//! Usage, costs and budgets under `/api`, and what the command input can insert: templates and slash
//! commands.
//!
//! Costs are summed from the log's cost events (`AgentCostsUpdated` per model call,
//! `OrchestratorCostsUpdated` per orchestrator turn), so every figure has its events behind it and a
//! time window is a filter: by agent, model, workflow run, task graph and UTC day.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::NaiveDate;
use orch_core::store::{AgentFilter, EventQuery};
use orch_core::wire::{BudgetScope, Event, Id, Usage, now};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::graphs::optional_body;
use super::state::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// The routes of costs, budgets, templates and slash commands (nested under `/api`), documented.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(costs))
        .routes(routes!(budgets, set_budgets))
        .routes(routes!(templates))
        .routes(routes!(commands))
}

/// Filters of `GET /api/costs`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CostsQuery {
    /// From this UTC day on (`YYYY-MM-DD`).
    from: Option<String>,
    /// Up to and including this UTC day.
    to: Option<String>,
    /// The width of `series`' buckets: `day` (the default) or `hour`.
    bucket: Option<String>,
}

/// One line of a breakdown.
#[derive(Debug, Default, Clone, Serialize)]
struct Line {
    cost_usd: f64,
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
}

impl Line {
    fn add(&mut self, cost: f64, usage: &Usage) {
        self.cost_usd += cost;
        self.calls += 1;
        self.input_tokens += usage.input_tokens;
        self.output_tokens += usage.output_tokens;
        self.cache_read_tokens += usage.cache_read_input_tokens;
        self.cache_write_tokens += usage.cache_creation_input_tokens;
    }
}

fn day(text: &str, what: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request(format!("{what} '{text}' is not a day (YYYY-MM-DD)")))
}

/// `GET /api/costs`: totals by agent (name), model, workflow run and UTC day within the window, and
/// each task graph's total (its row's, which external agents' reported costs are part of).
#[utoipa::path(
    get,
    path = "/costs",
    tag = "costs",
    summary = "Cost, calls and tokens by agent, model, workflow run, graph and UTC day",
    params(CostsQuery),
    responses((status = 200, description = "`total`, `by_agent`, `by_model`, `by_workflow`, `by_graph`, `by_day`, and \
        `series`: cost over time, `{\"bucket\": \"day\"|\"hour\", \"by_agent\": {NAME: {BUCKET: USD}}, \"by_model\": {MODEL: {BUCKET: USD}}}` \
        (a bucket is `YYYY-MM-DD` or `YYYY-MM-DDTHH`, UTC; buckets without calls are left out)", body = Object))
)]
async fn costs(
    State(state): State<AppState>,
    query: Result<Query<CostsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query?;
    let from = q.from.as_deref().map(|d| day(d, "from")).transpose()?;
    let to = q.to.as_deref().map(|d| day(d, "to")).transpose()?;
    let bucket_format = match q.bucket.as_deref().map(str::trim) {
        None | Some("day") => "%Y-%m-%d",
        Some("hour") => "%Y-%m-%dT%H",
        Some(other) => return Err(ApiError::bad_request(format!("bucket '{other}': expected day or hour"))),
    };
    let store = state.engine().store();
    let events = store
        .read_events(&EventQuery {
            types: vec!["AgentCostsUpdated".into(), "OrchestratorCostsUpdated".into()],
            ..EventQuery::default()
        })
        .await?;
    let agents: HashMap<Id, orch_core::wire::Agent> = store
        .list_agents(&AgentFilter { include_archived: true, ..AgentFilter::default() })
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut total = Line::default();
    let (mut by_agent, mut by_model, mut by_workflow, mut graph_calls, mut by_day) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::<String, Line>::new(), BTreeMap::new());
    // Cost over time: series name → bucket → USD.
    type Series = BTreeMap<String, BTreeMap<String, f64>>;
    let (mut agent_series, mut model_series) = (Series::new(), Series::new());
    for e in &events {
        let date = e.timestamp.date_naive();
        if from.is_some_and(|f| date < f) || to.is_some_and(|t| date > t) {
            continue;
        }
        let (agent, model, cost, usage) = match &e.event {
            Event::AgentCostsUpdated { model, usage, cost_usd, .. } => {
                let agent = e.keys.agent_id.and_then(|id| agents.get(&id));
                let name = agent.map_or_else(|| "?".to_string(), |a| a.name.clone());
                if let Some(g) = agent.and_then(|a| a.metadata.get("graph_id")).and_then(Value::as_str) {
                    graph_calls.entry(g.to_string()).or_default().add(*cost_usd, usage);
                }
                (name, model.clone(), *cost_usd, usage)
            }
            Event::OrchestratorCostsUpdated { usage, cost_usd, .. } => {
                ("orchestrator".to_string(), "orchestrator".to_string(), *cost_usd, usage)
            }
            _ => continue,
        };
        total.add(cost, usage);
        let bucket = e.timestamp.format(bucket_format).to_string();
        *agent_series.entry(agent.clone()).or_default().entry(bucket.clone()).or_default() += cost;
        *model_series.entry(model.clone()).or_default().entry(bucket).or_default() += cost;
        by_agent.entry(agent).or_insert_with(Line::default).add(cost, usage);
        by_model.entry(model).or_insert_with(Line::default).add(cost, usage);
        if let Some(w) = e.keys.workflow_id {
            by_workflow.entry(w.to_string()).or_insert_with(Line::default).add(cost, usage);
        }
        by_day.entry(date.format("%Y-%m-%d").to_string()).or_insert_with(Line::default).add(cost, usage);
    }
    // A graph's own total also counts what external agents reported (they make no model calls here);
    // its calls and tokens are those of orch's own agents within the window.
    let mut by_graph = serde_json::Map::new();
    for g in store.list_graphs(1000).await? {
        let calls = graph_calls.remove(&g.id.to_string()).unwrap_or_default();
        if g.cost_usd > 0.0 || calls.calls > 0 {
            let mut line = serde_json::to_value(&calls).unwrap_or_default();
            line["cost_usd"] = json!(g.cost_usd);
            line["name"] = json!(g.name);
            by_graph.insert(g.id.to_string(), line);
        }
    }
    Ok(Json(json!({
        "total": total,
        "by_agent": by_agent,
        "by_model": by_model,
        "by_workflow": by_workflow,
        "by_graph": by_graph,
        "by_day": by_day,
        "series": {
            "bucket": if bucket_format.ends_with("%H") { "hour" } else { "day" },
            "by_agent": agent_series,
            "by_model": model_series,
        },
    })))
}

/// Today's and this month's spending and limits, and each task graph's.
async fn budget_view(state: &AppState) -> ApiResult<Value> {
    let at = now();
    let store = state.engine().store();
    let status = store.budget(&at.format("%Y-%m-%d").to_string(), &at.format("%Y-%m").to_string()).await?;
    let graphs: Vec<Value> = store
        .list_graphs(200)
        .await?
        .into_iter()
        .filter(|g| g.cost_usd > 0.0 || g.budget_usd.is_some())
        .map(|g| {
            json!({"graph_id": g.id, "name": g.name, "status": g.status, "cost_usd": g.cost_usd,
                   "budget_usd": g.budget_usd})
        })
        .collect();
    Ok(json!({"daily": status.daily, "monthly": status.monthly, "graphs": graphs}))
}

#[utoipa::path(
    get,
    path = "/budgets",
    tag = "costs",
    summary = "Today's and this month's spending and limits, and each graph's",
    responses((status = 200, description = "`daily`, `monthly`, `graphs`", body = Object))
)]
async fn budgets(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(budget_view(&state).await?))
}

/// `PUT /api/budgets`: sets the daily and/or monthly USD limit; `null` removes one, a missing key
/// leaves it as it is.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetBudgets {
    #[serde(default, deserialize_with = "present")]
    daily_usd: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    monthly_usd: Option<Option<f64>>,
}

/// A key that is present (`Some`), with `null` as `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

#[utoipa::path(
    put,
    path = "/budgets",
    tag = "costs",
    summary = "Sets the daily and/or monthly USD limit (null removes one)",
    request_body = inline(SetBudgets),
    responses((status = 200, description = "`daily`, `monthly`, `graphs`", body = Object))
)]
async fn set_budgets(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    let req: SetBudgets = optional_body(&body)?;
    if req.daily_usd.is_none() && req.monthly_usd.is_none() {
        return Err(ApiError::bad_request("give daily_usd and/or monthly_usd (a number of USD, or null for none)"));
    }
    for (scope, limit, key) in
        [(BudgetScope::Daily, req.daily_usd, "daily_usd"), (BudgetScope::Monthly, req.monthly_usd, "monthly_usd")]
    {
        let Some(limit) = limit else { continue };
        if let Some(x) = limit.filter(|x| !x.is_finite() || *x < 0.0) {
            return Err(ApiError::bad_request(format!("{key} {x} is not a number of USD (0 or more)")));
        }
        state.graphs().set_limit(scope, limit).await?;
    }
    Ok(Json(budget_view(&state).await?))
}

/// `GET /api/templates`: the agent templates of `.claude/agents`, and the files skipped with why.
#[utoipa::path(
    get,
    path = "/templates",
    tag = "templates",
    summary = "The agent templates of .claude/agents",
    responses((status = 200, description = "`templates` and `problems`", body = Object))
)]
async fn templates(State(state): State<AppState>) -> Json<Value> {
    let t = state.engine().templates();
    Json(json!({"templates": t.agent_summaries(), "problems": t.problems()}))
}

/// `GET /api/commands`: the slash commands of `.claude/commands`.
#[utoipa::path(
    get,
    path = "/commands",
    tag = "templates",
    summary = "The slash commands of .claude/commands",
    responses((status = 200, description = "`commands` and `problems`", body = Object))
)]
async fn commands(State(state): State<AppState>) -> Json<Value> {
    let t = state.engine().templates();
    Json(json!({"commands": t.command_summaries(), "problems": t.problems()}))
}
