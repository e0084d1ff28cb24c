//! Fresh PostgreSQL schemas for benchmarks that add a PostgreSQL run when `PG_URL` is set: each run
//! gets a schema of its own, dropped afterwards.
#![allow(dead_code)]

use std::sync::Arc;

use orch_core::store::Store;
use orch_store_postgres::{PgOptions, PgStore};

/// A store on a fresh schema (named after `tag` and this process) of the server at `url`, and the
/// schema's name.
pub async fn postgres(url: &str, tag: &str) -> (Arc<dyn Store>, String) {
    let schema = format!("orch_bench_{tag}_{}", std::process::id());
    let store = PgStore::connect_with(url, PgOptions { schema: Some(schema.clone()), pool_size: Some(16) })
        .await
        .unwrap_or_else(|e| panic!("PG_URL: {e}"));
    (Arc::new(store), schema)
}

/// Drops `schema` (with `psql`; a note when that fails).
pub async fn drop_schema(url: &str, schema: &str) {
    let status = std::process::Command::new("psql")
        .args([url, "-qc", &format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("note: could not drop the schema {schema} (psql missing?): drop it by hand");
    }
}
