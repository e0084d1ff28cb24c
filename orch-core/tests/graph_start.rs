//! An attempt starts (its agent created with the task's new state) right after the commit that claimed
//! its task: its prompt, which reads the outputs of the tasks it depends on, is written after the
//! start, so no read of the store stands between a released child's claim and its start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Change, Store};
use orch_core::wire::Id;

#[path = "support/hooked.rs"]
mod hooked;
use hooked::Hooked;
#[path = "support/graph_run.rs"]
mod graph_run;
use graph_run::{run_to_end, task};

/// A store call, in the order the store saw them.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    /// A commit that claims tasks.
    Claim,
    /// An attempt's start: the key of the task whose agent it creates.
    Start(String),
    /// A task read.
    Read(Id),
    /// Any other commit.
    Other,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_child_starts_before_its_dependencies_outputs_are_read_and_still_gets_them() {
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let (commits, reads) = (calls.clone(), calls.clone());
    let store = Hooked::new(Box::new(move |batch: &Batch| {
        let is = |f: &dyn Fn(&Change) -> bool| batch.changes.iter().any(f);
        let call = if is(&|c| matches!(c, Change::CreateAgent(_))) {
            let key = batch.changes.iter().find_map(|c| match c {
                Change::UpdateTask { task, .. } => Some(task.key.clone()),
                _ => None,
            });
            Call::Start(key.unwrap_or_default())
        } else if is(&|c| matches!(c, Change::ClaimTasks(_))) {
            Call::Claim
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
    let start = calls.iter().position(|c| *c == Call::Start("child".into())).expect("the child started");
    let claim = calls[..start].iter().rposition(|c| *c == Call::Claim).expect("a claim before the child's start");
    assert!(
        !calls[claim..start].iter().any(|c| matches!(c, Call::Read(_))),
        "nothing is read between the child's claim and its start: {calls:?}"
    );
    let read = calls.iter().position(|c| *c == Call::Read(parent.id)).expect("the parent's output was read");
    assert!(read > start, "the parent is read for the child's prompt after the child started: {calls:?}");
    let prompts = prompts.lock().unwrap();
    assert!(
        prompts.iter().any(|p| p.contains("task child") && p.contains("the parent's answer: 42")),
        "the child's prompt holds its parent's output: {prompts:?}"
    );
}
