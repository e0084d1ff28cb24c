//! JSON that `jsonb` cannot hold as such (the character U+0000) still round-trips through every JSON column.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::sqlx;

use orch_core::store::testkit::Writes;
use orch_core::store::{EventQuery, SavedState, StepCommit, Store};
use orch_core::wire::{Agent, ContentBlock, Event, EventKeys, Message, NewEvent, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn nul_characters_round_trip_through_every_json_column() {
    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let nul = "binary\u{0}output \\u0000 literal";
    let mut agent = Agent::new("nul", "m", "/w");
    agent.metadata = serde_json::json!({"note": nul});
    store.create_agent(&agent).await.unwrap();
    assert_eq!(store.get_agent(agent.id).await.unwrap().unwrap().metadata, agent.metadata, "metadata");

    let result =
        Event::ToolResult { tool_use_id: "t1".into(), tool_name: "Bash".into(), content: nul.into(), is_error: false };
    let lookalike = Event::ToolUse {
        tool_name: "X".into(),
        tool_input: serde_json::json!({"$orch_json": "not a wrapper"}),
        tool_use_id: "t2".into(),
    };
    let state = serde_json::json!({"$orch_json": nul});
    let message = Message {
        role: Role::User,
        content: vec![ContentBlock::ToolResult { tool_use_id: "t1".into(), content: nul.into(), is_error: false }],
    };
    let keys = EventKeys { agent_id: Some(agent.id), ..EventKeys::default() };
    let recs = store
        .commit_step(StepCommit {
            agent_id: agent.id,
            state: Some(SavedState { state: Some(state.clone()), session_id: None }),
            messages: vec![message.clone()],
            events: vec![NewEvent::new(keys.clone(), result.clone()), NewEvent::new(keys, lookalike.clone())],
            ..StepCommit::default()
        })
        .await
        .unwrap();
    let read = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(read, recs);
    assert_eq!(read[0].event, result, "event payload with NUL");
    assert_eq!(read[1].event, lookalike, "a payload that looks like the wrapper");
    assert_eq!(store.get_agent(agent.id).await.unwrap().unwrap().state, Some(state), "agent state");
    assert_eq!(store.load_conversation(agent.id).await.unwrap(), vec![message], "conversation");
    // Type filters still work on wrapped payloads (type and category are columns).
    let by_type =
        store.read_events(&EventQuery { types: vec!["ToolResult".into()], ..EventQuery::default() }).await.unwrap();
    assert_eq!(by_type.len(), 1);

    // Stored as jsonb (an object with one string), not as text.
    let mut admin = support::admin(&url).await;
    let kind: String = sqlx::query_scalar(&format!(
        "SELECT jsonb_typeof(payload -> '$orch_json') FROM \"{}\".events WHERE seq = 1",
        guard.schema
    ))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(kind, "string");
}
