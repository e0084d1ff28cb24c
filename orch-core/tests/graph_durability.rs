//! Which commits of a task's attempt wait for the disk. Claims, which start the claimed tasks'
//! attempts (each agent created with its task's new state, in the claim's commit), and budget
//! reservations committed alone (a turn's first call's goes with its first step, which is durable)
//! may be lost by a power cut together with the worker they describe
//! ([`Durability::Relaxed`]): the task's lease then expires and it runs again. Everything that records
//! work done (a model call's step, the task's end) is durable, and comes after the start, so it makes
//! the start durable too (stores sync in commit order).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Durability, EventQuery, Store};
use orch_core::wire::{Event, TaskStatus};

#[path = "support/hooked.rs"]
mod hooked;
use hooked::Hooked;
#[path = "support/graph_run.rs"]
mod graph_run;
use graph_run::{run_to_end, task};

/// What one commit carried: its durability and the names of its changes.
type Seen = Arc<Mutex<Vec<(Durability, Vec<String>)>>>;

fn names(batch: &Batch) -> Vec<String> {
    batch.changes.iter().map(|c| format!("{c:?}").split(['(', ' ', '{']).next().unwrap_or("").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_starts_without_waiting_for_the_disk_and_ends_durably_after_its_steps() {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let store: Arc<dyn Store> = Arc::new(Hooked::new(Box::new(move |batch: &Batch| {
        log.lock().unwrap().push((batch.durability, names(batch)));
        Vec::new()
    })));
    let model = Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("done"))));
    run_to_end(store.clone(), model, vec![task("a", Vec::new()), task("b", vec!["a".into()])]).await;

    let seen = seen.lock().unwrap().clone();
    let has = |names: &[String], what: &str| names.iter().any(|n| n == what);
    // Each task's attempt started with its claim: its agent is created in the claim's commit (right
    // before the task's running state, with that agent), never in a commit of its own.
    assert!(!seen.iter().any(|(_, n)| has(n, "CreateAgent")), "no start commit of its own: {seen:?}");
    let events = store.read_events(&EventQuery::default()).await.unwrap();
    for key in ["a", "b"] {
        let at = events
            .iter()
            .position(|r| matches!(&r.event, Event::TaskUpdated { task } if task.key == key && task.status == TaskStatus::Running))
            .unwrap_or_else(|| panic!("{key} ran"));
        let Event::TaskUpdated { task } = &events[at].event else { unreachable!() };
        assert!(
            task.agent_id.is_some() && task.model.is_some(),
            "{key} runs with its agent and model from its claim on"
        );
        assert!(
            matches!(&events[at - 1].event, Event::AgentCreated { agent } if Some(agent.id) == task.agent_id),
            "{key}'s agent is created in its claim's commit, just before"
        );
    }
    let claims: Vec<usize> = (0..seen.len()).filter(|&i| has(&seen[i].1, "ClaimTasks")).collect();
    let ends: Vec<usize> = (0..seen.len()).filter(|&i| has(&seen[i].1, "FinishTask")).collect();
    assert_eq!(ends.len(), 2, "one end per task: {seen:?}");
    for end in &ends {
        assert_eq!(seen[*end].0, Durability::Full, "the end: {:?}", seen[*end]);
        // Between the claim before it and it, the model call's step: durable, so the start is on disk
        // before anything the agent did.
        let start = claims.iter().copied().filter(|c| c < end).max().unwrap();
        let steps: Vec<&(Durability, Vec<String>)> =
            seen[start + 1..*end].iter().filter(|(_, n)| has(n, "AppendMessages")).collect();
        assert!(!steps.is_empty(), "a step between start and end: {seen:?}");
        assert!(steps.iter().all(|(d, _)| *d == Durability::Full), "steps are durable: {steps:?}");
    }
    // A claim on its own and a budget reservation alone describe the running worker: relaxed too.
    for (d, n) in &seen {
        if n == &["ClaimTasks"] || n == &["ReserveBudget"] {
            assert_eq!(*d, Durability::Relaxed, "{n:?}");
        }
    }
    // Each task's agent makes one model call, whose reservation is stored with the turn's first step
    // (its prompt and message), durably: no commit of a reservation alone.
    let first_steps: Vec<&(Durability, Vec<String>)> =
        seen.iter().filter(|(_, n)| has(n, "InsertPrompt") && has(n, "AppendMessages")).collect();
    assert_eq!(first_steps.len(), 2, "one first step per task: {seen:?}");
    for step in &first_steps {
        assert!(has(&step.1, "ReserveBudget"), "the first call's reservation is in the first step: {step:?}");
        assert_eq!(step.0, Durability::Full, "{step:?}");
    }
    assert!(!seen.iter().any(|(_, n)| n == &["ReserveBudget"]), "no reservation commit of its own: {seen:?}");
}
