//! A task whose attempt has nothing left to do once its agent answers (no verification command, no QA
//! review, no worktree) completes in the commit that stores the answer and ends the agent's run, and
//! that commit releases and claims its dependents: one commit per task less, and a child starts as soon
//! as its parent's answer is stored. An attempt that was taken over meanwhile cannot complete its task
//! that way, but its agent's answer is still stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Change, EventQuery, Store};
use orch_core::wire::{AgentStatus, EndReason, Event, TaskClaim, TaskStatus, now};

#[path = "support/hooked.rs"]
mod hooked;
use hooked::Hooked;
#[path = "support/graph_run.rs"]
mod graph_run;
use graph_run::{run_to_end, task};

type Seen = Arc<Mutex<Vec<Batch>>>;

/// A store that keeps a copy of every batch committed to it.
fn recording() -> (Arc<dyn Store>, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let store = Hooked::new(Box::new(move |batch: &Batch| {
        log.lock().unwrap().push(batch.clone());
        Vec::new()
    }));
    (Arc::new(store), seen)
}

/// The answer of the turn a batch ends, if it carries a turn's `Result`.
fn answer_of(batch: &Batch) -> Option<(EndReason, Option<String>)> {
    batch.events.iter().find_map(|e| match &e.event {
        Event::Result { stop_reason, result, .. } => Some((stop_reason.clone(), result.clone())),
        _ => None,
    })
}

fn finishes(batch: &Batch) -> Option<(String, TaskStatus, u32)> {
    batch.changes.iter().find_map(|c| match c {
        Change::FinishTask { task, fence } => Some((task.key.clone(), task.status, *fence)),
        _ => None,
    })
}

