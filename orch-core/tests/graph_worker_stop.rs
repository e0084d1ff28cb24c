//! A worker told to stop gives its running tasks back (ready, no failure counted, no holder) and
//! returns, also on a runtime with a single thread: once stopping, its loop must keep yielding to the
//! attempts it waits for (it once spun on the stop signal, and `orch serve` then left a task "running"
//! after SIGTERM whenever the attempt's task sat behind the spinning loop).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::graph::{GraphRunner, GraphSettings, Router, TaskGraphs};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{PlannedTask, Task, TaskStatus};
use serde_json::json;

#[path = "support/graph_run.rs"]
mod graph_run;
use graph_run::task;

fn one_task() -> PlannedTask {
    PlannedTask { tools: vec!["Bash".into()], ..task("slow", Vec::new()) }
}

/// Runs a one-task graph whose agent sleeps in Bash, stops the worker once the command runs, and
/// returns the task as stored after the worker returned.
async fn stop_mid_attempt(dir: std::path::PathBuf) -> Task {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = ScriptedModel::from_fn(|_| {
        Ok(ScriptReply::tool_use("s", "Bash", json!({"command": "touch started.marker && sleep 30"})))
    });
    let agents = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let settings = GraphSettings { poll: Duration::from_millis(20), ..GraphSettings::default() };
    let runner = GraphRunner::new(Supervisor::new(agents, Vec::new()), dir.clone(), Router::new(Vec::new()), settings);
    let graphs = TaskGraphs::new(store.clone());
    let plan = graphs.create_plan("test", vec![one_task()], Default::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (graph, tasks) = graphs.create_graph(plan.id, None).await.unwrap();
    runner.start(graph.id, None).await.unwrap();

    let worker = runner.worker(Some(graph.id));
    let stop = worker.stopper();
    let marker = dir.join("started.marker");
    tokio::spawn(async move {
        while !marker.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.trigger();
    });
    worker.run().await.unwrap();
    store.get_task(tasks[0].id).await.unwrap().unwrap()
}

#[test]
fn a_stopped_worker_gives_its_running_task_back_on_a_single_threaded_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    // The worker runs on a runtime of its own thread; this thread only waits, so a worker that never
    // returns fails the test instead of hanging it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let task = rt.block_on(stop_mid_attempt(path));
        let _ = tx.send(task);
    });
    let task = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the stopped worker returned (its attempt was interrupted and the task given back)");
    assert_eq!(task.status, TaskStatus::Ready, "{task:?}");
    assert_eq!(task.failures, 0, "a stop is not a failure: {task:?}");
    assert_eq!(task.claimed_by, None, "{task:?}");
}
