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
    assert_eq!(store.load_executor_state(agent.id).await.unwrap(), Some(state), "agent state");
    assert_eq!(store.load_conversation(agent.id).await.unwrap(), vec![message], "conversation");
    // Type filters still work on wrapped payloads (type and category are columns).
    let by_type =
        store.read_events(&EventQuery { types: vec!["ToolResult".into()], ..EventQuery::default() }).await.unwrap();
    assert_eq!(by_type.len(), 1);

    // Event payloads are `json`: the text as written, `\u0000` escape and all, not a wrapper.
    let mut admin = support::admin(&url).await;
    let (kind, escaped): (String, bool) = sqlx::query_as(&format!(
        "SELECT json_typeof(payload), strpos(payload::text, $1) > 0 FROM \"{}\".events WHERE seq = 1",
        guard.schema
    ))
    .bind("\\u0000")
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!((kind.as_str(), escaped), ("object", true));
    let wrapped: bool = sqlx::query_scalar(&format!(
        "SELECT payload::text LIKE '%$orch_json%' FROM \"{}\".events WHERE seq = 1",
        guard.schema
    ))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(!wrapped, "a NUL in an event payload needs no wrapper in `json`");
}

/// Migration 8 turns event payloads from `jsonb` into `json`: payloads stored before, wrapped ones (a NUL
/// inside) included, still read back as they were written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn migration_8_keeps_event_payloads_written_as_jsonb() {
    use orch_store_postgres::{PgOptions, PgStore};
    use sqlx::Connection;
    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let agent = Agent::new("old-events", "m", "/w");
    store.create_agent(&agent).await.unwrap();
    let keys = EventKeys { agent_id: Some(agent.id), ..EventKeys::default() };
    let nul = "before\u{0}after";
    let plain =
        Event::ToolResult { tool_use_id: "t1".into(), tool_name: "Bash".into(), content: "ok".into(), is_error: false };
    let with_nul =
        Event::ToolResult { tool_use_id: "t2".into(), tool_name: "Bash".into(), content: nul.into(), is_error: false };
    let recs = store
        .append(vec![NewEvent::new(keys.clone(), plain.clone()), NewEvent::new(keys, plain.clone())])
        .await
        .unwrap();
    drop(store);
    // Back to schema 7: payloads as jsonb, the second as the wrapper jsonb needed for a NUL (and the
    // later migrations undone too).
    let s = &guard.schema;
    let inner = serde_json::to_string(&with_nul).unwrap();
    let wrapper = serde_json::to_string(&serde_json::json!({"$orch_json": inner})).unwrap();
    let mut admin = support::admin(&url).await;
    sqlx::raw_sql(&format!(
        "ALTER TABLE \"{s}\".events ALTER COLUMN payload TYPE jsonb USING payload::jsonb; \
         ALTER TABLE \"{s}\".workers DROP COLUMN role; \
         DELETE FROM \"{s}\".orch_schema_version WHERE version >= 8;"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(&format!("UPDATE \"{s}\".events SET payload = $1::jsonb WHERE seq = $2"))
        .bind(&wrapper)
        .bind(i64::try_from(recs[1].seq).unwrap())
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();

    let store = PgStore::connect_with(&url, PgOptions { schema: Some(s.clone()), pool_size: Some(2) }).await.unwrap();
    let read = store.read_events(&EventQuery::default()).await.unwrap();
    let event = |seq: u64| read.iter().find(|r| r.seq == seq).map(|r| r.event.clone());
    assert_eq!(event(recs[0].seq), Some(plain));
    assert_eq!(event(recs[1].seq), Some(with_nul), "the wrapped payload unwraps after the migration");
    let mut admin = support::admin(&url).await;
    let ty: String = sqlx::query_scalar(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'events' \
         AND column_name = 'payload'",
    )
    .bind(s)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(ty, "json");
}

/// Migration 3 lifts the role, template and tools out of the metadata of agents written before they
/// were columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn migration_3_lifts_role_template_and_tools_out_of_metadata() {
    use orch_store_postgres::{PgOptions, PgStore};
    use sqlx::Connection;
    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let agent = Agent::new("old", "m", "/w");
    store.create_agent(&agent).await.unwrap();
    drop(store);
    let s = &guard.schema;
    let mut admin = support::admin(&url).await;
    sqlx::raw_sql(&format!(
        "ALTER TABLE \"{s}\".agents DROP COLUMN role, DROP COLUMN template_name, DROP COLUMN template_color, \
         DROP COLUMN tools, DROP COLUMN context_used, DROP COLUMN context_window, DROP COLUMN compact_at, \
         DROP COLUMN parent_id; ALTER TABLE \"{s}\".workflows DROP COLUMN run_lease; UPDATE \"{s}\".agents SET metadata = '{{\"role\":\"orchestrator\",\"template_name\":\
         \"builder\",\"template_color\":\"#ff00aa\",\"tools\":[\"Read\",\"Grep\"],\"keep\":1}}'::jsonb; \
         DROP TABLE \"{s}\".plans, \"{s}\".task_graphs, \"{s}\".tasks, \"{s}\".task_deps, \"{s}\".workers, \
         \"{s}\".budget_limits, \"{s}\".budget_spend; \
         DELETE FROM \"{s}\".orch_schema_version WHERE version >= 3;"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    let store = PgStore::connect_with(&url, PgOptions { schema: Some(s.clone()), pool_size: Some(2) }).await.unwrap();
    let got = store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(got.role, orch_core::wire::AgentRole::Orchestrator);
    assert_eq!(got.template.as_ref().map(|t| t.name.as_str()), Some("builder"));
    assert_eq!(got.template.as_ref().and_then(|t| t.color.as_deref()), Some("#ff00aa"));
    assert_eq!(got.tools, Some(vec!["Read".to_string(), "Grep".to_string()]));
    assert_eq!(got.metadata, serde_json::json!({"keep": 1}), "the lifted keys leave the metadata");
}
