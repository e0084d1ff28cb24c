//! A follower of the log whose consumer stops polling it mid-read (a worker's loop waiting for a
//! claim's commit, a slow WebSocket client) does not keep a pooled connection from everyone else: on
//! a pool of one connection, a follower left pending in the middle of its read, then a read and a
//! commit of another caller, both succeed. (Before reads of the log ran on tasks of their own, the
//! pending read held the pool's only connection, and the others failed after the pool's 30 s wait.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use futures::StreamExt;
use orch_core::store::{Batch, Store};
use orch_core::wire::{Event, EventKeys, LogLevel};
use orch_store_postgres::{PgOptions, PgStore};

fn log(text: &str) -> Batch {
    Batch::new().event(
        EventKeys::default(),
        Event::SystemLog { level: LogLevel::Info, message: text.into(), metadata: serde_json::Value::Null },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn a_follower_left_unpolled_mid_read_keeps_no_connection_from_others() {
    let url = support::server();
    let schema = support::fresh_schema();
    let _guard = support::SchemaGuard::new(&url, &schema);
    let store = PgStore::connect_with(&url, PgOptions { schema: Some(schema), pool_size: Some(1) }).await.unwrap();
    store.commit(log("first")).await.unwrap();

    // Polled once: its read of the log starts (it takes the pool's connection, or waits for it), and
    // is then left pending: nothing polls the stream again until the end.
    let mut follower = store.subscribe(0);
    assert!(futures::poll!(follower.next()).is_pending(), "the read needs the server, so it is pending");

    // Another caller's read and commit get the connection.
    assert_eq!(store.last_seq().await.unwrap(), 1, "a read while the follower is left pending");
    let records = store.commit(log("second")).await.unwrap();
    assert_eq!(records.len(), 1, "a commit while the follower is left pending");

    // The follower, polled again, reads on from where it was.
    let texts: Vec<String> = follower
        .take(2)
        .map(|r| match r.unwrap().event {
            Event::SystemLog { message, .. } => message,
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
        .await;
    assert_eq!(texts, ["first", "second"]);
}
