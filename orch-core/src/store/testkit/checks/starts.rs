//! Checks of claims that start the attempts they claim ([`TaskClaim::start`]): each started task's
//! agent is inserted holding its run's lease and the task written with it, in the claim's commit, as
//! [`start_claimed`](crate::store::start_claimed) records them; a task the starter leaves is only
//! claimed; and a batch that fails keeps none of it.

use std::sync::Mutex;

use super::work::{ready, running_graph, setup};
use super::*;
use crate::store::{Batch, Change};
use crate::wire::{Started, Starter, TaskClaim, WorkerInfo};

/// A starter that starts every claimed task but those of `skip`, keeping the agents it made.
fn starter(skip: Vec<Id>, made: Arc<Mutex<Vec<Agent>>>) -> Starter {
    Starter::new(move |claimed: &Task| {
        if skip.contains(&claimed.id) {
            return None;
        }
        let mut agent = agent(&format!("{}-a{}", claimed.key, claimed.attempt), None, 5);
        agent.id = crate::wire::new_id();
        let mut row = agent.clone();
        row.run = Some(crate::executor::lease::new_lease(crate::wire::new_id(), Some(claimed.key.clone())));
        let mut task = claimed.clone();
        task.agent_id = Some(agent.id);
        task.model = Some("scripted-«m»".into());
        made.lock().unwrap_or_else(|p| p.into_inner()).push(row.clone());
        let created = NewEvent::new(
            EventKeys { agent_id: Some(agent.id), ..EventKeys::default() },
            Event::AgentCreated { agent: Box::new(agent) },
        );
        Some(Started { agent: Box::new(row), created, task: Box::new(task) })
    })
}

fn claim(limit: u32, at: i64, start: Starter) -> Change {
    Change::ClaimTasks(Box::new(TaskClaim {
        worker: "w1".into(),
        limit,
        graph_id: None,
        now: ts(at),
        deadline: ts(at + 100),
        stale_before: ts(0),
        start: Some(start),
    }))
}

/// The tasks of the `TaskUpdated` events and the agents of the `AgentCreated` events among `recs`, as
/// the names of their kinds in order (`task:KEY:STATUS`, `agent:NAME`).
fn kinds(recs: &[EventRecord]) -> Vec<String> {
    recs.iter()
        .map(|r| match &r.event {
            Event::TaskUpdated { task } => format!("task:{}:{}", task.key, task.status.as_str()),
            Event::AgentCreated { agent } => format!("agent:{}", agent.name),
            other => other.kind().to_string(),
        })
        .collect()
}

/// A claim with a starter: a started task's agent is created (its row holding the run's lease, its
/// `AgentCreated` event without it) and the task stored running with that agent and its model, in
/// the claim's commit; its events are the agent's then the task's, in place of the claim's own; a
/// task the starter leaves is claimed as without one. An attempt's end that claims with a starter
/// starts the dependent it releases in its own commit. A batch that fails after such a claim stores
/// none of it.
pub async fn claims_start_attempts_in_their_commit(store: Arc<dyn Store>) {
    let g = running_graph(1);
    let a = ready(task(g.id, 0, 0, vec![], 2));
    let b = ready(task(g.id, 1, 0, vec![], 2));
    let c = task(g.id, 2, 1, vec![a.id], 2);
    setup(&store, &[&g], vec![a.clone(), b.clone(), c.clone()]).await;
    let w = WorkerInfo {
        id: "w1".into(),
        host: "h".into(),
        pid: 1,
        concurrency: 4,
        started_at: ts(1),
        heartbeat_at: ts(10),
        role: crate::wire::WorkerRole::Worker,
    };
    store.commit(Batch::new().change(Change::Heartbeat(Box::new(w)))).await.unwrap();

    let made: Arc<Mutex<Vec<Agent>>> = Arc::default();
    let recs = store.commit(Batch::new().change(claim(10, 10, starter(vec![b.id], made.clone())))).await.unwrap();
    assert_eq!(kinds(&recs), ["agent:task-1-a1", "task:task-1:running", "task:task-2:running"], "{recs:#?}");
    let row = made.lock().unwrap()[0].clone();
    let Event::AgentCreated { agent } = &recs[0].event else { unreachable!() };
    assert_eq!(agent.run, None, "claims are not events");
    assert_eq!(recs[0].keys.agent_id, Some(row.id));
    let stored = store.get_agent(row.id).await.unwrap().expect("the started task's agent exists");
    assert_eq!(stored.run.as_ref().map(|l| l.run_id), row.run.as_ref().map(|l| l.run_id), "holding its run's lease");
    let Event::TaskUpdated { task: started } = &recs[1].event else { unreachable!() };
    assert_eq!((started.agent_id, started.model.as_deref()), (Some(row.id), Some("scripted-«m»")));
    assert_eq!((started.attempt, started.claimed_by.as_deref()), (1, Some("w1")), "the claim's attempt");
    assert_eq!(store.get_task(a.id).await.unwrap().as_ref(), Some(&**started), "the event holds the task as stored");
    let Event::TaskUpdated { task: left } = &recs[2].event else { unreachable!() };
    assert_eq!((left.agent_id, left.attempt), (None, 1), "the task the starter left is only claimed");
    assert_eq!(store.get_task(b.id).await.unwrap().as_ref(), Some(&**left));

    // a's end releases c, and the end's claim starts it: one commit.
    let mut done = started.as_ref().clone();
    done.status = TaskStatus::Completed;
    done.claimed_by = None;
    done.lease_until = None;
    done.completed_at = Some(ts(20));
    done.updated_at = ts(20);
    let end = Batch::new()
        .change(Change::FinishTask { task: Box::new(done.clone()), fence: 1 })
        .event(EventKeys::default(), Event::TaskUpdated { task: Box::new(done) })
        .change(claim(1, 20, starter(Vec::new(), made.clone())));
    let recs = store.commit(end).await.unwrap();
    assert_eq!(
        kinds(&recs),
        ["task:task-1:completed", "task:task-3:ready", "agent:task-3-a1", "task:task-3:running"],
        "{recs:#?}"
    );
    let c_now = store.get_task(c.id).await.unwrap().unwrap();
    let c_agent = made.lock().unwrap()[1].id;
    assert_eq!((c_now.status, c_now.agent_id), (TaskStatus::Running, Some(c_agent)));
    assert!(store.get_agent(c_agent).await.unwrap().is_some());

    // A batch failing after the claim: no agent, no claim, no event.
    let d = TaskGraph { id: crate::wire::new_id(), ..g.clone() };
    let mut t = task(d.id, 5, 0, vec![], 3);
    t.status = TaskStatus::Ready;
    store
        .commit(Batch::new().change(Change::UpsertGraph(Box::new(d))).change(Change::InsertTasks(vec![t.clone()])))
        .await
        .unwrap();
    let before = store.last_seq().await.unwrap();
    let missing = Change::SetGraphStatus {
        id: crate::wire::new_id(),
        status: GraphStatus::Paused,
        error: None,
        from: vec![GraphStatus::Running],
    };
    let r = store.commit(Batch::new().change(claim(10, 30, starter(Vec::new(), made.clone()))).change(missing)).await;
    assert!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");
    assert_eq!(store.last_seq().await.unwrap(), before, "nothing recorded");
    let t_now = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!((t_now.status, t_now.agent_id), (TaskStatus::Ready, None), "not claimed");
    let tried = made.lock().unwrap()[2..].to_vec();
    assert!(!tried.is_empty(), "the starter ran");
    for agent in tried {
        assert_eq!(store.get_agent(agent.id).await.unwrap(), None, "no agent of the failed batch");
    }
}
