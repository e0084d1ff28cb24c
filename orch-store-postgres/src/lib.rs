//! # orch-store-postgres
//!
//! The PostgreSQL [`Store`] for orch: many processes — on one machine or many — share one database, one
//! event log and one live stream. It passes the same conformance suite as the SQLite store
//! (`orch_core::store_conformance_tests!`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use orch_core::store::{EventQuery, Store};
//! use orch_store_postgres::PgStore;
//!
//! let store: Arc<dyn Store> = Arc::new(PgStore::connect("postgres://orch@db.internal/orch?pool_max=20").await?);
//! let events = store.read_events(&EventQuery::after(0)).await?;
//! # let _ = events; Ok(()) }
//! ```
//!
//! Built on sqlx (pure Rust driver, tokio, TLS through rustls). Statements are plain `sqlx::query` with
//! bound parameters; nothing needs a database at build time.
//!
//! ## URLs
//!
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or `postgresql://`). Every parameter sqlx
//! understands works: `sslmode=disable|prefer|require|verify-ca|verify-full`, `sslrootcert=PATH`,
//! `application_name=NAME` (default `orch`; it shows in `pg_stat_activity`, and the listening connection
//! gets `NAME listener`), `options=…` (libpq-style server settings), `host=/run/postgresql` for a Unix
//! socket, `password=…`. One parameter is orch's own and is removed before the URL reaches sqlx:
//! `pool_max=N`, the pool size. Passwords never appear in errors or logs: [`redact_url`] replaces them
//! with `***` wherever a message names the URL.
//!
//! Connecting waits at most 10 s. A refused connection, a failed password, a missing database each give
//! [`StoreError::Open`] with the redacted URL and PostgreSQL's own words ("connection refused by
//! 127.0.0.1:5432 …", "password authentication failed for user \"orch\"", "database \"x\" does not exist").
//!
//! ## Schema
//!
//! orch's tables live in one schema, so orch can share a database with other applications. The schema is,
//! first found wins:
//! 1. [`PgOptions::schema`];
//! 2. the first entry of `search_path` in the URL's `options`, e.g.
//!    `?options=-c%20search_path%3Dmyschema` (also `options[search_path]=myschema`);
//! 3. the environment variable `ORCH_PG_SCHEMA`;
//! 4. `orch`.
//!
//! Names are lowercase ASCII letters, digits and `_` (at most 63 bytes, not `pg_…`). The schema is created
//! if missing. Every statement names its tables with the schema (`"orch".events`); orch never relies on
//! nor changes the connection's `search_path`, so it also works behind poolers that drop startup options.
//!
//! ## Pool
//!
//! The pool size is, first found wins: [`PgOptions::pool_size`], the URL's `pool_max=N`, the environment
//! variable `ORCH_PG_POOL`, 10. Connections are opened on demand and checked before use when they sat
//! idle for 10 ms or more (one that was in use a moment ago is not: under load the check would cost
//! every operation a round trip), so a restarted server or a killed backend costs a reconnection rather
//! than an error (reads of the log are also retried if their connection dies mid-query). An operation
//! waits up to 30 s for a free connection; waiting operations get one in the order they asked. A
//! connection whose work ended cleanly (no error, no transaction left open) goes straight to the next
//! operation, without the test sqlx's pool makes of every connection given back to it (a round trip):
//! at 500 tasks/s this took about a quarter off the dispatch latencies (see `conns.rs`). Each store
//! also holds one listening connection once something subscribes.
//!
//! ## Migrations
//!
//! The schema is versioned: table `orch_schema_version` holds one row per applied migration (version, when,
//! by which process and backend). Migrations are embedded in the binary and applied by
//! [`PgStore::connect`] in one transaction that first takes `pg_advisory_xact_lock` with a key derived
//! from the schema name: ten processes starting at once on an empty database migrate it once, the others
//! wait for that transaction and find it done. A schema whose version is newer than this build
//! ([`SCHEMA_VERSION`]) gives [`StoreError::NewerSchema`] and nothing is written; a schema holding tables
//! but no version table (another application's) gives [`StoreError::Corrupt`], also untouched.
//!
//! ## The event log
//!
//! One row per event in `events` (keys as columns with one index each, payload as `json`: written and
//! read whole, never queried inside, so it is kept as the text serde wrote rather than parsed into
//! `jsonb`). `seq` is global, increasing and gap-free, and **commit order equals seq order**: seqs come
//! from a counter row (`event_seq`), raised inside the appending statement (`UPDATE event_seq SET last =
//! last + n RETURNING last`). Appenders queue on that row's lock, and each one's seqs become visible at
//! its commit, before the next appender gets the row. A reader that has seen everything up to `N` and
//! then reads `seq > N` therefore never misses an event committed later with a lower seq — which a plain
//! `SEQUENCE` would allow. A failed append rolls the counter back with it (no gap), and pruning never
//! lowers it (no seq is reused).
//!
//! An append is one statement — one round trip, one transaction: the counter update, an
//! `INSERT … SELECT … FROM UNNEST($3::uuid[], …, $10::text[])` of the whole batch, and
//! `pg_notify(channel, last_seq)`. An agent's step committed alone (a
//! [`StepCommit`](orch_core::store::StepCommit) as a batch) is one statement too: the agent's status,
//! usage (single increments), state and session, its conversation messages and its events, all or
//! nothing.
//!
//! Throughput (the crate's `append` benchmark, a local PostgreSQL 15, durable commits): about 60,000
//! events/s appending batches of 100 — 20× the seed's one-`INSERT`-per-event pattern — and about 0.45 ms
//! per single-event append. Because appenders take turns on the counter row, a schema's log accepts one
//! commit at a time whatever the number of processes: batch events where you can (an agent's
//! [`StepCommit`](orch_core::store::StepCommit) does, per step).
//!
//! ## Group commit
//!
//! The batches one store commits at the same time share transactions: a commit queues its batch, and a
//! writer takes everything queued and commits it in one transaction (batches of task graphs and budgets
//! have one writer, as their transactions lock the graphs' rows anyway; the others up to half the
//! pool's connections, 1 to 4), each caller still getting its own records, or its own error — a
//! failing batch is committed alone and the others again without it. A batch alone keeps its one-statement forms. So
//! under load the counter row is taken once per group, not once per caller, and a run of finished
//! tasks is written by one fenced statement ([`Change::FinishTask`](orch_core::store::Change)s of
//! distinct tasks, their dependents released, and their graphs' end checked once after the commit).
//! See `group.rs`.
//!
//! ## Live delivery across processes
//!
//! After an append commits, PostgreSQL delivers the notification (channel `orch_events_<schema>`, payload
//! the last seq) to every listening connection. [`Store::subscribe`] replays the stored events after
//! `since`, then follows the log ([`orch_core::store::follow_log`]): it reads pages of `seq > last` and,
//! when caught up, waits until a later seq is known. A later seq becomes known from this store's own
//! appends at once, from another process's through the store's listening connection (one task per store,
//! started by the first subscription), and — in case a notification is lost — from reading the counter
//! every 500 ms while anyone waits; a waiting follower also re-reads the log every 2 s on its own.
//!
//! [`Store::subscribe_foreign`] (workers watching for tasks made ready elsewhere, runners watching for
//! interrupt requests) reads only the matching events and wakes on what the listening connection
//! hears, at most every 10 ms, rather than on each of this process's own commits.
//!
//! A lost notification therefore costs latency, never an event: notifications only say "look again", and
//! what is delivered is always read from the log after the last seq delivered. The listening connection
//! reconnects by itself (backoff up to 5 s) when it is killed or the server restarts, and reads the counter
//! after each reconnection.
//!
//! ## Task queue
//!
//! Workers on any number of machines claim tasks with `FOR UPDATE SKIP LOCKED` (two claims never take
//! one task, and neither waits for the other); a finished task locks its pending dependents before
//! checking their dependencies, so two parents finishing at once in two transactions still release the
//! child exactly once. A finished task does not lock its graph's row (finishing processes would take
//! turns on it): the graph's end is checked after the commit, by a transaction of its own that locks
//! the row and looks again, so two last tasks finishing at once end the graph exactly once, and its
//! `GraphUpdated` record is returned with the commit that finished the task; a sweep after claims (at
//! most every 2 s per store, ending what two sweeps in a row found; or [`PgStore::end_finished_graphs`])
//! ends a graph whose check was lost with its process. A budget reservation locks its graph row and its `budget_spend` rows before
//! checking the limits, so concurrent reservers never pass one. The events these changes record
//! themselves (claimed and released tasks) are appended after the batch's own, in the same
//! transaction.
//!
//! ## JSON
//!
//! All JSON but event payloads (metadata, agent state, conversation messages, workflow data) is `jsonb`.
//! `jsonb` cannot hold the character U+0000; a document containing it (a tool result with a NUL byte) is
//! stored as `{"$orch_json": "<its JSON text>"}` and unwrapped on reading, so it still round-trips. Event
//! payloads are `json`, which holds the escape as written (those stored before schema 8 may still be
//! wrapped, and are unwrapped the same way).
//! Plain text columns (names, prompts, chat messages, log messages) cannot contain NUL either; such a value
//! is refused with [`StoreError::Backend`].
//!
//! ## Retention and status
//!
//! [`Store::prune_events`] deletes the events of archived agents older than a date; seqs are never reused
//! and followers skip the hole. [`Store::status`] reports `postgres`, the redacted URL, the
//! schema version, the number of events, the last seq (from the counter) and the size of the schema's
//! tables with their indexes and TOAST data.

