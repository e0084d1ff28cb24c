//! Plans and task graphs: reading plans as models write them, validation that names the task, cycles
//! named in order, waves, the planning model's one retry, versions, approval, graphs and added tasks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use orch_core::ErrorKind;
use orch_core::graph::{GraphError, NewTask, PlanOrigin, Planner, Problem, TaskGraphs, read_plan_text};
use orch_core::model::scripted::ScriptedModel;
use orch_core::store::{Batch, Change, EventQuery, MemoryStore, Store};
use orch_core::wire::{Complexity, Event, EventCategory, GraphStatus, PlanStatus, TaskStatus};
use serde_json::{Value, json};

fn problems(text: &str) -> Vec<Problem> {
    match read_plan_text(text) {
        Err(GraphError::Invalid(p)) => p.0,
        other => panic!("expected an invalid plan, got {other:?}"),
    }
}

fn message(text: &str) -> String {
    read_plan_text(text).unwrap_err().to_string()
}

#[test]
fn problems_name_the_task_and_what_is_wrong() {
    let msg = message(r#"[{"id": "e", "title": "Ship", "complexity": "galactic", "tools": 3}]"#);
    assert!(msg.contains("e: `complexity` \"galactic\" is not simple, medium or complex"), "{msg}");
    assert!(msg.contains("e: `tools` expected a list of strings, found 3"), "{msg}");
    // Field problems come first; once the fields read, the structure is checked.
    let text = json!({"tasks": [
        {"id": "a", "title": "Design"},
        {"id": "b", "title": "Build", "depends_on": ["a", "zzz"]},
        {"id": "c", "title": "Test", "depends_on": ["c"]},
        {"id": "a", "title": "Again"},
        {"id": "d", "title": "  "},
        {"title": "Five", "depends_on": [17]},
    ]})
    .to_string();
    let msg = message(&text);
    for part in [
        "a (\"Again\") has the id 'a', which a (\"Design\") already has",
        "b (\"Build\") depends on \"zzz\", which is not a task of the plan",
        "c (\"Test\") depends on itself",
        "d has no title",
        "task-6 (\"Five\") depends on 17, which is not a task of the plan",
    ] {
        assert!(msg.contains(part), "missing {part:?} in: {msg}");
    }
    assert_eq!(problems(&text).len(), 5, "{msg}");
    assert_eq!(read_plan_text(&text).unwrap_err().kind(), ErrorKind::Usage);

    assert_eq!(problems(r#"{"tasks": []}"#), vec![Problem::NoTasks]);
    assert!(message(r#"{"steps": []}"#).contains("a `tasks` list"));
    assert!(message("I could not write a plan, sorry.").contains("not JSON"));
    assert!(message(r#"{"tasks": ["just a string"]}"#).contains("task-1 is not a JSON object"));
}

#[test]
fn a_cycle_is_refused_naming_its_tasks_in_order() {
    let text = json!({"tasks": [
        {"id": "start", "title": "Start"},
        {"id": "a", "title": "A", "depends_on": ["start", "c"]},
        {"id": "b", "title": "B", "depends_on": ["a"]},
        {"id": "c", "title": "C", "depends_on": ["b"]},
        {"id": "end", "title": "End", "depends_on": ["c"]},
    ]})
    .to_string();
    let p = problems(&text);
    assert_eq!(p, vec![Problem::Cycle { tasks: vec!["a".into(), "c".into(), "b".into(), "a".into()] }]);
    assert_eq!(
        message(&text),
        "invalid plan: dependency cycle: a → c → b → a (each depends on the next)",
        "a depends on c, c on b, b on a"
    );
    // Two tasks waiting on each other, without ids: their default keys name them.
    let two = r#"{"tasks": [{"title": "One", "depends_on": [1]}, {"title": "Two", "depends_on": ["task-1"]}]}"#;
    assert!(message(two).contains("task-1 → task-2 → task-1"), "{}", message(two));
}

#[test]
fn dependencies_are_read_as_models_write_them() {
    // Positions as numbers and numeric strings, `task-N` keys, ids, a comma-separated string, repeats;
    // the JSON amid prose in a fenced block, with the seed's other field names.
    let reply = r#"Here is the plan you asked for:

```json
{"requirements": "a calculator",
 "tasks": [
  {"title": "Scaffold", "type": "Code", "complexity": "low", "tools_needed": ["Write"]},
  {"id": "parser", "name": "Parser", "dependencies": [0], "verification_criteria": "parses 1+2"},
  {"title": "Evaluator", "depends_on": ["0", "parser", "parser"], "complexity": "HIGH"},
  {"title": "CLI", "deps": "task-1, task-3", "model_tier": "haiku"},
  {"title": "Docs", "depends_on": 3, "task_type": "documentation"}
 ]}
```
Let me know if you want changes."#;
    let plan = read_plan_text(reply).unwrap();
    assert_eq!(plan.requirements.as_deref(), Some("a calculator"));
    let keys: Vec<&str> = plan.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["task-1", "parser", "task-3", "task-4", "task-5"]);
    let deps: Vec<Vec<&str>> = plan.tasks.iter().map(|t| t.depends_on.iter().map(String::as_str).collect()).collect();
    assert_eq!(deps, vec![vec![], vec!["task-1"], vec!["task-1", "parser"], vec!["task-1", "task-3"], vec!["task-4"]]);
    assert_eq!(plan.tasks[0].task_type, "code");
    assert_eq!(plan.tasks[0].complexity, Complexity::Simple);
    assert_eq!(plan.tasks[0].tools, ["Write"]);
    assert_eq!(plan.tasks[1].verification, ["parses 1+2"]);
    assert_eq!(plan.tasks[2].complexity, Complexity::Complex);
    assert_eq!(plan.tasks[3].model.as_deref(), Some("haiku"));
    assert_eq!(orch_core::graph::waves::plan_waves(&plan.tasks), vec![1, 2, 3, 4, 5]);

    // Ids that are numbers win over positions: "1" is the task with id 1, not the second task.
    let numbered = r#"[{"id": 1, "title": "One"}, {"id": 2, "title": "Two", "depends_on": [1]},
                       {"id": 3, "title": "Three", "depends_on": ["2"]}]"#;
    let plan = read_plan_text(numbered).unwrap();
    assert_eq!(plan.tasks[1].depends_on, ["1"]);
    assert_eq!(plan.tasks[2].depends_on, ["2"]);

    // Phases are flattened, in order.
    let phased = r#"{"phases": [{"name": "p1", "tasks": [{"title": "A"}]},
                                {"name": "p2", "tasks": [{"title": "B", "depends_on": [0]}]}]}"#;
    let plan = read_plan_text(phased).unwrap();
    assert_eq!(plan.tasks.iter().map(|t| t.title.as_str()).collect::<Vec<_>>(), ["A", "B"]);
}

/// A plan of 50 tasks in 6 waves (10, 10, 8, 8, 8, 6 tasks): each task after the first wave depends on
/// a task of the wave before it and, every third task, also on one two waves back. Dependencies are
/// written in every tolerated form.
fn fifty_tasks() -> Value {
    let sizes = [10usize, 10, 8, 8, 8, 6];
    let mut starts = vec![0usize];
    for s in &sizes {
        starts.push(starts.last().unwrap() + s);
    }
    let mut tasks = Vec::new();
    for (w, &size) in sizes.iter().enumerate() {
        for k in 0..size {
            let i = starts[w] + k;
            let mut deps: Vec<Value> = Vec::new();
            if w > 0 {
                let prev = starts[w - 1] + k % sizes[w - 1];
                deps.push(match i % 3 {
                    0 => json!(prev),
                    1 => json!(prev.to_string()),
                    _ => json!(format!("task-{}", prev + 1)),
                });
            }
            if w > 1 && i % 3 == 0 {
                deps.push(json!(starts[w - 2]));
            }
            tasks.push(json!({"title": format!("Task {i}"), "description": format!("Step {i}"), "depends_on": deps}));
        }
    }
    json!({"tasks": tasks})
}

#[tokio::test]
async fn fifty_tasks_make_six_waves_in_a_stored_graph() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let graphs = TaskGraphs::new(store.clone());
    let read = read_plan_text(&fifty_tasks().to_string()).unwrap();
    let plan = graphs.create_plan_from(Some("fifty things"), read, PlanOrigin::default()).await.unwrap();
    assert_eq!((plan.version, plan.status, plan.tasks.len()), (1, PlanStatus::Draft, 50));

    let refused = graphs.create_graph(plan.id, None).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Conflict, "a draft is not made into a graph: {refused}");
    assert!(refused.to_string().contains("approve it first"), "{refused}");

    graphs.approve(plan.id).await.unwrap();
    let (graph, tasks) = graphs.create_graph(plan.id, None).await.unwrap();
    assert_eq!((graph.total_tasks, graph.waves, graph.status), (50, 6, GraphStatus::Pending));
    assert_eq!(graph.name, "fifty things");
    let (stored, stored_tasks) = graphs.graph(graph.id).await.unwrap();
    assert_eq!((stored, &stored_tasks), (graph.clone(), &tasks));
    let mut per_wave = [0usize; 7];
    for t in &stored_tasks {
        per_wave[t.wave as usize] += 1;
        for d in &t.depends_on {
            let dep = stored_tasks.iter().find(|x| x.id == *d).expect("dependencies are tasks of the graph");
            assert!(dep.wave < t.wave, "{} (wave {}) depends on {} (wave {})", t.key, t.wave, dep.key, dep.wave);
        }
        let ready = t.depends_on.is_empty();
        assert_eq!(t.status, if ready { TaskStatus::Ready } else { TaskStatus::Pending }, "{}", t.key);
        assert_eq!(t.attempt, 0);
    }
    assert_eq!(per_wave, [0, 10, 10, 8, 8, 8, 6]);

    // One batch: the graph's event, then one per task, all in the graph category.
    let events = store.read_events(&EventQuery::default()).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds[..2], ["PlanUpdated", "PlanUpdated"], "created, then approved");
    assert_eq!(kinds[2], "GraphUpdated");
    assert_eq!(kinds[3..].iter().filter(|k| **k == "TaskUpdated").count(), 50);
    assert!(events.iter().all(|r| r.event.category() == EventCategory::Graph));
}

