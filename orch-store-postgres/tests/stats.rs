//! The planner's statistics of a schema's tasks are refreshed right after a graph of many tasks is
//! inserted, so that a worker's first claims and finished tasks are planned for a table that holds
//! them (not as scans of every pending task, until autovacuum gets to it a minute later); a few
//! tasks added to a graph cost no such refresh.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use orch_core::store::testkit::fixtures::wave_graph;
use orch_core::store::{Batch, Change, Store};
use orch_store_postgres::PgStore;
use support::sqlx;

/// The rows the planner believes `schema`'s table `table` holds (`pg_class.reltuples`: -1 before the
/// table was ever analyzed, 0 when it was empty then).
async fn planned_rows(url: &str, schema: &str, table: &str) -> f32 {
    let mut conn = support::admin(url).await;
    sqlx::query_scalar(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(schema)
    .bind(table)
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

async fn insert_graph(store: &PgStore, n: u64, waves: u64) {
    let (g, tasks) = wave_graph(n, waves);
    store
        .commit(Batch::new().change(Change::UpsertGraph(Box::new(g))).change(Change::InsertTasks(tasks)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL on 127.0.0.1:5432 (or ORCH_TEST_PG_URL); scripts/test.sh runs it with --ignored"]
async fn a_large_graph_refreshes_the_task_statistics_and_a_small_one_does_not() {
    let url = support::server();
    let (store, guard) = support::fresh_store(&url).await;
    let schema = guard.schema.clone();

    insert_graph(&store, 5, 1).await;
    let rows = planned_rows(&url, &schema, "tasks").await;
    assert!(rows < 1.0, "5 tasks are not worth analyzing the table for; the planner believes {rows} rows");

    insert_graph(&store, 150, 3).await;
    assert_eq!(planned_rows(&url, &schema, "tasks").await, 155.0, "both graphs' tasks, right after the commit");
    // The 150-task graph's edges: every task after the first wave depends on one of the wave before.
    assert_eq!(planned_rows(&url, &schema, "task_deps").await, 100.0, "and their dependency edges");
}