/// The part of sqlx this crate uses. The driver crates are used without the `sqlx` facade (whose optional
/// SQLite driver conflicts with rusqlite's `libsqlite3-sys` at dependency resolution).
pub(crate) mod sqlx {
    pub use sqlx_core::connection::Connection;
    pub use sqlx_core::decode::Decode;
    pub use sqlx_core::error::Error;
    pub use sqlx_core::query::query;
    pub use sqlx_core::query_as::query_as;
    pub use sqlx_core::query_scalar::query_scalar;
    pub use sqlx_core::raw_sql::raw_sql;
    pub use sqlx_core::row::Row;
    pub use sqlx_core::types::Type;
    pub use sqlx_postgres::Postgres;

    /// The PostgreSQL driver.
    pub mod postgres {
        pub use sqlx_postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
    }
}

mod agent_runs;
mod batch;
mod budget_runs;
mod config;
mod conns;
mod ends;
mod events;
mod graphs;
mod group;
mod listen;
mod schema;
mod sql;
mod work;

use std::sync::Arc;

use async_trait::async_trait;
use orch_core::store::{
    AgentFilter, Batch, EventQuery, EventStream, KnownSeq, Store, StoreError, StoreResult, StoreStatus, SystemLogQuery,
    Wakeup, follow_log, follow_log_matching_known,
};
use orch_core::wire::{
    Agent, ChatMessage, EventRecord, Id, Message, Orchestrator, Plan, Prompt, SystemLog, Task, TaskGraph,
    WorkflowRecord,
};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPoolOptions};

