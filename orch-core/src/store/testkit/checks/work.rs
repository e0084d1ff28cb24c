//! Checks of the task queue and the budgets: claims, take-overs, finished tasks releasing their
//! dependents and ending their graph, graph status, reservations and limits, worker heartbeats. The
//! concurrent ones run their writers as tasks of the multi-threaded runtime, so a store whose writers
//! are separate transactions (PostgreSQL) has them overlap.

use std::collections::HashMap;

use super::*;
use crate::store::{Batch, Change, StoreResult};
use crate::wire::{BudgetScope, Reservation, TaskClaim, WorkerInfo};

/// A running graph, created (and started) at `ts(i)`.
pub(super) fn running_graph(i: i64) -> TaskGraph {
    let mut g = graph(None, i);
    g.status = GraphStatus::Running;
    g.started_at = Some(ts(i));
    g
}

pub(super) fn ready(mut t: Task) -> Task {
    t.status = TaskStatus::Ready;
    t
}

fn worker(id: &str, at: Timestamp) -> WorkerInfo {
    WorkerInfo {
        id: id.into(),
        host: "host-«1»".into(),
        pid: 4242,
        concurrency: 4,
        started_at: ts(0),
        heartbeat_at: at,
        role: crate::wire::WorkerRole::Worker,
    }
}

fn claim(worker: &str, limit: u32, now: Timestamp, stale_before: Timestamp, deadline: Timestamp) -> TaskClaim {
    TaskClaim { worker: worker.into(), limit, graph_id: None, now, deadline, stale_before, start: None }
}

/// The tasks of the `TaskUpdated` events among `recs`, in order.
fn tasks_of(recs: &[EventRecord]) -> Vec<Task> {
    recs.iter()
        .filter_map(|r| match &r.event {
            Event::TaskUpdated { task } => Some((**task).clone()),
            _ => None,
        })
        .collect()
}

/// The graphs of the `GraphUpdated` events among `recs`, in order.
fn graphs_of(recs: &[EventRecord]) -> Vec<TaskGraph> {
    recs.iter()
        .filter_map(|r| match &r.event {
            Event::GraphUpdated { graph } => Some((**graph).clone()),
            _ => None,
        })
        .collect()
}

pub(super) async fn setup(store: &Arc<dyn Store>, graphs: &[&TaskGraph], tasks: Vec<Task>) {
    let mut b = Batch::new();
    for g in graphs {
        b = b.change(Change::UpsertGraph(Box::new((*g).clone())));
    }
    store.commit(b.change(Change::InsertTasks(tasks))).await.unwrap();
}

async fn beat(store: &Arc<dyn Store>, id: &str, at: Timestamp) {
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(worker(id, at))))).await.unwrap();
}

/// Claims, returning the claimed tasks (read from the commit's records).
async fn claim_tasks(store: &Arc<dyn Store>, c: TaskClaim) -> Vec<Task> {
    let recs = store.commit(Batch::new().change(Change::ClaimTasks(Box::new(c)))).await.unwrap();
    tasks_of(&recs)
}

/// `t` as its attempt ends with `status`.
fn ended(t: &Task, status: TaskStatus, at: i64) -> Task {
    let mut t = t.clone();
    t.status = status;
    t.claimed_by = None;
    t.lease_until = None;
    t.output = Some(format!("{} ended", t.key));
    t.updated_at = ts(at);
    t.completed_at = status.is_final().then(|| ts(at));
    t
}

async fn finish(store: &Arc<dyn Store>, t: &Task) -> StoreResult<Vec<EventRecord>> {
    store.commit(Batch::new().change(Change::FinishTask { task: Box::new(t.clone()), fence: t.attempt })).await
}