#[tokio::test]
async fn plans_are_versioned_and_approval_is_a_step() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let graphs = TaskGraphs::new(store.clone());
    let first = read_plan_text(r#"[{"title": "A"}, {"title": "B", "depends_on": [0]}]"#).unwrap();
    let v1 = graphs.create_plan("two steps", first.tasks, PlanOrigin::default()).await.unwrap();
    let second = read_plan_text(r#"[{"title": "A"}, {"title": "B"}, {"title": "C", "depends_on": [0, 1]}]"#).unwrap();
    let origin = PlanOrigin { source_file: Some("plan.json".into()), ..PlanOrigin::default() };
    let v2 = graphs.revise_plan(v1.id, None, second.tasks, origin).await.unwrap();
    assert_eq!((v2.id, v2.version, v2.status, v2.requirements.as_str()), (v1.id, 2, PlanStatus::Draft, "two steps"));
    let old = store.get_plan(v1.id, Some(1)).await.unwrap().unwrap();
    assert_eq!((old.status, old.tasks.len()), (PlanStatus::Superseded, 2), "the old version is kept, superseded");
    assert_eq!(store.list_plans(10).await.unwrap(), vec![v2.clone()], "listed once, at its latest version");

    let approved = graphs.approve(v1.id).await.unwrap();
    assert_eq!((approved.version, approved.status), (2, PlanStatus::Approved));
    let events = store.read_events(&EventQuery::default()).await.unwrap();
    let again = graphs.approve(v1.id).await.unwrap();
    assert_eq!(again, approved);
    assert_eq!(store.read_events(&EventQuery::default()).await.unwrap().len(), events.len(), "no second approval");
    match &events.last().unwrap().event {
        Event::PlanUpdated { plan } => assert_eq!(plan.as_ref(), &approved, "the event carries the whole plan"),
        other => panic!("{other:?}"),
    }

    let missing = graphs.approve(orch_core::wire::Id::nil()).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn tasks_added_to_a_graph_are_checked_and_get_their_wave() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let graphs = TaskGraphs::new(store.clone());
    let read =
        read_plan_text(r#"[{"id": "a", "title": "A"}, {"id": "b", "title": "B", "depends_on": ["a"]}]"#).unwrap();
    let plan = graphs.create_plan("ab", read.tasks, PlanOrigin::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (graph, tasks) = graphs.create_graph(plan.id, Some("ab graph".into())).await.unwrap();
    assert_eq!(graph.name, "ab graph");

    let c = graphs
        .add_task(graph.id, NewTask { title: "C".into(), depends_on: vec!["b".into()], ..NewTask::default() })
        .await
        .unwrap();
    assert_eq!((c.key.as_str(), c.index, c.wave, c.status), ("task-3", 2, 3, TaskStatus::Pending));
    assert_eq!(c.depends_on, vec![tasks[1].id]);
    // By id, and by position; a task without dependencies is ready.
    let d = graphs
        .add_task(
            graph.id,
            NewTask {
                key: "d".into(),
                title: "D".into(),
                depends_on: vec![tasks[0].id.to_string(), "2".into()],
                ..NewTask::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((d.wave, d.depends_on.clone()), (4, vec![tasks[0].id, c.id]));
    let e = graphs
        .add_task(
            graph.id,
            NewTask {
                title: "E".into(),
                estimated_cost_usd: Some(0.3),
                estimated_minutes: Some(0.0),
                ..NewTask::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((e.wave, e.status), (1, TaskStatus::Ready));
    assert_eq!((e.estimated_cost_usd, e.estimated_minutes, d.estimated_cost_usd), (Some(0.3), Some(0.0), None));
    let stored = store.get_task(e.id).await.unwrap().unwrap();
    assert_eq!((stored.estimated_cost_usd, stored.estimated_minutes), (Some(0.3), Some(0.0)), "kept as given");
    let (after, all) = graphs.graph(graph.id).await.unwrap();
    assert_eq!((after.total_tasks, after.waves, all.len()), (5, 4, 5));

    let bad = graphs
        .add_task(
            graph.id,
            NewTask {
                key: "a".into(),
                title: String::new(),
                depends_on: vec!["nope".into()],
                estimated_cost_usd: Some(f64::NAN),
                estimated_minutes: Some(-1.0),
                ..NewTask::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Usage);
    let msg = bad.to_string();
    assert!(msg.starts_with("invalid task: "), "{msg}");
    for part in [
        "a has no title",
        "the id 'a', which a (\"A\") already has",
        "a depends on \"nope\", which is not a task of the graph",
        "estimated_cost_usd",
        "estimated_minutes",
    ] {
        assert!(msg.contains(part), "missing {part:?} in: {msg}");
    }
    assert_eq!(graphs.graph(graph.id).await.unwrap().1.len(), 5, "nothing added");

    // A missing graph, or an ended one, is what the error says, even for a task with problems.
    let nowhere = orch_core::wire::new_id();
    for depends_on in [vec![], vec!["nope".to_string()]] {
        let new = NewTask { title: "F".into(), depends_on, ..NewTask::default() };
        let missing = graphs.add_task(nowhere, new).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");
        assert_eq!(missing.to_string(), format!("task graph {nowhere} not found"));
    }
    let cancel = Change::SetGraphStatus {
        id: graph.id,
        status: GraphStatus::Cancelled,
        error: None,
        from: vec![GraphStatus::Pending, GraphStatus::Running],
    };
    assert_eq!(store.commit(Batch::new().change(cancel)).await.unwrap().len(), 1, "cancelled");
    for depends_on in [vec![], vec!["nope".to_string()]] {
        let new = NewTask { title: "F".into(), depends_on, ..NewTask::default() };
        let ended = graphs.add_task(graph.id, new).await.unwrap_err();
        assert_eq!(ended.kind(), ErrorKind::Conflict, "{ended}");
        assert!(ended.to_string().contains("is cancelled: tasks can only be added"), "{ended}");
    }
    assert_eq!(graphs.graph(graph.id).await.unwrap().1.len(), 5, "nothing added");
}

const VALID: &str =
    r#"{"tasks": [{"id": "a", "title": "Write the parser"}, {"id": "b", "title": "Test it", "depends_on": ["a"]}]}"#;
const CYCLIC: &str = r#"{"tasks": [{"id": "a", "title": "Write the parser", "depends_on": ["b"]}, {"id": "b", "title": "Test it", "depends_on": ["a"]}]}"#;

fn script(steps: Value) -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::from_json_str(&json!({ "steps": steps }).to_string()).unwrap())
}

#[tokio::test]
async fn invalid_model_output_is_retried_once_with_the_problem() {
    // The first answer has a cycle; the retry is answered only when it names that cycle.
    let model = script(json!([
        {"agent": "^planner$", "when": "^Requirements", "reply": [{"type": "text", "text": format!("Sure! {CYCLIC}")}],
         "usage": {"input_tokens": 1000, "output_tokens": 100}},
        {"agent": "^planner$", "when": "invalid: dependency cycle: a → b → a",
         "reply": [{"type": "text", "text": format!("Fixed:\n```json\n{VALID}\n```")}],
         "usage": {"input_tokens": 1200, "output_tokens": 100}}
    ]));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let planner = Planner::new(model.clone(), "claude-sonnet-4-5").with_prices(orch_core::model::PriceTable::default());
    let drafted = planner.draft("Build a parser").await.unwrap();
    assert_eq!(drafted.attempts, 2);
    assert_eq!(drafted.tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(drafted.usage.input_tokens, 2200, "both calls are counted");
    assert!(drafted.cost_usd > 0.0, "priced");
    assert_eq!(model.calls(), 2);

    let plan = TaskGraphs::new(store.clone()).plan_requirements(&planner, "Build a parser").await;
    assert!(plan.is_err(), "the script is used up: no plan");
    assert!(store.list_plans(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn invalid_twice_is_a_clear_error_and_nothing_is_stored() {
    let model = script(json!([
        {"agent": "^planner$", "repeat": true, "reply": [{"type": "text", "text": CYCLIC}]}
    ]));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let planner = Planner::new(model.clone(), "scripted");
    let err = TaskGraphs::new(store.clone()).plan_requirements(&planner, "Build a parser").await.unwrap_err();
    assert_eq!(model.calls(), 2, "one retry, no more");
    assert_eq!(err.kind(), ErrorKind::Provider);
    let msg = err.to_string();
    assert!(msg.contains("no valid plan in 2 attempts; nothing was stored"), "{msg}");
    assert!(msg.contains("dependency cycle: a → b → a"), "{msg}");
    assert!(store.list_plans(10).await.unwrap().is_empty());
    assert_eq!(store.last_seq().await.unwrap(), 0, "no event either");

    let model = script(json!([{"agent": "^planner$", "reply": [{"type": "text", "text": VALID}]}]));
    let planner = Planner::new(model, "scripted");
    let plan = TaskGraphs::new(store.clone()).plan_requirements(&planner, "Build a parser").await.unwrap();
    assert_eq!((plan.model.as_deref(), plan.requirements.as_str()), (Some("scripted"), "Build a parser"));
    assert_eq!(store.list_plans(10).await.unwrap(), vec![plan]);

    let empty = Planner::new(script(json!([])), "scripted").draft("  ").await.unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::Usage);
}
