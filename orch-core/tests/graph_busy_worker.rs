//! A worker running all it may does not follow the log (it has nothing to claim for what the log
//! says), yet a graph cancelled in another process still stops its running attempts: it reads its
//! running graphs at every poll meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::graph::{GraphRunner, GraphSettings, Router, TaskGraphs};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{GraphStatus, PlannedTask, TaskStatus};
use serde_json::json;

#[path = "support/graph_run.rs"]
mod graph_run;
use graph_run::task;

fn slow_task(key: &str) -> PlannedTask {
    PlannedTask { tools: vec!["Bash".into()], ..task(key, Vec::new()) }
}

/// A runner on `store` whose agents sleep ten minutes in Bash, as a process of its own would have.
fn runner(store: &Arc<dyn Store>, dir: &std::path::Path, concurrency: u32) -> GraphRunner {
    let model = ScriptedModel::from_fn(|_| {
        Ok(ScriptReply::tool_use("s", "Bash", json!({"command": "touch \"started-$$.marker\" && sleep 600"})))
    });
    let agents = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let settings = GraphSettings { concurrency, poll: Duration::from_millis(20), ..GraphSettings::default() };
    GraphRunner::new(Supervisor::new(agents, Vec::new()), dir.to_path_buf(), Router::new(Vec::new()), settings)
}

fn started(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("started-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_stops_its_attempts_when_another_process_cancels_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let graphs = TaskGraphs::new(store.clone());
    let plan = graphs.create_plan("test", vec![slow_task("a"), slow_task("b"), slow_task("c")], Default::default());
    let plan = plan.await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (graph, _) = graphs.create_graph(plan.id, None).await.unwrap();
    // The worker's process: two slots for three tasks, so both are taken.
    let here = runner(&store, dir.path(), 2);
    here.start(graph.id, None).await.unwrap();
    let worker = tokio::spawn(here.worker(Some(graph.id)).run());
    let waited = tokio::time::Instant::now();
    while started(dir.path()) < 2 {
        assert!(waited.elapsed() < Duration::from_secs(30), "two attempts started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Another process (its own runner: its cancel reaches this worker only through the store).
    let elsewhere = runner(&store, dir.path(), 1);
    let cancelled = elsewhere.cancel(graph.id).await.unwrap();
    assert_eq!(cancelled.status, GraphStatus::Cancelled);

    // The worker interrupts both ten-minute commands, and returns once they ended.
    let report = tokio::time::timeout(Duration::from_secs(60), worker)
        .await
        .expect("the busy worker noticed the cancellation and stopped its attempts")
        .unwrap()
        .unwrap();
    assert_eq!(report.attempts, 2, "{report:?}");
    assert_eq!(report.graph.map(|g| g.status), Some(GraphStatus::Cancelled));
    let tasks = store.list_tasks(graph.id).await.unwrap();
    assert!(tasks.iter().all(|t| t.status == TaskStatus::Cancelled), "{tasks:?}");
    assert_eq!(started(dir.path()), 2, "the third task never started");
}