pub use config::redact_url;
pub use schema::SCHEMA_VERSION;

use config::{CONNECT_TIMEOUT, Config};
use listen::{Live, WAIT_FALLBACK};
use sql::Db;

/// How long an operation waits for a pooled connection (all in use, or the server unreachable).
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The shortest pause between two reads of a follower of other processes' events
/// ([`Store::subscribe_foreign`]): a burst of commits is read once.
const FOREIGN_GAP: std::time::Duration = std::time::Duration::from_millis(10);

/// A pooled connection idle for this long is checked (pinged) before it is used again.
const CHECK_IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

/// Options of [`PgStore::connect_with`]; unset fields fall back to the URL, the environment and defaults
/// (see the [crate docs](crate)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgOptions {
    /// The schema holding orch's tables (default: the URL's `search_path`, `ORCH_PG_SCHEMA`, `orch`).
    pub schema: Option<String>,
    /// Connections in the pool (default: the URL's `pool_max`, `ORCH_PG_POOL`, 10).
    pub pool_size: Option<u32>,
}

/// A [`Store`] in a PostgreSQL schema. Cheap to clone: clones share the pool and the listener.
///
/// See the [crate docs](crate) for URLs, schema selection, migrations and the event log.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    /// The schema name (unquoted).
    schema: String,
    /// The URL without password.
    location: String,
    /// The NOTIFY channel of this schema.
    channel: String,
    /// Pool size.
    pool_size: u32,
    live: Live,
    /// Batches waiting to be committed (see [`group`]).
    queue: group::Queue,
    /// This store's sweeps for graphs whose end was not recorded (see [`ends`]).
    sweeps: std::sync::Mutex<ends::Sweeps>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.inner.location)
            .field("schema", &self.inner.schema)
            .field("pool_size", &self.inner.pool_size)
            .finish()
    }
}

