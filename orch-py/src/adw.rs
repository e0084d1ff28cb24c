//! The records behind `orch.adw` (the seed's `adw_database` and `adw_logging` names): workflow runs,
//! their agents, steps, events and system logs, written as real records and events of the engine's
//! store, so `orch serve` on the same store shows an ADW script's run as it shows its own.

use orch_core::store::{Batch, Change, EventQuery};
use orch_core::wire::{
    Agent, AgentStatus, Event, EventKeys, Id, LogLevel, StepStatus, Usage, WorkflowRecord, WorkflowStatus, now,
};
use pyo3::prelude::*;
use serde_json::{Map, Value, json};

use crate::bridge::{blocking, from_py, to_py};
use crate::core::Shared;
use crate::engine::Engine;
use crate::error::Failure;

/// A value of a string enum (`"in_progress"`, `"INFO"`, …) or a usage error naming what it is.
fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, Failure> {
    serde_json::from_value(json!(text)).map_err(|_| Failure::usage(format!("'{text}' is not a {what}")))
}

fn id(what: &str, text: &str) -> Result<Id, Failure> {
    text.trim().parse().map_err(|_| Failure::usage(format!("'{text}' is not a {what} id (a UUID)")))
}

fn optional_json(value: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    match value {
        Some(v) if !v.is_none() => from_py(v),
        _ => Ok(Value::Object(Map::new())),
    }
}

/// Commits `event` under `keys`; its seq as text (the seed's log id).
async fn append(core: &Shared, keys: EventKeys, event: Event) -> Result<String, Failure> {
    let records = core.engine.store().commit(Batch::new().event(keys, event)).await?;
    Ok(records.first().map(|r| r.seq.to_string()).unwrap_or_default())
}

/// The keys of an event of run `adw_id` at `step`, of `agent_id` when given.
fn keys(adw_id: Option<&str>, step: Option<String>, agent_id: Option<&str>) -> Result<EventKeys, Failure> {
    Ok(EventKeys {
        workflow_id: adw_id.map(|a| id("workflow run", a)).transpose()?,
        agent_id: agent_id.map(|a| id("agent", a)).transpose()?,
        step,
        ..EventKeys::default()
    })
}

/// A run's record as the seed's `ai_developer_workflows` row (`adw_name`, `orchestrator_agent_id`).
fn seed_row(record: &WorkflowRecord) -> Result<Value, Failure> {
    let mut v = serde_json::to_value(record)
        .map_err(|e| Failure::new(orch_core::ErrorKind::Internal, format!("cannot encode a run: {e}")))?;
    if let Value::Object(m) = &mut v {
        m.remove("run");
        if let Some(name) = m.remove("name") {
            m.insert("adw_name".into(), name);
        }
        if let Some(o) = m.remove("orchestrator_id") {
            m.insert("orchestrator_agent_id".into(), o);
        }
    }
    Ok(v)
}

/// Run `adw_id` as the seed's row, or None.
#[pyfunction]
pub fn adw_get<'py>(py: Python<'py>, engine: &Bound<'py, Engine>, adw_id: String) -> PyResult<Bound<'py, PyAny>> {
    let core = engine.get().core().clone();
    let row = blocking(py, async move {
        let Ok(run) = adw_id.trim().parse::<Id>() else { return Ok(None) };
        core.engine.store().get_workflow(run).await?.map(|r| seed_row(&r)).transpose()
    })?;
    to_py(py, &row.unwrap_or(Value::Null))
}

/// Records a pending run of `workflow_type` (as the seed's `start_adw` and manual trigger do); its id.
#[pyfunction]
#[pyo3(signature = (engine, workflow_type, input_data=None, adw_name=None))]
pub fn adw_create(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    workflow_type: String,
    input_data: Option<&Bound<'_, PyAny>>,
    adw_name: Option<String>,
) -> PyResult<String> {
    let core = engine.get().core().clone();
    let input = optional_json(input_data)?;
    blocking(py, async move {
        let wf = core.workflows();
        let workflow = wf.workflow(&workflow_type)?;
        Ok(wf.create(workflow.as_ref(), input, adw_name, None).await?.id.to_string())
    })
}

