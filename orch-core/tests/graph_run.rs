//! Task graphs run by workers with the scripted model: dependency order and concurrency asserted from
//! the event log, retries, checkpoints resolved with guidance, model routing, stuck detection and budgets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orch_core::config::RouteRule;
use orch_core::executor::{AgentRunner, Supervisor};
use orch_core::graph::run::StuckSettings;
use orch_core::graph::{GraphRunner, GraphSettings, Resolution, Router, TaskGraphs};
use orch_core::model::ModelError;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{EventQuery, MemoryStore, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Complexity, Event, EventRecord, GraphStatus, Id, PlannedTask, Task, TaskStatus, Usage};
use serde_json::json;

type Prompts = Arc<Mutex<Vec<(String, String)>>>;

fn planned(key: &str, task_type: &str, complexity: Complexity, deps: Vec<String>) -> PlannedTask {
    PlannedTask {
        key: key.into(),
        title: format!("do {key}"),
        description: format!("Work on {key}."),
        task_type: task_type.into(),
        complexity,
        depends_on: deps,
        model: None,
        tools: Vec::new(),
        verification: Vec::new(),
        estimated_cost_usd: None,
        estimated_minutes: None,
    }
}

/// A runner over `store` whose tasks run on `model`.
fn runner(store: Arc<dyn Store>, model: ScriptedModel, settings: GraphSettings, routes: Vec<RouteRule>) -> GraphRunner {
    let agents = AgentRunner::builder(store, Arc::new(model)).tools(ToolRegistry::with_builtins()).build();
    let dir = std::env::temp_dir();
    GraphRunner::new(Supervisor::new(agents, Vec::new()), dir, Router::new(routes), settings)
}

fn fast_settings(concurrency: u32) -> GraphSettings {
    GraphSettings {
        concurrency,
        retry_base: Duration::from_millis(20),
        poll: Duration::from_millis(20),
        ..GraphSettings::default()
    }
}