fn ids_of(tasks: &[Task]) -> Vec<Id> {
    ids(tasks, |t| t.id)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// A claim takes due tasks by wave, then index: ready tasks of running graphs whose `not_before` has
/// passed, at their next attempt, held by the worker until the deadline; a `TaskUpdated` event per
/// claimed task follows the batch's own events, holding the task as stored. Tasks that are pending,
/// not yet due, of a graph that is not running, or of another graph than the one asked for are not
/// claimed; a claim with nothing due records nothing.
pub async fn claims_take_due_tasks_by_wave_and_index(store: Arc<dyn Store>) {
    let g = running_graph(1);
    let mut paused = graph(None, 2);
    paused.status = GraphStatus::Paused;
    let a = ready(task(g.id, 0, 2, vec![], 3));
    let b = ready(task(g.id, 1, 1, vec![], 3));
    let mut c = ready(task(g.id, 2, 1, vec![], 3));
    c.not_before = Some(ts(50));
    let d = ready(task(g.id, 3, 1, vec![], 3));
    let e = task(g.id, 4, 0, vec![], 3);
    let p = ready(task(paused.id, 0, 0, vec![], 3));
    setup(&store, &[&g, &paused], vec![a.clone(), b.clone(), c.clone(), d.clone(), e, p.clone()]).await;
    beat(&store, "w1", ts(10)).await;

    let own = text(1, EventKeys::default());
    let recs = store
        .commit(
            Batch::new()
                .change(Change::ClaimTasks(Box::new(claim("w1", 2, ts(10), ts(0), ts(100)))))
                .event(own.keys.clone(), own.event.clone()),
        )
        .await
        .unwrap();
    assert_eq!(recs.len(), 3, "the batch's event and one per claimed task: {recs:?}");
    assert_eq!(recs[0].event, own.event, "the batch's own events come first");
    assert_eq!(seqs(&recs), vec![1, 2, 3]);
    let got = tasks_of(&recs[1..]);
    assert_eq!(ids_of(&got), vec![b.id, d.id], "wave 1 by index, without the task not yet due, up to the limit");
    for (t, orig) in got.iter().zip([&b, &d]) {
        let mut want = orig.clone();
        want.status = TaskStatus::Running;
        want.attempt = 1;
        want.claimed_by = Some("w1".into());
        want.lease_until = Some(ts(100));
        want.started_at = Some(ts(10));
        want.updated_at = ts(10);
        assert_eq!(t, &want, "a claimed task");
        assert_eq!(store.get_task(t.id).await.unwrap().as_ref(), Some(t), "the event holds the task as stored");
    }
    assert_eq!(store.read_events(&EventQuery::default()).await.unwrap(), recs, "the records are those stored");

    // b and d are held by a live worker, c is not due, e is pending, p's graph is paused.
    let got = claim_tasks(&store, claim("w1", 10, ts(20), ts(0), ts(100))).await;
    assert_eq!(ids_of(&got), vec![a.id], "then wave 2");
    let last = store.last_seq().await.unwrap();
    let recs = store
        .commit(Batch::new().change(Change::ClaimTasks(Box::new(claim("w1", 10, ts(30), ts(0), ts(100))))))
        .await
        .unwrap();
    assert!(recs.is_empty(), "nothing due, nothing recorded: {recs:?}");
    assert_eq!(store.last_seq().await.unwrap(), last);
    let got = claim_tasks(&store, claim("w1", 10, ts(50), ts(0), ts(100))).await;
    assert_eq!(ids_of(&got), vec![c.id], "due once its not_before has come");
    assert_eq!(got[0].not_before, None, "a claim clears not_before");

    // Resumed, the other graph's task is due, but not to a claim of the first graph.
    let resume = Change::SetGraphStatus {
        id: paused.id,
        status: GraphStatus::Running,
        error: None,
        from: vec![GraphStatus::Paused],
    };
    store.commit(Batch::new().change(resume)).await.unwrap();
    let only_g = TaskClaim { graph_id: Some(g.id), ..claim("w1", 10, ts(60), ts(0), ts(100)) };
    assert!(claim_tasks(&store, only_g).await.is_empty(), "a claim of one graph takes only its tasks");
    let only_p = TaskClaim { graph_id: Some(paused.id), ..claim("w1", 10, ts(60), ts(0), ts(100)) };
    assert_eq!(ids_of(&claim_tasks(&store, only_p).await), vec![p.id]);
}

/// Eight workers claiming concurrently from 200 ready tasks: every task is claimed exactly once, at
/// attempt 1.
pub async fn concurrent_claims_take_each_task_once(store: Arc<dyn Store>) {
    const TASKS: u32 = 200;
    const WORKERS: usize = 8;
    let g = running_graph(1);
    let tasks: Vec<Task> = (0..TASKS).map(|i| ready(task(g.id, i, 1 + i % 3, vec![], 2))).collect();
    setup(&store, &[&g], tasks.clone()).await;
    for w in 0..WORKERS {
        beat(&store, &format!("w{w}"), ts(10)).await;
    }
    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                // 1 to 7 at a time, so claims of different sizes interleave.
                let limit = 1 + u32::try_from((w + mine.len()) % 7).unwrap();
                let got = claim_tasks(&store, claim(&format!("w{w}"), limit, ts(10), ts(0), ts(1000))).await;
                if got.is_empty() {
                    break;
                }
                assert!(got.len() <= limit as usize, "a claim takes at most its limit");
                for t in &got {
                    assert_eq!((t.attempt, t.claimed_by.as_deref()), (1, Some(format!("w{w}").as_str())));
                }
                mine.extend(got.into_iter().map(|t| t.id));
            }
            mine
        }));
    }
    let mut claimed: HashMap<Id, usize> = HashMap::new();
    for h in handles {
        for id in h.await.unwrap() {
            *claimed.entry(id).or_default() += 1;
        }
    }
    let twice: Vec<_> = claimed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "tasks claimed more than once: {twice:?}");
    assert_eq!(claimed.len(), tasks.len(), "every task is claimed");
    for t in store.list_tasks(g.id).await.unwrap() {
        assert_eq!((t.status, t.attempt), (TaskStatus::Running, 1), "task {} as stored", t.index);
    }
}

