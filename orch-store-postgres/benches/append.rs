//! Event-log benchmarks of the PostgreSQL store, against baselines measured in the same run.
//!
//! `cargo bench -p orch-store-postgres --bench append` (server: `ORCH_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `ORCH_BENCH_N` changes the event count, default 100,000).
//!
//! (a) Append throughput, 100-event batches, one task: PostgreSQL, and SQLite (`orch-store-sqlite`, WAL,
//!     `synchronous = FULL`) in the same run, against the seed's pattern on PostgreSQL — the seed's
//!     `agent_logs` table (UUID key, its ten indexes, its foreign key) and one `INSERT` per event, each its
//!     own round trip and autocommit transaction, on a smaller N. Also single-event appends, sequential and
//!     from 8 concurrent tasks. Every commit is durable (`synchronous_commit = on`, the default).
//! (b) Follower latency across processes: a child process appends one event every 5 ms (1,000 events, each
//!     carrying its send time); this process follows with `subscribe` and records receive − send.
//!
//! Schemas are created fresh (`orch_bench_…`) and dropped at the end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use orch_core::store::Store;
use orch_core::wire::{Event, EventKeys, NewEvent, new_id};
use orch_store_postgres::{PgOptions, PgStore};
use sqlx::{Connection, PgConnection};

/// The part of sqlx this benchmark uses (the crate uses sqlx's driver crates without the `sqlx` facade).
pub mod sqlx {
    pub use sqlx_core::connection::Connection;
    pub use sqlx_core::query::query;
    pub use sqlx_core::query_as::query_as;
    pub use sqlx_core::query_scalar::query_scalar;
    pub use sqlx_core::raw_sql::raw_sql;
    pub use sqlx_postgres::PgConnection;
}

const CHILD_ENV: &str = "ORCH_PG_BENCH_CHILD";
const LATENCY_EVENTS: u64 = 1000;
const LATENCY_INTERVAL: Duration = Duration::from_millis(5);

