//! Stored data that cannot be decoded is reported clearly, naming where it is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::sqlx;

use orch_core::store::{EventQuery, Store, StoreError};
use orch_core::wire::{Event, EventKeys, NewEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn an_undecodable_event_payload_names_its_seq() {
    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let events = (0..6).map(|i| NewEvent::new(EventKeys::default(), Event::Text { text: format!("event {i}") }));
    store.append(events.collect()).await.unwrap();
    let mut admin = support::admin(&url).await;
    let sql = format!(
        "UPDATE \"{}\".events SET payload = '{{\"type\": \"no_such_event\"}}'::jsonb WHERE seq = 6",
        guard.schema
    );
    sqlx::query(&sql).execute(&mut admin).await.unwrap();

    let e = store.read_events(&EventQuery::default()).await.expect_err("seq 6 cannot be decoded");
    assert!(matches!(e, StoreError::Decode(_)), "{e:?}");
    let message = e.to_string();
    assert!(message.starts_with("stored data could not be decoded: event payload of seq 6: "), "{message}");
    assert!(message.contains("no_such_event"), "{message}");
}