/// Creates an agent of run `adw_id`'s step `adw_step` (the seed's `create_agent`); its id.
#[pyfunction]
#[pyo3(signature = (engine, orchestrator_agent_id, name, model, working_dir=None, adw_id=None, adw_step=None, agent_id=None))]
#[allow(clippy::too_many_arguments)]
pub fn adw_create_agent(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    orchestrator_agent_id: Option<String>,
    name: String,
    model: String,
    working_dir: Option<String>,
    adw_id: Option<String>,
    adw_step: Option<String>,
    agent_id: Option<String>,
) -> PyResult<String> {
    let core = engine.get().core().clone();
    blocking(py, async move {
        let dir = working_dir.unwrap_or_else(|| core.engine.working_dir().display().to_string());
        let mut agent = Agent::new(name, model, dir);
        if let Some(a) = agent_id {
            agent.id = id("agent", &a)?;
        }
        agent.orchestrator_id = orchestrator_agent_id.as_deref().and_then(|o| o.trim().parse().ok());
        agent.workflow_id = adw_id.as_deref().map(|a| id("workflow run", a)).transpose()?;
        agent.workflow_step = adw_step;
        Ok(core.engine.runner().create_agent(agent).await?.id.to_string())
    })
}

/// What the seed's `update_agent` may set.
pub struct AgentUpdate {
    status: Option<String>,
    session_id: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_cost: Option<f64>,
}

/// Overwrites agent `agent_id`'s status, session and totals (the seed's `update_agent`): a status
/// change is an `AgentStatusChanged` event, new totals an `AgentCostsUpdated` with the difference.
/// False when there is no such agent.
#[pyfunction]
#[pyo3(signature = (engine, agent_id, status=None, session_id=None, input_tokens=None, output_tokens=None, total_cost=None))]
#[allow(clippy::too_many_arguments)]
pub fn adw_update_agent(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    agent_id: String,
    status: Option<String>,
    session_id: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_cost: Option<f64>,
) -> PyResult<bool> {
    let core = engine.get().core().clone();
    let update = AgentUpdate { status, session_id, input_tokens, output_tokens, total_cost };
    blocking(py, update_agent(core, agent_id, update))
}

async fn update_agent(core: Shared, agent_id: String, u: AgentUpdate) -> Result<bool, Failure> {
    let id = id("agent", &agent_id)?;
    let Some(agent) = core.engine.store().get_agent(id).await? else { return Ok(false) };
    let keys = EventKeys {
        agent_id: Some(id),
        orchestrator_id: agent.orchestrator_id,
        workflow_id: agent.workflow_id,
        step: agent.workflow_step.clone(),
        ..EventKeys::default()
    };
    let mut batch = Batch::new();
    if let Some(s) = u.status {
        let new_status: AgentStatus = parse("agent status", &s)?;
        batch = batch
            .change(Change::SetAgentStatus { id, status: new_status })
            .event(keys.clone(), Event::AgentStatusChanged { old_status: agent.status, new_status });
    }
    if let Some(session) = u.session_id {
        let mut metadata = match agent.metadata.clone() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        metadata.insert("session_id".into(), json!(session));
        batch = batch.change(Change::SetAgentMetadata { id, metadata: Value::Object(metadata) });
    }
    if u.input_tokens.is_some() || u.output_tokens.is_some() || u.total_cost.is_some() {
        let total_usage = Usage {
            input_tokens: u.input_tokens.unwrap_or(agent.usage.input_tokens),
            output_tokens: u.output_tokens.unwrap_or(agent.usage.output_tokens),
            ..agent.usage
        };
        let total_cost_usd = u.total_cost.unwrap_or(agent.total_cost_usd);
        let usage = Usage {
            input_tokens: total_usage.input_tokens.saturating_sub(agent.usage.input_tokens),
            output_tokens: total_usage.output_tokens.saturating_sub(agent.usage.output_tokens),
            ..Usage::default()
        };
        let cost_usd = (total_cost_usd - agent.total_cost_usd).max(0.0);
        batch = batch.change(Change::AddAgentUsage { id, usage, cost_usd }).event(
            keys,
            Event::AgentCostsUpdated {
                model: agent.model.clone(),
                usage,
                cost_usd,
                total_usage,
                total_cost_usd,
                context_used: None,
                context_window: None,
            },
        );
    }
    core.engine.store().commit(batch).await?;
    Ok(true)
}