fn url() -> String {
    std::env::var("ORCH_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn event(keys: &EventKeys, i: u64) -> NewEvent {
    NewEvent::new(
        keys.clone(),
        Event::PreToolUse {
            tool_name: "Write".into(),
            tool_input: serde_json::json!({"file_path": format!("src/file_{i}.rs"), "content": "fn main() {}\n"}),
            tool_use_id: format!("toolu_{i:08}"),
        },
    )
}

fn keys() -> EventKeys {
    EventKeys {
        agent_id: Some(new_id()),
        orchestrator_id: Some(new_id()),
        workflow_id: None,
        step: None,
        task_slug: Some("bench".into()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn unix_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

struct Schemas {
    url: String,
    names: Vec<String>,
}

impl Schemas {
    fn fresh(&mut self) -> String {
        let name = format!("orch_bench_{}", new_id().simple());
        self.names.push(name.clone());
        name
    }

    async fn drop_all(&self) {
        let mut c = PgConnection::connect(&self.url).await.unwrap();
        for n in &self.names {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{n}\" CASCADE")).execute(&mut c).await.unwrap();
        }
    }
}

async fn pg_store(url: &str, schema: &str) -> Arc<PgStore> {
    Arc::new(
        PgStore::connect_with(url, PgOptions { schema: Some(schema.to_string()), pool_size: Some(10) }).await.unwrap(),
    )
}

async fn batched(store: &dyn Store, n: u64, batch: u64) -> Duration {
    let k = keys();
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let m = batch.min(n - i);
        store.append((i..i + m).map(|j| event(&k, j)).collect()).await.unwrap();
        i += m;
    }
    start.elapsed()
}

async fn concurrent(store: Arc<dyn Store>, n: u64, tasks: u64) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let k = keys();
                let per = n / tasks + u64::from(t < n % tasks);
                for j in 0..per {
                    store.append(vec![event(&k, j)]).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    start.elapsed()
}

/// The seed's pattern: its `agent_logs` table and indexes (migrations 3, 5, 9), one INSERT per event, one
/// round trip and one autocommit transaction each.
async fn seed_pattern(url: &str, schema: &str, n: u64) -> Duration {
    let mut c = PgConnection::connect(url).await.unwrap();
    let s = format!("\"{schema}\"");
    let ddl = format!(
        "CREATE SCHEMA {s};
        CREATE TABLE {s}.agents (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL);
        CREATE TABLE {s}.agent_logs (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            agent_id uuid NOT NULL REFERENCES {s}.agents(id) ON DELETE CASCADE,
            session_id text, task_slug text, adw_id text, adw_step text, entry_index integer,
            event_category text NOT NULL CHECK (event_category IN ('hook', 'response', 'adw_step')),
            event_type text NOT NULL, content text, payload jsonb DEFAULT '{{}}', summary text,
            timestamp timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON {s}.agent_logs (agent_id);
        CREATE INDEX ON {s}.agent_logs (task_slug) WHERE task_slug IS NOT NULL;
        CREATE INDEX ON {s}.agent_logs (adw_id) WHERE adw_id IS NOT NULL;
        CREATE INDEX ON {s}.agent_logs (adw_step) WHERE adw_step IS NOT NULL;
        CREATE INDEX ON {s}.agent_logs (task_slug, entry_index) WHERE task_slug IS NOT NULL;
        CREATE INDEX ON {s}.agent_logs (event_category);
        CREATE INDEX ON {s}.agent_logs (event_type);
        CREATE INDEX ON {s}.agent_logs (event_category, event_type);
        CREATE INDEX ON {s}.agent_logs (timestamp DESC);
        CREATE INDEX ON {s}.agent_logs (session_id) WHERE session_id IS NOT NULL;"
    );
    sqlx::raw_sql(&ddl).execute(&mut c).await.unwrap();
    let agent: uuid::Uuid = sqlx::query_scalar(&format!("INSERT INTO {s}.agents (name) VALUES ('bench') RETURNING id"))
        .fetch_one(&mut c)
        .await
        .unwrap();
    let insert = format!(
        "INSERT INTO {s}.agent_logs (agent_id, session_id, task_slug, entry_index, event_category, event_type, \
         content, payload, summary) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)"
    );
    let k = keys();
    let start = Instant::now();
    for i in 0..n {
        let e = event(&k, i);
        sqlx::query(&insert.clone())
            .bind(agent)
            .bind("session")
            .bind(&e.keys.task_slug)
            .bind(i as i32)
            .bind("hook")
            .bind(e.event.kind())
            .bind(e.event.summary())
            .bind(serde_json::to_string(&e.event).unwrap())
            .bind(e.event.summary())
            .execute(&mut c)
            .await
            .unwrap();
    }
    start.elapsed()
}

/// (b) The child: appends one event every 5 ms, each carrying its send time in microseconds.
async fn latency_child(url: &str, schema: &str) {
    let store = pg_store(url, schema).await;
    let mut tick = tokio::time::interval(LATENCY_INTERVAL);
    for _ in 0..LATENCY_EVENTS {
        tick.tick().await;
        let sent = unix_micros().to_string();
        store.append(vec![NewEvent::new(EventKeys::default(), Event::Text { text: sent })]).await.unwrap();
    }
}

async fn follower_latency(url: &str, schema: &str) -> Vec<f64> {
    let store = pg_store(url, schema).await;
    let mut sub = store.subscribe(0);
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "latency")
        .env("ORCH_PG_BENCH_URL", url)
        .env("ORCH_PG_BENCH_SCHEMA", schema)
        .spawn()
        .unwrap();
    let mut lat = Vec::with_capacity(LATENCY_EVENTS as usize);
    while (lat.len() as u64) < LATENCY_EVENTS {
        let r = tokio::time::timeout(Duration::from_secs(30), sub.next()).await.unwrap().unwrap().unwrap();
        let now = unix_micros();
        let Event::Text { text } = &r.event else { panic!("unexpected event") };
        let sent: u128 = text.parse().unwrap();
        lat.push(now.saturating_sub(sent) as f64 / 1000.0);
    }
    assert!(child.wait().await.unwrap().success(), "the appending child failed");
    lat
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var(CHILD_ENV).is_ok() {
        let url = std::env::var("ORCH_PG_BENCH_URL").unwrap();
        let schema = std::env::var("ORCH_PG_BENCH_SCHEMA").unwrap();
        rt.block_on(latency_child(&url, &schema));
        return;
    }
    let url = url();
    let reachable = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    });
    if let Err(e) = reachable {
        println!("skipped: PostgreSQL not reachable at {}: {e}", orch_store_postgres::redact_url(&url));
        return;
    }
    let n: u64 = std::env::var("ORCH_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let seed_n = (n / 20).max(100);
    let single_n = (n / 20).max(100);
    let runs = 3;
    let mut schemas = Schemas { url: url.clone(), names: Vec::new() };
    let total = Instant::now();

    println!("(a) append throughput (median of {runs} runs; durable commits)");
    let seed = median(
        (0..runs)
            .map(|_| {
                let schema = schemas.fresh();
                rate(seed_n, rt.block_on(seed_pattern(&url, &schema, seed_n)))
            })
            .collect(),
    );
    println!(
        "  seed pattern  PostgreSQL {seed_n:>7} events, 1 INSERT per round trip, autocommit {seed:>10.0} events/s   1.0x"
    );

    let pg = median(
        (0..runs)
            .map(|_| {
                let schema = schemas.fresh();
                rt.block_on(async {
                    let store = pg_store(&url, &schema).await;
                    let d = batched(store.as_ref(), n, 100).await;
                    assert_eq!(store.last_seq().await.unwrap(), n);
                    rate(n, d)
                })
            })
            .collect(),
    );
    println!(
        "  orch batched  PostgreSQL {n:>7} events, batches of 100                  {pg:>10.0} events/s {:>5.1}x",
        pg / seed
    );

    let sqlite = median(
        (0..runs)
            .map(|_| {
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
                let store = orch_store_sqlite::SqliteStore::open(dir.path().join("bench.db")).unwrap();
                rate(n, rt.block_on(batched(&store, n, 100)))
            })
            .collect(),
    );
    println!(
        "  orch batched  SQLite     {n:>7} events, batches of 100                  {sqlite:>10.0} events/s {:>5.1}x",
        sqlite / seed
    );

    let single = median(
        (0..runs)
            .map(|_| {
                let schema = schemas.fresh();
                rt.block_on(async {
                    let store = pg_store(&url, &schema).await;
                    rate(single_n, batched(store.as_ref(), single_n, 1).await)
                })
            })
            .collect(),
    );
    println!(
        "  orch single   PostgreSQL {single_n:>7} events, 1 per append, 1 task          {single:>10.0} events/s {:>5.1}x",
        single / seed
    );

    let conc_n = single_n * 2;
    let conc = median(
        (0..runs)
            .map(|_| {
                let schema = schemas.fresh();
                rt.block_on(async {
                    let store = pg_store(&url, &schema).await;
                    let d = concurrent(store.clone(), conc_n, 8).await;
                    assert_eq!(store.last_seq().await.unwrap(), conc_n);
                    rate(conc_n, d)
                })
            })
            .collect(),
    );
    println!(
        "  orch single   PostgreSQL {conc_n:>7} events, 1 per append, 8 tasks         {conc:>10.0} events/s {:>5.1}x",
        conc / seed
    );
    println!("  PostgreSQL batched / SQLite batched: {:.2}", pg / sqlite);

    println!(
        "(b) follower latency across processes: append commit -> subscriber sees it ({LATENCY_EVENTS} events, one per {} ms)",
        LATENCY_INTERVAL.as_millis()
    );
    let schema = schemas.fresh();
    let mut lat = rt.block_on(follower_latency(&url, &schema));
    lat.sort_by(f64::total_cmp);
    println!(
        "  p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );

    rt.block_on(schemas.drop_all());
    println!("total {:.1} s", total.elapsed().as_secs_f64());
}
