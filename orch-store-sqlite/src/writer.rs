//! The single writer: a dedicated thread owning the writing connection. It drains every pending request
//! into one `BEGIN IMMEDIATE` transaction (each request in its own savepoint, so one failing request does
//! not undo the others), commits once, then answers them all. Concurrent appends therefore share one
//! commit — one sync — which is where throughput comes from.
//!
//! A transaction made only of relaxed requests ([`Durability::Relaxed`](orch_core::store::Durability),
//! run leases) commits with `synchronous = NORMAL`: in WAL mode it is visible at once and reaches the
//! disk with the next fully synced commit, whose sync covers the log before it.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use orch_core::store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

/// Most requests coalesced into one transaction.
const MAX_BATCH: usize = 1024;

/// Prepared statements the writer keeps: more than it uses in any workload (an agent step, a task's
/// claim and finish, graph and budget changes), so none is parsed again.
const STATEMENT_CACHE: usize = 128;

/// What a request's closure sees: the connection, inside the batch transaction, and the next free seq.
pub(crate) struct WriteCtx<'c> {
    /// The writing connection (a transaction is open).
    pub conn: &'c Connection,
    /// The seq the next appended event gets.
    pub next_seq: u64,
}

/// A queued request.
pub(crate) trait Job: Send {
    /// Runs inside the batch transaction; `false` if it failed (its savepoint is then rolled back).
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool;
    /// Answers the caller once the batch has committed (or failed).
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
    /// Whether the request may commit without a sync (see the module docs).
    fn relaxed(&self) -> bool;
}

struct Pending<T, F> {
    relaxed: bool,
    f: Option<F>,
    out: Option<StoreResult<T>>,
    tx: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool {
        let Some(f) = self.f.take() else { return false };
        let out = std::panic::catch_unwind(AssertUnwindSafe(|| f(ctx)))
            .unwrap_or_else(|_| Err(StoreError::Backend("a store operation panicked".into())));
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (self.out, commit) {
            (Some(Err(e)), _) => Err(e),
            (_, Err(e)) => Err(dup(e)),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(StoreError::Backend("the operation was not run".into())),
        };
        // The caller may have gone away (cancelled); the write stands regardless.
        let _ = self.tx.send(result);
    }

    fn relaxed(&self) -> bool {
        self.relaxed
    }
}

/// A copy of an error for every request of a failed batch: the same variant with the same message (a
/// failed commit, e.g. on a full disk, reads "store backend error: database or disk is full", once).
fn dup(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound { what } => StoreError::NotFound { what: what.clone() },
        StoreError::NameTaken { name } => StoreError::NameTaken { name: name.clone() },
        StoreError::NewerSchema { location, found, supported } => {
            StoreError::NewerSchema { location: location.clone(), found: *found, supported: *supported }
        }
        StoreError::Corrupt { location, message } => {
            StoreError::Corrupt { location: location.clone(), message: message.clone() }
        }
        StoreError::Open { location, message } => {
            StoreError::Open { location: location.clone(), message: message.clone() }
        }
        StoreError::RunConflict { agent_id, current } => {
            StoreError::RunConflict { agent_id: *agent_id, current: current.clone() }
        }
        StoreError::WorkflowRunConflict { workflow_id, current } => {
            StoreError::WorkflowRunConflict { workflow_id: *workflow_id, current: current.clone() }
        }
        StoreError::Duplicate { what } => StoreError::Duplicate { what: what.clone() },
        StoreError::Fenced { task_id, expected, found } => {
            StoreError::Fenced { task_id: *task_id, expected: *expected, found: *found }
        }
        StoreError::BudgetExhausted { scope, limit, spent, reserved, asked } => StoreError::BudgetExhausted {
            scope: scope.clone(),
            limit: *limit,
            spent: *spent,
            reserved: *reserved,
            asked: *asked,
        },
        StoreError::GraphEnded { id, status } => StoreError::GraphEnded { id: *id, status: status.clone() },
        StoreError::Decode(message) => StoreError::Decode(message.clone()),
        StoreError::Backend(message) => StoreError::Backend(message.clone()),
    }
}