/// The NOTIFY channel of a schema: `orch_events_<schema>`, or a hash of the schema if that would be
/// longer than PostgreSQL's 63-byte identifiers.
fn channel_name(schema: &str) -> String {
    let name = format!("orch_events_{schema}");
    if name.len() <= 63 { name } else { format!("orch_events_{:016x}", schema::lock_key(schema)) }
}

impl PgStore {
    /// A follower's wake-up on `seq` (the highest seq this store knows, or the one its listening
    /// connection heard): at once if a later seq is known, else on the next one, or after the
    /// fallback interval (the follower then simply reads again); then `gap`, if any, so a burst of
    /// commits is read once.
    fn wakeup(&self, seq: fn(&Live) -> &tokio::sync::watch::Sender<u64>, gap: Option<std::time::Duration>) -> Wakeup {
        self.inner.live.ensure_started();
        let inner = self.inner.clone();
        Arc::new(move |seen| {
            let inner = inner.clone();
            Box::pin(async move {
                inner.live.ensure_started();
                let mut rx = seq(&inner.live).subscribe();
                let _ = tokio::time::timeout(WAIT_FALLBACK, rx.wait_for(|&last| last > seen)).await;
                if let Some(gap) = gap {
                    tokio::time::sleep(gap).await;
                }
            })
        })
    }
    /// Connects to the database at `url`, creates or migrates orch's schema, and returns the store.
    ///
    /// Same as [`PgStore::connect_with`] with default [`PgOptions`].
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        Self::connect_with(url, PgOptions::default()).await
    }

    /// Connects with explicit options (schema, pool size), creates or migrates the schema, and returns the
    /// store.
    ///
    /// Errors: [`StoreError::Open`] when the URL is invalid or the server cannot be reached, refuses the
    /// credentials or has no such database (the message says which; the URL is redacted);
    /// [`StoreError::NewerSchema`] when a newer orch wrote the schema, [`StoreError::Corrupt`] when the
    /// schema holds another application's tables — in these two cases nothing is modified.
    pub async fn connect_with(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let cfg = Config::new(url, &options)?;
        // One direct connection first: its error is the precise one (a pool would retry until its timeout),
        // and it runs the migrations.
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&cfg.connect)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(cfg.connect_error(&e)),
            Err(_) => return Err(cfg.connect_error(&sqlx::Error::PoolTimedOut)),
        };
        schema::migrate(&mut conn, &cfg).await?;
        let last: i64 =
            sqlx::query_scalar(&format!("SELECT last FROM {}.event_seq WHERE id = 1", schema::quoted(&cfg.schema)))
                .fetch_one(&mut conn)
                .await
                .map_err(|e| cfg.open_error(format!("cannot read the seq counter: {e}")))?;
        let _ = conn.close().await;

        let pool = PgPoolOptions::new()
            .max_connections(cfg.pool_size)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection idle for a while is pinged before use: a killed backend or a restarted
            // server costs a reconnection, not a failed operation. One that was in use a moment ago is
            // not (the ping is a round trip, and under load every operation would pay it).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= CHECK_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(cfg.connect.clone());
        let db = Db { conns: Arc::new(conns::Conns::new(pool)), s: schema::quoted(&cfg.schema) };
        let app = cfg.connect.get_application_name().unwrap_or("orch").to_string();
        let listen_options = cfg.connect.clone().application_name(&format!("{app} listener"));
        let channel = channel_name(&cfg.schema);
        let live = Live::new(u64::try_from(last).unwrap_or(0), listen_options, channel.clone(), db.clone());
        Ok(PgStore {
            inner: Arc::new(Inner {
                db,
                schema: cfg.schema,
                location: cfg.location,
                channel,
                pool_size: cfg.pool_size,
                live,
                queue: group::Queue::new(writers(cfg.pool_size)),
                sweeps: std::sync::Mutex::default(),
            }),
        })
    }

    /// The URL, without password.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// The schema holding orch's tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Ends every running task graph that has tasks and none of them open: the end of a graph is
    /// checked after the commit that finished its last task, so a process that died between the two
    /// leaves it running. Stores sweep by themselves after claims of tasks, at most every 2 s, ending
    /// the graphs two sweeps in a row found so; this ends them now. Returns the `GraphUpdated`
    /// records of the graphs it ended.
    pub async fn end_finished_graphs(&self) -> StoreResult<Vec<EventRecord>> {
        let inner = self.inner.clone();
        let records = to_completion(async move {
            let mut conn = inner.db.conns.get().await.map_err(sql::db_err)?;
            let ended = ends::end_graphs(&inner.db, &mut conn, &inner.channel, None).await?;
            conn.done();
            Ok(ended)
        })
        .await?;
        if let Some(last) = records.last() {
            self.inner.live.raise(last.seq);
        }
        Ok(records)
    }

    /// Stops the listener and closes the pooled connections (waiting for those in use); the store (and its
    /// clones) cannot be used afterwards. Dropping the last clone closes everything without waiting.
    pub async fn close(&self) {
        self.inner.live.stop();
        self.inner.db.conns.close().await;
    }
}

