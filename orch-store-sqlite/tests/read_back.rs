//! Reading the log back when some rows are not what this build writes: an event of a type a newer orch
//! added, a damaged payload, a payload nested too deeply to decode. Readers get every row, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use futures::StreamExt;
use orch_core::store::{EventQuery, Store};
use orch_core::wire::{Event, EventKeys, NewEvent};
use orch_store_sqlite::SqliteStore;

fn text(i: u64) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::Text { text: format!("event {i}") })
}

/// JSON nested `depth` levels deep (arrays in objects).
fn nested(depth: usize) -> String {
    let mut s = String::from("1");
    for i in 0..depth {
        s = if i % 2 == 0 { format!("[{s}]") } else { format!("{{\"k\":{s}}}") };
    }
    s
}

/// Inserts an event row behind the store's back, as another writer would, and moves the seq counter.
fn insert_row(path: &Path, seq: i64, category: &str, kind: &str, payload: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    conn.execute(
        "INSERT INTO events (seq, ts, category, type, payload) VALUES (?1, '2026-01-01T00:00:00.000000Z', ?2, ?3, ?4)",
        rusqlite::params![seq, category, kind, payload],
    )
    .unwrap();
    conn.execute("UPDATE event_seq SET last = ?1 WHERE id = 1", [seq]).unwrap();
}

#[tokio::test]
async fn unknown_and_undecodable_rows_are_returned_in_place_and_do_not_stop_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    store.append(vec![text(1)]).await.unwrap();
    let future = r#"{"type":"FromANewerOrch","answer":42,"nested":{"list":[1,"two",null]}}"#;
    insert_row(&path, 2, "agent", "FromANewerOrch", future);
    insert_row(&path, 3, "response", "Text", r#"{"type":"Text","text":"cut"#);
    insert_row(&path, 4, "response", "ToolUse", &format!(r#"{{"type":"ToolUse","tool_input":{}}}"#, nested(130)));
    insert_row(&path, 5, "response", "Text", r#"{"type":"Text"}"#);
    store.append(vec![text(6)]).await.unwrap();

    let all = store.read_events(&EventQuery::after(0)).await.expect("one bad row must not fail the read");
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    let kinds: Vec<&str> = all.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds, vec!["Text", "FromANewerOrch", "Undecodable", "Undecodable", "Undecodable", "Text"]);
    // The unknown event keeps its fields and writes back the JSON it was read from.
    let back = serde_json::to_value(&all[1].event).unwrap();
    assert_eq!(back, serde_json::from_str::<serde_json::Value>(future).unwrap());
    // Undecodable rows say which type they had and why they could not be read.
    assert!(all[2].event.summary().contains("Text"), "{}", all[2].event.summary());
    assert!(all[3].event.summary().contains("recursion limit"), "{}", all[3].event.summary());
    assert!(all[4].event.summary().contains("missing field `text`"), "{}", all[4].event.summary());

    // Filters by type still see the rows by their stored type.
    let tool_uses =
        store.read_events(&EventQuery { types: vec!["ToolUse".into()], ..EventQuery::default() }).await.unwrap();
    assert_eq!(tool_uses.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4]);

    // A follower replays every row, then keeps following.
    let mut sub = store.subscribe(0);
    for want in 1..=6 {
        let r = sub.next().await.expect("the stream goes on").expect("no error for a bad row");
        assert_eq!(r.seq, want);
    }
    store.append(vec![text(7)]).await.unwrap();
    let r = sub.next().await.unwrap().unwrap();
    assert_eq!((r.seq, r.event.kind()), (7, "Text"));
}

/// A model that first asks for one tool call with input nested `depth` levels deep, then answers in text.
struct DeepToolCall {
    depth: usize,
    calls: std::sync::Mutex<u32>,
}

#[async_trait::async_trait]
impl orch_core::model::ModelProvider for DeepToolCall {
    fn name(&self) -> &str {
        "deep"
    }

    async fn stream(
        &self,
        _request: orch_core::model::ModelRequest,
    ) -> Result<orch_core::model::DeltaStream, orch_core::model::ModelError> {
        use orch_core::model::{BlockStart, ModelDelta, StopReason};
        let n = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        let deltas = if n == 1 {
            // An object at the top, as tool input must be.
            let mut input = String::from("1");
            for i in 0..self.depth {
                input = if (self.depth - 1 - i).is_multiple_of(2) {
                    format!("{{\"k\":{input}}}")
                } else {
                    format!("[{input}]")
                };
            }
            vec![
                ModelDelta::BlockStart {
                    index: 0,
                    block: BlockStart::ToolUse { id: "t1".into(), name: "Write".into() },
                },
                ModelDelta::InputJson { index: 0, partial_json: input },
                ModelDelta::BlockStop { index: 0 },
                ModelDelta::Stop { reason: StopReason::ToolUse },
            ]
        } else {
            vec![
                ModelDelta::BlockStart { index: 0, block: BlockStart::Text },
                ModelDelta::Text { index: 0, text: format!("answer {n}") },
                ModelDelta::BlockStop { index: 0 },
                ModelDelta::Stop { reason: StopReason::EndTurn },
            ]
        };
        Ok(futures::stream::iter(deltas.into_iter().map(Ok)).boxed())
    }
}

#[tokio::test]
async fn a_deeply_nested_tool_call_leaves_the_agent_promptable_and_the_log_readable() {
    for depth in [124, 125, 126, 127] {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn Store> =
            std::sync::Arc::new(SqliteStore::open(dir.path().join("orch.db")).unwrap());
        let model = std::sync::Arc::new(DeepToolCall { depth, calls: Default::default() });
        let runner = orch_core::executor::AgentRunner::builder(store.clone(), model).build();
        let agent = runner.ensure_agent("deep", "deep-model", dir.path().to_str().unwrap()).await.unwrap();
        let opts = orch_core::executor::RunOptions::default;
        let out = runner.run(agent.id, "go", opts()).await.unwrap_or_else(|e| panic!("depth {depth}: {e}"));
        assert_eq!(out.final_text.as_deref(), Some("answer 2"), "depth {depth}");
        let out = runner.run(agent.id, "again", opts()).await.unwrap_or_else(|e| panic!("depth {depth}: {e}"));
        assert_eq!(out.final_text.as_deref(), Some("answer 3"), "depth {depth}");
        let events = store.read_events(&EventQuery::after(0)).await.unwrap();
        assert!(!events.iter().any(|r| r.event.kind() == "Undecodable"), "depth {depth}: every event reads back");
        let refused = events.iter().find(|r| r.event.kind() == "ToolResult").unwrap();
        assert!(
            serde_json::to_string(&refused.event).unwrap().contains("tool input nested deeper than 64 levels"),
            "depth {depth}"
        );
    }
}