pub(crate) type BoxJob = Box<dyn Job>;

/// Wraps a closure as a job and the receiver of its answer; `relaxed`: it may commit without a sync.
pub(crate) fn job<T, F>(f: F, relaxed: bool) -> (BoxJob, oneshot::Receiver<StoreResult<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    (Box::new(Pending { relaxed, f: Some(f), out: None, tx }), rx)
}

/// Maps an SQLite error to a store error.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Runs the writer loop until every sender is dropped. `last_seq` is raised after each commit that
/// appended events.
pub(crate) fn run(
    conn: Connection,
    rx: mpsc::Receiver<BoxJob>,
    last_seq: watch::Sender<u64>,
    commits: &std::sync::atomic::AtomicU64,
) {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The connection's own setting (FULL for files), restored after each relaxed transaction.
    let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap_or(2);
    while let Ok(first) = rx.recv() {
        let mut jobs = Vec::with_capacity(16);
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        run_batch_with(&conn, jobs, &last_seq, sync);
        commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// [`run_batch`] with `synchronous = NORMAL` when every job is relaxed and the connection's own
/// setting `sync` is stricter, restored afterwards.
fn run_batch_with(conn: &Connection, jobs: Vec<BoxJob>, last_seq: &watch::Sender<u64>, sync: i64) {
    let relaxed = sync > 1 && jobs.iter().all(|j| j.relaxed());
    if relaxed && let Err(e) = conn.pragma_update(None, "synchronous", 1) {
        tracing::debug!(error = %e, "could not relax a commit's durability; committing it fully");
    }
    run_batch(conn, jobs, last_seq);
    if relaxed && let Err(e) = conn.pragma_update(None, "synchronous", sync) {
        tracing::warn!(error = %e, "could not restore the writer's durability setting");
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(|_| ()).map_err(backend)
}

fn run_batch(conn: &Connection, jobs: Vec<BoxJob>, last_seq: &watch::Sender<u64>) {
    let mut jobs = std::collections::VecDeque::from(jobs);
    let mut done: Vec<BoxJob> = Vec::with_capacity(jobs.len());
    let outcome = (|| -> Result<u64, StoreError> {
        exec(conn, "BEGIN IMMEDIATE")?;
        let start = crate::sql::last_seq(conn)? + 1;
        let mut ctx = WriteCtx { conn, next_seq: start };
        while let Some(mut job) = jobs.pop_front() {
            let saved = ctx.next_seq;
            exec(conn, "SAVEPOINT job")?;
            let ok = job.run(&mut ctx);
            done.push(job);
            if !ok {
                // Undo this request only; its seqs are handed out again.
                exec(conn, "ROLLBACK TO job")?;
                ctx.next_seq = saved;
            }
            exec(conn, "RELEASE job")?;
        }
        if ctx.next_seq > start {
            crate::sql::set_last_seq(conn, ctx.next_seq - 1)?;
        }
        exec(conn, "COMMIT")?;
        Ok(ctx.next_seq - 1)
    })();
    match outcome {
        Ok(max) => {
            last_seq.send_if_modified(|v| {
                let raise = max > *v;
                if raise {
                    *v = max;
                }
                raise
            });
            for j in done {
                j.finish(Ok(()));
            }
        }
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            tracing::warn!(error = %e, "SQLite write batch failed");
            for j in done.into_iter().chain(jobs) {
                j.finish(Err(&e));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// A batch whose commit fails (here a deferred foreign key; on a full disk, "database or disk is
    /// full") answers every request with the commit's error, worded once.
    #[test]
    fn a_failed_commit_is_reported_with_one_prefix() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::configure_common(&conn).unwrap();
        crate::schema::migrate(&mut conn, ":memory:").unwrap();
        conn.execute_batch(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
             CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        let (job, mut rx) = job(
            |ctx| {
                ctx.conn.execute("INSERT INTO child VALUES (1)", []).map_err(backend)?;
                Ok(())
            },
            false,
        );
        let (last_seq, _) = watch::channel(0);
        run_batch(&conn, vec![job], &last_seq);
        let e = rx.try_recv().expect("answered").expect_err("the commit failed");
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        assert_eq!(e.to_string(), "store backend error: FOREIGN KEY constraint failed");
    }

    /// The writing connection of a new database file in `dir`, configured and migrated as the store's.
    fn writer_file(dir: &std::path::Path) -> Connection {
        let mut conn = Connection::open(dir.join("w.db")).unwrap();
        crate::schema::configure_writer_file(&conn, "w.db").unwrap();
        crate::schema::migrate(&mut conn, "w.db").unwrap();
        conn
    }

    /// A transaction of relaxed requests only commits with `synchronous = NORMAL` (no sync); any full
    /// request in it, and every transaction after it, commits with the connection's FULL.
    #[test]
    fn only_all_relaxed_transactions_skip_the_sync() {
        let dir = tempfile::tempdir().unwrap();
        let conn = writer_file(dir.path());
        let (last_seq, _) = watch::channel(0);
        let sync_in = |relaxed: bool| {
            job(
                |ctx| ctx.conn.pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0)).map_err(backend),
                relaxed,
            )
        };
        let mut seen = Vec::new();
        for relaxed in [true, false, true] {
            let (job, mut rx) = sync_in(relaxed);
            run_batch_with(&conn, vec![job], &last_seq, 2);
            seen.push(rx.try_recv().unwrap().unwrap());
        }
        assert_eq!(seen, [1, 2, 1], "relaxed alone: NORMAL (1); full: FULL (2)");
        let ((a, mut ra), (b, mut rb)) = (sync_in(true), sync_in(false));
        run_batch_with(&conn, vec![a, b], &last_seq, 2);
        assert_eq!([ra.try_recv().unwrap().unwrap(), rb.try_recv().unwrap().unwrap()], [2, 2], "one full job: FULL");
        let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "FULL is restored after a relaxed transaction");
    }

    /// Many requests, each in its savepoint, that change many pages in one transaction: their
    /// statement journal stays in memory (no temporary file holds the pages' copies), and a request
    /// that fails is still undone alone.
    #[test]
    fn savepoints_journal_in_memory_and_still_undo_one_request() {
        let dir = tempfile::tempdir().unwrap();
        let conn = writer_file(dir.path());
        let store: i64 = conn.pragma_query_value(None, "temp_store", |r| r.get(0)).unwrap();
        assert_eq!(store, 2, "temp_store = MEMORY");
        conn.execute_batch("CREATE TABLE filler (k INTEGER PRIMARY KEY, v TEXT)").unwrap();
        let (last_seq, _) = watch::channel(0);
        let mut jobs = Vec::new();
        let mut answers = Vec::new();
        for i in 0..64_i64 {
            let (j, rx) = job(
                move |ctx| {
                    // About 64 KiB per request: far past the 64 KiB a file journal would spill at.
                    let v = "x".repeat(1024);
                    for k in 0..64 {
                        ctx.conn
                            .execute("INSERT INTO filler (k, v) VALUES (?1, ?2)", rusqlite::params![i * 64 + k, v])
                            .map_err(backend)?;
                    }
                    if i == 10 { Err(StoreError::Backend("request 10 fails".into())) } else { Ok(()) }
                },
                false,
            );
            jobs.push(j);
            answers.push(rx);
        }
        run_batch(&conn, jobs, &last_seq);
        let failed: Vec<usize> =
            answers.iter_mut().enumerate().filter_map(|(i, rx)| rx.try_recv().unwrap().is_err().then_some(i)).collect();
        assert_eq!(failed, [10], "only the failing request failed");
        let rows: i64 = conn.query_row("SELECT count(*) FROM filler", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 63 * 64, "the failing request's rows were undone, the others' kept");
        let none: i64 =
            conn.query_row("SELECT count(*) FROM filler WHERE k BETWEEN 640 AND 703", [], |r| r.get(0)).unwrap();
        assert_eq!(none, 0);
    }
}