/// A running task whose worker stopped heartbeating (or whose row is gone) and whose claim is older
/// than the staleness window, or whose deadline passed, is due again: the next claim takes it over at
/// the next attempt, ordered by wave and index with the ready tasks, and the old attempt's FinishTask is
/// then fenced off, storing nothing.
pub async fn stale_tasks_are_taken_over(store: Arc<dyn Store>) {
    let g = running_graph(1);
    let t = ready(task(g.id, 0, 2, vec![], 2));
    let mut u = ready(task(g.id, 1, 1, vec![], 2));
    u.not_before = Some(ts(40));
    setup(&store, &[&g], vec![t.clone(), u.clone()]).await;
    beat(&store, "a", ts(10)).await;
    let got = claim_tasks(&store, claim("a", 1, ts(10), ts(0), ts(100))).await;
    assert_eq!((ids_of(&got), got[0].attempt), (vec![t.id], 1));
    let first = got[0].clone();

    beat(&store, "b", ts(12)).await;
    assert!(claim_tasks(&store, claim("b", 5, ts(12), ts(5), ts(100))).await.is_empty(), "a beats: nothing due");

    // a has not beaten since ts(20): its task is due again, after u (wave 1, due at ts(40)).
    beat(&store, "b", ts(40)).await;
    let got = claim_tasks(&store, claim("b", 1, ts(40), ts(20), ts(100))).await;
    assert_eq!(ids_of(&got), vec![u.id], "by wave and index, taken-over tasks among the ready ones");
    let got = claim_tasks(&store, claim("b", 1, ts(40), ts(20), ts(100))).await;
    assert_eq!(ids_of(&got), vec![t.id]);
    let second = got[0].clone();
    assert_eq!((second.attempt, second.claimed_by.as_deref()), (2, Some("b")), "taken over at the next attempt");

    // a comes back and finishes its attempt: fenced off, nothing stored.
    let late = ended(&first, TaskStatus::Completed, 45);
    let last = store.last_seq().await.unwrap();
    let r = store
        .commit(
            Batch::new()
                .change(Change::FinishTask { task: Box::new(late.clone()), fence: 1 })
                .event(EventKeys::default(), Event::TaskUpdated { task: Box::new(late) }),
        )
        .await;
    match r {
        Err(StoreError::Fenced { task_id, expected, found }) => assert_eq!((task_id, expected, found), (t.id, 1, 2)),
        other => panic!("the old attempt must be fenced off, got {other:?}"),
    }
    assert_eq!(store.get_task(t.id).await.unwrap().as_ref(), Some(&second), "the successor's state stands");
    assert_eq!(store.last_seq().await.unwrap(), last, "the late batch's event is not appended");

    // b's row is removed (it stopped): its tasks are due once their claims are older than the staleness
    // window, whatever its last heartbeat. A younger claim never is: a worker that has just started may
    // not be in a concurrent claimer's snapshot yet, and its claim must not look abandoned.
    store.commit(Batch::new().change(Change::RemoveWorker { id: "b".into() })).await.unwrap();
    beat(&store, "c", ts(41)).await;
    let got = claim_tasks(&store, claim("c", 10, ts(41), ts(40), ts(100))).await;
    assert!(got.is_empty(), "claims made at ts(40) are not older than the window: {got:?}");
    let got = claim_tasks(&store, claim("c", 10, ts(41), ts(41), ts(100))).await;
    assert_eq!(ids_of(&got), vec![u.id, t.id], "a missing worker's tasks");
    assert_eq!(got.iter().map(|t| t.attempt).collect::<Vec<_>>(), vec![2, 3]);

    // c still beats, but the deadline of its attempts has passed.
    beat(&store, "c", ts(150)).await;
    beat(&store, "d", ts(150)).await;
    let got = claim_tasks(&store, claim("d", 10, ts(150), ts(0), ts(300))).await;
    assert_eq!(ids_of(&got), vec![u.id, t.id], "attempts past their deadline");
    assert_eq!(got.iter().map(|t| t.attempt).collect::<Vec<_>>(), vec![3, 4]);
    assert!(finish(&store, &ended(&got[0], TaskStatus::Completed, 151)).await.is_ok());
    let r = store
        .commit(
            Batch::new()
                .change(Change::FinishTask { task: Box::new(ended(&got[1], TaskStatus::Completed, 152)), fence: 3 }),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Fenced { expected: 3, found: 4, .. })), "{r:?}");
    let recs = finish(&store, &ended(&got[1], TaskStatus::Completed, 152)).await.unwrap();
    assert_eq!(graphs_of(&recs).len(), 1, "the last task ends the graph: {recs:?}");
}

