//! A task added to a running graph while its dependency completes, or while another task is added:
//! `add_task` reads the graph, then another writer completes the dependency (and changes the graph's
//! limit), or adds a task, before `add_task` commits. Made deterministic by a store that runs that other
//! writer's commit just before the one adding the task.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use orch_core::ErrorKind;
use orch_core::graph::{NewTask, PlanOrigin, TaskGraphs, read_plan_text};
use orch_core::store::{Batch, Change, Store};
use orch_core::wire::{GraphStatus, Task, TaskGraph, TaskStatus, now};

#[path = "support/hooked.rs"]
mod hooked;
use hooked::Hooked;

/// The batch another writer commits, once.
type Slot = Arc<Mutex<Option<Batch>>>;

/// A store that commits what the slot holds right before the first batch that adds a task.
fn cut_in() -> (Arc<Hooked>, Slot) {
    let slot: Slot = Arc::default();
    let other = slot.clone();
    let store = Hooked::new(Box::new(move |batch: &Batch| {
        if batch.changes.iter().any(|c| matches!(c, Change::AddTask(_))) {
            other.lock().unwrap().take().into_iter().collect()
        } else {
            Vec::new()
        }
    }));
    (Arc::new(store), slot)
}

/// A running graph of `plan` whose task `a` completed and `b` runs (attempt 1).
async fn running(store: &Arc<Hooked>, plan: &str) -> (TaskGraphs, TaskGraph, Vec<Task>) {
    let graphs = TaskGraphs::new(store.clone());
    let plan = graphs.create_plan("race", read_plan_text(plan).unwrap().tasks, PlanOrigin::default()).await.unwrap();
    graphs.approve(plan.id).await.unwrap();
    let (graph, mut tasks) = graphs.create_graph(plan.id, None).await.unwrap();
    let start =
        Change::SetGraphStatus { id: graph.id, status: GraphStatus::Running, error: None, from: vec![graph.status] };
    let at = now();
    tasks[0].status = TaskStatus::Completed;
    tasks[0].completed_at = Some(at);
    tasks[1].status = TaskStatus::Running;
    tasks[1].attempt = 1;
    tasks[1].claimed_by = Some("elsewhere".into());
    tasks[1].started_at = Some(at);
    let mut batch = Batch::new().change(start);
    for t in &tasks[..2] {
        batch.push_change(Change::UpdateTask { task: Box::new(t.clone()), fence: None });
    }
    store.commit(batch).await.unwrap();
    (graphs, graph, tasks)
}

/// `b` completing (its worker's commit) and the graph's limit raised, by other writers.
fn b_completes(graph: &TaskGraph, b: &Task) -> Batch {
    let mut done = b.clone();
    done.status = TaskStatus::Completed;
    done.completed_at = Some(now());
    done.claimed_by = None;
    Batch::new()
        .change(Change::FinishTask { task: Box::new(done), fence: 1 })
        .change(Change::SetGraphBudget { id: graph.id, limit_usd: Some(5.0) })
}

#[tokio::test]
async fn a_task_added_while_its_dependency_completes_is_released_and_the_graph_keeps_its_limit() {
    let (store, slot) = cut_in();
    let plan =
        r#"[{"id": "a", "title": "A"}, {"id": "b", "title": "B", "depends_on": ["a"]}, {"id": "x", "title": "X"}]"#;
    let (graphs, graph, tasks) = running(&store, plan).await;
    *slot.lock().unwrap() = Some(b_completes(&graph, &tasks[1]));

    let c = graphs
        .add_task(
            graph.id,
            NewTask { key: "c".into(), title: "C".into(), depends_on: vec!["b".into()], ..NewTask::default() },
        )
        .await
        .unwrap();
    assert!(slot.lock().unwrap().is_none(), "the other writer's commit came between read and commit");

    // b completed before c was added: the store, deciding in the commit that adds c, made it ready.
    assert_eq!(c.status, TaskStatus::Ready);
    assert_eq!(store.get_task(c.id).await.unwrap().unwrap().status, TaskStatus::Ready);
    let (after, all) = graphs.graph(graph.id).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!((after.total_tasks, after.status), (4, GraphStatus::Running));
    assert_eq!(after.budget_usd, Some(5.0), "the limit set meanwhile is kept");
}

#[tokio::test]
async fn a_task_added_while_the_last_open_task_completes_is_refused() {
    let (store, slot) = cut_in();
    let (graphs, graph, tasks) =
        running(&store, r#"[{"id": "a", "title": "A"}, {"id": "b", "title": "B", "depends_on": ["a"]}]"#).await;
    *slot.lock().unwrap() = Some(b_completes(&graph, &tasks[1]));

    let refused = graphs
        .add_task(
            graph.id,
            NewTask { key: "c".into(), title: "C".into(), depends_on: vec!["b".into()], ..NewTask::default() },
        )
        .await
        .unwrap_err();
    // b was the graph's last open task: the graph completed before the task could be added.
    assert_eq!(refused.kind(), ErrorKind::Conflict, "{refused}");
    assert!(refused.to_string().contains("is completed: tasks can only be added"), "{refused}");
    let (after, all) = graphs.graph(graph.id).await.unwrap();
    assert_eq!((after.status, after.total_tasks, all.len()), (GraphStatus::Completed, 2, 2), "nothing added");
}

#[tokio::test]
async fn tasks_added_at_the_same_time_take_distinct_positions_and_default_keys() {
    let (store, slot) = cut_in();
    let (graphs, graph, tasks) = running(&store, r#"[{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]"#).await;
    // Another client's add, made from the same read of the graph (2 tasks): position 2, no key.
    let mut rival = tasks[0].clone();
    rival.id = orch_core::wire::new_id();
    rival.key = String::new();
    rival.title = "Rival".into();
    rival.status = TaskStatus::Ready;
    rival.attempt = 0;
    rival.claimed_by = None;
    rival.completed_at = None;
    *slot.lock().unwrap() = Some(Batch::new().change(Change::AddTask(Box::new(rival.clone()))));

    let mine = graphs
        .add_task(graph.id, NewTask { title: "Mine".into(), depends_on: vec!["a".into()], ..NewTask::default() })
        .await
        .unwrap();
    assert!(slot.lock().unwrap().is_none(), "the other add came between read and commit");
    let rival = store.get_task(rival.id).await.unwrap().unwrap();
    assert_eq!((rival.index, rival.key.as_str()), (2, "task-3"), "the first committed takes the next position");
    assert_eq!((mine.index, mine.key.as_str()), (3, "task-4"), "the second the one after, not the same");
    assert_eq!(store.get_task(mine.id).await.unwrap().as_ref(), Some(&mine), "add_task returns the task as stored");
    assert_eq!(mine.status, TaskStatus::Ready, "its dependency had completed");
    let (after, all) = graphs.graph(graph.id).await.unwrap();
    assert_eq!(after.total_tasks, 4);
    assert_eq!(all.iter().map(|t| t.index).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    // Each is found by its position.
    let found = graphs
        .add_task(graph.id, NewTask { title: "After".into(), depends_on: vec!["3".into()], ..NewTask::default() })
        .await
        .unwrap();
    assert_eq!(found.depends_on, vec![mine.id], "a dependency named by position is the task at it");
}
