//! An attempt starts with the commit that claims its task (its agent created with the task's new
//! state, in that commit): a child released by its parent's end is claimed and started by that very
//! commit. Its prompt, which reads the outputs of the tasks it depends on, is written after the start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Change, EventQuery, Store};
use orch_core::wire::{Event, EventRecord, Id, TaskStatus};

#[path = "support/hooked.rs"]
mod hooked;
use hooked::Hooked;
#[path = "support/graph_run.rs"]
mod graph_run;
use graph_run::{run_to_end, task};

/// A store call, in the order the store saw them.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    /// A commit that claims tasks: the key of the task it ends too, if any.
    Claim(Option<String>),
    /// A task read.
    Read(Id),
    /// Any other commit.
    Other,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_child_starts_in_its_parents_end_commit_and_still_gets_its_output() {
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let (commits, reads) = (calls.clone(), calls.clone());
    let store = Hooked::new(Box::new(move |batch: &Batch| {
        let is = |f: &dyn Fn(&Change) -> bool| batch.changes.iter().any(f);
        let call = if is(&|c| matches!(c, Change::ClaimTasks(_))) {
            let ends = batch.changes.iter().find_map(|c| match c {
                Change::FinishTask { task, .. } => Some(task.key.clone()),
                _ => None,
            });
            Call::Claim(ends)
        } else {
            Call::Other
        };
        commits.lock().unwrap().push(call);
        Vec::new()
    }))
    .on_read(Box::new(move |id| reads.lock().unwrap().push(Call::Read(id))));
    let store: Arc<dyn Store> = Arc::new(store);
    // Every prompt the model got, to see that the child's names its parent's output.
    let prompts: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = prompts.clone();
    let model = ScriptedModel::from_fn(move |req: &ModelRequest| {
        let text = serde_json::to_string(&req.messages).unwrap();
        seen.lock().unwrap().push(text);
        Ok(ScriptReply::text("the parent's answer: 42"))
    });
    let tasks = vec![task("parent", Vec::new()), task("child", vec!["parent".into()])];
    let graph = run_to_end(store.clone(), Arc::new(model), tasks).await;
    let parent = store.list_tasks(graph.id).await.unwrap().into_iter().find(|t| t.key == "parent").unwrap();

    let calls = calls.lock().unwrap().clone();
    // The child's agent is created by the commit that releases it (the parent's end, which claims for
    // its worker): in the log, the child goes from ready straight to its agent and running with it.
    let events = store.read_events(&EventQuery::default()).await.unwrap();
    let child = |r: &EventRecord, status: TaskStatus| matches!(&r.event, Event::TaskUpdated { task } if task.key == "child" && task.status == status);
    let ready = events.iter().position(|r| child(r, TaskStatus::Ready)).expect("the child was released");
    let running = events.iter().position(|r| child(r, TaskStatus::Running)).expect("the child ran");
    let Event::TaskUpdated { task } = &events[running].event else { unreachable!() };
    assert!(task.agent_id.is_some(), "the child is running with its agent from its claim on: {task:?}");
    assert_eq!(running, ready + 2, "released, then its agent, then running: {events:#?}");
    assert!(matches!(&events[ready + 1].event, Event::AgentCreated { agent } if Some(agent.id) == task.agent_id));
    let start = calls.iter().position(|c| *c == Call::Claim(Some("parent".into()))).expect("the parent's end claimed");
    let read = calls.iter().position(|c| *c == Call::Read(parent.id)).expect("the parent's output was read");
    assert!(read > start, "the parent is read for the child's prompt after the child started: {calls:?}");
    let prompts = prompts.lock().unwrap();
    assert!(
        prompts.iter().any(|p| p.contains("task child") && p.contains("the parent's answer: 42")),
        "the child's prompt holds its parent's output: {prompts:?}"
    );
}
