//! Rerun from a task: after a graph completed, rerunning from one task queues it and its dependents
//! again (only those), the graph runs again and completes, and what is refused changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::graph::{GraphError, GraphRunner, GraphSettings, Router, TaskGraphs};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Complexity, Event, GraphStatus, Id, PlannedTask, TaskStatus};

fn planned(key: &str, deps: &[&str]) -> PlannedTask {
    PlannedTask {
        key: key.into(),
        title: format!("do {key}"),
        description: format!("Work on {key}."),
        task_type: "code".into(),
        complexity: Complexity::Simple,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        model: None,
        tools: Vec::new(),
        verification: Vec::new(),
        estimated_cost_usd: None,
        estimated_minutes: None,
    }
}

/// A runner whose model answers every task's first call with `done` and records which agent asked.
fn runner(store: Arc<dyn Store>, calls: Arc<Mutex<Vec<String>>>) -> GraphRunner {
    let model = ScriptedModel::from_fn(move |req| {
        calls.lock().unwrap().push(req.agent_name.clone());
        Ok(ScriptReply::text("done"))
    });
    let agents = AgentRunner::builder(store, Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let settings = GraphSettings {
        concurrency: 2,
        retry_base: Duration::from_millis(20),
        poll: Duration::from_millis(20),
        ..GraphSettings::default()
    };
    GraphRunner::new(Supervisor::new(agents, Vec::new()), std::env::temp_dir(), Router::new(Vec::new()), settings)
}

/// The key of the task an agent works on (`KEY-graph-aN`).
fn task_key(agent: &str) -> &str {
    agent.rsplitn(3, '-').nth(2).unwrap_or(agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_from_a_task_queues_it_and_its_dependents_and_the_graph_completes_again() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let graphs = TaskGraphs::new(store.clone());
    // a → b → c, and d on its own.
    let plan = graphs
        .create_plan(
            "test",
            vec![planned("a", &[]), planned("b", &["a"]), planned("c", &["b"]), planned("d", &[])],
            Default::default(),
        )
        .await
        .unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (g, tasks) = graphs.create_graph(plan.id, None).await.unwrap();
    let id_of = |key: &str| -> Id { tasks.iter().find(|t| t.key == key).unwrap().id };
    let calls = Arc::new(Mutex::new(Vec::new()));
    let runner = runner(store.clone(), calls.clone());
    runner.start(g.id, None).await.unwrap();
    let report = runner.worker(Some(g.id)).run().await.unwrap();
    assert_eq!(report.graph.unwrap().status, GraphStatus::Completed);
    calls.lock().unwrap().clear();
    let seq_before = store.last_seq().await.unwrap();

    let queued = runner.rerun_from(id_of("b")).await.unwrap();
    let keys: Vec<(&str, TaskStatus)> = queued.iter().map(|t| (t.key.as_str(), t.status)).collect();
    assert_eq!(keys, [("b", TaskStatus::Ready), ("c", TaskStatus::Pending)]);
    assert_eq!(store.get_graph(g.id).await.unwrap().unwrap().status, GraphStatus::Running);
    // The change came with its events, in the same commit: the two tasks, the log line, the graph.
    let after = store.read_events(&EventQuery { after_seq: seq_before, ..EventQuery::default() }).await.unwrap();
    let updated: Vec<String> = after
        .iter()
        .filter_map(|r| match &r.event {
            Event::TaskUpdated { task } => Some(task.key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(updated, ["b", "c"]);
    assert!(
        after.iter().any(|r| matches!(&r.event, Event::GraphUpdated { graph } if graph.status == GraphStatus::Running))
    );
    assert!(
        after.iter().any(|r| matches!(&r.event, Event::SystemLog { metadata, .. } if metadata["event"] == "rerun"))
    );

    let report = runner.worker(Some(g.id)).run().await.unwrap();
    assert_eq!(report.graph.unwrap().status, GraphStatus::Completed);
    let mut ran: Vec<String> = calls.lock().unwrap().iter().map(|a| task_key(a).to_string()).collect();
    ran.sort();
    ran.dedup();
    assert_eq!(ran, ["b", "c"], "only the rerun tasks ran again");
    for t in store.list_tasks(g.id).await.unwrap() {
        assert_eq!(t.status, TaskStatus::Completed, "{}", t.key);
        let want = if matches!(t.key.as_str(), "b" | "c") { 2 } else { 1 };
        assert_eq!(t.attempt, want, "{}", t.key);
    }
}

#[tokio::test]
async fn a_rerun_behind_a_failed_dependency_or_of_an_unknown_task_is_refused_and_changes_nothing() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let graphs = TaskGraphs::new(store.clone());
    let plan =
        graphs.create_plan("test", vec![planned("a", &[]), planned("b", &["a"])], Default::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (g, tasks) = graphs.create_graph(plan.id, None).await.unwrap();
    let runner = runner(store.clone(), Arc::new(Mutex::new(Vec::new())));
    // a fails for good (as a person failing its checkpoint would): b is cancelled.
    let a = tasks.iter().find(|t| t.key == "a").unwrap();
    let b = tasks.iter().find(|t| t.key == "b").unwrap();
    runner.cancel(g.id).await.unwrap();
    let seq = store.last_seq().await.unwrap();
    let err = runner.rerun_from(b.id).await.unwrap_err();
    assert!(matches!(err, GraphError::TaskState(_)), "{err}");
    assert!(err.to_string().contains("rerun from a instead"), "{err}");
    assert_eq!(store.last_seq().await.unwrap(), seq, "nothing was written");
    let err = runner.rerun_from(Id::from_u128(7)).await.unwrap_err();
    assert!(matches!(err, GraphError::TaskNotFound(_)), "{err}");
    // Rerunning from a itself reopens the cancelled graph.
    let queued = runner.rerun_from(a.id).await.unwrap();
    assert_eq!(queued.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(store.get_graph(g.id).await.unwrap().unwrap().status, GraphStatus::Running);
}