/// Records step `adw_step` of run `adw_id` starting (`end` false: `StepStart`, its prompt and model
/// from `payload`) or ending (`StepEnd` with `status`, `duration_ms` and `payload`); the event's seq.
#[pyfunction]
#[pyo3(signature = (engine, adw_id, adw_step, end, agent_id=None, payload=None, status="success".to_string(), duration_ms=None))]
#[allow(clippy::too_many_arguments)]
pub fn adw_log_step(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    adw_id: String,
    adw_step: String,
    end: bool,
    agent_id: Option<String>,
    payload: Option<&Bound<'_, PyAny>>,
    status: String,
    duration_ms: Option<u64>,
) -> PyResult<String> {
    let core = engine.get().core().clone();
    let payload = optional_json(payload)?;
    blocking(py, async move {
        let keys = keys(Some(&adw_id), Some(adw_step.clone()), agent_id.as_deref())?;
        let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let event = if end {
            let status: StepStatus = parse("step status", &status)?;
            Event::StepEnd { step_name: adw_step, status, duration_ms: duration_ms.unwrap_or(0), payload }
        } else {
            let prompt = ["prompt", "user_prompt", "plan_path"].iter().map(|k| text(k)).find(|p| !p.is_empty());
            Event::StepStart {
                step_name: adw_step,
                prompt: prompt.unwrap_or_default(),
                model: text("model"),
                attempt: 1,
            }
        };
        append(&core, keys, event).await
    })
}

/// The seed's block names for the wire's event types.
fn wire_type(seed_type: &str) -> &str {
    match seed_type {
        "TextBlock" => "Text",
        "ThinkingBlock" => "Thinking",
        "ToolUseBlock" => "ToolUse",
        other => other,
    }
}

/// The seq of the event the engine already recorded for what a seed script logs about its agent's
/// run (its hooks and message handlers see the run the engine records): the agent's `PreToolUse`,
/// `PostToolUse` and `ToolUse` of the same call, its `Text`/`Thinking` of the same text, its latest
/// `Stop`, or its latest `Result` for the seed's `result`. None when the engine has none (a script
/// logging events of its own).
async fn recorded_by_run(
    core: &Shared,
    keys: &EventKeys,
    seed_type: &str,
    payload: &Value,
) -> Result<Option<u64>, Failure> {
    let Some(agent_id) = keys.agent_id else { return Ok(None) };
    let kind = match seed_type {
        "result" => "Result",
        "PreToolUse" | "PostToolUse" | "Stop" | "TextBlock" | "ThinkingBlock" | "ToolUseBlock" => wire_type(seed_type),
        _ => return Ok(None),
    };
    let field = |k: &str| payload.get(k).and_then(Value::as_str);
    let q = EventQuery { agent_id: Some(agent_id), types: vec![kind.to_string()], ..EventQuery::default() };
    let records = core.engine.store().read_events(&q).await?;
    let found = records.iter().rev().find(|r| match &r.event {
        Event::PreToolUse { tool_use_id, .. }
        | Event::PostToolUse { tool_use_id, .. }
        | Event::ToolUse { tool_use_id, .. } => field("tool_use_id").is_none_or(|id| id == tool_use_id),
        Event::Text { text } => field("text").is_none_or(|t| t == text),
        Event::Thinking { thinking, .. } => field("thinking").is_none_or(|t| t == thinking),
        _ => true,
    });
    Ok(found.map(|r| r.seq))
}

/// Records an event of an ADW's agent (the seed's `log_adw_event`): nothing new when the engine
/// recorded it already, running the agent (its seq is returned; see [`recorded_by_run`]); else as the
/// wire's event of that type when `payload` has its fields (`PreToolUse`, `TextBlock` as `Text`, …), else as an event of the
/// seed's type keeping `content`, `event_category` and the payload; a `summary` follows as
/// `SummaryUpdated`. The event's seq.
#[pyfunction]
#[pyo3(signature = (engine, adw_id, adw_step, event_category, event_type, content, agent_id=None, payload=None, summary=None))]
#[allow(clippy::too_many_arguments)]
pub fn adw_log_event(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    adw_id: Option<String>,
    adw_step: Option<String>,
    event_category: String,
    event_type: String,
    content: Option<String>,
    agent_id: Option<String>,
    payload: Option<&Bound<'_, PyAny>>,
    summary: Option<String>,
) -> PyResult<String> {
    let core = engine.get().core().clone();
    let payload = optional_json(payload)?;
    blocking(py, async move {
        let keys = keys(adw_id.as_deref(), adw_step, agent_id.as_deref())?;
        if let Some(seq) = recorded_by_run(&core, &keys, &event_type, &payload).await? {
            if let Some(summary) = summary.filter(|s| !s.is_empty()) {
                append(&core, keys, Event::SummaryUpdated { target_seq: seq, summary }).await?;
            }
            return Ok(seq.to_string());
        }
        let mut fields = match payload {
            Value::Object(m) => m,
            other => Map::from_iter([("payload".to_string(), other)]),
        };
        let mut tagged = fields.clone();
        tagged.insert("type".into(), json!(wire_type(&event_type)));
        let event = match serde_json::from_value::<Event>(Value::Object(tagged)) {
            Ok(e) if Event::KINDS.contains(&e.kind()) && e.kind() != "Undecodable" => e,
            _ => {
                fields.insert("content".into(), json!(content));
                fields.insert("event_category".into(), json!(event_category));
                Event::Unknown(orch_core::wire::UnknownEvent::new(event_type, fields))
            }
        };
        let seq = append(&core, keys.clone(), event).await?;
        if let (Some(summary), Ok(target_seq)) = (summary.filter(|s| !s.is_empty()), seq.parse::<u64>()) {
            append(&core, keys, Event::SummaryUpdated { target_seq, summary }).await?;
        }
        Ok(seq)
    })
}

