//! A run's claim on its agent is released by the commit that ends its last turn (one commit, not two),
//! when its executor ends turns with that commit; otherwise, and for turns run under a claim the caller
//! keeps, it is released after the turn as before.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use orch_core::executor::{AgentExecutor, AgentRunner, NativeExecutor, RoutingExecutor, RunOptions, Supervisor};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::store::{Batch, Change, Store};
use orch_core::tool::ToolRegistry;
use orch_core::wire::{Agent, AgentStatus};

#[path = "support/hooked.rs"]
mod hooked;
#[path = "support/wrapped.rs"]
mod wrapped;
use hooked::Hooked;
use wrapped::Wrapped;

/// The commits a store saw, each as its changes.
type Seen = Arc<Mutex<Vec<Vec<Change>>>>;

fn recording() -> (Arc<dyn Store>, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let store = Hooked::new(Box::new(move |batch: &Batch| {
        log.lock().unwrap().push(batch.changes.clone());
        Vec::new()
    }));
    (Arc::new(store), seen)
}

fn model() -> Arc<ScriptedModel> {
    Arc::new(ScriptedModel::from_fn(|_| Ok(ScriptReply::text("done"))))
}

fn ends(changes: &[Change]) -> bool {
    changes.iter().any(|c| matches!(c, Change::SetAgentStatus { status: AgentStatus::Idle, .. }))
}

fn releases(changes: &[Change]) -> bool {
    changes.iter().any(|c| matches!(c, Change::ReleaseRun { .. }))
}

fn swap_releases(changes: &[Change]) -> bool {
    changes.iter().any(|c| matches!(c, Change::SwapRun { lease: None, .. }))
}

async fn agent(runner: &AgentRunner, name: &str) -> Agent {
    runner.create_agent(Agent::new(name, "scripted", "/tmp")).await.unwrap()
}

#[tokio::test]
async fn a_native_runs_end_releases_its_claim_in_the_same_commit() {
    let (store, seen) = recording();
    let runner = AgentRunner::builder(store.clone(), model()).tools(ToolRegistry::new()).build();
    let sup = Supervisor::new(runner.clone(), Vec::new());
    let a = agent(&runner, "native").await;
    seen.lock().unwrap().clear();
    let out = sup.run(&a, "go".into(), RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("done"));

    let seen = seen.lock().unwrap().clone();
    let end = seen.iter().position(|c| ends(c)).expect("an end commit");
    assert!(releases(&seen[end]), "the end commit releases the claim: {seen:?}");
    assert!(!seen.iter().any(|c| swap_releases(c)), "no separate release commit: {seen:?}");
    assert_eq!(end, seen.len() - 1, "nothing is committed after the end: {seen:?}");
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().run, None, "the agent is free");
    assert!(!runner.is_running(a.id), "and free in this process");

    // Free for the next run at once, which ends the same way.
    let claim = runner.claim(a.id, &a.name, None, None).await.unwrap();
    runner.run_claimed(claim, Some("again".into()), RunOptions::default()).await.unwrap();
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().run, None);
}

#[tokio::test]
async fn the_native_executor_behind_the_router_releases_at_its_end_too() {
    let (store, seen) = recording();
    let router = RoutingExecutor::new(Arc::new(NativeExecutor::new(model())));
    let runner =
        AgentRunner::builder(store.clone(), model()).executor(Arc::new(router)).tools(ToolRegistry::new()).build();
    let a = agent(&runner, "routed").await;
    runner.run(a.id, "go", RunOptions::default()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|c| ends(c) && releases(c)), "{seen:?}");
    assert!(!seen.iter().any(|c| swap_releases(c)), "{seen:?}");
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().run, None);
}

#[tokio::test]
async fn other_executors_release_after_the_turn_as_before() {
    for routed in [false, true] {
        let (store, seen) = recording();
        let wrapped: Arc<dyn AgentExecutor> = Arc::new(Wrapped(NativeExecutor::new(model())));
        let executor: Arc<dyn AgentExecutor> = if routed { Arc::new(RoutingExecutor::new(wrapped)) } else { wrapped };
        let runner = AgentRunner::builder(store.clone(), model()).executor(executor).tools(ToolRegistry::new()).build();
        let a = agent(&runner, "wrapped").await;
        runner.run(a.id, "go", RunOptions::default()).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let end = seen.iter().position(|c| ends(c)).expect("an end commit");
        assert!(!releases(&seen[end]), "routed {routed}: the end commit releases nothing: {seen:?}");
        assert!(seen[end..].iter().any(|c| swap_releases(c)), "routed {routed}: released after the turn: {seen:?}");
        assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().run, None, "routed {routed}");
    }
}

#[tokio::test]
async fn a_turn_under_a_claim_the_caller_keeps_does_not_release_it() {
    let (store, seen) = recording();
    let runner = AgentRunner::builder(store.clone(), model()).tools(ToolRegistry::new()).build();
    let a = agent(&runner, "kept").await;
    let claim = runner.claim(a.id, &a.name, None, None).await.unwrap();
    runner.run_held(&claim, Some("one".into()), RunOptions::default()).await.unwrap();
    let held = store.get_agent(a.id).await.unwrap().unwrap().run.map(|l| l.run_id);
    assert_eq!(held, Some(claim.lease().run_id), "still held between the caller's turns");
    assert!(!seen.lock().unwrap().iter().any(|c| releases(c)), "no release in a kept claim's turn");
    runner.run_held(&claim, Some("two".into()), RunOptions::default()).await.unwrap();
    claim.release().await;
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().run, None, "released by the caller");
}
