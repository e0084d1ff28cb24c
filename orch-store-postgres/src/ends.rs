//! The end of a task graph: checked after the commit that finished its tasks, and swept.
//!
//! A finished task does not lock its graph's row: two processes finishing tasks of one graph would
//! otherwise take turns for their whole transactions. Whether the graph has ended is asked after the
//! commit instead, by a new statement. Of two last tasks finishing at once in two transactions, the
//! check of the one made visible last starts after both are visible, so it sees no open task and ends
//! the graph; the other's sees the first still open, or finds the graph ended. The end itself is a
//! transaction of its own that locks the graph row and checks again, so a graph is ended once, whoever
//! asks. Its records go to the caller whose commit finished the task.
//!
//! A process that dies between the commit and its check leaves a running graph with no open task.
//! The sweep ends such graphs: every store runs it after a claim of tasks, at most every
//! [`SWEEP_EVERY`] (claims are what idle workers keep making), ending the graphs found in that state
//! by two sweeps in a row; [`crate::PgStore::end_finished_graphs`] ends them all at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::store::{Change, StoreResult};
use orch_core::wire::{Event, EventRecord, Id};

use crate::Inner;
use crate::batch;
use crate::events;
use crate::sql::{Db, db_err};
use crate::sqlx;
use crate::work::{self, OPEN};
use sqlx_postgres::PgConnection;

/// How often a store sweeps for graphs whose end was not recorded.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// The graphs whose end these changes may have brought: those of tasks finished in a final status.
pub(crate) fn graphs_ending<'a>(changes: impl Iterator<Item = &'a Change>) -> Vec<Id> {
    let mut ids: Vec<Id> = changes
        .filter_map(|c| match c {
            Change::FinishTask { task, .. } if task.status.is_final() => Some(task.graph_id),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// After the commit of `changes`, on its connection: ends the graphs they finished the last open task
/// of, then refreshes the tasks' statistics if they inserted a graph
/// ([`crate::graphs::analyze_after_insert`]). Returns the records of the ended graphs. A failure is
/// logged, not returned: the changes are committed, and the sweep ends the graph later.
pub(crate) async fn after_commit<'a>(
    db: &Db,
    conn: &mut PgConnection,
    channel: &str,
    changes: impl Iterator<Item = &'a Change> + Clone,
) -> Vec<EventRecord> {
    let ended = end_finished(db, conn, channel, changes.clone()).await;
    crate::graphs::analyze_after_insert(db, conn, changes).await;
    ended
}

/// Ends the graphs whose last open task `changes` finished; their records.
async fn end_finished<'a>(
    db: &Db,
    conn: &mut PgConnection,
    channel: &str,
    changes: impl Iterator<Item = &'a Change>,
) -> Vec<EventRecord> {
    let ids = graphs_ending(changes);
    if ids.is_empty() {
        return Vec::new();
    }
    match end_graphs(db, conn, channel, Some(&ids)).await {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, graphs = ?ids, "could not check whether task graphs ended; the sweep will");
            Vec::new()
        }
    }
}

/// Ends the running graphs without open tasks among `ids`, or among all graphs that have tasks for
/// `None`: one read, then, if any, one transaction that ends them. Returns their records.
pub(crate) async fn end_graphs(
    db: &Db,
    conn: &mut PgConnection,
    channel: &str,
    ids: Option<&[Id]>,
) -> StoreResult<Vec<EventRecord>> {
    let found = candidates(db, &mut *conn, ids).await?;
    end(db, conn, channel, &found).await
}