/// Records a system log line of run `adw_id` (the seed's `log_system_event`): `SystemLog` with
/// `level` (`DEBUG`, `INFO`, `WARNING`, `ERROR`) and `metadata` (with `file_path` when given).
#[pyfunction]
#[pyo3(signature = (engine, adw_id, adw_step, level, message, file_path=None, metadata=None))]
#[allow(clippy::too_many_arguments)]
pub fn adw_log_system(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    adw_id: Option<String>,
    adw_step: Option<String>,
    level: String,
    message: String,
    file_path: Option<String>,
    metadata: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let core = engine.get().core().clone();
    let mut metadata = optional_json(metadata)?;
    blocking(py, async move {
        let level: LogLevel = parse("log level", &level.to_uppercase())?;
        if let (Some(path), Value::Object(m)) = (file_path, &mut metadata) {
            m.insert("file_path".into(), json!(path));
        }
        append(&core, keys(adw_id.as_deref(), adw_step, None)?, Event::SystemLog { level, message, metadata }).await
    })
}

/// Sets run `adw_id`'s status and the given fields (the seed's `update_adw_status`): `in_progress`
/// sets `started_at` once; `completed`, `failed` and `cancelled` set `completed_at` and the duration.
/// The record and its `WorkflowUpdated` event in one commit; False when there is no such run.
#[pyfunction]
#[pyo3(signature = (engine, adw_id, status, current_step=None, completed_steps=None, error_message=None, error_step=None))]
#[allow(clippy::too_many_arguments)]
pub fn adw_update_status(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    adw_id: String,
    status: String,
    current_step: Option<String>,
    completed_steps: Option<u32>,
    error_message: Option<String>,
    error_step: Option<String>,
) -> PyResult<bool> {
    let core = engine.get().core().clone();
    blocking(py, async move {
        let run = id("workflow run", &adw_id)?;
        let status: WorkflowStatus = parse("workflow status", &status)?;
        let Some(mut record) = core.engine.store().get_workflow(run).await? else { return Ok(false) };
        let at = now();
        record.status = status;
        record.current_step = current_step.or(record.current_step);
        record.completed_steps = completed_steps.unwrap_or(record.completed_steps);
        record.error_message = error_message.or(record.error_message);
        record.error_step = error_step.or(record.error_step);
        record.updated_at = at;
        if status == WorkflowStatus::InProgress && record.started_at.is_none() {
            record.started_at = Some(at);
        }
        if status.is_final() {
            record.completed_at = Some(at);
            record.duration_seconds = record.started_at.map(|s| (at - s).num_seconds().max(0) as u64);
        }
        let keys =
            EventKeys { workflow_id: Some(run), orchestrator_id: record.orchestrator_id, ..EventKeys::default() };
        let batch = Batch::new()
            .change(Change::UpsertWorkflow(Box::new(record.clone())))
            .event(keys, Event::WorkflowUpdated { workflow: Box::new(record) });
        core.engine.store().commit(batch).await?;
        Ok(true)
    })
}

/// Adds the functions to the module (private names: `orch.adw` wraps them with the seed's signatures).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(adw_get, m)?)?;
    m.add_function(wrap_pyfunction!(adw_create, m)?)?;
    m.add_function(wrap_pyfunction!(adw_create_agent, m)?)?;
    m.add_function(wrap_pyfunction!(adw_update_agent, m)?)?;
    m.add_function(wrap_pyfunction!(adw_log_step, m)?)?;
    m.add_function(wrap_pyfunction!(adw_log_event, m)?)?;
    m.add_function(wrap_pyfunction!(adw_log_system, m)?)?;
    m.add_function(wrap_pyfunction!(adw_update_status, m)?)?;
    Ok(())
}
