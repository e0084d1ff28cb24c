//! Python callables as tools of the engine's native agents (`engine.tool`, `engine.add_tool`).
//!
//! A tool is added to the engine's runner ([`orch_core::executor::RunnerAdditions`]): every agent turn
//! that starts afterwards is offered it, beside the built-ins. The model's input object is passed as
//! keyword arguments; the result is the text the model gets (a `str` as it is, `None` as nothing, other
//! JSON data as JSON, anything else as `str()`); an exception is a tool error carrying the traceback.

use std::sync::Arc;

use futures::future::BoxFuture;
use orch_core::tool::{Tool, ToolContext, ToolError, ToolOutput};
use pyo3::prelude::*;
use serde_json::Value;

use crate::bridge::from_py;
use crate::core::Shared;
use crate::error::Failure;
use crate::pycall::{CallError, Pass, PyCallable};

/// A tool whose work is a Python callable.
pub struct PyTool {
    name: String,
    description: String,
    schema: Value,
    callable: PyCallable,
}

/// The model's text for a tool's return value.
fn output(value: &Bound<'_, PyAny>) -> Result<ToolOutput, String> {
    if value.is_none() {
        return Ok(ToolOutput::text(""));
    }
    if let Ok(text) = value.extract::<String>() {
        return Ok(ToolOutput::text(text));
    }
    if let Ok(json) = from_py(value) {
        return Ok(ToolOutput::text(json.to_string()));
    }
    let py = value.py();
    value
        .str()
        .map(|s| ToolOutput::text(s.to_string()))
        .map_err(|e| format!("the tool's result cannot be read as text: {}", crate::pycall::describe(py, &e)))
}

impl Tool for PyTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn call<'a, 'b, 'c>(&'a self, ctx: &'b ToolContext, input: Value) -> BoxFuture<'c, Result<ToolOutput, ToolError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            match self.callable.call(input, Pass::Keywords, output, Some(&ctx.interrupt)).await {
                Ok(out) => Ok(out),
                Err(CallError::Raised(text)) => Err(ToolError::Failed(text)),
                Err(CallError::Interrupted) => Err(ToolError::Interrupted),
            }
        })
    }
}

/// Whether `name` is a tool name models accept: 1 to 64 letters, digits, `_` or `-`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Adds `func` as a tool of the engine (replacing an added tool or built-in of the same name) and
/// returns its name. Defaults: the function's `__name__`, its docstring, and a schema from its signature.
pub fn add(
    core: &Shared,
    func: &Bound<'_, PyAny>,
    name: Option<String>,
    description: Option<String>,
    input_schema: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let py = func.py();
    if !func.is_callable() {
        return Err(Failure::usage("a tool must be a callable (a function or an async function)").into());
    }
    let name = match name {
        Some(n) => n,
        None => func
            .getattr("__name__")
            .and_then(|n| n.extract::<String>())
            .map_err(|_| Failure::usage("this callable has no __name__: give the tool a name"))?,
    };
    if !valid_name(&name) {
        return Err(Failure::usage(format!(
            "tool name '{name}': use 1 to 64 letters, digits, '_' or '-' (what model APIs accept)"
        ))
        .into());
    }
    let description = match description {
        Some(d) => d,
        None => {
            let doc = py.import("inspect")?.call_method1("getdoc", (func,))?;
            if doc.is_none() { name.clone() } else { doc.extract()? }
        }
    };
    let schema = match input_schema {
        Some(s) => from_py(s)?,
        None => from_py(&py.import("orch._callbacks")?.call_method1("schema_of", (func,))?)?,
    };
    if !schema.is_object() {
        return Err(Failure::usage(format!("tool '{name}': input_schema must be a dict (a JSON schema)")).into());
    }
    let tool = PyTool { name: name.clone(), description, schema, callable: PyCallable::new(func.clone().unbind()) };
    core.engine.runner().additions().add_tool(Arc::new(tool));
    Ok(name)
}

/// Removes the Python tool `name`; whether there was one.
pub fn remove(core: &Shared, name: &str) -> bool {
    core.engine.runner().additions().remove_tool(name)
}

/// `engine.tool(...)`: with a callable, adds it at once (`@engine.tool`); else a decorator that adds
/// the function it decorates, under `name`, `description` and `input_schema` when given.
pub fn tool(
    core: &Shared,
    py: Python<'_>,
    name: Option<Bound<'_, PyAny>>,
    description: Option<String>,
    input_schema: Option<Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    match name {
        Some(func) if func.is_callable() => {
            add(core, &func, None, description, input_schema.as_ref())?;
            Ok(func.unbind())
        }
        name => {
            let name = name.map(|n| n.extract::<String>()).transpose()?;
            let decorator =
                ToolDecorator { core: core.clone(), name, description, input_schema: input_schema.map(Bound::unbind) };
            Ok(Bound::new(py, decorator)?.into_any().unbind())
        }
    }
}

/// What `engine.tool(name, description, input_schema)` returns: decorating a function adds it as a tool
/// and gives the function back unchanged.
#[pyclass(frozen, module = "orch._orch", name = "ToolDecorator")]
pub struct ToolDecorator {
    core: Shared,
    name: Option<String>,
    description: Option<String>,
    input_schema: Option<Py<PyAny>>,
}

#[pymethods]
impl ToolDecorator {
    fn __call__<'py>(&self, func: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let schema = self.input_schema.as_ref().map(|s| s.bind(func.py()).clone());
        add(&self.core, &func, self.name.clone(), self.description.clone(), schema.as_ref())?;
        Ok(func)
    }
}
