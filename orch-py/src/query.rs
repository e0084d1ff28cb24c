//! The agent runs behind `orch.adw.adw_agent_sdk` (the seed's `query_to_completion` and `quick_prompt`)
//! and the summaries behind `orch.adw.adw_summarizer`: a prompt run to its end on an agent of the
//! engine's store (the step's agent the script created, or a new one), with its `/command` expanded as
//! a workflow step's is (the script's message handlers follow the run's events in the store).

use std::path::Path;

use orch_core::Interrupt;
use orch_core::executor::RunOptions;
use orch_core::template::{SlashCommand, TemplateError, Templates};
use orch_core::wire::{Agent, Event, EventKeys, EventRecord, Id, new_id, now, short_id};
use orch_core::workflow::builtin;
use pyo3::prelude::*;
use serde_json::{Value, json};

use crate::bridge::{awaitable, blocking, from_py, to_py};
use crate::core::Shared;
use crate::engine::Engine;
use crate::error::Failure;
use crate::winddown::StopOnDrop;

/// What one query asks for (the seed's `QueryOptions`, as far as the engine uses them).
pub struct Query {
    agent_id: Option<String>,
    prompt: String,
    model: Option<String>,
    cwd: Option<String>,
    allowed_tools: Option<Vec<String>>,
    system_prompt: Option<String>,
    max_turns: Option<u32>,
    name: Option<String>,
}

/// A prompt after slash-command expansion, with the command's model and tools.
type Expanded = (String, Option<String>, Option<Vec<String>>);

/// A leading `/command` expanded: the working dir's `.claude/commands`, else the built-in defaults
/// (`plan`, `build`, `review`, `fix`, the experts'), as a workflow step expands it. The prompt, the
/// command's model and its tools.
fn expand(dir: &Path, prompt: &str) -> Result<Expanded, Failure> {
    match Templates::load(dir).expand(prompt) {
        Ok(Some(e)) => Ok((e.prompt, e.model, e.allowed_tools)),
        Ok(None) => Ok((prompt.to_string(), None, None)),
        Err(TemplateError::UnknownCommand { name, .. }) => {
            let Some(text) = builtin::default_command_for(&name) else {
                let file = name.replace(':', "/");
                return Err(Failure::usage(format!("unknown command /{name}: add .claude/commands/{file}.md")));
            };
            let arguments =
                prompt.trim_start().strip_prefix('/').and_then(|r| r.strip_prefix(name.as_str())).unwrap_or("").trim();
            let command = SlashCommand::from_markdown(name.clone(), Path::new("<built-in>"), &text)
                .map_err(|e| Failure::usage(format!("the built-in /{name} command is broken: {e}")))?;
            Ok((command.render(arguments), command.model.clone(), None))
        }
    }
}

/// The agent a query runs on: `agent_id`'s, else a new free-standing one named `name` (default
/// `query-<8 hex>`) in `cwd` on `model`.
async fn agent_for(core: &Shared, q: &Query) -> Result<Agent, Failure> {
    let store = core.engine.store();
    if let Some(text) = q.agent_id.as_deref() {
        let id: Id =
            text.trim().parse().map_err(|_| Failure::usage(format!("'{text}' is not an agent id (a UUID)")))?;
        return store
            .get_agent(id)
            .await?
            .ok_or_else(|| Failure::new(orch_core::ErrorKind::NotFound, format!("agent {text} not found")));
    }
    let id = new_id();
    let name = q.name.clone().unwrap_or_else(|| format!("query-{}", short_id(id)));
    let dir = q.cwd.clone().unwrap_or_else(|| core.engine.working_dir().display().to_string());
    let model = q.model.clone().unwrap_or_else(|| core.engine.default_agent_model().to_string());
    let mut agent = Agent::new(name, model, dir);
    agent.id = id;
    agent.system_prompt = q.system_prompt.clone().filter(|s| !s.trim().is_empty());
    Ok(core.engine.runner().create_agent(agent).await?)
}