/// How many transactions of grouped batches one store runs at once: half its pool (the rest serves
/// reads), from 1 to 4.
fn writers(pool_size: u32) -> usize {
    usize::try_from(pool_size / 2).unwrap_or(1).clamp(1, 4)
}

/// Runs a write on a task of its own and waits for it. A caller that stops waiting (its future dropped
/// by a `select!` or a timeout) then no longer cuts a transaction in the middle: the write commits or
/// rolls back as it would have, and its connection goes back to the pool clean, instead of sitting idle
/// in a transaction that holds row locks every other worker waits for.
async fn to_completion<T: Send + 'static>(
    write: impl std::future::Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    spawned("write", write).await
}

/// Runs a read on a task of its own and waits for it, so that it takes a pooled connection, uses it and
/// gives it back whether or not its caller polls it meanwhile. A read awaited inside a stream that its
/// consumer leaves unpolled (a worker's loop following the log while it waits for a claim's commit, a
/// WebSocket client's stream while the client is slow) would otherwise hold the connection it took, or
/// the pool's next free one, which the pool hands to waiters in turn, until the stream is polled again:
/// with a few such streams a small pool has no connection left for anyone, the commit the consumer
/// waits for included, and every caller fails after the pool's 30 s wait.
async fn detached<T: Send + 'static>(
    read: impl std::future::Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    spawned("read", read).await
}

