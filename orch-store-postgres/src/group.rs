//! Group commit: the batches this process commits at the same time share transactions.
//!
//! [`Store::commit`](orch_core::store::Store::commit) queues its batch and waits for its answer. A
//! queued batch finds a writer of its lane running, or starts one (each on a runtime task of its own);
//! a writer takes everything queued in its lane (up to [`MAX_GROUP`] batches) and commits
//! it in one transaction, then takes what was queued meanwhile, until the queue is empty. Under load a
//! commit therefore carries many callers' work, and the one event counter row, which every commit of
//! the schema updates and holds until it ends, is taken once per group instead of once per caller.
//!
//! Batches that touch task graphs (their rows, finished tasks and the dependents they release,
//! budgets) and those that do not (agents, the log, claims, heartbeats, attempts' starts: see
//! [`crate::batch::touches_graphs`]) queue in two lanes: a group touching graphs locks their rows for
//! its whole transaction (see below), which the others need not wait for, and one writer serves the
//! graph lane (a second would only wait for the first's lock; with one, what arrives meanwhile joins
//! the next group). Batches that were committed concurrently thus get seqs in no particular order among
//! themselves, as they would have with one transaction each.
//!
//! Within a group touching graphs, batches adding one task each (`AddTask`: their graphs' rows grown
//! and the tasks inserted by one statement each, their positions handed out in the group's order), of
//! one budget reservation, of a model call's step with its
//! settlement (or a settlement alone, or a turn's first step with its first call's reservation) and of
//! one finished task are put together (in that order, after the others), and the steps' changes are
//! applied before all their settlements, and those before their reservations (see
//! [`crate::batch::group_changes`]), so that each kind is applied as one run of a few statements (see
//! [`crate::batch::apply_all`]) and the graph's hot row is written once per run rather than once per
//! batch. Within a group of the other lane, run-lease swaps and agent steps are put together likewise
//! (agents' rows, conversations and prompts written by one statement each per run, not per batch).
//!
//! A group keeps each batch's guarantees:
//! - every batch is applied in order, and each gets its own records back, its events with consecutive
//!   seqs (the group's events are appended in one statement, batch after batch);
//! - one batch's failure fails no other: the transaction is rolled back, the failed batch is committed
//!   alone (its caller gets what that gives) and the others are committed again as a group without it;
//! - a transaction of several batches first locks the rows of every graph any of them touches (sorted;
//!   finished tasks, which come last, lock none), so the lock order stays graphs, tasks, `budget_spend`
//!   rows, the counter;
//! - after the commit, the graphs whose tasks the group finished are checked for their end once
//!   ([`crate::ends`]); an ended graph's records go to the last batch that finished one of its tasks;
//! - a group of [relaxed](orch_core::store::Durability::Relaxed) batches only (claims, heartbeats, run
//!   leases) commits without waiting for the disk; one durable batch makes the group durable;
//! - a write whose caller stopped waiting still runs to its end: the writer owns it, not the caller;
//! - a failed commit is reported to every caller of the group and retried for none (it may have
//!   committed); a failure before the commit (a lost connection) commits each batch alone.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use orch_core::store::{Batch, Durability, StoreError, StoreResult};
use orch_core::wire::{EventRecord, NewEvent};
use tokio::sync::oneshot;

use crate::Inner;
use crate::batch::{self, apply_all, graphs_touched};
use crate::events;
use crate::sql::{Db, db_err};
use crate::work;

/// Most batches in one transaction.
pub(crate) const MAX_GROUP: usize = 256;

/// A queued batch (already [projected](Batch::projected)) and where its answer goes.
struct Job {
    batch: Batch,
    reply: Reply,
    /// When it was queued.
    queued: std::time::Instant,
}

/// The two lanes of the queue: batches that touch task graphs, and the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Agents, the log, claims, heartbeats, attempts' starts: up to [`Queue::writers`] writers.
    Other = 0,
    /// Task graphs and budgets: one writer. Its groups lock graph rows for their whole transaction, so
    /// a second writer would only wait for the first; with one, what arrives meanwhile waits in the
    /// queue and joins the next group.
    Graph = 1,
}

impl Lane {
    fn of(batch: &Batch) -> Self {
        if batch::touches_graphs(batch) { Lane::Graph } else { Lane::Other }
    }
}

/// The batches waiting for a writer, per lane.
pub(crate) struct Queue {
    state: Mutex<State>,
    /// Most writers of the other lane at once (each holds one pooled connection while it commits).
    writers: usize,
}

#[derive(Default)]
struct State {
    jobs: [VecDeque<Job>; 2],
    running: [usize; 2],
}

impl Queue {
    /// A queue with at most `writers` writers (at least one) for batches that touch no graph.
    pub(crate) fn new(writers: usize) -> Self {
        Self { state: Mutex::new(State::default()), writers: writers.max(1) }
    }