/// A finished task releases each pending dependent whose dependencies have all completed or been
/// skipped, with a `TaskUpdated` event after the batch's own; a failed one releases nothing.
pub async fn finished_tasks_release_dependents(store: Arc<dyn Store>) {
    let g = running_graph(1);
    let a = ready(task(g.id, 0, 1, vec![], 2));
    let b = ready(task(g.id, 1, 1, vec![], 2));
    let c = task(g.id, 2, 2, vec![a.id, b.id], 2);
    let e = task(g.id, 3, 2, vec![a.id], 2);
    let d = task(g.id, 4, 3, vec![c.id], 2);
    setup(&store, &[&g], vec![a.clone(), b.clone(), c.clone(), d.clone(), e.clone()]).await;
    beat(&store, "w", ts(10)).await;
    let got = claim_tasks(&store, claim("w", 10, ts(10), ts(0), ts(100))).await;
    assert_eq!(ids_of(&got), vec![a.id, b.id]);

    let own = text(1, EventKeys::default());
    let done_a = ended(&got[0], TaskStatus::Completed, 11);
    let recs = store
        .commit(
            Batch::new()
                .change(Change::FinishTask { task: Box::new(done_a.clone()), fence: 1 })
                .event(own.keys.clone(), own.event.clone()),
        )
        .await
        .unwrap();
    assert_eq!(recs[0].event, own.event, "the batch's own events first");
    let released = tasks_of(&recs[1..]);
    assert_eq!(ids_of(&released), vec![e.id], "e's only dependency completed; c still waits for b: {recs:?}");
    assert_eq!(released[0].status, TaskStatus::Ready);
    assert_eq!(store.get_task(e.id).await.unwrap().as_ref(), Some(&released[0]), "the event holds the row");
    assert_eq!(store.get_task(a.id).await.unwrap().as_ref(), Some(&done_a), "the finished attempt is written");
    assert_eq!(store.get_task(c.id).await.unwrap().unwrap().status, TaskStatus::Pending);

    // A person skips b: c is released.
    let recs = finish(&store, &ended(&got[1], TaskStatus::Skipped, 12)).await.unwrap();
    assert_eq!(ids_of(&tasks_of(&recs)), vec![c.id], "completed and skipped dependencies release");
    assert!(graphs_of(&recs).is_empty(), "work is left");

    let got = claim_tasks(&store, claim("w", 10, ts(13), ts(0), ts(100))).await;
    assert_eq!(ids_of(&got), vec![c.id, e.id]);
    let recs = finish(&store, &ended(&got[0], TaskStatus::Failed, 14)).await.unwrap();
    assert!(recs.is_empty(), "a failed task releases nothing: {recs:?}");
    assert_eq!(store.get_task(d.id).await.unwrap().unwrap().status, TaskStatus::Pending);
    let recs = finish(&store, &ended(&got[1], TaskStatus::Completed, 15)).await.unwrap();
    assert!(recs.is_empty(), "no dependents, and d keeps the graph open: {recs:?}");
    assert_eq!(store.get_graph(g.id).await.unwrap().unwrap().status, GraphStatus::Running);

    let missing = ended(&ready(task(g.id, 9, 1, vec![], 2)), TaskStatus::Completed, 16);
    assert!(is_not_found(finish(&store, &missing).await), "finishing a missing task");
}

/// Two parents of one child finishing at the same time, in two commits: the child is released once
/// (never zero times); two last tasks of a graph finishing at the same time end it once. Many rounds.
pub async fn concurrent_parents_release_their_child_once(store: Arc<dyn Store>) {
    const ROUNDS: i64 = 40;
    beat(&store, "w", ts(10)).await;
    for round in 0..ROUNDS {
        let g = running_graph(round);
        let last = running_graph(round);
        let p1 = ready(task(g.id, 0, 1, vec![], round));
        let p2 = ready(task(g.id, 1, 1, vec![], round));
        let child = task(g.id, 2, 2, vec![p1.id, p2.id], round);
        let x = ready(task(last.id, 0, 1, vec![], round));
        let y = ready(task(last.id, 1, 1, vec![], round));
        setup(&store, &[&g, &last], vec![p1, p2, child.clone(), x, y]).await;
        let mut both = Vec::new();
        for gid in [g.id, last.id] {
            let c = TaskClaim { graph_id: Some(gid), ..claim("w", 10, ts(10), ts(0), ts(100)) };
            let got = claim_tasks(&store, c).await;
            assert_eq!(got.len(), 2, "round {round}: both tasks of the graph claimed");
            both.push(got);
        }
        for (i, pair) in both.into_iter().enumerate() {
            let barrier = Arc::new(tokio::sync::Barrier::new(2));
            let handles: Vec<_> = pair
                .into_iter()
                .map(|t| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        finish(&store, &ended(&t, TaskStatus::Completed, 20)).await.unwrap()
                    })
                })
                .collect();
            let mut recs = Vec::new();
            for h in handles {
                recs.extend(h.await.unwrap());
            }
            if i == 0 {
                let released = tasks_of(&recs);
                assert_eq!(ids_of(&released), vec![child.id], "round {round}: the child is released once");
                let stored = store.get_task(child.id).await.unwrap().unwrap();
                assert_eq!(stored.status, TaskStatus::Ready, "round {round}");
                assert!(graphs_of(&recs).is_empty(), "round {round}: the child keeps the graph open");
            } else {
                let ends = graphs_of(&recs);
                assert_eq!(ends.len(), 1, "round {round}: the graph ends once: {recs:?}");
                assert_eq!(ends[0].status, GraphStatus::Completed, "round {round}");
                assert_eq!(store.get_graph(last.id).await.unwrap().as_ref(), Some(&ends[0]), "round {round}");
            }
        }
    }
}

