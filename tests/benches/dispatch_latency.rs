//! Dispatch latency at a paced rate (issue 13): tasks are added to a running graph at RATE tasks/s
//! (default 500) for SECONDS (default 4) through the runner of the process whose worker runs them, as
//! `orch serve` does when clients add tasks: each pair (a parent, then a child depending on it) by a
//! client of its own, the clients arriving at the pace whether or not earlier ones are done (so a
//! store that cannot keep up shows as growing latencies, not as a slower pace). Every task is a real
//! agent run on a scripted model that answers at once, on a SQLite file at full durability (and, with
//! `PG_URL=postgres://…`, on a fresh PostgreSQL schema too). Reported (p50, p99): a ready task added →
//! claimed and → its attempt started; a parent completed → its child claimed and → its child's attempt
//! started, and its agent's answer → its child's attempt started. Added and completed: the commits that
//! made the task ready and the parent completed (their `TaskUpdated` events' times); answered: the
//! parent's agent's `Result` event (the commit that stores the answer, which ends the task too when
//! nothing is left to check). Claimed: the task running in the store (its `started_at`, the claim's
//! time; a child claimed by its parent's end shares that commit). Started: the attempt's agent,
//! created claimed for the run, in the log (the time of its `AgentCreated` event). The same-run
//! baseline: the same number of bare agent runs started at the same pace straight on the supervisor
//! (no queue), submitted → the run's first event; the ratio of p50s is what the queue adds.
//!
//! Run: `cargo bench -p orch-tests --bench dispatch_latency` (env: RATE, SECONDS, CONCURRENCY (default 64),
//! PG_URL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod allocator;

mod pg_schema;

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
use pg_schema::{drop_schema, postgres};

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

/// Latencies of one paced graph (ms): for the parents from the task added (ready), for the children
/// from their parent completed; to the task claimed (running in the store, as its worker takes it)
/// and to its attempt started (its agent in the log).
#[derive(Default)]
struct Latencies {
    ready_claimed: Vec<f64>,
    ready_started: Vec<f64>,
    child_claimed: Vec<f64>,
    child_started: Vec<f64>,
    /// From the parent's agent's answer stored to the child's attempt started.
    answer_started: Vec<f64>,
    /// The pace the tasks were added at (tasks/s): below the one asked for when adding is slower.
    added_per_s: f64,
}

async fn paced_graph(
    store: Arc<dyn Store>,
    dir: &std::path::Path,
    rate: usize,
    seconds: usize,
    concurrency: u32,
) -> Latencies {
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
    // Each pair is added by a client of its own (the parent, then its child), the clients arriving at
    // the pace whether or not the earlier ones are done, as requests to a server do.
    let runner = Arc::new(runner);
    let mut clients = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let (runner, id) = (runner.clone(), g.id);
        clients.push(tokio::spawn(async move {
            let parent = format!("p{i}");
            runner.add_task(id, task(parent.clone(), Vec::new())).await.unwrap();
            runner.add_task(id, task(format!("c{i}"), vec![parent])).await.unwrap();
        }));
        let due = start + Duration::from_secs_f64((i + 1) as f64 * 2.0 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    for c in clients {
        c.await.unwrap();
    }
    let added_per_s = (pairs * 2) as f64 / start.elapsed().as_secs_f64();
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
    // An attempt has started when its agent exists in the log (created claimed for its run, in the
    // commit that records the task running): that event's time, not the claim's.
    let q = EventQuery { types: vec!["AgentCreated".into()], ..EventQuery::default() };
    let created: HashMap<_, _> = store
        .read_events(&q)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::AgentCreated { agent } => Some((agent.id, r.timestamp)),
            _ => None,
        })
        .collect();
    // A parent answered when its agent's `Result` was stored.
    let q = EventQuery { types: vec!["Result".into()], ..EventQuery::default() };
    let mut answered = HashMap::new();
    for r in store.read_events(&q).await.unwrap() {
        if let Some(agent) = r.keys.agent_id {
            answered.entry(agent).or_insert(r.timestamp);
        }
    }
    let agent_of: HashMap<_, _> = tasks.iter().filter_map(|t| Some((t.id, t.agent_id?))).collect();
    // A task is ready once its addition committed, and completed once its end committed: the times
    // of its first event (the addition's TaskUpdated) and of its first completed one, each stamped as
    // it is appended with its commit, not the created_at and completed_at the batches carried, which
    // precede their commits.
    let q = EventQuery { types: vec!["TaskUpdated".into()], ..EventQuery::default() };
    let (mut added, mut done) = (HashMap::new(), HashMap::new());
    for r in store.read_events(&q).await.unwrap() {
        if let Event::TaskUpdated { task } = r.event {
            added.entry(task.id).or_insert(r.timestamp);
            if task.status == TaskStatus::Completed {
                done.entry(task.id).or_insert(r.timestamp);
            }
        }
    }
    // A task claimed in the commit that readied it (a child by its parent's end) has a claim time
    // from just before that commit: no wait, 0.
    let ms = |d: chrono::Duration| (d.num_microseconds().unwrap_or(0) as f64 / 1000.0).max(0.0);
    let mut l = Latencies { added_per_s, ..Latencies::default() };
    for t in tasks.iter().filter(|t| t.key != "gate") {
        let (Some(claimed), Some(started)) = (t.started_at, t.agent_id.and_then(|a| created.get(&a))) else {
            continue;
        };
        match t.depends_on.first() {
            None => {
                let ready = added.get(&t.id).copied().unwrap_or(t.created_at);
                l.ready_claimed.push(ms(claimed - ready));
                l.ready_started.push(ms(*started - ready));
            }
            Some(d) => {
                if let Some(parent_done) = done.get(d) {
                    l.child_claimed.push(ms(claimed - *parent_done));
                    l.child_started.push(ms(*started - *parent_done));
                }
                if let Some(answer) = agent_of.get(d).and_then(|a| answered.get(a)) {
                    l.answer_started.push(ms(*started - *answer));
                }
            }
        }
    }
    l
}

