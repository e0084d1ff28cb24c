//! orch on PostgreSQL: connect by URL, run an agent, and read its events back. Many processes and
//! machines can share the database. Without a server it says how to point it at one and exits 0.
//!
//! Run: `cargo run -p orch-examples --example postgres` (URL from `ORCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; the tables go in the schema `orch_example`).

use std::sync::Arc;

use orch_core::prelude::*;
use orch_store_postgres::{PgOptions, PgStore};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("ORCH_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_string());
    let options = PgOptions { schema: Some("orch_example".into()), pool_size: Some(2) };
    // Connects, creates the schema and applies the migrations (once, under an advisory lock).
    let store = match PgStore::connect_with(&url, options).await {
        Ok(s) => s,
        Err(e) => {
            println!("no PostgreSQL server answered at {url}: {e}");
            println!("start one, or set ORCH_DATABASE_URL=postgres://USER[:PASSWORD]@HOST[:PORT]/DB, and run again");
            return Ok(());
        }
    };
    println!("connected: {} (schema {})", store.location(), store.schema());
    let store: Arc<dyn Store> = Arc::new(store);

    let dir = tempfile::tempdir()?;
    let model = Arc::new(ScriptedModel::from_fn(|_| Ok("stored in PostgreSQL".into())));
    let runner = AgentRunner::builder(store.clone(), model).build();
    // A fresh name each run: agents stay in the database between runs.
    let name = format!("pg-example-{}", new_id());
    let agent = runner.ensure_agent(&name, "scripted", &dir.path().to_string_lossy()).await?;
    let outcome = runner.run(agent.id, "hello", RunOptions::default()).await?;
    println!("reply: {}", outcome.final_text.unwrap_or_default());

    let query = EventQuery { agent_id: Some(agent.id), ..EventQuery::default() };
    let events = store.read_events(&query).await?;
    println!(
        "{} events of {name} read back, the last: {}",
        events.len(),
        events.last().map(|r| r.event.kind()).unwrap_or("none")
    );
    Ok(())
}