/// A running graph ends when no task is pending, ready, running or blocked: completed, or failed when a
/// task failed, with a `GraphUpdated` event holding the row as stored. A task waiting for a person
/// (blocked) keeps it open; a graph that is not running (paused) is not ended.
pub async fn graphs_end_when_no_task_is_open(store: Arc<dyn Store>) {
    let g = running_graph(1);
    let ok = running_graph(2);
    let held = running_graph(3);
    let a = ready(task(g.id, 0, 1, vec![], 4));
    let b = ready(task(g.id, 1, 1, vec![], 4));
    let z = ready(task(ok.id, 0, 1, vec![], 4));
    let q = ready(task(held.id, 0, 1, vec![], 4));
    setup(&store, &[&g, &ok, &held], vec![a, b, z, q]).await;
    beat(&store, "w", ts(10)).await;
    let got = claim_tasks(&store, claim("w", 10, ts(10), ts(0), ts(100))).await;
    assert_eq!(got.len(), 4);
    let by_graph = |id: Id| got.iter().filter(|t| t.graph_id == id).cloned().collect::<Vec<_>>();
    let (ga, gz, gq) = (by_graph(g.id), by_graph(ok.id), by_graph(held.id));

    // a waits for a person, then is resolved; b fails.
    let mut blocked = ended(&ga[0], TaskStatus::Blocked, 11);
    blocked.checkpoint = Some("approve the schema?".into());
    let recs = finish(&store, &blocked).await.unwrap();
    assert!(recs.is_empty(), "a checkpoint releases nothing and ends nothing: {recs:?}");
    assert_eq!(store.get_task(blocked.id).await.unwrap().as_ref(), Some(&blocked), "the checkpoint is written");
    let mut resolved = ended(&blocked, TaskStatus::Completed, 12);
    resolved.checkpoint = None;
    resolved.guidance = vec!["use JSON".into()];
    resolved.knowledge = vec![crate::wire::Fact { text: "the API is v2".into(), tags: vec!["build".into()] }];
    resolved.failures = 1;
    let recs = finish(&store, &resolved).await.unwrap();
    assert!(graphs_of(&recs).is_empty(), "b is still running");
    assert_eq!(store.get_task(resolved.id).await.unwrap().as_ref(), Some(&resolved), "all the progress is written");
    let recs = finish(&store, &ended(&ga[1], TaskStatus::Failed, 13)).await.unwrap();
    let ends = graphs_of(&recs);
    assert_eq!(ends.len(), 1, "the last open task ends the graph: {recs:?}");
    assert_eq!(ends[0].status, GraphStatus::Failed, "a task failed");
    assert!(ends[0].error.as_deref().is_some_and(|e| e.contains("failed")), "{:?}", ends[0].error);
    assert!(ends[0].completed_at.is_some());
    assert_eq!(store.get_graph(g.id).await.unwrap().as_ref(), Some(&ends[0]), "the event holds the row");

    let recs = finish(&store, &ended(&gz[0], TaskStatus::Completed, 14)).await.unwrap();
    let ends = graphs_of(&recs);
    assert_eq!(ends.len(), 1);
    assert_eq!((ends[0].status, ends[0].error.as_deref()), (GraphStatus::Completed, None));
    assert_eq!(store.get_graph(ok.id).await.unwrap().as_ref(), Some(&ends[0]));

    let pause = Change::SetGraphStatus {
        id: held.id,
        status: GraphStatus::Paused,
        error: None,
        from: vec![GraphStatus::Running],
    };
    store.commit(Batch::new().change(pause)).await.unwrap();
    let recs = finish(&store, &ended(&gq[0], TaskStatus::Completed, 15)).await.unwrap();
    assert!(graphs_of(&recs).is_empty(), "a paused graph is not ended");
    assert_eq!(store.get_graph(held.id).await.unwrap().unwrap().status, GraphStatus::Paused);
}

