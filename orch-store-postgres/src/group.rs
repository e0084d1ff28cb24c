//! Group commit: the batches this process commits at the same time share transactions.
//!
//! [`Store::commit`](orch_core::store::Store::commit) queues its batch and waits for its answer. A
//! queued batch finds a writer running, or starts one (at most [`Queue::writers`] at once, each on a
//! runtime task of its own); a writer takes everything queued (up to [`MAX_GROUP`] batches) and commits
//! it in one transaction, then takes what was queued meanwhile, until the queue is empty. Under load a
//! commit therefore carries many callers' work, and the one event counter row, which every commit of
//! the schema updates and holds until it ends, is taken once per group instead of once per caller.
//!
//! The batches of a drain that touch task graphs (their rows or tasks) and those that do not (agents,
//! the log) are committed as two groups, one after the other: a group touching graphs locks their rows
//! for its whole transaction (see below), which the others need not wait for. Batches that were
//! committed concurrently thus get seqs in no particular order among themselves, as they would have
//! with one transaction each.
//!
//! Within a group touching graphs, batches of one budget reservation, of one settlement and of one
//! finished task are put together (in that order, after the others), so that each kind is applied as
//! one run of a few statements (see [`crate::batch::apply_all`]) and the graph's hot row is written
//! once per run rather than once per batch.
//!
//! A group keeps each batch's guarantees:
//! - every batch is applied in order, and each gets its own records back, its events with consecutive
//!   seqs (the group's events are appended in one statement, batch after batch);
//! - one batch's failure fails no other: the transaction is rolled back, the failed batch is committed
//!   alone (its caller gets what that gives) and the others are committed again as a group without it;
//! - a transaction of several batches first locks the rows of every graph any of them touches (sorted),
//!   so the lock order stays graphs, tasks, `budget_spend` rows, the counter;
//! - a group of [relaxed](orch_core::store::Durability::Relaxed) batches only (claims, heartbeats, run
//!   leases) commits without waiting for the disk; one durable batch makes the group durable;
//! - a write whose caller stopped waiting still runs to its end: the writer owns it, not the caller;
//! - a failed commit is reported to every caller of the group and retried for none (it may have
//!   committed); a failure before the commit (a lost connection) commits each batch alone.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use orch_core::store::{Batch, Change, Durability, StoreError, StoreResult};
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
}

/// The batches waiting for a writer.
pub(crate) struct Queue {
    state: Mutex<State>,
    /// Most writers at once (each holds one pooled connection while it commits).
    writers: usize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    running: usize,
}

impl Queue {
    /// A queue with at most `writers` writers (at least one).
    pub(crate) fn new(writers: usize) -> Self {
        Self { state: Mutex::new(State::default()), writers: writers.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A writer that panicked while holding the lock left the queue consistent (pushes and pops only).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Queues a batch and waits for its answer.
pub(crate) async fn commit(inner: &Arc<Inner>, batch: Batch) -> StoreResult<Vec<EventRecord>> {
    let (reply, answer) = oneshot::channel();
    let start = {
        let mut q = inner.queue.lock();
        q.jobs.push_back(Job { batch: batch.projected(), reply });
        let start = q.running < inner.queue.writers;
        if start {
            q.running += 1;
        }
        start
    };
    if start {
        spawn_writer(inner.clone());
    }
    answer.await.unwrap_or_else(|_| Err(StoreError::Backend("a PostgreSQL write stopped before it ended".into())))
}

fn spawn_writer(inner: Arc<Inner>) {
    tokio::spawn(async move {
        let mut guard = Running { inner: inner.clone(), done: false };
        loop {
            let jobs: Vec<Job> = {
                let mut q = inner.queue.lock();
                if q.jobs.is_empty() {
                    q.running -= 1;
                    guard.done = true;
                    return;
                }
                let n = q.jobs.len().min(MAX_GROUP);
                q.jobs.drain(..n).collect()
            };
            // Batches of agents and the log (most of an agent run's) commit apart from those of task
            // graphs, so that they never wait for, nor make others wait behind, a graph row lock.
            let (mut graph, other): (Vec<Job>, Vec<Job>) =
                jobs.into_iter().partition(|j| batch::touches_graphs(&j.batch));
            // Reservations, settlements and finished tasks together, each kind applied as one run.
            graph.sort_by_key(|j| batch::run_rank(&j.batch));
            run(&inner, other).await;
            run(&inner, graph).await;
        }
    });
}

/// Counts a writer out if it ends without emptying the queue (it panicked): a new one takes over
/// what is queued.
struct Running {
    inner: Arc<Inner>,
    done: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let restart = {
            let mut q = self.inner.queue.lock();
            if q.jobs.is_empty() {
                q.running -= 1;
                false
            } else {
                true
            }
        };
        if restart && tokio::runtime::Handle::try_current().is_ok() {
            spawn_writer(self.inner.clone());
        } else if restart {
            self.inner.queue.lock().running -= 1;
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
    let mut tx = batch::begin(db, relaxed).await.map_err(|e| before(db_err(e)))?;
    let graphs = graphs_touched(batches.iter().flat_map(|b| b.changes.iter()));
    work::lock_graphs(db, &mut tx, &graphs).await.map_err(before)?;
    let changes: Vec<(usize, &Change)> =
        batches.iter().enumerate().flat_map(|(i, b)| b.changes.iter().map(move |c| (i, c))).collect();
    let mut generated: Vec<Vec<NewEvent>> = vec![Vec::new(); batches.len()];
    if let Err((i, e)) = apply_all(db, &mut tx, &changes, &mut generated).await {
        let _ = tx.rollback().await;
        return Err(GroupError::Batch(i, e));
    }
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
    tx.commit().await.map_err(|e| GroupError::Commit(db_err(e)))?;
    let mut records = records.into_iter();
    Ok(counts.into_iter().map(|n| records.by_ref().take(n).collect()).collect())
}
