//! Shared by the PostgreSQL tests: the server to use, fresh schemas that are dropped afterwards.
//!
//! The server is `postgres://postgres@127.0.0.1:5432/test`, or `ORCH_TEST_PG_URL`. The tests that need it
//! are `#[ignore]`d (a plain `cargo test` lists them as ignored, not as passed); `scripts/test.sh` runs them
//! with `--ignored` when the server is reachable, and always under `CI=true`. Run that way, a test whose
//! server cannot be reached fails, saying so.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use orch_store_postgres::{PgOptions, PgStore};
use sqlx::{Connection, PgConnection};

/// The part of sqlx the tests use (the crate uses sqlx's driver crates without the `sqlx` facade).
#[allow(unused_imports)]
pub mod sqlx {
    pub use sqlx_core::connection::Connection;
    pub use sqlx_core::query::query;
    pub use sqlx_core::query_as::query_as;
    pub use sqlx_core::query_scalar::query_scalar;
    pub use sqlx_core::raw_sql::raw_sql;
    pub use sqlx_postgres::PgConnection;
}

/// The server the tests use.
pub fn url() -> String {
    std::env::var("ORCH_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// The URL of the server, checked to answer (probed once per test binary). Panics, naming the URL, when
/// it does not: the tests that call this are ignored unless asked for, and then must not pass without it.
pub fn server() -> String {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let url = url();
    let probe = PROBE.get_or_init(|| {
        let url = url.clone();
        blocking(async move {
            let conn = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await;
            match conn {
                Ok(Ok(c)) => {
                    let _ = c.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out after 10 s".to_string()),
            }
        })
    });
    if let Err(e) = probe {
        let shown = orch_store_postgres::redact_url(&url);
        panic!("PostgreSQL not reachable at {shown}: {e} (start it, or set ORCH_TEST_PG_URL)");
    }
    url
}

/// Runs a future to completion on a fresh single-threaded runtime in its own thread (usable from sync
/// code, from `Drop`, and from inside another runtime).
pub fn blocking<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
    })
    .join()
    .expect("helper thread panicked")
}

/// A new schema name, `orch_t_<uuid>`.
pub fn fresh_schema() -> String {
    format!("orch_t_{}", orch_core::wire::new_id().simple())
}

/// Drops its schema (`DROP SCHEMA … CASCADE`) when dropped.
pub struct SchemaGuard {
    pub url: String,
    pub schema: String,
}

impl SchemaGuard {
    pub fn new(url: &str, schema: &str) -> Self {
        Self { url: url.to_string(), schema: schema.to_string() }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        drop_schema(&self.url, &self.schema);
    }
}

/// Drops a schema and everything in it, retrying while other connections hold locks.
pub fn drop_schema(url: &str, schema: &str) {
    let (url, schema) = (url.to_string(), schema.to_string());
    let result = blocking(async move {
        let mut last_err = String::new();
        for _ in 0..5 {
            match PgConnection::connect(&url).await {
                Ok(mut c) => {
                    let _ = sqlx::query("SET lock_timeout = '5s'").execute(&mut c).await;
                    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    match sqlx::query(&sql).execute(&mut c).await {
                        Ok(_) => {
                            let _ = c.close().await;
                            return Ok(());
                        }
                        Err(e) => last_err = e.to_string(),
                    }
                }
                Err(e) => last_err = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last_err)
    });
    if let Err(e) = result {
        eprintln!("warning: could not drop test schema: {e}");
    }
}

/// A store in a fresh schema of the test server, and the guard that drops the schema.
pub async fn fresh_store(url: &str) -> (Arc<PgStore>, SchemaGuard) {
    let schema = fresh_schema();
    let guard = SchemaGuard::new(url, &schema);
    let store = PgStore::connect_with(url, PgOptions { schema: Some(schema), pool_size: Some(5) })
        .await
        .expect("connect to the test server");
    (Arc::new(store), guard)
}

/// A plain connection to the test server.
pub async fn admin(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect to the test server")
}

/// `url` with one more query parameter.
pub fn with_param(url: &str, param: &str) -> String {
    if url.contains('?') { format!("{url}&{param}") } else { format!("{url}?{param}") }
}