/// Runs the query to its end: a dict with `success`, `result`, `error`, `session_id` (the agent's id:
/// resuming it continues on that agent), `agent_id`, `usage`, `num_turns`, `duration_ms` and
/// `stop_reason`. A dropped caller (a cancelled await, Ctrl-C) interrupts the run.
async fn run(core: Shared, q: Query) -> Result<Value, Failure> {
    let agent = agent_for(&core, &q).await?;
    let (prompt, command_model, command_tools) = match expand(Path::new(&agent.working_dir), &q.prompt) {
        Ok(x) => x,
        Err(e) => return Ok(json!({"success": false, "error": e.message, "agent_id": agent.id})),
    };
    let interrupt = Interrupt::new();
    let options = RunOptions {
        max_turns: q.max_turns.unwrap_or(RunOptions::default().max_turns),
        interrupt: Some(interrupt.clone()),
        allowed_tools: q.allowed_tools.clone().or(command_tools),
        model: q.model.clone().or(command_model).filter(|m| *m != agent.model && !m.trim().is_empty()),
        system_prompt: q.system_prompt.clone().filter(|s| !s.trim().is_empty()),
        ..RunOptions::default()
    };
    // On a task of its own: a caller that goes away (a cancelled await, Ctrl-C) interrupts the run,
    // which still records its end.
    let (supervisor, running) = (core.engine.supervisor().clone(), agent.clone());
    let task = tokio::spawn(async move { supervisor.run(&running, prompt, options).await });
    let done = task.abort_handle();
    let mut guard = StopOnDrop::trigger(interrupt, move || done.is_finished());
    let joined = task.await;
    guard.disarm();
    let outcome =
        joined.map_err(|e| Failure::new(orch_core::ErrorKind::Internal, format!("the run's task failed: {e}")))?;
    Ok(match outcome {
        Ok(o) => {
            let failed = o.stop_reason == orch_core::wire::EndReason::Error;
            let interrupted = o.interrupted();
            json!({
                "success": !failed && !interrupted,
                "result": o.final_text,
                "error": if failed { o.final_text.clone() } else if interrupted { Some("interrupted".to_string()) } else { None },
                "session_id": agent.id,
                "agent_id": agent.id,
                "usage": {"input_tokens": o.usage.input_tokens, "output_tokens": o.usage.output_tokens,
                          "cache_creation_input_tokens": o.usage.cache_creation_input_tokens,
                          "cache_read_input_tokens": o.usage.cache_read_input_tokens, "total_cost_usd": o.cost_usd},
                "num_turns": o.num_turns,
                "duration_ms": o.duration_ms,
                "stop_reason": o.stop_reason,
            })
        }
        Err(e) => json!({
            "success": false, "error": e.to_string(), "session_id": agent.id, "agent_id": agent.id,
        }),
    })
}

/// Runs `prompt` on an agent of the store to its end (see [`run`]); an awaitable of the result dict.
#[pyfunction]
#[pyo3(signature = (engine, prompt, *, agent_id=None, model=None, cwd=None, allowed_tools=None, system_prompt=None, max_turns=None, name=None))]
#[allow(clippy::too_many_arguments)]
pub fn adw_query<'py>(
    py: Python<'py>,
    engine: &Bound<'py, Engine>,
    prompt: String,
    agent_id: Option<String>,
    model: Option<String>,
    cwd: Option<String>,
    allowed_tools: Option<Vec<String>>,
    system_prompt: Option<String>,
    max_turns: Option<u32>,
    name: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    if prompt.trim().is_empty() {
        return Err(Failure::usage("the prompt is empty").into());
    }
    let core = engine.get().core().clone();
    let q = Query { agent_id, prompt, model, cwd, allowed_tools, system_prompt, max_turns, name };
    awaitable(py, async move { run(core, q).await.map(Json) })
}

/// A JSON value returned to Python as the object `json.loads` makes of it.
pub struct Json(pub Value);

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        to_py(py, &self.0)
    }
}

/// The wire event a seed event of `event_type` with `data` stands for, when there is one.
fn seed_event(event_type: &str, data: &Value) -> Option<Event> {
    let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    let tool = || text("tool_name").or_else(|| text("name")).unwrap_or_default();
    let input = || data.get("tool_input").or_else(|| data.get("input")).cloned().unwrap_or(Value::Null);
    let call = || text("tool_use_id").or_else(|| text("id")).unwrap_or_default();
    Some(match event_type {
        "TextBlock" | "Text" | "text" => Event::Text { text: text("text").or_else(|| text("content"))? },
        "ThinkingBlock" | "Thinking" | "thinking" => Event::Thinking { thinking: text("thinking")?, signature: None },
        "ToolUseBlock" | "ToolUse" | "tool_use" => {
            Event::ToolUse { tool_name: tool(), tool_input: input(), tool_use_id: call() }
        }
        "PreToolUse" => Event::PreToolUse { tool_name: tool(), tool_input: input(), tool_use_id: call() },
        _ => return None,
    })
}

/// A one-line summary of a seed event (the seed's `summarize_event`) by the engine's summary model
/// (`ORCH_SUMMARY_MODEL`, or `[models] summary` in `.orch/config.toml`); None when there is none, the
/// event has no wire counterpart, or the model gives nothing (the caller falls back to a fixed one).
#[pyfunction]
pub fn adw_summarize(
    py: Python<'_>,
    engine: &Bound<'_, Engine>,
    event_data: &Bound<'_, PyAny>,
    event_type: String,
) -> PyResult<Option<String>> {
    let core = engine.get().core().clone();
    let data = from_py(event_data)?;
    blocking(py, async move {
        let (Some(summarizer), Some(event)) = (core.engine.summarizer().cloned(), seed_event(&event_type, &data))
        else {
            return Ok(None);
        };
        let record = EventRecord { seq: 0, timestamp: now(), keys: EventKeys::default(), event };
        Ok(summarizer.summarize(&record).await)
    })
}

/// Whether the engine has a summary model.
#[pyfunction]
pub fn adw_has_summarizer(engine: &Bound<'_, Engine>) -> bool {
    engine.get().core().engine.summarizer().is_some()
}

/// Adds this module's functions to `orch._orch`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(adw_query, m)?)?;
    m.add_function(wrap_pyfunction!(adw_summarize, m)?)?;
    m.add_function(wrap_pyfunction!(adw_has_summarizer, m)?)?;
    Ok(())
}
