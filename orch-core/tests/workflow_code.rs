//! Workflows registered in code ([`CodeWorkflows`]): found by name before the built-ins, run by the
//! workflow engine with steps that run no agent (`start_step`/`end_step`), and resumed after a cancel
//! without running their ended steps again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orch_core::Interrupt;
use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::wire::{Event, StepStatus, WorkflowStatus};
use orch_core::workflow::{CodeWorkflows, Workflow, WorkflowEngine, WorkflowError, WorkflowRun};
use serde_json::json;

/// Three steps done in code; each records that it ran. `gate` makes the second step wait for the
/// run's interrupt the first time (a cancel mid-run).
struct Counted {
    ran: Arc<Mutex<Vec<String>>>,
    gate: Arc<Mutex<bool>>,
}

#[async_trait]
impl Workflow for Counted {
    fn name(&self) -> &str {
        "plan_build"
    }
    fn description(&self) -> &str {
        "three steps in code"
    }
    fn step_names(&self) -> Vec<String> {
        vec!["one".into(), "two".into(), "three".into()]
    }
    async fn run(&self, run: &mut WorkflowRun<'_>) -> Result<(), WorkflowError> {
        for step in self.step_names() {
            if run.prior().ended.contains_key(&step) {
                continue;
            }
            run.start_step(&step, 1).await?;
            let wait = step == "two" && std::mem::replace(&mut *self.gate.lock().unwrap(), false);
            if wait {
                run.interrupt().triggered().await;
                run.end_step(&step, StepStatus::Failed, None, json!({"error": "interrupted"})).await?;
                return Err(WorkflowError::Interrupted { step });
            }
            self.ran.lock().unwrap().push(step.clone());
            run.set_output(&step, json!(format!("{step} done")));
            run.end_step(&step, StepStatus::Success, None, json!({"output": format!("{step} done")})).await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_code_workflow_runs_is_cancelled_and_resumes_without_repeating_its_ended_steps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let model = ScriptedModel::from_fn(|_| Ok(ScriptReply::text("unused")));
    let runner = AgentRunner::builder(store.clone(), Arc::new(model)).build();
    let code = CodeWorkflows::new();
    let engine =
        WorkflowEngine::new(Supervisor::new(runner, Vec::new()), dir.path(), "scripted").with_code(code.clone());
    let ran = Arc::new(Mutex::new(Vec::new()));
    assert!(code.register(Arc::new(Counted { ran: ran.clone(), gate: Arc::new(Mutex::new(true)) })).is_none());
    assert_eq!(code.names(), ["plan_build"], "it shadows the built-in of that name");

    let workflow = engine.workflow("plan_build").unwrap();
    assert_eq!(workflow.description(), "three steps in code");
    let record = engine.create(workflow.as_ref(), json!({}), None, None).await.unwrap();
    assert_eq!(record.total_steps, 3);
    let interrupt = Interrupt::new();
    let running = {
        let (engine, interrupt) = (engine.clone(), interrupt.clone());
        tokio::spawn(async move { engine.run(record.id, Some(interrupt)).await })
    };
    // Cancel once step two has started.
    loop {
        let q = EventQuery { workflow_id: Some(record.id), types: vec!["StepStart".into()], ..EventQuery::default() };
        if store.read_events(&q).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    interrupt.trigger();
    let cancelled = running.await.unwrap().unwrap();
    assert_eq!((cancelled.status, cancelled.error_step.as_deref()), (WorkflowStatus::Cancelled, Some("two")));
    assert_eq!(*ran.lock().unwrap(), ["one"]);

    let done = engine.run(record.id, None).await.unwrap();
    assert_eq!((done.status, done.completed_steps), (WorkflowStatus::Completed, 3));
    assert_eq!(*ran.lock().unwrap(), ["one", "two", "three"], "step one ran once");
    assert_eq!(done.output_data["three"], "three done");
    let q = EventQuery { workflow_id: Some(record.id), ..EventQuery::default() };
    let starts: Vec<String> = store
        .read_events(&q)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::StepStart { step_name, prompt, .. } => {
                assert!(prompt.is_empty(), "no agent, no prompt");
                Some(step_name)
            }
            _ => None,
        })
        .collect();
    assert_eq!(starts, ["one", "two", "two", "three"]);

    assert!(code.remove("plan_build"));
    assert_eq!(engine.workflow("plan_build").unwrap().description(), workflow_builtin_description());
}

fn workflow_builtin_description() -> String {
    orch_core::workflow::builtin::builtins().into_iter().find(|s| s.name == "plan_build").unwrap().description
}
