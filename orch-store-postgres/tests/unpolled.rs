//! A write whose caller stops waiting (its future dropped by a `select!` or a timeout, as a worker does
//! when it is cancelled) still ends as it would have, and leaves no connection idle in a transaction
//! holding row locks that every other worker would then wait for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::sqlx;

use std::time::Duration;

use orch_core::store::testkit::fixtures::graph;
use orch_core::store::{Batch, Change, Store};
use orch_core::wire::GraphStatus;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn a_write_dropped_while_it_waits_for_a_lock_still_ends_and_holds_nothing() {
    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let mut g = graph(None, 1);
    g.status = GraphStatus::Running;
    store.commit(Batch::new().change(Change::UpsertGraph(Box::new(g.clone())))).await.unwrap();

    // Another session holds the graph's row, so the pause below waits inside its transaction.
    let mut holder = support::admin(&url).await;
    sqlx::raw_sql(&format!("BEGIN; SELECT id FROM \"{}\".task_graphs WHERE id = '{}' FOR UPDATE", guard.schema, g.id))
        .execute(&mut holder)
        .await
        .unwrap();
    let pause = Batch::new().change(Change::SetGraphStatus {
        id: g.id,
        status: GraphStatus::Paused,
        error: None,
        from: vec![GraphStatus::Running],
    });
    let dropped = tokio::time::timeout(Duration::from_millis(300), store.commit(pause)).await;
    assert!(dropped.is_err(), "the pause waits for the held row: {dropped:?}");
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();

    // The dropped pause ends on its own once the row is free.
    let mut status = None;
    for _ in 0..200 {
        status = store.get_graph(g.id).await.unwrap().map(|g| g.status);
        if status == Some(GraphStatus::Paused) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, Some(GraphStatus::Paused), "the dropped write committed after all");

    // Nothing of ours is left idle in a transaction, and the next write on that row goes through.
    let idle: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state LIKE 'idle in transaction%' AND query LIKE '%' || $1 || '%'",
    )
    .bind(&guard.schema)
    .fetch_one(&mut holder)
    .await
    .unwrap();
    assert_eq!(idle, 0, "connections idle in a transaction on this schema");
    let resume = Batch::new().change(Change::SetGraphStatus {
        id: g.id,
        status: GraphStatus::Running,
        error: None,
        from: vec![GraphStatus::Paused],
    });
    let resumed = tokio::time::timeout(Duration::from_secs(30), store.commit(resume)).await;
    assert!(matches!(resumed, Ok(Ok(_))), "the next write on the row: {resumed:?}");
    holder.close().await.unwrap();
}