/// SetGraphStatus changes a graph only from the statuses it lists (stamping its first start and its
/// end), with a `GraphUpdated` event of the row; otherwise it changes and records nothing. SetGraphBudget
/// sets or removes the graph's limit, with an event. GrowGraph counts added tasks (nothing else of the
/// row), with an event, and is refused once the graph has ended.
pub async fn graph_status_changes_only_from_listed(store: Arc<dyn Store>) {
    let g = graph(None, 1);
    store.upsert_graph(&g).await.unwrap();
    let set = |status, error: Option<&str>, from: &[GraphStatus]| {
        Batch::new().change(Change::SetGraphStatus {
            id: g.id,
            status,
            error: error.map(str::to_string),
            from: from.to_vec(),
        })
    };
    let recs = store.commit(set(GraphStatus::Running, None, &[GraphStatus::Pending])).await.unwrap();
    let started = graphs_of(&recs);
    assert_eq!(started.len(), 1, "{recs:?}");
    let first = started[0].clone();
    assert_eq!(first.status, GraphStatus::Running);
    assert!(first.started_at.is_some() && first.completed_at.is_none());
    assert_eq!(store.get_graph(g.id).await.unwrap().as_ref(), Some(&first), "the event holds the row");

    let last = store.last_seq().await.unwrap();
    let recs = store.commit(set(GraphStatus::Running, None, &[GraphStatus::Pending])).await.unwrap();
    assert!(recs.is_empty(), "not from a listed status: {recs:?}");
    assert_eq!(store.last_seq().await.unwrap(), last);
    assert_eq!(store.get_graph(g.id).await.unwrap().as_ref(), Some(&first), "unchanged");

    let recs = store.commit(set(GraphStatus::Paused, Some("budget_exhausted"), &[GraphStatus::Running])).await.unwrap();
    let paused = graphs_of(&recs).remove(0);
    assert_eq!((paused.status, paused.error.as_deref()), (GraphStatus::Paused, Some("budget_exhausted")));
    assert_eq!(paused.started_at, first.started_at);
    let recs = store.commit(set(GraphStatus::Running, None, &[GraphStatus::Pending, GraphStatus::Paused])).await;
    let resumed = graphs_of(&recs.unwrap()).remove(0);
    assert_eq!((resumed.status, resumed.error.as_deref()), (GraphStatus::Running, None));
    assert_eq!(resumed.started_at, first.started_at, "the first start is kept");
    let recs = store.commit(Batch::new().change(Change::GrowGraph { id: g.id, tasks: 2, waves: 9 })).await.unwrap();
    let grown = graphs_of(&recs).remove(0);
    assert_eq!(
        (grown.total_tasks, grown.waves, grown.status, grown.budget_usd),
        (resumed.total_tasks + 2, resumed.waves.max(9), GraphStatus::Running, resumed.budget_usd)
    );
    assert_eq!(store.get_graph(g.id).await.unwrap().as_ref(), Some(&grown), "the event holds the row");
    let recs = store.commit(set(GraphStatus::Cancelled, None, &[GraphStatus::Running, GraphStatus::Paused])).await;
    let cancelled = graphs_of(&recs.unwrap()).remove(0);
    assert_eq!(cancelled.status, GraphStatus::Cancelled);
    assert!(cancelled.completed_at.is_some(), "an end is stamped");
    assert_eq!(store.get_graph(g.id).await.unwrap().as_ref(), Some(&cancelled));
    let recs = store.commit(set(GraphStatus::Running, None, &[GraphStatus::Pending, GraphStatus::Paused])).await;
    assert!(recs.unwrap().is_empty(), "an ended graph stays ended");
    let refused = store.commit(Batch::new().change(Change::GrowGraph { id: g.id, tasks: 1, waves: 1 })).await;
    assert!(matches!(refused, Err(StoreError::GraphEnded { .. })), "no task is added to an ended graph: {refused:?}");
    assert_eq!(store.get_graph(g.id).await.unwrap().as_ref(), Some(&cancelled), "unchanged");

    let missing = Change::SetGraphStatus {
        id: new_id(),
        status: GraphStatus::Running,
        error: None,
        from: vec![GraphStatus::Pending],
    };
    assert!(is_not_found(store.commit(Batch::new().change(missing)).await), "a missing graph");

    let budget = |id, limit_usd| Batch::new().change(Change::SetGraphBudget { id, limit_usd });
    let recs = store.commit(budget(g.id, Some(4.0))).await.unwrap();
    let with = graphs_of(&recs).remove(0);
    assert_eq!(with.budget_usd, Some(4.0));
    assert_eq!(store.get_graph(g.id).await.unwrap().as_ref(), Some(&with));
    let recs = store.commit(budget(g.id, None)).await.unwrap();
    assert_eq!(graphs_of(&recs).remove(0).budget_usd, None, "removed");
    assert!(is_not_found(store.commit(budget(new_id(), Some(1.0))).await));
}

pub(super) fn reservation(graph_id: Option<Id>, amount: f64, day: &str) -> Reservation {
    Reservation { graph_id, amount, day: day.into(), month: day[..7].into() }
}

async fn reserve(store: &Arc<dyn Store>, r: &Reservation) -> StoreResult<Vec<EventRecord>> {
    store.commit(Batch::new().change(Change::ReserveBudget(Box::new(r.clone())))).await
}

async fn settle(store: &Arc<dyn Store>, r: &Reservation, actual: f64) {
    let change = Change::SettleBudget { reservation: Box::new(r.clone()), actual };
    store.commit(Batch::new().change(change)).await.unwrap();
}

async fn set_limit(store: &Arc<dyn Store>, scope: BudgetScope, limit_usd: Option<f64>) {
    store.commit(Batch::new().change(Change::SetBudgetLimit { scope, limit_usd })).await.unwrap();
}

fn exhausted_scope<T: std::fmt::Debug>(r: StoreResult<T>) -> String {
    match r {
        Err(StoreError::BudgetExhausted { scope, .. }) => scope,
        other => panic!("expected budget_exhausted, got {other:?}"),
    }
}