fn has(batch: &Batch, what: fn(&Change) -> bool) -> bool {
    batch.changes.iter().any(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_completes_its_task_and_claims_the_child_in_one_commit() {
    let (store, seen) = recording();
    let model = Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("done"))));
    let graph = run_to_end(store.clone(), model, vec![task("a", Vec::new()), task("b", vec!["a".into()])]).await;

    let seen = seen.lock().unwrap().clone();
    let ends: Vec<&Batch> = seen.iter().filter(|b| finishes(b).is_some()).collect();
    assert_eq!(ends.len(), 2, "one end per task: {ends:#?}");
    for end in &ends {
        let (key, status, fence) = finishes(end).unwrap();
        assert_eq!((status, fence), (TaskStatus::Completed, 1), "{key}");
        // The agent's answer, its usage settled against the budget, its run ended and released: all in
        // the commit that completes the task.
        assert_eq!(answer_of(end), Some((EndReason::EndTurn, Some("done".into()))), "{key}: {end:#?}");
        assert!(has(end, |c| matches!(c, Change::AppendMessages { .. })), "{key}: the answer's message");
        assert!(has(end, |c| matches!(c, Change::SettleBudget { .. })), "{key}: the call's settlement");
        assert!(has(end, |c| matches!(c, Change::ReleaseRun { .. })), "{key}: the run's release");
        assert!(
            has(end, |c| matches!(c, Change::SetAgentStatus { status: AgentStatus::Idle, .. })),
            "{key}: the agent idle again"
        );
    }
    // The parent's end claimed its child for the quiet worker.
    assert!(has(ends[0], |c| matches!(c, Change::ClaimTasks(_))), "{:#?}", ends[0]);
    let tasks = store.list_tasks(graph.id).await.unwrap();
    let (a, b) = (tasks.iter().find(|t| t.key == "a").unwrap(), tasks.iter().find(|t| t.key == "b").unwrap());
    assert_eq!(b.started_at, a.completed_at, "b was claimed in the commit that completed a");
    assert_eq!(a.output.as_deref(), Some("done"));
    assert!(a.cost_usd >= 0.0 && b.status == TaskStatus::Completed);

    // In the log: the answer, then the task completed, then its child claimed.
    let log = store.read_events(&EventQuery::default()).await.unwrap();
    let seq = |pred: &dyn Fn(&Event) -> bool| log.iter().find(|r| pred(&r.event)).map(|r| r.seq).unwrap();
    let answered = seq(&|e| matches!(e, Event::Result { .. }));
    let completed =
        seq(&|e| matches!(e, Event::TaskUpdated { task } if task.key == "a" && task.status == TaskStatus::Completed));
    let claimed =
        seq(&|e| matches!(e, Event::TaskUpdated { task } if task.key == "b" && task.status == TaskStatus::Running));
    assert!(answered < completed && completed < claimed, "{answered} < {completed} < {claimed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_with_a_command_to_check_ends_after_its_run() {
    let (store, seen) = recording();
    let model = Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("done"))));
    let mut checked = task("a", Vec::new());
    checked.verification = vec!["$ true".into()];
    run_to_end(store, model, vec![checked]).await;

    let seen = seen.lock().unwrap().clone();
    let end = seen.iter().find(|b| finishes(b).is_some()).unwrap();
    assert_eq!(finishes(end).map(|f| f.1), Some(TaskStatus::Completed));
    assert_eq!(answer_of(end), None, "the command ran after the run ended, so the task's end is a commit of its own");
    assert!(seen.iter().any(|b| answer_of(b).is_some() && finishes(b).is_none()), "the run ended alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_taken_over_before_its_answer_is_stored_keeps_the_answer_and_not_the_task() {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let taken = Arc::new(Mutex::new(false));
    // Just before the first attempt's joined end commits, another worker takes the task over with a
    // lease that has already run out (it died at once): the joined end is fenced, and this worker's
    // next claim takes the task back.
    let store: Arc<dyn Store> = Arc::new(Hooked::new(Box::new(move |batch: &Batch| {
        log.lock().unwrap().push(batch.clone());
        let mut taken = taken.lock().unwrap();
        match finishes(batch) {
            Some((key, _, 1)) if key == "a" && answer_of(batch).is_some() && !*taken => {
                *taken = true;
                let at = now();
                let claim = TaskClaim {
                    worker: "ghost".into(),
                    limit: 1,
                    graph_id: None,
                    now: at + chrono::Duration::hours(3),
                    deadline: at,
                    stale_before: at - chrono::Duration::seconds(5),
                    start: None,
                };
                vec![Batch::new().change(Change::ClaimTasks(Box::new(claim)))]
            }
            _ => Vec::new(),
        }
    })));
    let model = Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("done"))));
    let graph = run_to_end(store.clone(), model, vec![task("a", Vec::new()), task("b", vec!["a".into()])]).await;

    let tasks = store.list_tasks(graph.id).await.unwrap();
    let a = tasks.iter().find(|t| t.key == "a").unwrap();
    assert_eq!((a.status, a.attempt), (TaskStatus::Completed, 3), "completed by the attempt after the ghost's");
    let log = store.read_events(&EventQuery::default()).await.unwrap();
    let completions = log
        .iter()
        .filter(|r| matches!(&r.event, Event::TaskUpdated { task } if task.key == "a" && task.status == TaskStatus::Completed))
        .count();
    assert_eq!(completions, 1, "a completed once");
    // The first attempt's agent: its answer stored, its run ended.
    let first = store.list_agents(&Default::default()).await.unwrap();
    let first = first.iter().find(|ag| ag.name.starts_with("a-") && ag.name.ends_with("-a1")).unwrap();
    assert_eq!(first.status, AgentStatus::Idle, "{first:?}");
    assert!(
        log.iter().any(|r| r.keys.agent_id == Some(first.id)
            && matches!(&r.event, Event::Result { result: Some(t), .. } if t == "done")),
        "the first attempt's answer is in the log"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|b| answer_of(b).is_some()
            && finishes(b).is_none()
            && has(b, |c| matches!(c, Change::SetAgentStatus { status: AgentStatus::Idle, .. }))),
        "the refused end was committed again without the task's"
    );
}
