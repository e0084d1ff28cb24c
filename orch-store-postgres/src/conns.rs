//! Connections handed back clean, without the pool's round trip.
//!
//! sqlx's pool tests every connection it gets back (a `Sync` and its answer) before another caller
//! may have it: one more round trip per statement outside a transaction and per transaction, which
//! under load also delays the next caller that waits for a connection. A connection whose work ended
//! cleanly (its statements answered, no transaction open) needs no test. [`Conns`] keeps such
//! connections apart, checked out of the pool, and hands them to the next caller directly; a
//! connection whose work did not end cleanly (an error, a dropped future) goes back to the pool,
//! which tests it as before.
//!
//! Every statement of the store takes its connection here (`&Db` is an [`Executor`]), and callers
//! wait here, one permit each, not in the pool: a connection kept apart goes at once to the caller
//! that waited longest, where a caller waiting in the pool would only hear of connections given back
//! to it. Callers hold at most the pool's size of connections, so the pool always has one for a
//! caller that found none kept apart (once those given back are tested). A connection kept apart for
//! as long as the pool lets one idle unchecked (10 ms), or out of the pool for [`RECYCLE_AFTER`], goes
//! back to the pool instead of being used, so the pool's own checks (a ping after idling, the
//! connections' lifetime) still apply.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use sqlx_core::Either;
use sqlx_core::describe::Describe;
use sqlx_core::executor::{Execute, Executor};
use sqlx_core::pool::PoolConnection;
use sqlx_core::transaction::TransactionManager as _;
use sqlx_postgres::{
    PgConnection, PgPool, PgQueryResult, PgRow, PgStatement, PgTransactionManager, PgTypeInfo, Postgres,
};

use crate::sql::Db;

/// A connection out of the pool for this long goes back to it after its current use, so the pool's
/// lifetime checks see it.
pub(crate) const RECYCLE_AFTER: Duration = Duration::from_secs(60);

/// The connections kept apart.
pub(crate) struct Conns {
    pool: PgPool,
    /// One permit per connection a caller may hold (the pool's size).
    permits: tokio::sync::Semaphore,
    /// How long a caller waits for a permit.
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    idle: Vec<Parked>,
    /// Set by [`Conns::close`]: nothing is kept apart any more.
    closed: bool,
}

struct Parked {
    conn: PoolConnection<Postgres>,
    /// When it left the pool.
    out_since: Instant,
    /// When it was kept apart.
    parked_at: Instant,
}

impl Conns {
    /// As many connections of `pool` at once as it holds, each waited for as long as it would wait.
    pub(crate) fn new(pool: PgPool) -> Self {
        let size = usize::try_from(pool.options().get_max_connections()).unwrap_or(1).max(1);
        let timeout = pool.options().get_acquire_timeout();
        Self { pool, permits: tokio::sync::Semaphore::new(size), timeout, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Pushes and pops only: a panic while holding the lock leaves the state consistent.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A connection: the most recently kept apart one, or one from the pool.
    pub(crate) async fn get(&self) -> Result<Conn<'_>, sqlx_core::Error> {
        let permit = match tokio::time::timeout(self.timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(sqlx_core::Error::PoolClosed),
            Err(_elapsed) => return Err(sqlx_core::Error::PoolTimedOut),
        };
        loop {
            let parked = self.lock().idle.pop();
            match parked {
                Some(p) if p.parked_at.elapsed() < crate::CHECK_IDLE_AFTER => {
                    return Ok(Conn { conns: self, conn: Some(p.conn), out_since: p.out_since, _permit: permit });
                }
                // Waited too long apart: back to the pool, which pings it before its next use. Older ones
                // lie below it, so they go too.
                Some(p) => {
                    drop(p);
                    let older = std::mem::take(&mut self.lock().idle);
                    drop(older);
                }
                None => break,
            }
        }
        let conn = self.pool.acquire().await?;
        Ok(Conn { conns: self, conn: Some(conn), out_since: Instant::now(), _permit: permit })
    }

    /// Closes every connection kept apart, and keeps none from now on, then the pool (which waits for
    /// every connection out of it). Those kept apart are closed here rather than given back: the pool's
    /// test of a connection given back would race with its closing, which could then miss it and leave
    /// it open.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        for p in idle {
            if let Err(e) = p.conn.close().await {
                tracing::debug!(error = %e, "could not close a PostgreSQL connection cleanly");
            }
        }
        self.pool.close().await;
    }

    fn park(&self, conn: PoolConnection<Postgres>, out_since: Instant) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            drop(conn);
            return;
        }
        state.idle.push(Parked { conn, out_since, parked_at: Instant::now() });
    }
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").field("kept_apart", &self.lock().idle.len()).finish_non_exhaustive()
    }
}

impl Drop for Conns {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        if tokio::runtime::Handle::try_current().is_ok() {
            // Back to the pool (its release runs on the runtime).
            drop(idle);
        } else {
            // No runtime to run the pool's release on: closed here, each freeing its place in the pool.
            for p in idle {
                drop(p.conn.detach());
            }
        }
    }
}

/// A connection from [`Conns`]: kept apart again by [`Conn::done`], back to the pool when dropped.
pub(crate) struct Conn<'a> {
    conns: &'a Conns,
    conn: Option<PoolConnection<Postgres>>,
    out_since: Instant,
    /// Released after the connection is kept apart or given back.
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Conn<'_> {
    /// Its work ended cleanly: kept apart for the next caller, unless a transaction is still open on it
    /// or it is due back in the pool.
    pub(crate) fn done(mut self) {
        let Some(conn) = self.conn.take() else { return };
        let open = PgTransactionManager::get_transaction_depth(&conn) > 0;
        if open || self.out_since.elapsed() >= RECYCLE_AFTER {
            drop(conn);
        } else {
            self.conns.park(conn, self.out_since);
        }
    }
}

impl Deref for Conn<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        // `conn` is `None` only inside `done`, which consumes the guard.
        self.conn.as_deref().unwrap_or_else(|| unreachable!("a Conn used after done"))
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_deref_mut().unwrap_or_else(|| unreachable!("a Conn used after done"))
    }
}

/// A statement run on `&Db` takes a connection from [`Conns`] and gives it back when it has its
/// answer (all of it: rows are collected before they are yielded).
impl<'c> Executor<'c> for &'c Db {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx_core::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        let all = async move {
            let mut conn = self.conns.get().await?;
            let all: Vec<_> = (&mut *conn).fetch_many(query).try_collect().await?;
            conn.done();
            Ok::<_, sqlx_core::Error>(futures::stream::iter(all.into_iter().map(Ok)))
        };
        futures::stream::once(all).try_flatten().boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx_core::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut conn = self.conns.get().await?;
            let row = (&mut *conn).fetch_optional(query).await?;
            conn.done();
            Ok(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx_core::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut conn = self.conns.get().await?;
            let statement = (&mut *conn).prepare_with(sql, parameters).await?;
            conn.done();
            Ok(statement)
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx_core::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut conn = self.conns.get().await?;
            let described = (&mut *conn).describe(sql).await?;
            conn.done();
            Ok(described)
        })
    }
}
