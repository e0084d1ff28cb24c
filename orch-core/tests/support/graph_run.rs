//! A small graph run to its end by one worker on a given store and model, for tests that watch what
//! the store sees. Include with `#[path = "support/graph_run.rs"] mod graph_run;`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::graph::{GraphRunner, GraphSettings, Router, TaskGraphs};
use orch_core::model::ModelProvider;
use orch_core::store::Store;
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Complexity, GraphStatus, PlannedTask, TaskGraph};

/// A planned `code` task `key` depending on `depends_on` (keys).
pub fn task(key: &str, depends_on: Vec<String>) -> PlannedTask {
    PlannedTask {
        key: key.into(),
        title: format!("task {key}"),
        description: "Answer.".into(),
        task_type: "code".into(),
        complexity: Complexity::Simple,
        depends_on,
        model: None,
        tools: Vec::new(),
        verification: Vec::new(),
        estimated_cost_usd: None,
        estimated_minutes: None,
    }
}

/// Plans `tasks`, approves the plan, makes it a graph and runs it with one worker (no tools, polling
/// every 20 ms) until the graph ends; panics unless it completed within a minute. Returns the graph.
pub async fn run_to_end(store: Arc<dyn Store>, model: Arc<dyn ModelProvider>, tasks: Vec<PlannedTask>) -> TaskGraph {
    let agents = AgentRunner::builder(store.clone(), model).tools(ToolRegistry::new()).build();
    let settings = GraphSettings { poll: Duration::from_millis(20), ..GraphSettings::default() };
    let dir = tempfile::tempdir().unwrap();
    let workdir: std::path::PathBuf = dir.path().into();
    let runner = GraphRunner::new(Supervisor::new(agents, Vec::new()), workdir, Router::new(Vec::new()), settings);
    let graphs = TaskGraphs::new(store);
    let plan = graphs.create_plan("test", tasks, Default::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (graph, _) = graphs.create_graph(plan.id, None).await.unwrap();
    runner.start(graph.id, None).await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), runner.worker(Some(graph.id)).run())
        .await
        .expect("the worker finished the graph")
        .unwrap();
    let graph = report.graph.expect("the worker reports its graph");
    assert_eq!(graph.status, GraphStatus::Completed);
    graph
}
