//! Python workflows: a class with steps (`orch.workflow.Workflow`), registered on the engine's workflow
//! runner ([`orch_core::workflow::CodeWorkflows`]), so its runs are the engine's durable workflow runs:
//! recorded, followed, cancelled, and resumed by any process that registered the class, without running
//! again the steps that ended.
//!
//! Each step is one call of the class's runner (`orch.workflow._run_step`, sync or async) with the step's
//! name, the run's input, the outputs of the steps before it, the run's id and working dir. Its return
//! value (JSON data) is the step's output: kept in the step's `StepEnd` event (so a resumed run hands it
//! to later steps) and in the run's output under the step's name. An exception fails the step and the
//! run, with the traceback; a cancel interrupts an async step (a sync one finishes, its result dropped).

use std::time::Instant;

use async_trait::async_trait;
use orch_core::wire::StepStatus;
use orch_core::workflow::{Workflow, WorkflowError, WorkflowRun};
use pyo3::prelude::*;
use serde_json::{Map, Value, json};

use crate::bridge::from_py;
use crate::core::Shared;
use crate::error::Failure;
use crate::pycall::{CallError, Pass, PyCallable};

/// A Python workflow class as the engine sees it.
pub struct PyWorkflow {
    name: String,
    description: String,
    steps: Vec<String>,
    inputs: Vec<String>,
    runner: PyCallable,
}

/// A step's return value as JSON.
fn output(value: &Bound<'_, PyAny>) -> Result<Value, String> {
    from_py(value).map_err(|e| format!("a step returns JSON data (dict, list, str, number, bool or None): {e}"))
}

#[async_trait]
impl Workflow for PyWorkflow {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn step_names(&self) -> Vec<String> {
        self.steps.clone()
    }

    fn required_inputs(&self) -> Vec<String> {
        self.inputs.clone()
    }

    async fn run(&self, run: &mut WorkflowRun<'_>) -> Result<(), WorkflowError> {
        let mut outputs = Map::new();
        for step in &self.steps {
            // A step a previous process ended is not run again: its output comes from its StepEnd.
            if let Some((_, payload)) = run.prior().ended.get(step).cloned() {
                let out = payload.get("output").cloned().unwrap_or(Value::Null);
                run.set_output(step, out.clone());
                outputs.insert(step.clone(), out);
                continue;
            }
            let attempt = run.prior().attempts.get(step).map_or(1, |a| a + 1);
            run.start_step(step, attempt).await?;
            let started = Instant::now();
            let arg = json!({
                "step": step, "input": run.input(), "outputs": outputs, "run_id": run.id().to_string(),
                "working_dir": run.working_dir().display().to_string(), "attempt": attempt,
            });
            let interrupt = run.interrupt().clone();
            match self.runner.call(arg, Pass::One, output, Some(&interrupt)).await {
                Ok(out) => {
                    run.set_output(step, out.clone());
                    run.end_step(step, StepStatus::Success, Some(started), json!({"output": out})).await?;
                    outputs.insert(step.clone(), out);
                }
                Err(CallError::Raised(traceback)) => {
                    run.end_step(step, StepStatus::Failed, Some(started), json!({"error": traceback})).await?;
                    return Err(WorkflowError::Step { step: step.clone(), message: traceback });
                }
                Err(CallError::Interrupted) => {
                    run.end_step(step, StepStatus::Failed, Some(started), json!({"error": "interrupted"})).await?;
                    return Err(WorkflowError::Interrupted { step: step.clone() });
                }
            }
        }
        Ok(())
    }
}

/// Registers a workflow: `name`, one line of `description`, its `steps` in order, the `inputs` a run
/// requires, and `runner` (called once per step, see the module docs). Replaces one of the same name.
pub fn register(
    core: &Shared,
    name: String,
    description: String,
    steps: Vec<String>,
    inputs: Vec<String>,
    runner: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let name = name.trim().to_string();
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(Failure::usage(format!("'{name}' is not a workflow name (ASCII letters, digits, _ and -)")).into());
    }
    if steps.is_empty() {
        return Err(Failure::usage(format!("workflow '{name}' has no steps")).into());
    }
    if let Some(dup) = steps.iter().enumerate().find_map(|(i, s)| steps[..i].contains(s).then_some(s)) {
        return Err(Failure::usage(format!("workflow '{name}' has two steps named '{dup}'")).into());
    }
    if !runner.is_callable() {
        return Err(Failure::usage("a workflow's runner must be callable").into());
    }
    let workflow = PyWorkflow { name, description, steps, inputs, runner: PyCallable::new(runner.clone().unbind()) };
    core.code.register(std::sync::Arc::new(workflow));
    Ok(())
}

/// Registers `class` (an `orch.workflow.Workflow` subclass, described by `orch.workflow._describe`); its
/// type name.
pub fn register_class(core: &Shared, class: &Bound<'_, PyAny>) -> PyResult<String> {
    let described = class.py().import("orch.workflow")?.call_method1("_describe", (class,))?;
    let (name, description, steps, inputs, runner): (String, String, Vec<String>, Vec<String>, Bound<'_, PyAny>) =
        described.extract()?;
    register(core, name.clone(), description, steps, inputs, &runner)?;
    Ok(name.trim().to_string())
}