    fn limit(&self, lane: Lane) -> usize {
        match lane {
            Lane::Other => self.writers,
            Lane::Graph => 1,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A writer that panicked while holding the lock left the queue consistent (pushes and pops only).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Queues a batch and waits for its answer.
pub(crate) async fn commit(inner: &Arc<Inner>, batch: Batch) -> StoreResult<Vec<EventRecord>> {
    let (reply, answer) = oneshot::channel();
    let batch = batch.projected();
    let lane = Lane::of(&batch);
    let start = {
        let mut q = inner.queue.lock();
        q.jobs[lane as usize].push_back(Job { batch, reply, queued: std::time::Instant::now() });
        let start = q.running[lane as usize] < inner.queue.limit(lane);
        if start {
            q.running[lane as usize] += 1;
        }
        start
    };
    if start {
        spawn_writer(inner.clone(), lane);
    }
    answer.await.unwrap_or_else(|_| Err(StoreError::Backend("a PostgreSQL write stopped before it ended".into())))
}

fn spawn_writer(inner: Arc<Inner>, lane: Lane) {
    tokio::spawn(async move {
        let mut guard = Running { inner: inner.clone(), lane, done: false };
        loop {
            let mut jobs: Vec<Job> = {
                let mut q = inner.queue.lock();
                let queued = &mut q.jobs[lane as usize];
                if queued.is_empty() {
                    q.running[lane as usize] -= 1;
                    guard.done = true;
                    return;
                }
                let n = queued.len().min(MAX_GROUP);
                queued.drain(..n).collect()
            };
            // Reservations, settlements and finished tasks together, or run-lease swaps and agent
            // steps: each kind applied as one run.
            jobs.sort_by_key(|j| batch::run_rank(&j.batch));
            let (size, started) = (jobs.len(), std::time::Instant::now());
            let waited = jobs.iter().map(|j| started - j.queued).max().unwrap_or_default();
            run(&inner, jobs).await;
            tracing::trace!(
                lane = ?lane,
                batches = size,
                waited_ms = waited.as_secs_f64() * 1e3,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "group committed"
            );
        }
    });
}

/// Counts a writer out if it ends without emptying its lane (it panicked): a new one takes over what
/// is queued.
struct Running {
    inner: Arc<Inner>,
    lane: Lane,
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let i = self.lane as usize;
        let restart = {
            let mut q = self.inner.queue.lock();
            if q.jobs[i].is_empty() {
                q.running[i] -= 1;
                false
            } else {
                true
            }
        };
        if restart && tokio::runtime::Handle::try_current().is_ok() {
            spawn_writer(self.inner.clone(), self.lane);
        } else if restart {
            self.inner.queue.lock().running[i] -= 1;
        }
    }
}

/// Commits the jobs, as one group when there are several, and answers each.
async fn run(inner: &Inner, mut jobs: Vec<Job>) {
    loop {
        if jobs.len() == 1 {
            if let Some(job) = jobs.pop() {
                let result = batch::commit_projected(&inner.db, &inner.channel, job.batch).await;
                answer(inner, job.reply, result);
            }
            return;
        }
        if jobs.is_empty() {
            return;
        }
        let batches: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
        match commit_group(&inner.db, &inner.channel, &batches).await {
            Ok(records) => {
                for (job, records) in jobs.into_iter().zip(records) {
                    answer(inner, job.reply, Ok(records));
                }
                return;
            }
            Err(GroupError::Batch(i, e)) => {
                // Rolled back: the failing batch alone (it may succeed there, after the others failed
                // to be committed with it), then the others again.
                tracing::debug!(error = %e, size = jobs.len(), "a batch of a group failed; committing it alone");
                let job = jobs.remove(i);
                let result = batch::commit_projected(&inner.db, &inner.channel, job.batch).await;
                answer(inner, job.reply, result);
            }
            Err(GroupError::BeforeCommit(e)) => {
                tracing::debug!(error = %e, size = jobs.len(), "a group failed before its commit; committing each alone");
                for job in jobs {
                    let result = batch::commit_projected(&inner.db, &inner.channel, job.batch).await;
                    answer(inner, job.reply, result);
                }
                return;
            }
            Err(GroupError::Commit(e)) => {
                let message = e.to_string();
                for job in jobs {
                    answer(inner, job.reply, Err(StoreError::Backend(message.clone())));
                }
                return;
            }
        }
    }
}

type Reply = oneshot::Sender<StoreResult<Vec<EventRecord>>>;

fn answer(inner: &Inner, reply: Reply, result: StoreResult<Vec<EventRecord>>) {
    if let Ok(records) = &result
        && let Some(last) = records.last()
    {
        inner.live.raise(last.seq);
    }
    // The caller may have stopped waiting; the write stands regardless.
    let _ = reply.send(result);
}

/// Why a group was not committed.
enum GroupError {
    /// Batch `i` failed (the transaction was rolled back).
    Batch(usize, StoreError),
    /// The transaction failed outside any batch, before its commit (it was rolled back).
    BeforeCommit(StoreError),
    /// The commit itself failed: it may or may not have been applied.
    Commit(StoreError),
}

/// Applies the batches in order in one transaction, appends all their events in one statement and
/// commits; returns each batch's records.
async fn commit_group(db: &Db, channel: &str, batches: &[&Batch]) -> Result<Vec<Vec<EventRecord>>, GroupError> {
    let before = GroupError::BeforeCommit;
    let relaxed = batches.iter().all(|b| b.durability == Durability::Relaxed);
    let mut phases = Phases::start();
    let mut conn = db.conns.get().await.map_err(|e| before(db_err(e)))?;
    phases.mark(Phase::Acquire);
    let mut tx = batch::begin_on(&mut conn, relaxed).await.map_err(|e| before(db_err(e)))?;
    phases.mark(Phase::Begin);
    let applied = async {
        let graphs = graphs_touched(batches.iter().flat_map(|b| b.changes.iter()));
        work::lock_graphs(db, &mut tx, &graphs).await.map_err(before)?;
        phases.mark(Phase::Lock);
        let changes = batch::group_changes(batches);
        let mut generated: Vec<Vec<NewEvent>> = vec![Vec::new(); batches.len()];
        apply_all(db, &mut tx, &changes, &mut generated).await.map_err(|(i, e)| GroupError::Batch(i, e))?;
        phases.mark(Phase::Apply);
        // Each batch's events: its own, then those its changes recorded themselves.
        let mut counts = Vec::with_capacity(batches.len());
        let mut all: Vec<NewEvent> = Vec::new();
        for (b, generated) in batches.iter().zip(generated) {
            counts.push(b.events.len() + generated.len());
            all.extend(b.events.iter().cloned());
            all.extend(generated);
        }
        let prepared = events::Batch::new(all).map_err(before)?;
        let records = events::append(db, &mut *tx, channel, prepared).await.map_err(before)?;
        phases.mark(Phase::Append);
        Ok((counts, records))
    }
    .await;
    let (counts, records) = match applied {
        Ok(applied) => applied,
        Err(e) => {
            // Rolled back before anyone hears of the failure (see `batch::commit_projected`).
            let _ = tx.rollback().await;
            return Err(e);
        }
    };
    tx.commit().await.map_err(|e| GroupError::Commit(db_err(e)))?;
    phases.mark(Phase::Commit);
    let mut records = records.into_iter();
    let mut records: Vec<Vec<EventRecord>> = counts.into_iter().map(|n| records.by_ref().take(n).collect()).collect();
    // The end of the graphs whose tasks the group finished (and fresh statistics after a graph was
    // inserted), on the same connection.
    let changes = batches.iter().flat_map(|b| b.changes.iter());
    let ended = crate::ends::after_commit(db, &mut conn, channel, changes).await;
    crate::ends::distribute(ended, batches.iter().copied(), &mut records);
    phases.mark(Phase::After);
    phases.report(batches.len());
    conn.done();
    Ok(records)
}

/// The steps of a group's transaction, timed for `TRACE` logs.
#[derive(Clone, Copy)]
enum Phase {
    /// Waiting for a pooled connection.
    Acquire,
    /// `BEGIN`.
    Begin,
    /// Locking the graphs' rows.
    Lock,
    /// Applying the changes.
    Apply,
    /// Appending the events (which waits for the event counter row).
    Append,
    /// `COMMIT`.
    Commit,
    /// After the commit: graphs' ends, statistics.
    After,
}

/// How long each [`Phase`] of a group took, reported at `TRACE` level (`RUST_LOG=orch_store_postgres::group=trace`),
/// with the wall-clock times (µs since the Unix epoch) at which its append began and its commit ended:
/// the span in which the group held the event counter row, once the group before it had committed
/// (`scripts/group-trace.py` adds those spans up).
struct Phases {
    last: std::time::Instant,
    ms: [f64; 7],
    append_at_us: u64,
    commit_at_us: u64,
}

impl Phases {
    fn start() -> Self {
        Self { last: std::time::Instant::now(), ms: [0.0; 7], append_at_us: 0, commit_at_us: 0 }
    }

    fn mark(&mut self, phase: Phase) {
        let now = std::time::Instant::now();
        self.ms[phase as usize] += (now - self.last).as_secs_f64() * 1e3;
        self.last = now;
        match phase {
            // The apply phase ends where the append begins.
            Phase::Apply => self.append_at_us = epoch_us(),
            Phase::Commit => self.commit_at_us = epoch_us(),
            _ => {}
        }
    }

    fn report(&self, batches: usize) {
        let [acquire, begin, lock, apply, append, commit, after] = self.ms;
        let (append_at_us, commit_at_us) = (self.append_at_us, self.commit_at_us);
        tracing::trace!(
            batches,
            acquire,
            begin,
            lock,
            apply,
            append,
            commit,
            after,
            append_at_us,
            commit_at_us,
            "group phases (ms)"
        );
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
fn epoch_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
