//! Python callables as hooks of the engine's agents (`engine.hook`, `engine.add_hook`).
//!
//! A hook is added to the engine's runner ([`orch_core::executor::RunnerAdditions`]) and runs, after the
//! project's settings hooks, in every turn that starts afterwards. It is called with one dict, what a
//! Claude Code hook reads on stdin (`hook_event_name`, `tool_name`, `tool_input`, `cwd`, …) plus
//! `agent_name`, and returns its decision: `None` to go on, a dict such as
//! `{"decision": "deny", "reason": "…"}` (the decisions of [`HookDecision`]; Claude Code's
//! `{"decision": "block"}` and `hookSpecificOutput.permissionDecision` are read too), or one of the
//! decision classes of `orch.hooks`. An exception is a hook error: recorded in the `HookInvoked` event
//! with the traceback, and the run goes on.

use std::sync::Arc;

use futures::future::BoxFuture;
use orch_core::hook::command::stdin_json;
use orch_core::hook::{Hook, HookDecision, HookError, HookEvent, HookInput};
use pyo3::prelude::*;
use serde_json::{Map, Value, json};

use crate::bridge::from_py;
use crate::core::Shared;
use crate::error::Failure;
use crate::pycall::{CallError, Pass, PyCallable};

/// A hook whose decision is a Python callable's.
pub struct PyHook {
    name: String,
    callable: PyCallable,
}

/// A hook's return value as JSON: `None` as null, a decision object through its `to_dict()`.
fn returned(value: &Bound<'_, PyAny>) -> Result<Value, String> {
    let py = value.py();
    let unreadable = |e: PyErr| format!("the hook's result cannot be read: {}", crate::pycall::describe(py, &e));
    if value.is_none() {
        return Ok(Value::Null);
    }
    if value.hasattr("to_dict").map_err(unreadable)? {
        return from_py(&value.call_method0("to_dict").map_err(unreadable)?).map_err(unreadable);
    }
    from_py(value).map_err(unreadable)
}

const DECISIONS: &str = "continue, deny, ask, rewrite_input, add_context, replace_output, stop";

/// The decision a hook at `event` returned as `value` (see the module docs).
pub fn decision(event: HookEvent, value: Value) -> Result<HookDecision, String> {
    let Value::Object(map) = value else {
        return match value {
            Value::Null => Ok(HookDecision::Continue),
            other => Err(format!("a hook returns None, a dict or a decision, not {other}")),
        };
    };
    let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let specific = map.get("hookSpecificOutput").and_then(Value::as_object);
    let claude_deny = specific.filter(|s| s.get("permissionDecision").and_then(Value::as_str) == Some("deny"));
    let claude_ask = specific.filter(|s| s.get("permissionDecision").and_then(Value::as_str) == Some("ask"));
    let blocked = |reason: String| {
        if event == HookEvent::PostToolUse {
            HookDecision::AddContext { context: reason }
        } else {
            HookDecision::Deny { reason }
        }
    };
    if let Some(s) = claude_deny {
        return Ok(blocked(text(s, "permissionDecisionReason").unwrap_or_else(|| "denied by a hook".into())));
    }
    if let Some(s) = claude_ask {
        let question = text(s, "permissionDecisionReason").unwrap_or_else(|| "a hook asks to approve this call".into());
        return Ok(HookDecision::Ask { question });
    }
    match map.get("decision") {
        Some(Value::String(d)) => match d.as_str() {
            "block" => Ok(blocked(text(&map, "reason").unwrap_or_else(|| "blocked by a hook".into()))),
            "approve" | "allow" => Ok(HookDecision::Continue),
            _ => serde_json::from_value(Value::Object(map.clone())).map_err(|e| {
                let e = e.to_string().replace('`', "'");
                format!("not a hook decision ({e}); the decisions: {DECISIONS}")
            }),
        },
        Some(other) => Err(format!("a hook's \"decision\" is a string, one of {DECISIONS}, not {other}")),
        None if map.get("continue").and_then(Value::as_bool) == Some(false) => {
            Ok(HookDecision::Stop { reason: text(&map, "stopReason").unwrap_or_else(|| "stopped by a hook".into()) })
        }
        None => match specific.and_then(|s| text(s, "additionalContext")).filter(|c| !c.is_empty()) {
            Some(context) => Ok(HookDecision::AddContext { context }),
            None => Ok(HookDecision::Continue),
        },
    }
}