/// The running graphs without open tasks among `ids` (among all graphs that have tasks, for `None`),
/// by id. Read outside any transaction: a new snapshot, taken after the caller's commit. Each graph is
/// probed by two scalar subqueries that stop at their first task (an index probe each), rather than
/// joins the planner may run as scans of every task once the table's statistics show thousands. Named
/// graphs are looked up by id, in a statement of their own: a plan made for both cases (a generic
/// plan, which PostgreSQL may settle on after a few executions, or one a URL's `plan_cache_mode`
/// forces) would read every graph ever run.
async fn candidates(db: &Db, conn: &mut PgConnection, ids: Option<&[Id]>) -> StoreResult<Vec<Id>> {
    let which = if ids.is_some() { "g.id = ANY($1::uuid[]) AND g.status = 'running'" } else { "g.status = 'running'" };
    let sql = db.sql(&format!(
        "SELECT g.id FROM {{S}}.task_graphs g WHERE {which} \
         AND (SELECT true FROM {{S}}.tasks t WHERE t.graph_id = g.id LIMIT 1) \
         AND (SELECT true FROM {{S}}.tasks t WHERE t.graph_id = g.id AND t.status IN {OPEN} LIMIT 1) IS NULL \
         ORDER BY g.id"
    ));
    let query = sqlx::query_scalar(&sql);
    match ids {
        Some(ids) => query.bind(ids),
        None => query,
    }
    .fetch_all(conn)
    .await
    .map_err(db_err)
}

/// One transaction that locks the rows of graphs `ids` (sorted) and ends each that still runs with no
/// open task. Returns the records of those it ended.
async fn end(db: &Db, conn: &mut PgConnection, channel: &str, ids: &[Id]) -> StoreResult<Vec<EventRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = batch::begin_on(conn, false).await.map_err(db_err)?;
    let mut ended = Vec::new();
    for id in ids {
        if let Some(g) = work::end_graph_if_done(db, &mut tx, *id).await? {
            ended.push(work::graph_event(g));
        }
    }
    let records = events::append(db, &mut *tx, channel, events::Batch::new(ended)?).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(records)
}

/// Adds each ended graph's record to the records of the last batch (of `batches`) that finished a task
/// of it in a final status, or of the last batch when none did.
pub(crate) fn distribute<'a>(
    ended: Vec<EventRecord>,
    batches: impl Iterator<Item = &'a orch_core::store::Batch>,
    records: &mut [Vec<EventRecord>],
) {
    let owners: Vec<Vec<Id>> = batches.map(|b| graphs_ending(b.changes.iter())).collect();
    for r in ended {
        let graph = match &r.event {
            Event::GraphUpdated { graph } => Some(graph.id),
            _ => None,
        };
        let owner = owners.iter().rposition(|ids| graph.is_some_and(|g| ids.contains(&g)));
        if let Some(list) = owner.or(records.len().checked_sub(1)).and_then(|i| records.get_mut(i)) {
            list.push(r);
        }
    }
}

/// What a store's sweeps remember.
#[derive(Default)]
pub(crate) struct Sweeps {
    /// When the last one started.
    at: Option<Instant>,
    /// The graphs it found running with no open task and left alone.
    seen: Vec<Id>,
}

/// Runs the sweep in the background if the last one of this store started [`SWEEP_EVERY`] ago or more.
/// A sweep ends the graphs that the one before found running with no open task too: a graph whose
/// last finish has just committed is left to the check of its finisher, which returns the end to its
/// caller, and a graph still in that state one sweep later lost its check.
pub(crate) fn maybe_sweep(inner: &Arc<Inner>) {
    let seen = {
        let mut sweeps = inner.sweeps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if sweeps.at.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
            return;
        }
        sweeps.at = Some(Instant::now());
        std::mem::take(&mut sweeps.seen)
    };
    let inner = inner.clone();
    tokio::spawn(async move {
        let swept = async {
            let mut conn = inner.db.conns.get().await.map_err(db_err)?;
            let found = candidates(&inner.db, &mut conn, None).await?;
            let (lost, fresh): (Vec<Id>, Vec<Id>) = found.into_iter().partition(|id| seen.contains(id));
            inner.sweeps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).seen = fresh;
            let ended = end(&inner.db, &mut conn, &inner.channel, &lost).await?;
            conn.done();
            Ok::<_, orch_core::store::StoreError>(ended)
        };
        match swept.await {
            Ok(records) => {
                if let Some(last) = records.last() {
                    tracing::info!(graphs = records.len(), "the sweep ended task graphs whose end was not recorded");
                    inner.live.raise(last.seq);
                }
            }
            Err(e) => tracing::debug!(error = %e, "the sweep for ended task graphs failed; trying again later"),
        }
    });
}
