//! `RunOptions::end`: what a host records when a run ends joins the commit that ends the run, and a
//! part the store refuses is dropped without losing the run's end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use orch_core::executor::{AgentRunner, NativeExecutor, RunEnd, RunOptions, Supervisor, TurnResult};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Change, EventQuery, MemoryStore, Store, StoreError};
use orch_core::wire::{Agent, AgentStatus, EndReason, Event, EventKeys, EventRecord, LogLevel, new_id};
use serde_json::json;

#[path = "support/wrapped.rs"]
mod wrapped;
use wrapped::Wrapped;

/// What a [`Noting`] end saw and was told.
#[derive(Default, Clone)]
struct Told {
    /// How each run it was shown ended.
    shown: Vec<(EndReason, bool, Option<String>)>,
    /// The outcome of each joined commit: its records, or the error.
    outcomes: Vec<Result<Vec<EventRecord>, String>>,
}

/// Joins a log line naming the answer; with `missing`, also a metadata change of an agent that does
/// not exist, which the store refuses.
struct Noting {
    told: Arc<Mutex<Told>>,
    missing: bool,
}

impl RunEnd for Noting {
    fn join(&self, ending: &Batch) -> Option<Batch> {
        let result = TurnResult::of(ending)?;
        let answer = result.result.map(str::to_string);
        self.told.lock().unwrap().shown.push((result.stop_reason.clone(), result.answered(), answer.clone()));
        let mut extra = Batch::new().event(
            EventKeys::default(),
            Event::SystemLog { level: LogLevel::Info, message: format!("ended: {answer:?}"), metadata: json!({}) },
        );
        if self.missing {
            extra.push_change(Change::SetAgentMetadata { id: new_id(), metadata: json!({"x": 1}) });
        }
        Some(extra)
    }

    fn joined(&self, outcome: Result<&[EventRecord], &StoreError>) {
        self.told.lock().unwrap().outcomes.push(outcome.map(<[EventRecord]>::to_vec).map_err(ToString::to_string));
    }
}

fn runner(store: Arc<dyn Store>, reply: &'static str) -> AgentRunner {
    let model = Arc::new(ScriptedModel::from_fn(move |_| Ok(ScriptReply::text(reply))));
    AgentRunner::builder(store, model).tools(orch_core::tool::ToolRegistry::new()).build()
}

fn options(told: &Arc<Mutex<Told>>, missing: bool) -> RunOptions {
    RunOptions { end: Some(Arc::new(Noting { told: told.clone(), missing })), ..RunOptions::default() }
}

#[tokio::test]
async fn what_the_host_records_at_the_end_commits_with_the_runs_end() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner(store.clone(), "the answer");
    let sup = Supervisor::new(runner.clone(), Vec::new());
    let agent = runner.create_agent(Agent::new("joined", "scripted", "/tmp")).await.unwrap();
    let told: Arc<Mutex<Told>> = Arc::default();
    let out = sup.run(&agent, "go".into(), options(&told, false)).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("the answer"));

    let told = told.lock().unwrap().clone();
    assert_eq!(told.shown, vec![(EndReason::EndTurn, true, Some("the answer".into()))], "shown once, at the end");
    assert_eq!(told.outcomes.len(), 1);
    let records = told.outcomes[0].as_ref().unwrap();
    // One commit: the run's result, then the joined line right after it.
    let result = records.iter().position(|r| matches!(r.event, Event::Result { .. })).expect("the run's result");
    let line = records
        .iter()
        .position(|r| matches!(&r.event, Event::SystemLog { message, .. } if message.contains("the answer")));
    assert!(line.is_some_and(|l| l > result), "{records:#?}");
    let logged = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(logged.last().map(|r| r.seq), records.last().map(|r| r.seq), "nothing committed after it");
    let stored = store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Idle);
    assert!(stored.run.is_none(), "the claim was released by that commit");
}

#[tokio::test]
async fn a_refused_join_leaves_the_runs_end_committed_alone() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = runner(store.clone(), "still stored");
    let sup = Supervisor::new(runner.clone(), Vec::new());
    let agent = runner.create_agent(Agent::new("refused", "scripted", "/tmp")).await.unwrap();
    let told: Arc<Mutex<Told>> = Arc::default();
    let out = sup.run(&agent, "go".into(), options(&told, true)).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("still stored"));

    let told = told.lock().unwrap().clone();
    assert_eq!(told.outcomes.len(), 1);
    let error = told.outcomes[0].as_ref().unwrap_err();
    assert!(error.contains("not found"), "{error}");
    // The run's end is stored, without the joined line.
    let logged = store.read_events(&EventQuery::default()).await.unwrap();
    assert!(logged.iter().any(|r| matches!(&r.event, Event::Result { result: Some(t), .. } if t == "still stored")));
    assert!(
        !logged.iter().any(|r| matches!(&r.event, Event::SystemLog { message, .. } if message.starts_with("ended")))
    );
    let stored = store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Idle);
    assert!(stored.run.is_none());
}

#[tokio::test]
async fn no_join_where_the_end_commit_is_not_the_runs_last_act() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let model = Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("done"))));
    let runner = AgentRunner::builder(store.clone(), model.clone())
        .executor(Arc::new(Wrapped(NativeExecutor::new(model))))
        .tools(orch_core::tool::ToolRegistry::new())
        .build();
    let sup = Supervisor::new(runner.clone(), Vec::new());
    let agent = runner.create_agent(Agent::new("wrapped", "scripted", "/tmp")).await.unwrap();
    let told: Arc<Mutex<Told>> = Arc::default();
    sup.run(&agent, "go".into(), options(&told, false)).await.unwrap();
    let told = told.lock().unwrap().clone();
    assert!(told.shown.is_empty() && told.outcomes.is_empty(), "never asked to join");
}
