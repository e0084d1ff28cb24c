//! The end of a task graph, checked after the commits that finish its tasks: two last tasks finished
//! at once by two stores (two processes' pools and group commits) end it exactly once; the sweep ends
//! a graph whose check was lost (its process died between the commit and the check), and nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use orch_core::store::testkit::fixtures::{claimed, completed, wave_graph};
use orch_core::store::{Batch, Change, EventQuery, Store};
use orch_core::wire::{EventRecord, GraphStatus, Id, Task, TaskClaim, TaskGraph, TaskStatus, WorkerInfo, now};
use orch_store_postgres::{PgOptions, PgStore};

fn claim(worker: &str, graph_id: Id, limit: u32) -> Batch {
    let at = now();
    Batch::new().change(Change::ClaimTasks(Box::new(TaskClaim {
        worker: worker.into(),
        limit,
        graph_id: Some(graph_id),
        now: at,
        deadline: at + chrono::Duration::hours(1),
        stale_before: at - chrono::Duration::seconds(30),
        start: None,
    })))
}

async fn beat(store: &PgStore, worker: &str) {
    let info = WorkerInfo {
        id: worker.into(),
        host: "test".into(),
        pid: 1,
        concurrency: 8,
        started_at: now(),
        heartbeat_at: now(),
        role: orch_core::wire::WorkerRole::Worker,
    };
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(info)))).await.unwrap();
}

/// The graphs of the `GraphUpdated` records among `records`.
fn ends(records: &[EventRecord]) -> Vec<TaskGraph> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            orch_core::wire::Event::GraphUpdated { graph } => Some((**graph).clone()),
            _ => None,
        })
        .collect()
}

/// The `GraphUpdated` events of graph `id` in the log.
async fn logged_ends(store: &PgStore, id: Id) -> Vec<TaskGraph> {
    let q = EventQuery { types: vec!["GraphUpdated".into()], ..EventQuery::after(0) };
    ends(&store.read_events(&q).await.unwrap()).into_iter().filter(|g| g.id == id).collect()
}

async fn second_store(url: &str, schema: &str) -> PgStore {
    PgStore::connect_with(url, PgOptions { schema: Some(schema.into()), pool_size: Some(5) }).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn two_last_tasks_finished_by_two_stores_at_once_end_the_graph_once() {
    let url = support::server();
    let (a, guard) = support::fresh_store(&url).await;
    let b = Arc::new(second_store(&url, &guard.schema).await);
    beat(&a, "wa").await;
    beat(&b, "wb").await;
    for round in 0..40 {
        // Two tasks with no dependencies: each store claims one, then both finish theirs at once.
        let (graph, tasks) = wave_graph(2, 1);
        a.commit(Batch::new().change(Change::UpsertGraph(Box::new(graph.clone()))).change(Change::InsertTasks(tasks)))
            .await
            .unwrap();
        let ta = claimed(a.commit(claim("wa", graph.id, 1)).await.unwrap());
        let tb = claimed(b.commit(claim("wb", graph.id, 1)).await.unwrap());
        assert_eq!((ta.len(), tb.len()), (1, 1), "round {round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let finish = |store: Arc<PgStore>, t: Task| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.commit(Batch::new().change(completed(t))).await.unwrap()
            })
        };
        let (ha, hb) = (finish(a.clone(), ta[0].clone()), finish(b.clone(), tb[0].clone()));
        let mut records = ha.await.unwrap();
        records.extend(hb.await.unwrap());
        let ended = ends(&records);
        assert_eq!(ended.len(), 1, "round {round}: the graph ends once, told to one of the two: {records:?}");
        assert_eq!(ended[0].status, GraphStatus::Completed, "round {round}");
        assert_eq!(a.get_graph(graph.id).await.unwrap().as_ref(), Some(&ended[0]), "round {round}: the row");
        assert_eq!(logged_ends(&a, graph.id).await.len(), 1, "round {round}: one end in the log");
    }
    b.close().await;
}

/// A graph as a process that died between its last finish's commit and the check leaves it: running,
/// every task done (`failed` of them failed).
async fn left_running(store: &PgStore, n: u64, failed: usize) -> TaskGraph {
    let (graph, mut tasks) = wave_graph(n, 1);
    for (i, t) in tasks.iter_mut().enumerate() {
        t.status = if i < failed { TaskStatus::Failed } else { TaskStatus::Completed };
        t.attempt = 1;
        t.completed_at = Some(now());
    }
    store
        .commit(Batch::new().change(Change::UpsertGraph(Box::new(graph.clone()))).change(Change::InsertTasks(tasks)))
        .await
        .unwrap();
    graph
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn the_sweep_ends_graphs_whose_check_was_lost_and_nothing_else() {
    let url = support::server();
    let (store, _guard) = support::fresh_store(&url).await;
    let lost = left_running(&store, 3, 0).await;
    let lost_failed = left_running(&store, 2, 1).await;
    // Not to be ended: a graph with an open task, a paused graph, a running graph with no task yet.
    let (open, mut open_tasks) = wave_graph(2, 1);
    open_tasks[0].status = TaskStatus::Completed;
    store
        .commit(
            Batch::new().change(Change::UpsertGraph(Box::new(open.clone()))).change(Change::InsertTasks(open_tasks)),
        )
        .await
        .unwrap();
    let paused = left_running(&store, 1, 0).await;
    let pause = Change::SetGraphStatus {
        id: paused.id,
        status: GraphStatus::Paused,
        error: None,
        from: vec![GraphStatus::Running],
    };
    store.commit(Batch::new().change(pause)).await.unwrap();
    let (empty, _) = wave_graph(1, 1);
    store.commit(Batch::new().change(Change::UpsertGraph(Box::new(empty.clone())))).await.unwrap();

    let records = store.end_finished_graphs().await.unwrap();
    let mut ended: Vec<(Id, GraphStatus)> = ends(&records).iter().map(|g| (g.id, g.status)).collect();
    ended.sort_by_key(|(id, _)| *id);
    let mut expected = vec![(lost.id, GraphStatus::Completed), (lost_failed.id, GraphStatus::Failed)];
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(ended, expected, "{records:?}");
    let failed = store.get_graph(lost_failed.id).await.unwrap().unwrap();
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("1 task(s) failed")), "{failed:?}");
    assert!(store.end_finished_graphs().await.unwrap().is_empty(), "ended once");
    let kept = [(&open, GraphStatus::Running), (&paused, GraphStatus::Paused), (&empty, GraphStatus::Running)];
    for (g, status) in kept {
        assert_eq!(store.get_graph(g.id).await.unwrap().unwrap().status, status, "{}", g.id);
    }
    assert_eq!(logged_ends(&store, lost.id).await.len(), 1);

    // Left to itself, a store sweeps after claims of tasks (at most every 2 s), and ends what two
    // sweeps in a row found running with nothing open: a worker that keeps claiming, with nothing to
    // claim, ends another such graph within a few seconds.
    let again = left_running(&store, 2, 0).await;
    let other = second_store(&url, store.schema()).await;
    beat(&other, "w2").await;
    let mut status = GraphStatus::Running;
    for _ in 0..300 {
        assert!(claimed(other.commit(claim("w2", again.id, 4)).await.unwrap()).is_empty());
        status = store.get_graph(again.id).await.unwrap().unwrap().status;
        if status != GraphStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, GraphStatus::Completed, "swept after claims");
    assert_eq!(logged_ends(&store, again.id).await.len(), 1);
    other.close().await;
}
