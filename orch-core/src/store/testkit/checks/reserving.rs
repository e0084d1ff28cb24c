//! Checks of agent steps committed with a budget reservation (a turn's first step carries its first
//! model call's reservation, see [`ModelGate::reservation`](crate::executor::ModelGate::reservation)):
//! the step and the reservation are stored together, or neither.

use super::work::{reservation, running_graph};
use super::*;
use crate::store::{Batch, Change};

/// A turn's first step of agent `a` (its status, prompt message, state and one event) with a
/// reservation of `amount` on graph `graph_id`.
fn step_reserving(a: &Agent, graph_id: Id, amount: f64) -> Batch {
    let keys = EventKeys { agent_id: Some(a.id), ..EventKeys::default() };
    let step = StepCommit {
        agent_id: a.id,
        status: Some(AgentStatus::Executing),
        state: Some(SavedState { state: Some(serde_json::json!({"phase": "call_model"})), session_id: None }),
        messages: vec![Message::user_text(format!("task of {}", a.name))],
        events: vec![text(1, keys)],
        ..StepCommit::default()
    };
    let mut batch = Batch::from(step);
    batch.push_change(Change::ReserveBudget(Box::new(reservation(Some(graph_id), amount, "2026-12-02"))));
    batch
}

/// Eight agents' first steps, each reserving 0.2 at once against a graph's limit of 1.0: five are
/// stored whole (the agent executing, its message and event, its reservation); the three refused
/// (`BudgetExhausted`) store nothing, not even the step; the graph's reserved total is 1.0.
pub async fn steps_with_reservations_store_whole_or_nothing(store: Arc<dyn Store>) {
    let mut g = running_graph(1);
    g.budget_usd = Some(1.0);
    store.upsert_graph(&g).await.unwrap();
    let mut agents = Vec::new();
    for i in 0..8 {
        let a = agent(&format!("reserver-{i}"), None, i);
        store.create_agent(&a).await.unwrap();
        agents.push(a);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(agents.len()));
    let handles: Vec<_> = agents
        .iter()
        .map(|a| {
            let (store, barrier, batch) = (store.clone(), barrier.clone(), step_reserving(a, g.id, 0.2));
            tokio::spawn(async move {
                barrier.wait().await;
                store.commit(batch).await
            })
        })
        .collect();
    let mut stored = Vec::new();
    for (a, h) in agents.iter().zip(handles) {
        match h.await.unwrap() {
            Ok(recs) => {
                assert_eq!(recs.len(), 1, "the step's event: {recs:?}");
                stored.push(a.id);
            }
            Err(StoreError::BudgetExhausted { scope, .. }) => assert_eq!(scope, format!("graph {}", g.id)),
            Err(e) => panic!("a step with its reservation failed: {e}"),
        }
    }
    assert_eq!(stored.len(), 5, "as many as fit the limit");
    for a in &agents {
        let got = store.get_agent(a.id).await.unwrap().unwrap();
        let conversation = store.load_conversation(a.id).await.unwrap();
        let events = store.read_events(&EventQuery { agent_id: Some(a.id), ..EventQuery::after(0) }).await.unwrap();
        if stored.contains(&a.id) {
            assert_eq!(got.status, AgentStatus::Executing, "{}", a.name);
            assert_eq!(conversation, vec![Message::user_text(format!("task of {}", a.name))]);
            assert_eq!(events.len(), 1, "{}: {events:?}", a.name);
        } else {
            assert_eq!(got.status, a.status, "{}: a refused step leaves the agent as it was", a.name);
            assert!(conversation.is_empty(), "{}: no message of a refused step", a.name);
            assert!(events.is_empty(), "{}: no event of a refused step: {events:?}", a.name);
        }
    }
    let b = store.budget("2026-12-02", "2026-12").await.unwrap();
    assert!((b.daily.reserved_usd - 1.0).abs() < 1e-9, "only the stored steps' reservations: {b:?}");
}
