//! [`DataWorkflow`]: a workflow read from TOML (`.orch/workflows/*.toml`, and the built-ins), run step
//! by step: `when` conditions, templated prompts and models, retries, output extraction.

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::expr::{Scope, StepOutputs, Template};
use super::extract::{accept_answer, extract_now};
use super::run::{StepRequest, Workflow, WorkflowError, WorkflowRun};
use super::spec::{Extract, StepSpec, WorkflowSpec};
use crate::wire::{LogLevel, StepStatus};

/// A workflow defined as data.
#[derive(Debug, Clone)]
pub struct DataWorkflow {
    spec: WorkflowSpec,
}

impl DataWorkflow {
    /// The workflow of `spec`.
    pub fn new(spec: WorkflowSpec) -> Self {
        Self { spec }
    }

    /// Its definition.
    pub fn spec(&self) -> &WorkflowSpec {
        &self.spec
    }
}

/// How far before a step's start a file's modification time may be and still count as the step's.
const MTIME_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

fn step_error(step: &str, message: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Step { step: step.to_string(), message: message.to_string() }
}

#[async_trait]
impl Workflow for DataWorkflow {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn description(&self) -> &str {
        &self.spec.description
    }

    fn step_names(&self) -> Vec<String> {
        self.spec.steps.iter().map(|s| s.name.clone()).collect()
    }

    fn required_inputs(&self) -> Vec<String> {
        self.spec.inputs.clone()
    }

    async fn run(&self, run: &mut WorkflowRun<'_>) -> Result<(), WorkflowError> {
        let mut done: BTreeMap<String, StepOutputs> = BTreeMap::new();
        for step in &self.spec.steps {
            // Steps a previous process ended are not run again (a resumed run).
            if let Some((status, payload)) = run.prior().ended.get(&step.name).cloned() {
                let outputs: BTreeMap<String, Value> =
                    serde_json::from_value(payload.get("outputs").cloned().unwrap_or(Value::Null)).unwrap_or_default();
                for (k, v) in &outputs {
                    run.set_output(k, v.clone());
                }
                let status = if status == StepStatus::Skipped { "skipped" } else { "success" };
                done.insert(step.name.clone(), StepOutputs { status: status.into(), result: None, outputs });
                continue;
            }
            let input = run.input().clone();
            let scope = Scope { input: &input, steps: &done };
            if let Some(when) = &step.when {
                let go = when.eval(&scope).map_err(|e| step_error(&step.name, format!("its condition: {e}")))?;
                if !go {
                    let reason = "its condition is false";
                    run.log(
                        Some(&step.name),
                        LogLevel::Info,
                        format!("{} step skipped: {reason}", step.name),
                        Value::Null,
                    )
                    .await;
                    run.end_step(&step.name, StepStatus::Skipped, None, json!({"reason": reason})).await?;
                    done.insert(
                        step.name.clone(),
                        StepOutputs { status: "skipped".into(), result: None, outputs: BTreeMap::new() },
                    );
                    continue;
                }
            }
            let outputs = self.run_step(run, step, &scope).await?;
            for (k, v) in &outputs.outputs {
                run.set_output(k, v.clone());
            }
            done.insert(step.name.clone(), outputs);
        }
        let steps: BTreeMap<&String, Value> =
            done.iter().map(|(name, o)| (name, json!({"status": o.status, "outputs": o.outputs}))).collect();
        run.set_output("steps", json!(steps));
        Ok(())
    }
}

impl DataWorkflow {
    /// Runs one step (with its retries) to success, or fails the run.
    async fn run_step(
        &self,
        run: &mut WorkflowRun<'_>,
        step: &StepSpec,
        scope: &Scope<'_>,
    ) -> Result<StepOutputs, WorkflowError> {
        let render = |text: &str| -> Result<String, WorkflowError> {
            let t = Template::parse(text).map_err(|e| step_error(&step.name, e))?;
            t.render(scope).map_err(|e| step_error(&step.name, e))
        };
        let prompt = render(&step.prompt)?;
        let model = step.model.as_deref().map(render).transpose()?.filter(|m| !m.trim().is_empty());
        let attempts = step.retries.saturating_add(1);
        let mut last_error = String::new();
        // A step a dead process left open continues on its agent, as the attempt it was.
        let open = run.prior().open.clone().filter(|(name, _, _)| *name == step.name);
        let first = match &open {
            Some((_, _, attempt)) => (*attempt).max(1),
            // A step run again (after a cancel or a failure) starts after its last attempt.
            None => run.prior().attempts.get(&step.name).map_or(1, |a| a + 1),
        };
        let last = if open.is_some() { attempts.max(first) } else { first.saturating_add(step.retries) };
        let mut open_agent = open.map(|(_, agent, _)| agent);
        for attempt in first..=last {
            // File times come from the kernel's coarse clock, which may lag this one by a tick: a file
            // written just after the step started can carry an earlier time.
            let since = SystemTime::now().checked_sub(MTIME_SLACK).unwrap_or(SystemTime::UNIX_EPOCH);
            let request = StepRequest {
                name: step.name.clone(),
                prompt: prompt.clone(),
                model: model.clone(),
                allowed_tools: step.allowed_tools.clone(),
            };
            let ran = match open_agent.take() {
                Some(agent) => run.resume_step(request, agent).await?,
                None => run.run_step(request, attempt).await?,
            };
            if ran.interrupted() {
                run.end_step(&step.name, StepStatus::Failed, Some(ran.started), json!({"error": "interrupted"}))
                    .await?;
                return Err(WorkflowError::Interrupted { step: step.name.clone() });
            }
            let failure = match ran.failure() {
                Some(f) => Some(f),
                None => {
                    let text = ran.final_text().unwrap_or_default().to_string();
                    let mut outputs = BTreeMap::new();
                    let mut missing = None;
                    for out in &step.outputs {
                        let mut value = None;
                        for ex in &out.extract {
                            value = match ex {
                                Extract::Ask { question, accept } => {
                                    let answer = run.ask(&ran, question).await?;
                                    accept_answer(&answer, accept.as_ref()).map(Value::String)
                                }
                                other => extract_now(other, &text, run.working_dir(), Some(since)),
                            };
                            if value.is_some() {
                                break;
                            }
                        }
                        match value {
                            Some(v) => {
                                outputs.insert(out.name.clone(), v);
                            }
                            None if out.required => {
                                missing = Some(format!("could not extract its output '{}'", out.name));
                                break;
                            }
                            None => {}
                        }
                    }
                    match missing {
                        Some(m) => Some(m),
                        None => {
                            let mut payload = json!({"outputs": outputs, "agent_id": ran.agent.id, "attempt": attempt});
                            if let Some(v) = outputs.get("verdict") {
                                payload["verdict"] = v.clone();
                            }
                            run.end_step(&step.name, StepStatus::Success, Some(ran.started), payload).await?;
                            return Ok(StepOutputs { status: "success".into(), result: Some(text), outputs });
                        }
                    }
                }
            };
            last_error = failure.unwrap_or_default();
            let retrying = attempt < last;
            let payload =
                json!({"error": last_error, "agent_id": ran.agent.id, "attempt": attempt, "retrying": retrying});
            run.end_step(&step.name, StepStatus::Failed, Some(ran.started), payload).await?;
        }
        Err(step_error(&step.name, last_error))
    }
}