/// A reservation is refused (BudgetExhausted, naming the limit, reserving nothing) when the day's, the
/// month's or the graph's spending plus reservations plus it would pass the limit; a settlement moves
/// the reserved amount to the real cost, on the day, the month and the graph's `cost_usd`; `budget`
/// reports the daily and monthly lines.
pub async fn budget_reservations_respect_limits(store: Arc<dyn Store>) {
    let (day, month) = ("2026-12-02", "2026-12");
    let empty = store.budget(day, month).await.unwrap();
    assert_eq!((empty.daily.limit_usd, empty.daily.spent_usd, empty.daily.reserved_usd), (None, 0.0, 0.0));
    assert_eq!((empty.monthly.period.as_str(), empty.monthly.scope), (month, BudgetScope::Monthly));
    assert_eq!((empty.daily.period.as_str(), empty.daily.scope), (day, BudgetScope::Daily));

    set_limit(&store, BudgetScope::Daily, Some(1.0)).await;
    set_limit(&store, BudgetScope::Monthly, Some(1.5)).await;
    let mut g = running_graph(1);
    g.budget_usd = Some(0.5);
    store.upsert_graph(&g).await.unwrap();

    let r1 = reservation(Some(g.id), 0.3, day);
    reserve(&store, &r1).await.unwrap();
    let b = store.budget(day, month).await.unwrap();
    assert_eq!((b.daily.limit_usd, b.monthly.limit_usd), (Some(1.0), Some(1.5)));
    assert!(close(b.daily.reserved_usd, 0.3) && close(b.monthly.reserved_usd, 0.3), "{b:?}");
    assert!(close(b.daily.spent_usd, 0.0), "{b:?}");

    // Past the graph's limit: refused with its batch, nothing reserved.
    let last = store.last_seq().await.unwrap();
    let r = store
        .commit(
            Batch::new()
                .change(Change::ReserveBudget(Box::new(reservation(Some(g.id), 0.3, day))))
                .event(EventKeys::default(), Event::Text { text: "calling".into() }),
        )
        .await;
    match r {
        Err(StoreError::BudgetExhausted { scope, limit, spent, reserved, asked }) => {
            assert_eq!(scope, format!("graph {}", g.id));
            assert!(close(limit, 0.5) && close(spent, 0.0) && close(reserved, 0.3) && close(asked, 0.3));
        }
        other => panic!("past the graph's limit: {other:?}"),
    }
    assert_eq!(store.last_seq().await.unwrap(), last, "the refused batch's event is not appended");
    assert_eq!(store.budget(day, month).await.unwrap(), b, "nothing reserved on refusal");

    settle(&store, &r1, 0.25).await;
    let b = store.budget(day, month).await.unwrap();
    assert!(close(b.daily.spent_usd, 0.25) && close(b.daily.reserved_usd, 0.0), "{b:?}");
    assert!(close(b.monthly.spent_usd, 0.25) && close(b.monthly.reserved_usd, 0.0), "{b:?}");
    let stored = store.get_graph(g.id).await.unwrap().unwrap();
    assert!(close(stored.cost_usd, 0.25), "the graph's spending: {}", stored.cost_usd);
    store.upsert_graph(&g).await.unwrap();
    assert!(close(store.get_graph(g.id).await.unwrap().unwrap().cost_usd, 0.25), "an upsert keeps the spending");
    // The graph's spending counts against its limit: 0.25 + 0.3 > 0.5.
    assert_eq!(exhausted_scope(reserve(&store, &reservation(Some(g.id), 0.3, day)).await), format!("graph {}", g.id));
    reserve(&store, &reservation(Some(g.id), 0.25, day)).await.unwrap();

    // The daily limit: 0.25 spent + 0.25 reserved + 0.5 = 1.0 fits; 0.1 more does not.
    let r2 = reservation(None, 0.5, day);
    reserve(&store, &r2).await.unwrap();
    assert_eq!(exhausted_scope(reserve(&store, &reservation(None, 0.1, day)).await), "daily");
    // The next day of the month: the month has 0.25 spent + 0.75 reserved; 0.6 would pass 1.5.
    let next = "2026-12-03";
    assert_eq!(exhausted_scope(reserve(&store, &reservation(None, 0.6, next)).await), "monthly");
    reserve(&store, &reservation(None, 0.5, next)).await.unwrap();
    let b = store.budget(next, month).await.unwrap();
    assert!(close(b.daily.reserved_usd, 0.5) && close(b.monthly.reserved_usd, 1.25), "{b:?}");

    // Without limits, anything goes; a limit removed reads as none.
    set_limit(&store, BudgetScope::Daily, None).await;
    set_limit(&store, BudgetScope::Monthly, None).await;
    reserve(&store, &reservation(None, 10.0, day)).await.unwrap();
    let b = store.budget(day, month).await.unwrap();
    assert_eq!((b.daily.limit_usd, b.monthly.limit_usd), (None, None));
    settle(&store, &r2, 0.4).await;
    let b = store.budget(day, month).await.unwrap();
    assert!(close(b.daily.spent_usd, 0.65) && close(b.daily.reserved_usd, 10.25), "{b:?}");

    let missing = reservation(Some(new_id()), 0.1, day);
    assert!(is_not_found(reserve(&store, &missing).await), "a reservation for a missing graph");
}

