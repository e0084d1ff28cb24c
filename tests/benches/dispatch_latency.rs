//! Dispatch latency at a paced rate (issue 13): tasks are added to a running graph at RATE tasks/s
//! (default 500) for SECONDS (default 4) through the runner of the process whose worker runs them, as
//! `orch serve` does when a client adds tasks; every task is a real agent run on a scripted model that
//! answers at once, on a SQLite file at full durability. Half the tasks are parents, half children
//! depending on the parent added just before them. Reported (p50, p99): a ready task added → its
//! attempt started; a parent completed → its child started. The same-run baseline: the same number of
//! bare agent runs started at the same pace straight on the supervisor (no queue), submitted → the
//! run's first event; the ratio of p50s is what the queue adds.
//!
//! Run: `cargo bench -p orch-tests --bench dispatch_latency` (env: RATE, SECONDS, CONCURRENCY (default 64)).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::executor::{AgentRunner, RunOptions, Supervisor};
use orch_core::graph::{GraphRunner, GraphSettings, NewTask, Router, TaskGraphs};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Change, EventQuery, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Agent, Complexity, Event, EventKeys, PlannedTask, TaskStatus};
use orch_store_sqlite::SqliteStore;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).saturating_sub(1).min(v.len() - 1)]
}

fn supervisor(store: Arc<dyn Store>) -> Supervisor {
    let model = ScriptedModel::from_fn(|_req: &ModelRequest| Ok(ScriptReply::text("done")));
    let runner = AgentRunner::builder(store, Arc::new(model)).tools(ToolRegistry::new()).build();
    Supervisor::new(runner, Vec::new())
}

fn task(key: String, depends_on: Vec<String>) -> NewTask {
    NewTask {
        key,
        title: "paced".into(),
        complexity: Complexity::Simple,
        depends_on,
        model: Some("scripted".into()),
        ..NewTask::default()
    }
}

