//! An agent created already claimed for its run (`AgentRunner::create_claimed`, as a graph task's
//! agent is): one commit holds the agent, its claim and the caller's changes; the agent is busy from
//! that commit until its run ends; a failed creation stores nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use orch_core::executor::{AgentRunner, RunError, RunOptions, Supervisor};
use orch_core::model::ModelRequest;
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, EventQuery, MemoryStore, Store, StoreError};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Agent, AgentStatus, Event, EventKeys, LogLevel};
use serde_json::json;
use support::StallingModel;

fn note(message: &str) -> Batch {
    Batch::new().event(
        EventKeys::default(),
        Event::SystemLog { level: LogLevel::Info, message: message.into(), metadata: json!({}) },
    )
}

#[tokio::test]
async fn a_new_agent_is_created_claimed_with_the_callers_changes_and_its_run_releases_it() {
    let store = Arc::new(MemoryStore::new());
    let model = ScriptedModel::from_fn(|req: &ModelRequest| {
        let prompt = req.messages.last().and_then(|m| m.last_text()).unwrap_or("").to_string();
        Ok(ScriptReply::text(format!("did: {prompt}")))
    });
    let runner = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::new()).build();
    let sup = Supervisor::new(runner.clone(), Vec::new());
    let agent = Agent::new("worker-1", "scripted", "/tmp");

    let (claim, records) =
        runner.create_claimed(agent.clone(), note("the task starts"), Some("task-1".into()), None).await.unwrap();
    // One commit: the agent's creation, then the caller's event, with consecutive seqs.
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(matches!(&records[0].event, Event::AgentCreated { agent: a } if a.id == agent.id && a.run.is_none()));
    assert!(matches!(&records[1].event, Event::SystemLog { message, .. } if message == "the task starts"));
    assert_eq!(records[1].seq, records[0].seq + 1);
    // Claimed from that commit: stored with its lease, busy here, refused to any other run.
    let stored = store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(stored.run.as_ref().map(|l| l.run_id), Some(claim.lease().run_id));
    assert!(runner.is_running(agent.id));
    let busy = runner.run(agent.id, "cut in", RunOptions::default()).await.unwrap_err();
    assert!(matches!(busy, RunError::AgentBusy { .. }), "{busy}");

    let out = sup.run_claimed(&agent, claim, "hello".into(), RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("did: hello"));
    let stored = store.get_agent(agent.id).await.unwrap().unwrap();
    assert!(stored.run.is_none(), "the run released its claim");
    assert_eq!(stored.status, AgentStatus::Idle);
    assert!(!runner.is_running(agent.id));
    // Its conversation and state were saved as any run's are: a second turn sees the first.
    let again = runner.run(agent.id, "again", RunOptions::default()).await.unwrap();
    assert_eq!(again.final_text.as_deref(), Some("did: again"));
    assert_eq!(store.load_conversation(agent.id).await.unwrap().len(), 4, "two prompts and two answers");
}

#[tokio::test]
async fn a_name_already_taken_stores_nothing_and_leaves_nothing_claimed() {
    let store = Arc::new(MemoryStore::new());
    let model = ScriptedModel::from_fn(|_req: &ModelRequest| Ok(ScriptReply::text("ok")));
    let runner = AgentRunner::builder(store.clone(), Arc::new(model)).tools(ToolRegistry::new()).build();
    runner.create_agent(Agent::new("taken", "scripted", "/tmp")).await.unwrap();
    let before = store.read_events(&EventQuery::default()).await.unwrap().len();

    let second = Agent::new("taken", "scripted", "/tmp");
    let err = runner.create_claimed(second.clone(), note("never stored"), None, None).await.map(|_| ()).unwrap_err();
    assert!(matches!(err, RunError::Store(StoreError::NameTaken { .. })), "{err}");
    assert!(store.get_agent(second.id).await.unwrap().is_none());
    assert_eq!(store.read_events(&EventQuery::default()).await.unwrap().len(), before, "the caller's event too");
    assert!(!runner.is_running(second.id));
}

#[tokio::test]
async fn a_run_of_an_agent_created_claimed_can_be_interrupted() {
    let store = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(StallingModel)).tools(ToolRegistry::new()).build();
    let sup = Supervisor::new(runner.clone(), Vec::new());
    let agent = Agent::new("stalls", "scripted", "/tmp");
    let (claim, _) = runner.create_claimed(agent.clone(), Batch::new(), None, None).await.unwrap();
    let run = tokio::spawn({
        let sup = sup.clone();
        let agent = agent.clone();
        async move { sup.run_claimed(&agent, claim, "go".into(), RunOptions::default()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(runner.interrupt(agent.id), "the run is known to its runner");
    let out = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap().unwrap();
    assert!(out.interrupted());
    assert!(store.get_agent(agent.id).await.unwrap().unwrap().run.is_none());
}