/// Stores `tasks` as an approved plan and makes its graph.
async fn graph_of(store: &Arc<dyn Store>, tasks: Vec<PlannedTask>) -> (Id, Vec<Task>) {
    let graphs = TaskGraphs::new(store.clone());
    let plan = graphs.create_plan("test", tasks, Default::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (g, tasks) = graphs.create_graph(plan.id, None).await.unwrap();
    (g.id, tasks)
}

async fn events(store: &Arc<dyn Store>) -> Vec<EventRecord> {
    store.read_events(&EventQuery::default()).await.unwrap()
}

/// The task updates of the log, in order.
fn task_updates(events: &[EventRecord]) -> Vec<(u64, Task)> {
    events
        .iter()
        .filter_map(|r| match &r.event {
            Event::TaskUpdated { task } => Some((r.seq, (**task).clone())),
            _ => None,
        })
        .collect()
}

/// The key of the task an agent works on (`KEY-graph-aN`).
fn task_key(agent: &str) -> &str {
    agent.rsplitn(3, '-').nth(2).unwrap_or(agent)
}

fn attempt_of(agent: &str) -> u32 {
    agent.rsplit('-').next().and_then(|a| a.strip_prefix('a')).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// 50 tasks in 6 waves: wave sizes 10, 10, 10, 10, 5, 5; each task after wave 1 depends on one or two
/// tasks of the wave before.
fn fifty() -> Vec<PlannedTask> {
    let sizes = [10usize, 10, 10, 10, 5, 5];
    let mut out = Vec::new();
    let mut prev: Vec<String> = Vec::new();
    for (w, size) in sizes.iter().enumerate() {
        let mut this = Vec::new();
        for i in 0..*size {
            let key = match (w, i) {
                (1, 3) => "flaky".to_string(),
                (2, 4) => "stubborn".to_string(),
                _ => format!("w{}t{i}", w + 1),
            };
            let deps = if prev.is_empty() {
                Vec::new()
            } else {
                let mut d = vec![prev[i % prev.len()].clone()];
                if i % 3 == 0 {
                    d.push(prev[(i + 1) % prev.len()].clone());
                }
                d.dedup();
                d
            };
            out.push(planned(&key, "code", Complexity::Medium, deps));
            this.push(key);
        }
        prev = this;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_tasks_run_in_dependency_order_with_retries_and_a_checkpoint() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let prompts: Prompts = Arc::default();
    let seen = prompts.clone();
    let model = ScriptedModel::from_fn(move |req| {
        let agent = req.agent_name.clone();
        let text = req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string();
        seen.lock().unwrap().push((agent.clone(), text.clone()));
        let key = task_key(&agent);
        let attempt = attempt_of(&agent);
        if key == "flaky" && attempt == 1 {
            return Err(ModelError::Other { message: "flaky failure".into() });
        }
        if key == "stubborn" && !text.contains("use the blue one") {
            return Err(ModelError::Other { message: format!("stubborn failure {attempt}") });
        }
        Ok(ScriptReply::text(format!("{key} done\nKNOWLEDGE[code]: {key} was built")))
    });
    let runner = runner(store.clone(), model, fast_settings(4), Vec::new());
    let (graph_id, tasks) = graph_of(&store, fifty()).await;
    assert_eq!(tasks.len(), 50);
    assert_eq!(tasks.iter().map(|t| t.wave).max(), Some(6));
    runner.start(graph_id, None).await.unwrap();
    let worker = runner.worker(Some(graph_id));
    let run = tokio::spawn(worker.run());

    // The stubborn task exhausts its retries and waits for a person.
    let stubborn = tasks.iter().find(|t| t.key == "stubborn").unwrap().id;
    let blocked = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let t = store.get_task(stubborn).await.unwrap().unwrap();
            if t.status == TaskStatus::Blocked {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stubborn task raises a checkpoint");
    assert_eq!(blocked.failures, 3);
    assert!(blocked.checkpoint.as_deref().unwrap().contains("failed 3 attempts"), "{:?}", blocked.checkpoint);
    let open = runner.checkpoints(Some(graph_id)).await.unwrap();
    assert_eq!(open.iter().map(|t| t.id).collect::<Vec<_>>(), vec![stubborn]);
    runner.resolve(stubborn, Resolution::Retry, Some("use the blue one")).await.unwrap();

    let report = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the graph ends").unwrap().unwrap();
    let graph = report.graph.unwrap();
    assert_eq!(graph.status, GraphStatus::Completed, "{:?}", graph.error);

    let log = events(&store).await;
    let updates = task_updates(&log);
    let deps: HashMap<Id, Vec<Id>> = tasks.iter().map(|t| (t.id, t.depends_on.clone())).collect();
    let mut completed: HashSet<Id> = HashSet::new();
    let mut running: HashSet<Id> = HashSet::new();
    let mut max_running = 0;
    for (_, t) in &updates {
        match t.status {
            TaskStatus::Running => {
                for d in &deps[&t.id] {
                    assert!(completed.contains(d), "{} started before its dependency completed", t.key);
                }
                running.insert(t.id);
                max_running = max_running.max(running.len());
            }
            TaskStatus::Completed => {
                running.remove(&t.id);
                completed.insert(t.id);
            }
            _ => {
                running.remove(&t.id);
            }
        }
    }
    assert_eq!(completed.len(), 50, "every task completed");
    assert!(max_running <= 4, "at most 4 tasks ran at once, saw {max_running}");
    assert!(max_running >= 2, "tasks ran concurrently (saw {max_running} at most)");

    let final_tasks = store.list_tasks(graph_id).await.unwrap();
    let flaky = final_tasks.iter().find(|t| t.key == "flaky").unwrap();
    assert_eq!((flaky.status, flaky.attempt, flaky.failures), (TaskStatus::Completed, 2, 1));
    let stubborn_task = final_tasks.iter().find(|t| t.key == "stubborn").unwrap();
    assert_eq!(stubborn_task.status, TaskStatus::Completed);
    assert_eq!(stubborn_task.attempt, 4);
    assert_eq!(stubborn_task.guidance, vec!["use the blue one".to_string()]);
    let prompts = prompts.lock().unwrap();
    let retry_prompt = prompts.iter().find(|(a, _)| a.starts_with("stubborn-") && a.ends_with("-a4")).unwrap();
    assert!(retry_prompt.1.contains("Guidance from a person\n- use the blue one"), "{}", retry_prompt.1);
    // Dependencies' outputs and facts reach later tasks.
    let late = prompts.iter().find(|(a, _)| a.starts_with("w6t0-")).unwrap();
    assert!(late.1.contains("What the tasks it depends on produced"), "{}", late.1);
    assert!(late.1.contains("Known facts of this project"), "{}", late.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_sends_each_type_and_complexity_to_its_model() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = ScriptedModel::from_fn(|req| Ok(ScriptReply::text(format!("done by {}", req.model))));
    let routes = vec![
        RouteRule {
            task_type: Some("code".into()),
            complexity: Some("simple".into()),
            model: "model-cs".into(),
            fallback: vec![],
        },
        RouteRule { task_type: Some("code".into()), complexity: None, model: "model-c".into(), fallback: vec![] },
        RouteRule {
            task_type: Some("research".into()),
            complexity: Some("simple".into()),
            model: "model-rs".into(),
            fallback: vec![],
        },
    ];
    let runner = runner(store.clone(), model, fast_settings(2), routes);
    let mut tasks = vec![
        planned("a", "code", Complexity::Simple, vec![]),
        planned("b", "code", Complexity::Complex, vec![]),
        planned("c", "research", Complexity::Simple, vec![]),
        planned("d", "documentation", Complexity::Medium, vec![]),
        planned("e", "code", Complexity::Simple, vec![]),
    ];
    tasks[4].model = Some("model-own".into());
    let (graph_id, _) = graph_of(&store, tasks).await;
    runner.start(graph_id, None).await.unwrap();
    let report =
        tokio::time::timeout(Duration::from_secs(30), runner.worker(Some(graph_id)).run()).await.unwrap().unwrap();
    assert_eq!(report.graph.unwrap().status, GraphStatus::Completed);
    let mut by_key: HashMap<String, String> = HashMap::new();
    for r in events(&store).await {
        if let Event::AgentCostsUpdated { model, .. } = &r.event {
            let agent = store.get_agent(r.keys.agent_id.unwrap()).await.unwrap().unwrap();
            by_key.insert(task_key(&agent.name).to_string(), model.clone());
        }
    }
    assert_eq!(by_key["a"], "model-cs");
    assert_eq!(by_key["b"], "model-c");
    assert_eq!(by_key["c"], "model-rs");
    // Not in the table: the built-in default for medium work.
    assert!(by_key["d"].contains("sonnet"), "{}", by_key["d"]);
    assert_eq!(by_key["e"], "model-own", "a task's own model wins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stuck_in_a_sleeping_bash_call_is_interrupted_and_retried() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = ScriptedModel::from_fn(|req| {
        let after_tool = req
            .messages
            .last()
            .is_some_and(|m| m.content.iter().any(|b| matches!(b, orch_core::wire::ContentBlock::ToolResult { .. })));
        Ok(match attempt_of(&req.agent_name) {
            1 if !after_tool => ScriptReply::tool_use("s", "Bash", json!({"command": "sleep 30"})),
            _ => ScriptReply::text("done quickly"),
        })
    });
    let mut settings = fast_settings(1);
    settings.stuck = StuckSettings { no_output: Duration::from_millis(800), ..StuckSettings::default() };
    let runner = runner(store.clone(), model, settings, Vec::new());
    let (graph_id, tasks) = graph_of(&store, vec![planned("slow", "code", Complexity::Simple, vec![])]).await;
    runner.start(graph_id, None).await.unwrap();
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(25), runner.worker(Some(graph_id)).run())
        .await
        .expect("the stuck attempt is interrupted long before its sleep ends")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(report.graph.unwrap().status, GraphStatus::Completed);
    let t = store.get_task(tasks[0].id).await.unwrap().unwrap();
    assert_eq!((t.attempt, t.failures, t.status), (2, 1, TaskStatus::Completed));
    let updates = task_updates(&events(&store).await);
    let failed =
        updates.iter().find(|(_, u)| u.error.as_deref().is_some_and(|e| e.starts_with("stuck: no output"))).unwrap();
    assert_eq!(failed.1.status, TaskStatus::Ready, "the stuck attempt is retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_pauses_the_graph_at_its_limit_and_resuming_with_more_finishes_it() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // Every call: 1,000 input and 6,000 output tokens of Haiku ($1 and $5 per million): $0.031. A
    // call's reservation is its upper bound: its request and its whole output allowance (8,192 tokens).
    let model = ScriptedModel::from_fn(|_| {
        Ok(ScriptReply::text("done").with_usage(Usage { input_tokens: 1000, output_tokens: 6000, ..Usage::default() }))
    });
    let mut tasks = Vec::new();
    for i in 0..24 {
        let mut t = planned(&format!("t{i}"), "code", Complexity::Simple, vec![]);
        t.model = Some("claude-haiku-4-5".into());
        tasks.push(t);
    }
    let (graph_id, _) = graph_of(&store, tasks).await;
    let runner = runner(store.clone(), model, fast_settings(4), Vec::new());
    let limit = 0.4;
    runner.start(graph_id, Some(limit)).await.unwrap();
    // Two workers of four: eight tasks at once.
    let (a, b) = (runner.worker(Some(graph_id)), runner.worker(Some(graph_id)));
    let (ra, rb) = tokio::join!(a.run(), b.run());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let graph = store.get_graph(graph_id).await.unwrap().unwrap();
    assert_eq!(graph.status, GraphStatus::Paused, "{graph:?}");
    assert!(graph.error.as_deref().unwrap().starts_with("budget_exhausted"), "{:?}", graph.error);
    assert!(graph.cost_usd <= limit + 1e-9, "spent {} past the limit {limit}", graph.cost_usd);
    assert!(graph.cost_usd > 0.0);
    assert!(ra.attempts + rb.attempts >= 8);
    let done = store.list_tasks(graph_id).await.unwrap().iter().filter(|t| t.status == TaskStatus::Completed).count();
    assert!(done < 24, "the limit stopped work before the end");
    let warnings = events(&store)
        .await
        .into_iter()
        .filter(|r| {
            matches!(&r.event, Event::SystemLog { metadata, .. }
            if metadata["event"] == "budget_warning" && metadata["graph_id"] == json!(graph_id))
        })
        .count();
    assert!(warnings >= 1, "a budget_warning event at 80 % of the limit");
    // A first call's reservation travels with its turn's first step; once refused, that step is still
    // stored (alone), before the error that ends the attempt without calling the model.
    let log = events(&store).await;
    let refused: Vec<&EventRecord> = log
        .iter()
        .filter(|r| matches!(&r.event, Event::ModelError { message, .. } if message.starts_with("budget_exhausted")))
        .collect();
    assert!(!refused.is_empty(), "an attempt was refused its call");
    for r in refused {
        let agent = r.keys.agent_id;
        assert!(
            log.iter().any(|p| p.keys.agent_id == agent
                && p.seq < r.seq
                && matches!(p.event, Event::UserPromptSubmit { .. })),
            "the refused attempt's prompt is stored before its error"
        );
        let texts = log.iter().filter(|p| p.keys.agent_id == agent && matches!(p.event, Event::Text { .. })).count();
        assert_eq!(texts, 0, "a refused attempt's model is not called");
    }

    runner.start(graph_id, Some(1.0)).await.unwrap();
    let report = runner.worker(Some(graph_id)).run().await.unwrap();
    let graph = report.graph.unwrap();
    assert_eq!(graph.status, GraphStatus::Completed);
    let total: f64 = store.list_tasks(graph_id).await.unwrap().iter().map(|t| t.cost_usd).sum();
    assert!((graph.cost_usd - total).abs() < 1e-9, "graph cost {} is the sum of its tasks' {total}", graph.cost_usd);
    // Every reservation was settled (each with the step that recorded its call): nothing stays held.
    let at = orch_core::wire::now();
    let budget = store.budget(&at.format("%Y-%m-%d").to_string(), &at.format("%Y-%m").to_string()).await.unwrap();
    assert!(budget.daily.reserved_usd.abs() < 1e-9, "{budget:?}");
    assert!(budget.monthly.reserved_usd.abs() < 1e-9, "{budget:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_is_claimed_in_the_commit_that_completes_its_parent() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = ScriptedModel::from_fn(|_| Ok(ScriptReply::text("done")));
    let tasks = vec![
        planned("a", "code", Complexity::Simple, vec![]),
        planned("b", "code", Complexity::Simple, vec!["a".into()]),
        planned("c", "code", Complexity::Simple, vec!["b".into()]),
    ];
    let (graph_id, _) = graph_of(&store, tasks).await;
    let runner = runner(store.clone(), model, fast_settings(1), Vec::new());
    runner.start(graph_id, None).await.unwrap();
    let report = runner.worker(Some(graph_id)).run().await.unwrap();
    assert_eq!(report.graph.unwrap().status, GraphStatus::Completed);
    let tasks = store.list_tasks(graph_id).await.unwrap();
    let by_key = |k: &str| tasks.iter().find(|t| t.key == k).unwrap();
    for (parent, child) in [("a", "b"), ("b", "c")] {
        let (p, c) = (by_key(parent), by_key(child));
        assert_eq!(c.attempt, 1, "{c:?}");
        // The same commit: the child starts at the instant its parent completed.
        assert_eq!(c.started_at, p.completed_at, "{child} started when {parent} completed");
    }
    // Recorded in that order: the parent completed, then the child claimed.
    let updates = task_updates(&events(&store).await);
    let seq_of = |key: &str, status: TaskStatus| {
        updates.iter().find(|(_, t)| t.key == key && t.status == status).map(|(seq, _)| *seq).unwrap()
    };
    assert!(seq_of("b", TaskStatus::Running) > seq_of("a", TaskStatus::Completed));
}

/// Each task's prompt carries the outputs of its own dependencies, and no other task's, also when many
/// tasks are claimed at once (their worker reads all their dependencies in one go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_gets_the_outputs_of_its_own_dependencies() {
    const N: usize = 20;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let prompts: Prompts = Arc::new(Mutex::new(Vec::new()));
    let seen = prompts.clone();
    let model = ScriptedModel::from_fn(move |req| {
        let agent = req.agent_name.clone();
        let text = req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string();
        seen.lock().unwrap().push((agent.clone(), text));
        Ok(ScriptReply::text(format!("made artifact-{}.", task_key(&agent))))
    });
    let mut tasks: Vec<PlannedTask> =
        (0..N).map(|i| planned(&format!("p{i}"), "code", Complexity::Simple, Vec::new())).collect();
    for i in 0..N {
        let deps = vec![format!("p{i}"), format!("p{}", (i + 1) % N)];
        tasks.push(planned(&format!("c{i}"), "code", Complexity::Simple, deps));
    }
    let (g, _) = graph_of(&store, tasks).await;
    let r = runner(store.clone(), model, fast_settings(64), Vec::new());
    r.start(g, None).await.unwrap();
    let report = r.worker(Some(g)).run().await.unwrap();
    assert_eq!(report.graph.map(|g| g.status), Some(GraphStatus::Completed));
    let prompts = prompts.lock().unwrap();
    for i in 0..N {
        let (_, prompt) = prompts.iter().find(|(a, _)| task_key(a) == format!("c{i}")).unwrap();
        let own = [format!("p{i}"), format!("p{}", (i + 1) % N)];
        for p in 0..N {
            let artifact = format!("artifact-p{p}.");
            let expected = own.contains(&format!("p{p}"));
            assert_eq!(prompt.contains(&artifact), expected, "c{i} and {artifact}:\n{prompt}");
        }
    }
}