/// Ready → started for the parents, parent completed → child started for the children (ms).
async fn paced_graph(dir: &std::path::Path, rate: usize, seconds: usize, concurrency: u32) -> (Vec<f64>, Vec<f64>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("orch.db")).unwrap());
    let graphs = TaskGraphs::new(store.clone());
    // A task whose check fails waits at a checkpoint all along, so the graph never runs out of open
    // tasks (and ends) between two arrivals.
    let seed = PlannedTask {
        key: "gate".into(),
        title: "gate".into(),
        description: String::new(),
        task_type: "code".into(),
        complexity: Complexity::Simple,
        depends_on: Vec::new(),
        model: Some("scripted".into()),
        tools: Vec::new(),
        verification: vec!["$ false".into()],
        estimated_cost_usd: None,
        estimated_minutes: None,
    };
    let p = graphs.create_plan("paced", vec![seed], Default::default()).await.unwrap();
    graphs.approve(p.id).await.unwrap();
    let (g, _) = graphs.create_graph(p.id, None).await.unwrap();
    let settings = GraphSettings { concurrency, ..GraphSettings::default() };
    let runner = GraphRunner::new(supervisor(store.clone()), dir, Router::new(Vec::new()), settings);
    runner.start(g.id, None).await.unwrap();
    let worker = runner.worker(None);
    let stop = worker.stopper();
    let running = tokio::spawn(worker.run());
    let pairs = rate * seconds / 2;
    let start = Instant::now();
    for i in 0..pairs {
        let parent = format!("p{i}");
        runner.add_task(g.id, task(parent.clone(), Vec::new())).await.unwrap();
        runner.add_task(g.id, task(format!("c{i}"), vec![parent])).await.unwrap();
        let due = start + Duration::from_secs_f64((i + 1) as f64 * 2.0 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let tasks = loop {
        let tasks = store.list_tasks(g.id).await.unwrap();
        if tasks.iter().filter(|t| t.key != "gate").all(|t| t.status == TaskStatus::Completed) {
            break tasks;
        }
        if Instant::now() > deadline {
            let mut by: HashMap<&str, usize> = HashMap::new();
            for t in &tasks {
                *by.entry(t.status.as_str()).or_default() += 1;
            }
            let graph = store.get_graph(g.id).await.unwrap().map(|g| g.status);
            panic!("the paced tasks did not all complete: {by:?}, graph {graph:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.trigger();
    let _ = running.await;
    let done: HashMap<_, _> = tasks.iter().map(|t| (t.id, t.completed_at)).collect();
    let ms = |d: chrono::Duration| d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
    let (mut ready, mut child) = (Vec::new(), Vec::new());
    for t in tasks.iter().filter(|t| t.key != "gate") {
        let Some(started) = t.started_at else { continue };
        match t.depends_on.first() {
            None => ready.push(ms(started - t.created_at)),
            Some(d) => {
                if let Some(Some(parent_done)) = done.get(d) {
                    child.push(ms(started - *parent_done));
                }
            }
        }
    }
    (ready, child)
}

/// `n` bare agent runs started at `rate`/s: submitted → the run's first event (ms).
async fn paced_bare(dir: &std::path::Path, rate: usize, n: usize) -> Vec<f64> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("orch.db")).unwrap());
    let sup = supervisor(store.clone());
    let start = Instant::now();
    let mut runs = Vec::new();
    for i in 0..n {
        let (store, sup) = (store.clone(), sup.clone());
        runs.push(tokio::spawn(async move {
            let agent = Agent::new(format!("bare-{i}"), "scripted", "/tmp");
            let submitted = chrono::Utc::now();
            let created = Batch::new()
                .change(Change::CreateAgent(Box::new(agent.clone())))
                .event(EventKeys::default(), Event::AgentCreated { agent: Box::new(agent.clone()) });
            store.commit(created).await.unwrap();
            sup.run(&agent, "# Task".to_string(), RunOptions::default()).await.unwrap();
            let q = EventQuery { agent_id: Some(agent.id), limit: Some(3), ..EventQuery::default() };
            let first = store
                .read_events(&q)
                .await
                .unwrap()
                .into_iter()
                .find(|r| !matches!(r.event, Event::AgentCreated { .. }))
                .map(|r| r.timestamp)
                .unwrap_or(submitted);
            (first - submitted).num_microseconds().unwrap_or(0) as f64 / 1000.0
        }));
        let due = start + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    let mut out = Vec::with_capacity(n);
    for r in runs {
        out.push(r.await.unwrap());
    }
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rate = env("RATE", 500);
    let seconds = env("SECONDS", 4);
    let concurrency = env("CONCURRENCY", 64) as u32;
    println!(
        "dispatch latency at {rate} tasks/s for {seconds} s (SQLite file, full durability, one worker x {concurrency})"
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut ready, mut child) = paced_graph(dir.path(), rate, seconds, concurrency).await;
    let dir = tempfile::tempdir().unwrap();
    let mut bare = paced_bare(dir.path(), rate, rate * seconds).await;
    let (r50, r99) = (percentile(&mut ready, 0.5), percentile(&mut ready, 0.99));
    let (c50, c99) = (percentile(&mut child, 0.5), percentile(&mut child, 0.99));
    let (b50, b99) = (percentile(&mut bare, 0.5), percentile(&mut bare, 0.99));
    println!("  baseline, bare runs submitted -> first event: p50 {b50:7.2} ms  p99 {b99:7.2} ms");
    println!(
        "  task added (ready) -> attempt started:        p50 {r50:7.2} ms  p99 {r99:7.2} ms  (p50 {:.1}x the baseline)",
        r50 / b50.max(0.001)
    );
    println!(
        "  parent completed -> child started:           p50 {c50:7.2} ms  p99 {c99:7.2} ms  (p50 {:.1}x the baseline)",
        c50 / b50.max(0.001)
    );
}