/// Eight calls reserving 0.1 at once against a graph's limit of 0.5, then against a daily limit of 0.3:
/// exactly as many as fit are granted, the others refused, and the reserved total never passes the
/// limit.
pub async fn concurrent_reservations_never_pass_the_limit(store: Arc<dyn Store>) {
    let mut g = running_graph(1);
    g.budget_usd = Some(0.5);
    store.upsert_graph(&g).await.unwrap();
    for (graph_id, day, fits) in [(Some(g.id), "2026-12-02", 5), (None, "2026-12-03", 3)] {
        if graph_id.is_none() {
            set_limit(&store, BudgetScope::Daily, Some(0.3)).await;
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    reserve(&store, &reservation(graph_id, 0.1, day)).await
                })
            })
            .collect();
        let (mut granted, mut refused) = (0, 0);
        for h in handles {
            match h.await.unwrap() {
                Ok(_) => granted += 1,
                Err(StoreError::BudgetExhausted { .. }) => refused += 1,
                Err(e) => panic!("a reservation failed: {e}"),
            }
        }
        assert_eq!((granted, refused), (fits, 8 - fits), "{day}");
        if graph_id.is_none() {
            let b = store.budget(day, &day[..7]).await.unwrap();
            assert!(b.daily.reserved_usd <= 0.3 + 1e-9, "{b:?}");
        }
    }
    // Once the graph's reservations settle, its spending counts against its limit instead.
    set_limit(&store, BudgetScope::Daily, None).await;
    let r = reservation(Some(g.id), 0.1, "2026-12-02");
    for _ in 0..5 {
        settle(&store, &r, 0.1).await;
    }
    assert_eq!(exhausted_scope(reserve(&store, &r).await), format!("graph {}", g.id));
}

/// A batch whose later change fails undoes its claim: the tasks stay ready, at their attempt, for the
/// next claim; nothing is recorded.
pub async fn a_failed_batch_undoes_its_claim(store: Arc<dyn Store>) {
    let g = running_graph(1);
    let a = ready(task(g.id, 0, 0, vec![], 2));
    let b = ready(task(g.id, 1, 0, vec![], 2));
    setup(&store, &[&g], vec![a.clone(), b.clone()]).await;
    let before = store.last_seq().await.unwrap();
    let missing = crate::wire::new_id();
    let r = store
        .commit(Batch::new().change(Change::ClaimTasks(Box::new(claim("w1", 5, ts(10), ts(0), ts(100))))).change(
            Change::SetGraphStatus {
                id: missing,
                status: GraphStatus::Paused,
                error: None,
                from: vec![GraphStatus::Running],
            },
        ))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");
    assert_eq!(store.last_seq().await.unwrap(), before, "nothing recorded");
    for t in [&a, &b] {
        let got = store.get_task(t.id).await.unwrap().unwrap();
        assert_eq!((got.status, got.attempt, got.claimed_by.clone()), (TaskStatus::Ready, t.attempt, None), "{got:?}");
    }
    let got = claim_tasks(&store, claim("w2", 5, ts(11), ts(0), ts(100))).await;
    assert_eq!(ids_of(&got), vec![a.id, b.id], "the next claim takes them");
    assert!(got.iter().all(|t| t.claimed_by.as_deref() == Some("w2") && t.attempt == a.attempt + 1));
}

/// A heartbeat inserts a worker's row or updates it (its role too); the workers are listed most recent
/// first; a removed worker is gone, and so are those silent since before a given time once forgotten.
pub async fn workers_heartbeat_list_remove(store: Arc<dyn Store>) {
    assert!(store.list_workers().await.unwrap().is_empty());
    let a = worker("host-a:1:x", ts(1));
    let b = WorkerInfo { role: crate::wire::WorkerRole::Server, ..worker("host-b:2:y", ts(2)) };
    for w in [&a, &b] {
        store.commit(Batch::new().change(Change::Heartbeat(Box::new(w.clone())))).await.unwrap();
    }
    assert_eq!(store.list_workers().await.unwrap(), vec![b.clone(), a.clone()], "most recent first, roles kept");
    let mut a2 = a.clone();
    a2.heartbeat_at = ts(3);
    a2.concurrency = 8;
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(a2.clone())))).await.unwrap();
    assert_eq!(store.list_workers().await.unwrap(), vec![a2.clone(), b.clone()], "one row per worker, updated");
    let b2 = WorkerInfo { role: crate::wire::WorkerRole::Worker, heartbeat_at: ts(4), ..b };
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(b2.clone())))).await.unwrap();
    assert_eq!(store.list_workers().await.unwrap(), vec![b2, a2.clone()], "a beat sets the role");
    store.commit(Batch::new().change(Change::RemoveWorker { id: "host-b:2:y".into() })).await.unwrap();
    assert_eq!(store.list_workers().await.unwrap(), vec![a2.clone()]);
    store.commit(Batch::new().change(Change::RemoveWorker { id: "nobody".into() })).await.unwrap();
    assert_eq!(store.list_workers().await.unwrap(), vec![a2]);
    // Rows silent since before a time are forgotten; a row that beat at that time stays.
    let late = worker("host-c:3:z", ts(20));
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(late.clone())))).await.unwrap();
    store.commit(Batch::new().change(Change::ForgetWorkers { silent_before: ts(10) })).await.unwrap();
    assert_eq!(store.list_workers().await.unwrap(), vec![late.clone()], "the row silent since ts(3) is gone");
    store.commit(Batch::new().change(Change::ForgetWorkers { silent_before: ts(20) })).await.unwrap();
    assert_eq!(store.list_workers().await.unwrap(), vec![late]);
}
