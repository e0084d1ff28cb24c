//! [`DataWorkflow`]: a workflow read from TOML (`.orch/workflows/*.toml`, and the built-ins), run step
//! by step: `when` conditions, templated prompts and models, retries, output extraction.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::expr::{Scope, StepOutputs, Template};
use super::extract::{accept_answer, extract_now};
use super::run::{StepRequest, Workflow, WorkflowError, WorkflowRun};
use super::spec::{Extract, StepSpec, WorkflowSpec};
use super::worktree::Isolation;
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

/// A step's tracked file, rendered for a run.
struct Tracked {
    /// Relative to the working dir.
    rel: String,
    max_lines: Option<usize>,
}

impl Tracked {
    /// Its content now (`None` when it does not exist or cannot be read).
    fn read(&self, working_dir: &Path) -> Option<String> {
        std::fs::read_to_string(working_dir.join(&self.rel)).ok()
    }

    /// After the step: its history (the content before and after, when it changed) for the step's
    /// payload with a line for the log, or why the step fails (longer than the limit).
    fn check(&self, before: Option<String>, working_dir: &Path) -> Result<Option<(Value, String)>, String> {
        let after = self.read(working_dir);
        let lines = |t: &Option<String>| t.as_deref().map(|t| t.lines().count());
        let (lines_before, lines_after) = (lines(&before), lines(&after));
        if let (Some(max), Some(n)) = (self.max_lines, lines_after)
            && n > max
        {
            return Err(format!("{} has {n} lines, over its limit of {max}: it must be cut down", self.rel));
        }
        let changed = before != after;
        let mut file = json!({
            "path": self.rel,
            "changed": changed,
            "lines_before": lines_before,
            "lines_after": lines_after,
            "max_lines": self.max_lines,
        });
        let count = |n: Option<usize>| n.map_or_else(|| "no file".to_string(), |n| format!("{n} lines"));
        let note = if changed {
            file["before"] = json!(before);
            file["after"] = json!(after);
            format!("{} rewritten: {} → {}", self.rel, count(lines_before), count(lines_after))
        } else {
            format!("{} unchanged ({})", self.rel, count(lines_after))
        };
        Ok(Some((file, note)))
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

    fn isolation(&self) -> Isolation {
        self.spec.isolation
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
        let tracked = match &step.track {
            Some(t) => {
                let rel = render(&t.path)?;
                if rel.trim().is_empty() || Path::new(&rel).is_absolute() || rel.split('/').any(|c| c == "..") {
                    return Err(step_error(
                        &step.name,
                        format!("its tracked file `{rel}` must be relative to the working dir, without `..`"),
                    ));
                }
                let max_lines =
                    match t.max_lines.as_deref().map(render).transpose()? {
                        Some(m) => Some(m.trim().parse::<usize>().map_err(|_| {
                            step_error(&step.name, format!("its line limit `{m}` is not a whole number"))
                        })?),
                        None => None,
                    };
                Some(Tracked { rel, max_lines })
            }
            None => None,
        };
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
            let before = tracked.as_ref().map(|t| t.read(run.working_dir()));
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
                    let file = match (&tracked, missing) {
                        (Some(t), None) => t.check(before.clone().flatten(), run.working_dir()),
                        (_, missing) => missing.map_or(Ok(None), Err),
                    };
                    match file {
                        Err(m) => Some(m),
                        Ok(file) => {
                            let mut payload = json!({"outputs": outputs, "agent_id": ran.agent.id, "attempt": attempt});
                            if let Some(v) = outputs.get("verdict") {
                                payload["verdict"] = v.clone();
                            }
                            if let Some((file, note)) = file {
                                run.log(Some(&step.name), LogLevel::Info, note, Value::Null).await;
                                payload["file"] = file;
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