/// `n` bare agent runs started at `rate`/s: submitted → the run's first event (ms).
async fn paced_bare(store: Arc<dyn Store>, rate: usize, n: usize) -> Vec<f64> {
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

fn sqlite(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(dir.join("orch.db")).unwrap())
}

fn report(mut l: Latencies, bare: &mut [f64]) {
    let (b50, b99) = (percentile(bare, 0.5), percentile(bare, 0.99));
    println!("  tasks added at {:.0}/s", l.added_per_s);
    println!("  baseline, bare runs submitted -> first event:  p50 {b50:7.2} ms  p99 {b99:7.2} ms");
    let rows = [
        ("task added (ready) -> claimed", &mut l.ready_claimed),
        ("task added (ready) -> attempt started", &mut l.ready_started),
        ("parent completed -> child claimed", &mut l.child_claimed),
        ("parent completed -> child attempt started", &mut l.child_started),
        ("parent's answer -> child attempt started", &mut l.answer_started),
    ];
    for (label, v) in rows {
        let (p50, p99) = (percentile(v, 0.5), percentile(v, 0.99));
        println!("  {label:<46} p50 {p50:7.2} ms  p99 {p99:7.2} ms  (p50 {:.1}x the baseline)", p50 / b50.max(0.001));
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // RUST_LOG=orch_store_postgres::group=trace shows each group commit: its lane, size, time queued
    // and time to commit.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let rate = env("RATE", 500);
    let seconds = env("SECONDS", 4);
    let concurrency = env("CONCURRENCY", 64) as u32;
    println!("dispatch latency at {rate} tasks/s for {seconds} s (one worker x {concurrency})");
    println!("SQLite file, full durability:");
    let dir = tempfile::tempdir().unwrap();
    let graph = paced_graph(sqlite(dir.path()), dir.path(), rate, seconds, concurrency).await;
    let dir = tempfile::tempdir().unwrap();
    let mut bare = paced_bare(sqlite(dir.path()), rate, rate * seconds).await;
    report(graph, &mut bare);
    let Ok(url) = std::env::var("PG_URL") else {
        println!("PostgreSQL: skipped (set PG_URL=postgres://… to run it)");
        return;
    };
    println!("PostgreSQL:");
    let dir = tempfile::tempdir().unwrap();
    let (store, schema) = postgres(&url, "latency").await;
    let graph = paced_graph(store, dir.path(), rate, seconds, concurrency).await;
    drop_schema(&url, &schema).await;
    let (store, schema) = postgres(&url, "latency_bare").await;
    let mut bare = paced_bare(store, rate, rate * seconds).await;
    drop_schema(&url, &schema).await;
    report(graph, &mut bare);
}