impl Hook for PyHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn call<'a, 'b, 'c>(&'a self, input: &'b HookInput) -> BoxFuture<'c, Result<HookDecision, HookError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            let mut arg = stdin_json(input);
            if let Value::Object(m) = &mut arg {
                m.insert("agent_name".into(), json!(input.agent_name));
            }
            match self.callable.call(arg, Pass::One, returned, None).await {
                Ok(value) => decision(input.event, value).map_err(HookError),
                Err(CallError::Raised(text)) => Err(HookError(text)),
                Err(CallError::Interrupted) => Err(HookError("interrupted".into())),
            }
        })
    }
}

/// Adds `func` as a hook at `event` for tools matching `matcher` (an anchored regex; `None` every
/// tool), after the hooks already there. Its name (in `HookInvoked` events) defaults to the function's
/// qualified name.
pub fn add(
    core: &Shared,
    event: &str,
    func: &Bound<'_, PyAny>,
    matcher: Option<&str>,
    name: Option<String>,
) -> PyResult<()> {
    let event: HookEvent =
        event.parse().map_err(|e: orch_core::hook::UnknownHookEvent| Failure::usage(e.to_string()))?;
    if !func.is_callable() {
        return Err(Failure::usage("a hook must be a callable (a function or an async function)").into());
    }
    let name = match name {
        Some(n) => n,
        None => func
            .getattr("__qualname__")
            .or_else(|_| func.getattr("__name__"))
            .and_then(|n| n.extract::<String>())
            .unwrap_or_else(|_| "python hook".to_string()),
    };
    let hook = PyHook { name, callable: PyCallable::new(func.clone().unbind()) };
    core.engine
        .runner()
        .additions()
        .add_hook(event, matcher, Arc::new(hook))
        .map_err(|e| Failure::usage(e.to_string()).into())
}

/// What `engine.hook(event, matcher)` returns: decorating a function adds it as a hook and gives the
/// function back unchanged.
#[pyclass(frozen, module = "orch._orch", name = "HookDecorator")]
pub struct HookDecorator {
    core: Shared,
    event: String,
    matcher: Option<String>,
    name: Option<String>,
}

impl HookDecorator {
    /// A decorator for `event` and `matcher`; a bad event or matcher is refused here, before any
    /// function is decorated.
    pub fn new(core: &Shared, event: String, matcher: Option<String>, name: Option<String>) -> PyResult<Self> {
        event.parse::<HookEvent>().map_err(|e| Failure::usage(e.to_string()))?;
        if let Some(m) = matcher.as_deref().filter(|m| !m.is_empty() && *m != "*") {
            regex_check(m)?;
        }
        Ok(Self { core: core.clone(), event, matcher, name })
    }
}

/// Refuses a matcher the hook registry would refuse (through a registry of its own, so nothing is added).
fn regex_check(matcher: &str) -> PyResult<()> {
    let mut probe = orch_core::hook::HookRegistry::new();
    let noop = orch_core::hook::FnHook::new("probe", |_: &HookInput| HookDecision::Continue);
    probe
        .register(HookEvent::PreToolUse, Some(matcher), noop)
        .map(|_| ())
        .map_err(|e| Failure::usage(e.to_string()).into())
}

#[pymethods]
impl HookDecorator {
    fn __call__<'py>(&self, func: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        add(&self.core, &self.event, &func, self.matcher.as_deref(), self.name.clone())?;
        Ok(func)
    }
}
