//! The store's connections: callers beyond the pool's size wait their turn and all get one, the store
//! never holds more than the pool's size, none is left in a transaction, and closing gives every one
//! back (connections whose work ended cleanly are handed from caller to caller, outside the pool).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use orch_core::store::{Batch, EventQuery, Store};
use orch_core::wire::{Event, EventKeys};
use orch_store_postgres::{PgOptions, PgStore};
use support::sqlx;

fn text(i: usize) -> Batch {
    Batch::new().event(EventKeys::default(), Event::Text { text: format!("event {i}") })
}

/// The store's own connections to the server (not its listener's): (all, idle in a transaction).
async fn backends(admin: &mut sqlx::PgConnection, app: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state LIKE 'idle in transaction%') \
         FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(app)
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn callers_beyond_the_pool_size_all_get_a_connection_and_closing_gives_each_back() {
    for size in [1, 2] {
        callers_beyond(size).await;
    }
}

/// 60 callers against a pool of `size`.
async fn callers_beyond(size: u32) {
    let url = support::server();
    let schema = support::fresh_schema();
    let _guard = support::SchemaGuard::new(&url, &schema);
    let app = format!("orch-pool-{}", &schema[7..19]);
    let store_url = support::with_param(&url, &format!("application_name={app}"));
    let store = Arc::new(
        PgStore::connect_with(&store_url, PgOptions { schema: Some(schema), pool_size: Some(size) }).await.unwrap(),
    );
    let mut admin = support::admin(&url).await;

    // 60 callers at once, each a write and two reads, against a small pool. A caller waiting for a
    // connection must get one handed on by another caller, not wait for the pool's 30 s timeout.
    let callers: Vec<_> = (0..60)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let records = store.commit(text(i)).await?;
                let seq = records[0].seq;
                let read = store
                    .read_events(&EventQuery { after_seq: seq - 1, limit: Some(1), ..EventQuery::default() })
                    .await?;
                assert_eq!(read.len(), 1, "caller {i} reads back its event");
                assert!(store.last_seq().await? >= seq);
                Ok::<_, orch_core::store::StoreError>(seq)
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for c in callers {
        let done = tokio::time::timeout(Duration::from_secs(60), c).await;
        let seq = done.expect("a caller waited a minute for a connection").unwrap();
        seqs.push(seq.expect("every caller's write and reads succeed"));
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 60, "60 distinct events");
    assert_eq!(store.read_events(&EventQuery::default()).await.unwrap().len(), 60);

    let (open, in_tx) = backends(&mut admin, &app).await;
    assert!((1..=i64::from(size)).contains(&open), "the store holds {open} connections with a pool of {size}");
    assert_eq!(in_tx, 0, "no connection is left in a transaction");

    // Closing waits for every connection the store has, those handed from caller to caller included.
    tokio::time::timeout(Duration::from_secs(30), store.close()).await.expect("the store closes");
    let mut left = (0, 0);
    for _ in 0..100 {
        left = backends(&mut admin, &app).await;
        if left.0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left.0, 0, "connections still open after close");
    let after = store.commit(text(99)).await;
    assert!(after.is_err(), "a closed store refuses writes: {after:?}");
}
