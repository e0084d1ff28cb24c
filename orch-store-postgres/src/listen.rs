//! Live delivery across processes: one `LISTEN` connection per store, started lazily, raising the highest
//! seq known committed; followers wait on it and then read the log themselves.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::sqlx;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::config::CONNECT_TIMEOUT;
use crate::events;
use crate::sql::Db;

/// How often the listener task reads the seq counter while followers wait, in case a notification was
/// lost (or the listening connection is down).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// A waiting follower re-reads the log at least this often, even if the listener task is gone.
pub(crate) const WAIT_FALLBACK: Duration = Duration::from_secs(2);
/// Longest pause between reconnection attempts of the listening connection.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The highest seq this store knows to be committed, and the task that keeps it up to date.
pub(crate) struct Live {
    /// Raised after this store's own appends, by notifications and by the fallback poll.
    pub last: watch::Sender<u64>,
    /// Raised by notifications and by the fallback poll only (not at once by this store's own
    /// appends): what followers of other processes' events wait on.
    pub heard: watch::Sender<u64>,
    task: Mutex<Task>,
    options: PgConnectOptions,
    channel: String,
    db: Db,
}

/// The listener task's state.
enum Task {
    NotStarted,
    Running(AbortHandle),
    Stopped,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Task::Running(task) = &*self.task() {
            task.abort();
        }
    }
}

impl Live {
    pub(crate) fn new(last: u64, options: PgConnectOptions, channel: String, db: Db) -> Self {
        Self {
            last: watch::channel(last).0,
            heard: watch::channel(last).0,
            task: Mutex::new(Task::NotStarted),
            options,
            channel,
            db,
        }
    }

    fn task(&self) -> MutexGuard<'_, Task> {
        // A poisoned lock only means a panic elsewhere; the state is still meaningful.
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `seq` is committed.
    pub(crate) fn raise(&self, seq: u64) {
        raise(&self.last, seq);
    }

    /// Starts the listener task once, if a tokio runtime is running (otherwise on a later call).
    pub(crate) fn ensure_started(&self) {
        let mut task = self.task();
        if !matches!(*task, Task::NotStarted) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(self.options.clone());
        let seqs = Seqs { last: self.last.clone(), heard: self.heard.clone() };
        let handle = tokio::spawn(run(pool, self.channel.clone(), self.db.clone(), seqs));
        *task = Task::Running(handle.abort_handle());
    }

    /// Stops the listener task for good.
    pub(crate) fn stop(&self) {
        let mut task = self.task();
        if let Task::Running(handle) = &*task {
            handle.abort();
        }
        *task = Task::Stopped;
    }
}

fn raise(last: &watch::Sender<u64>, seq: u64) {
    last.send_if_modified(|v| {
        let higher = seq > *v;
        if higher {
            *v = seq;
        }
        higher
    });
}

/// The seqs the listener task raises.
struct Seqs {
    last: watch::Sender<u64>,
    heard: watch::Sender<u64>,
}

impl Seqs {
    fn raise(&self, seq: u64) {
        raise(&self.last, seq);
        raise(&self.heard, seq);
    }

    fn watched(&self) -> bool {
        self.last.receiver_count() > 0 || self.heard.receiver_count() > 0
    }
}

/// Reads the counter: everything up to it is committed.
async fn refresh(db: &Db, seqs: &Seqs) {
    match events::last_seq(db).await {
        Ok(seq) => seqs.raise(seq),
        Err(e) => tracing::debug!(error = %e, "cannot read the seq counter"),
    }
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

/// The listener task: LISTEN, raise `last` on every notification, read the counter after every
/// (re)connection and every [`POLL_INTERVAL`] while followers wait. Reconnects with backoff forever; ends
/// when the store is dropped or closed (aborted).
async fn run(pool: PgPool, channel: String, db: Db, last: Seqs) {
    let mut backoff = Duration::from_millis(100);
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        match listen(&pool, &channel).await {
            Ok(mut listener) => {
                backoff = Duration::from_millis(100);
                // Whatever was committed before LISTEN took effect raised no notification here.
                refresh(&db, &last).await;
                loop {
                    // The receive future is kept across ticks (never cancelled mid-message).
                    let outcome = {
                        let recv = listener.try_recv();
                        tokio::pin!(recv);
                        loop {
                            tokio::select! {
                                r = &mut recv => break r,
                                _ = ticker.tick() => {
                                    if last.watched() {
                                        refresh(&db, &last).await;
                                    }
                                }
                            }
                        }
                    };
                    match outcome {
                        Ok(Some(n)) => match n.payload().parse::<u64>() {
                            Ok(seq) => last.raise(seq),
                            Err(_) => refresh(&db, &last).await,
                        },
                        Ok(None) => {
                            // The connection was lost and sqlx re-established it (LISTEN included):
                            // notifications sent meanwhile are gone, the counter is not.
                            tracing::info!(channel, "the PostgreSQL listener reconnected");
                            refresh(&db, &last).await;
                        }
                        Err(e) => {
                            tracing::warn!(channel, error = %e, "the PostgreSQL listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(channel, error = %e, "cannot LISTEN on PostgreSQL; retrying"),
        }
        // Disconnected: followers still progress through this poll and their own fallback.
        refresh(&db, &last).await;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