/// Runs `work` (a `what`: write or read) on a runtime task of its own and waits for its result.
async fn spawned<T: Send + 'static>(
    what: &str,
    work: impl std::future::Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Backend(format!("a PostgreSQL {what} stopped before it ended: {e}"))),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn get_orchestrator(&self, id: Id) -> StoreResult<Option<Orchestrator>> {
        sql::get_orchestrator(&self.inner.db, id).await
    }

    async fn list_orchestrators(&self, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
        sql::list_orchestrators(&self.inner.db, include_archived).await
    }

    async fn get_agent(&self, id: Id) -> StoreResult<Option<Agent>> {
        sql::get_agent(&self.inner.db, id).await
    }

    async fn find_agent(&self, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>> {
        sql::find_agent(&self.inner.db, orchestrator_id, name).await
    }

    async fn list_agents(&self, filter: &AgentFilter) -> StoreResult<Vec<Agent>> {
        sql::list_agents(&self.inner.db, filter).await
    }

    async fn list_prompts(&self, agent_id: Id) -> StoreResult<Vec<Prompt>> {
        sql::list_prompts(&self.inner.db, agent_id).await
    }

    async fn list_chat(&self, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
        sql::list_chat(&self.inner.db, orchestrator_id, limit).await
    }

    async fn list_system_logs(&self, query: &SystemLogQuery) -> StoreResult<Vec<SystemLog>> {
        sql::list_system_logs(&self.inner.db, query).await
    }

    async fn get_workflow(&self, id: Id) -> StoreResult<Option<WorkflowRecord>> {
        sql::get_workflow(&self.inner.db, id).await
    }

    async fn list_workflows(&self, orchestrator_id: Option<Id>, limit: usize) -> StoreResult<Vec<WorkflowRecord>> {
        sql::list_workflows(&self.inner.db, orchestrator_id, limit).await
    }

    async fn get_plan(&self, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>> {
        graphs::get_plan(&self.inner.db, id, version).await
    }

    async fn list_plans(&self, limit: usize) -> StoreResult<Vec<Plan>> {
        graphs::list_plans(&self.inner.db, limit).await
    }

    async fn get_graph(&self, id: Id) -> StoreResult<Option<TaskGraph>> {
        graphs::get_graph(&self.inner.db, id).await
    }

    async fn list_graphs(&self, limit: usize) -> StoreResult<Vec<TaskGraph>> {
        graphs::list_graphs(&self.inner.db, limit).await
    }

    async fn get_task(&self, id: Id) -> StoreResult<Option<Task>> {
        graphs::get_task(&self.inner.db, id).await
    }

    async fn list_tasks(&self, graph_id: Id) -> StoreResult<Vec<Task>> {
        graphs::list_tasks(&self.inner.db, graph_id).await
    }

    async fn find_tasks(&self, graph_id: Id, names: &[String]) -> StoreResult<Vec<Task>> {
        graphs::find_tasks(&self.inner.db, graph_id, names).await
    }

    async fn graph_facts(&self, graph_id: Id) -> StoreResult<Vec<orch_core::wire::Fact>> {
        graphs::graph_facts(&self.inner.db, graph_id).await
    }

    async fn budget(&self, day: &str, month: &str) -> StoreResult<orch_core::wire::BudgetStatus> {
        work::budget(&self.inner.db, day, month).await
    }

    async fn list_workers(&self) -> StoreResult<Vec<orch_core::wire::WorkerInfo>> {
        work::list_workers(&self.inner.db).await
    }

    async fn commit(&self, batch: Batch) -> StoreResult<Vec<EventRecord>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let claims = batch.changes.iter().any(|c| matches!(c, orch_core::store::Change::ClaimTasks(_)));
        let result = group::commit(&self.inner, batch).await;
        if claims {
            ends::maybe_sweep(&self.inner);
        }
        result
    }

    async fn load_conversation(&self, agent_id: Id) -> StoreResult<Vec<Message>> {
        events::load_conversation(&self.inner.db, agent_id).await
    }

    async fn load_executor_state(&self, agent_id: Id) -> StoreResult<Option<serde_json::Value>> {
        sql::load_executor_state(&self.inner.db, agent_id).await
    }

    // The reads of the log run on tasks of their own (see `detached`): they are what followers of the
    // log (`subscribe`, `subscribe_foreign`) await inside their streams, which a consumer may leave
    // unpolled while it waits for something else.
    async fn read_events(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        let (inner, query) = (self.inner.clone(), query.clone());
        detached(async move { events::read_events(&inner.db, &query).await }).await
    }

    async fn last_seq(&self) -> StoreResult<u64> {
        let inner = self.inner.clone();
        detached(async move { events::last_seq(&inner.db).await }).await
    }

    async fn status(&self) -> StoreResult<StoreStatus> {
        let (events, last_seq, schema_version, size) = events::status(&self.inner.db, &self.inner.schema).await?;
        Ok(StoreStatus {
            backend: "postgres".into(),
            location: self.inner.location.clone(),
            schema_version,
            events,
            last_seq,
            size_bytes: Some(size),
        })
    }

    async fn prune_events(&self, before: orch_core::wire::Timestamp) -> StoreResult<u64> {
        let inner = self.inner.clone();
        to_completion(async move { events::prune_events(&inner.db, before).await }).await
    }

    fn subscribe(&self, since: u64) -> EventStream {
        follow_log(Arc::new(self.clone()), since, self.wakeup(|live| &live.last, None))
    }

    /// Reads only the matching events ([`follow_log_matching_known`], through the `type` index when
    /// the filter names types), and wakes on what the listening connection hears (notifications, the
    /// counter's poll), at most once per 10 ms: not on each of this store's commits, of which a busy
    /// process makes hundreds a second. A pass reads up to the seq it heard, without reading the
    /// counter first.
    fn subscribe_foreign(&self, since: u64, filter: EventQuery) -> EventStream {
        let inner = self.inner.clone();
        let heard: KnownSeq = Arc::new(move || *inner.live.heard.borrow());
        let wakeup = self.wakeup(|live| &live.heard, Some(FOREIGN_GAP));
        follow_log_matching_known(Arc::new(self.clone()), since, wakeup, filter, heard)
    }
}
