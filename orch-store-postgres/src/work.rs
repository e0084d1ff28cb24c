//! Statements of running task graphs: claims, finished tasks and the dependents they release, graph
//! status, worker heartbeats, budget reservations and limits.
//!
//! Many worker processes on many machines run these at once, each in its own READ COMMITTED
//! transaction, so every statement that decides from rows another transaction may be changing locks
//! those rows first:
//! - a claim locks the tasks it takes with `FOR UPDATE SKIP LOCKED`: two claimers never take one task,
//!   and neither waits for the other;
//! - a finished task locks its pending dependents (by id) before checking their other dependencies: of
//!   two parents finishing at once, the later transaction waits for the earlier one's commit and then
//!   sees its work (each statement reads anew). It does not lock its graph's row: whether the graph
//!   ended is asked after the commit ([`crate::ends`]);
//! - a reservation locks the graph row, then its `budget_spend` rows (by period), before checking the
//!   limits: concurrent reservers take turns, and none passes a limit.
//!
//! Locks are taken in one order: the rows of every graph a batch changes (locked first, by id, see
//! [`lock_graphs`]), then tasks (pending ones by id, whoever locks several), then `budget_spend` rows,
//! then (at the end of every commit) the event counter. Claims lock no graph row: they skip locked
//! tasks instead of waiting. Finished tasks lock no graph row either.

use orch_core::store::{StoreError, StoreResult};
use orch_core::wire::{
    BudgetLine, BudgetScope, BudgetStatus, Event, EventKeys, GraphStatus, Id, NewEvent, Reservation, Task, TaskClaim,
    TaskGraph, TaskStatus, WorkerInfo, WorkerRole,
};
use sqlx::postgres::PgRow;
use sqlx_postgres::PgConnection;

use crate::graphs::{GRAPH_COLS, TASK_COLS, graph_row, task_row, update_task, write_progress};
use crate::sql::{Db, db_err, get, get_enum, get_u32, not_found, now_us};
use crate::sqlx;

fn task_event(t: Task) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::TaskUpdated { task: Box::new(t) })
}

pub(crate) fn graph_event(g: TaskGraph) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g) })
}

/// The statuses of a task that is not done: a graph with one of them has work left.
pub(crate) const OPEN: &str = "('pending', 'ready', 'running', 'blocked')";

/// Locks the rows of these graphs (sorted by id by the caller), at the start of a transaction.
pub(crate) async fn lock_graphs(db: &Db, conn: &mut PgConnection, ids: &[Id]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(&db.sql("SELECT id FROM {S}.task_graphs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

// ---- claims ----

/// Claims due tasks by wave and index: ready tasks whose `not_before` passed, and running tasks whose
/// worker is gone (claimed before `stale_before` by a worker with no heartbeat since, or no row) or
/// whose deadline passed (taken over), all of running graphs. One statement: the due rows are locked
/// with `SKIP LOCKED` (rows another claim holds are passed over, not waited for) and updated. Returns a
/// `TaskUpdated` event per claimed task.
///
/// A row claimed by another transaction after this statement's snapshot is checked again on its new
/// version (READ COMMITTED), but the `workers` subquery still reads the old snapshot, in which a worker
/// that just started has no row yet: its brand-new claim would look abandoned. The claim's own time
/// (`started_at`, on the row, so checked on the new version) rules that out: a claim younger than the
/// staleness window is never taken over.
pub(crate) async fn claim_tasks(db: &Db, conn: &mut PgConnection, c: &TaskClaim) -> StoreResult<Vec<NewEvent>> {
    if c.limit == 0 {
        return Ok(Vec::new());
    }
    // Two scans, each able to walk an index in claim order: `status` is an equality in each, so a scan
    // reads only the running or the ready tasks (never the pending ones, which can be thousands) and
    // stops at the limit; the first `limit` of both, in claim order, are claimed. (When tasks were
    // abandoned, ready ones beyond the limit stay locked, unclaimed, until this commit: other claims
    // pass over them meanwhile.)
    let sql = db.sql(&format!(
        "WITH stale AS (\
            SELECT t.id, t.wave, t.idx FROM {{S}}.tasks t JOIN {{S}}.task_graphs g ON g.id = t.graph_id \
            WHERE g.status = 'running' AND ($1::uuid IS NULL OR t.graph_id = $1) AND t.status = 'running' \
            AND (t.lease_until < $2 OR ((t.started_at IS NULL OR t.started_at < $3) AND NOT EXISTS (\
                SELECT 1 FROM {{S}}.workers w WHERE w.id = t.claimed_by AND w.heartbeat_at >= $3))) \
            ORDER BY t.wave, t.idx, t.id LIMIT $4 FOR UPDATE OF t SKIP LOCKED\
         ), ready AS (\
            SELECT t.id, t.wave, t.idx FROM {{S}}.tasks t JOIN {{S}}.task_graphs g ON g.id = t.graph_id \
            WHERE g.status = 'running' AND ($1::uuid IS NULL OR t.graph_id = $1) AND t.status = 'ready' \
            AND (t.not_before IS NULL OR t.not_before <= $2) \
            ORDER BY t.wave, t.idx, t.id LIMIT $4 FOR UPDATE OF t SKIP LOCKED\
         ) \
         UPDATE {{S}}.tasks SET status = 'running', attempt = attempt + 1, claimed_by = $5, lease_until = $6, \
         not_before = NULL, started_at = $2, updated_at = $2 \
         WHERE id = ANY(ARRAY(SELECT id FROM (SELECT * FROM stale UNION ALL SELECT * FROM ready) d \
             ORDER BY d.wave, d.idx, d.id LIMIT $4)) \
         RETURNING {TASK_COLS}"
    ));
    let rows = sqlx::query(&sql)
        .bind(c.graph_id)
        .bind(c.now)
        .bind(c.stale_before)
        .bind(i64::from(c.limit))
        .bind(&c.worker)
        .bind(c.deadline)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut claimed = rows.iter().map(task_row).collect::<StoreResult<Vec<Task>>>()?;
    claimed.sort_by_key(|t| (t.wave, t.index, t.id));
    let claimed: Vec<NewEvent> = claimed.into_iter().map(task_event).collect();
    let Some(start) = &c.start else { return Ok(claimed) };
    // The attempts the claimant starts here: their agents in one insert, their tasks (locked by this
    // claim) in one fenced update.
    let (agents, tasks, events) = orch_core::store::start_claimed(start, claimed);
    if !agents.is_empty() {
        let list: Vec<&orch_core::wire::Agent> = agents.iter().collect();
        let fenced: Vec<(&Task, Option<u32>)> = tasks.iter().map(|t| (t, Some(t.attempt))).collect();
        crate::agent_runs::create_agents_for(db, conn, &list, &fenced).await?;
    }
    Ok(events)
}

// ---- finished tasks ----

/// Writes a finished attempt (fenced) and releases the dependents whose dependencies are now all
/// completed or skipped. Returns the events of the released tasks (by id). Whether the graph ended is
/// checked after the commit ([`crate::ends`]), without locking its row here.
pub(crate) async fn finish_task(
    db: &Db,
    conn: &mut PgConnection,
    task: &Task,
    fence: u32,
) -> StoreResult<Vec<NewEvent>> {
    update_task(db, conn, task, Some(fence)).await?;
    if task.status.releases_dependents() {
        return release_dependents(db, conn, &[task.id]).await;
    }
    Ok(Vec::new())
}

/// [`finish_task`] of several attempts (distinct tasks) at once, in a few statements whatever their
/// number: one fenced update of them all, one lock and one release of their pending dependents. The
/// result is the one of finishing them one after the other. On failure, the index of the first task
/// that could not be written (fenced or missing) and why; the caller rolls the transaction back.
pub(crate) async fn finish_tasks(
    db: &Db,
    conn: &mut PgConnection,
    tasks: &[(&Task, u32)],
) -> Result<Vec<NewEvent>, (usize, StoreError)> {
    let fenced: Vec<(&Task, Option<u32>)> = tasks.iter().map(|(t, fence)| (*t, Some(*fence))).collect();
    write_progress(db, conn, &fenced).await?;
    let parents: Vec<Id> = tasks.iter().filter(|(t, _)| t.status.releases_dependents()).map(|(t, _)| t.id).collect();
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    release_dependents(db, conn, &parents).await.map_err(|e| (0, e))
}

/// Makes ready each pending dependent of `parents` whose dependencies are now all completed or
/// skipped; returns their events (by id). The candidates are locked first (by id): a parent finishing
/// in another transaction at the same time then waits here (or this one waits for it), and the check,
/// a new statement, sees its commit.
async fn release_dependents(db: &Db, conn: &mut PgConnection, parents: &[Id]) -> StoreResult<Vec<NewEvent>> {
    let candidates: Vec<Id> = sqlx::query_scalar(&db.sql(
        "SELECT id FROM {S}.tasks WHERE id IN (SELECT task_id FROM {S}.task_deps WHERE depends_on = ANY($1::uuid[])) \
         AND status = 'pending' ORDER BY id FOR UPDATE",
    ))
    .bind(parents)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&db.sql(&format!(
        "UPDATE {{S}}.tasks c SET status = 'ready', updated_at = $2 \
         WHERE c.id = ANY($1::uuid[]) AND c.status = 'pending' AND NOT EXISTS (\
            SELECT 1 FROM {{S}}.task_deps d JOIN {{S}}.tasks p ON p.id = d.depends_on \
            WHERE d.task_id = c.id AND p.status NOT IN ('completed', 'skipped')) \
         RETURNING {TASK_COLS}"
    )))
    .bind(&candidates)
    .bind(now_us())
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut released = rows.iter().map(task_row).collect::<StoreResult<Vec<Task>>>()?;
    released.sort_by_key(|t| t.id);
    Ok(released.into_iter().map(task_event).collect())
}

/// Ends a running graph without open tasks: completed, or failed when a task failed. The graph row is
/// locked before the open tasks are counted, so of two checks at once the later sees the earlier's end
/// (see [`crate::ends`], whose transactions run it after the commits that finish tasks).
pub(crate) async fn end_graph_if_done(
    db: &Db,
    conn: &mut PgConnection,
    graph_id: Id,
) -> StoreResult<Option<TaskGraph>> {
    let status: Option<String> =
        sqlx::query_scalar(&db.sql("SELECT status FROM {S}.task_graphs WHERE id = $1 FOR UPDATE"))
            .bind(graph_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    if status.as_deref() != Some(GraphStatus::Running.as_str()) {
        return Ok(None);
    }
    // Open tasks first, through the partial index of open tasks (one row at most); the failed ones are
    // counted only once none is open, at the graph's end, not on every finish.
    let open: Option<i32> = sqlx::query_scalar(
        &db.sql(&format!("SELECT 1 FROM {{S}}.tasks WHERE graph_id = $1 AND status IN {OPEN} LIMIT 1")),
    )
    .bind(graph_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if open.is_some() {
        return Ok(None);
    }
    let failed: i64 = sqlx::query_scalar(&db.sql("SELECT count(*) FROM {S}.tasks WHERE graph_id = $1 AND status = $2"))
        .bind(graph_id)
        .bind(TaskStatus::Failed.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let (status, error) = if failed > 0 {
        (GraphStatus::Failed, Some(format!("{failed} task(s) failed")))
    } else {
        (GraphStatus::Completed, None)
    };
    write_graph_status(db, conn, graph_id, status, error.as_deref(), &[GraphStatus::Running]).await
}

// ---- graphs ----

/// Sets a graph's status and error if its status is one of `from` (one statement: a concurrent change
/// of the status is waited for, then the condition checked again). Returns its `GraphUpdated` event, or
/// nothing when the status was not one of `from`; a missing graph is `NotFound`.
pub(crate) async fn set_graph_status(
    db: &Db,
    conn: &mut PgConnection,
    id: Id,
    status: GraphStatus,
    error: Option<&str>,
    from: &[GraphStatus],
) -> StoreResult<Vec<NewEvent>> {
    if let Some(g) = write_graph_status(db, conn, id, status, error, from).await? {
        return Ok(vec![graph_event(g)]);
    }
    let exists: bool = sqlx::query_scalar(&db.sql("SELECT EXISTS (SELECT 1 FROM {S}.task_graphs WHERE id = $1)"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    if exists { Ok(Vec::new()) } else { Err(not_found("task graph", id)) }
}

/// The conditional update of a graph's status, stamping its first start and its end; the row as stored,
/// or `None` when it is missing or its status is not one of `from`.
async fn write_graph_status(
    db: &Db,
    conn: &mut PgConnection,
    id: Id,
    status: GraphStatus,
    error: Option<&str>,
    from: &[GraphStatus],
) -> StoreResult<Option<TaskGraph>> {
    let at = now_us();
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let row = sqlx::query(&db.sql(&format!(
        "UPDATE {{S}}.task_graphs SET status = $2, error = $3, updated_at = $4, \
         started_at = COALESCE(started_at, $5), completed_at = $6 \
         WHERE id = $1 AND status = ANY($7::text[]) RETURNING {GRAPH_COLS}"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(error)
    .bind(at)
    .bind((status == GraphStatus::Running).then_some(at))
    .bind(status.is_final().then_some(at))
    .bind(&from)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    row.as_ref().map(graph_row).transpose()
}

/// Adds `tasks` to a graph's total and raises its waves to at least `waves`; returns its
/// `GraphUpdated` event.
pub(crate) async fn grow_graph(
    db: &Db,
    conn: &mut PgConnection,
    id: Id,
    tasks: u32,
    waves: u32,
) -> StoreResult<Vec<NewEvent>> {
    Ok(vec![graph_event(grown_graph(db, conn, id, tasks, waves).await?)])
}

/// Adds the tasks of `AddTask`s (see `Change::AddTask`), one or a run of them, with four statements
/// however many:
/// each graph's row grown by its tasks (locked until the transaction ends, so concurrent adds take
/// turns), which gives the positions, in the run's order; their dependencies read ([`done_of`]), which
/// says ready or pending; the tasks and their edges inserted. Returns
/// the events of each add: its task's `TaskUpdated`, then, for the last add of each graph in the run,
/// that graph's `GraphUpdated` (the row as stored). On failure, the index in the run of the add that
/// failed, and why.
pub(crate) async fn add_tasks(
    db: &Db,
    conn: &mut PgConnection,
    adds: &[&Task],
) -> Result<Vec<Vec<NewEvent>>, (usize, StoreError)> {
    // Each graph once, with its number of adds and the highest wave among them.
    let mut graphs: Vec<(Id, i64, i64)> = Vec::new();
    for t in adds {
        match graphs.iter_mut().find(|g| g.0 == t.graph_id) {
            Some(g) => {
                g.1 += 1;
                g.2 = g.2.max(i64::from(t.wave));
            }
            None => graphs.push((t.graph_id, 1, i64::from(t.wave))),
        }
    }
    graphs.sort_by_key(|g| g.0);
    let ids: Vec<Id> = graphs.iter().map(|g| g.0).collect();
    let counts: Vec<i64> = graphs.iter().map(|g| g.1).collect();
    let waves: Vec<i64> = graphs.iter().map(|g| g.2).collect();
    let rows = sqlx::query(&db.sql(&format!(
        "UPDATE {{S}}.task_graphs SET total_tasks = total_tasks + u.n, waves = GREATEST(waves, u.w), updated_at = $4 \
         FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[]) AS u(gid, n, w) \
         WHERE id = u.gid AND status NOT IN ('completed', 'failed', 'cancelled') RETURNING {GRAPH_COLS}"
    )))
    .bind(&ids)
    .bind(&counts)
    .bind(&waves)
    .bind(now_us())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| (0, db_err(e)))?;
    let grown: Vec<TaskGraph> = rows.iter().map(graph_row).collect::<StoreResult<_>>().map_err(|e| (0, e))?;
    if let Some(missing) = ids.iter().find(|id| !grown.iter().any(|g| g.id == **id)) {
        // An ended or missing graph: the error its first add gets alone.
        let at = adds.iter().position(|t| t.graph_id == *missing).unwrap_or(0);
        let err = match grown_graph(db, conn, *missing, 1, 0).await {
            Err(e) => e,
            Ok(_) => StoreError::Backend(format!("task graph {missing} was not grown with its tasks")),
        };
        return Err((at, err));
    }
    // Positions in the run's order, from each graph's count before the run.
    let mut next: Vec<(Id, u32)> =
        grown.iter().map(|g| (g.id, g.total_tasks.saturating_sub(counts_of(&graphs, g.id)))).collect();
    let deps: Vec<Id> = adds.iter().flat_map(|t| t.depends_on.iter().copied()).collect();
    let done = done_of(db, conn, &deps).await.map_err(|e| (0, e))?;
    let mut tasks: Vec<Task> = Vec::with_capacity(adds.len());
    for t in adds {
        let mut task = (*t).clone();
        let due = task.depends_on.iter().all(|d| done.contains(d));
        if let Some(n) = next.iter_mut().find(|n| n.0 == task.graph_id) {
            task.place(n.1, due);
            n.1 = n.1.saturating_add(1);
        }
        tasks.push(task);
    }
    if let Err(e) = crate::graphs::insert_tasks(db, conn, &tasks).await {
        // The add whose key or id the error names (the first, when it names none).
        let at = match &e {
            StoreError::Duplicate { what } => tasks
                .iter()
                .position(|t| what.contains(&format!("'{}'", t.key)) || what.contains(&t.id.to_string()))
                .unwrap_or(0),
            _ => 0,
        };
        return Err((at, e));
    }
    let mut events: Vec<Vec<NewEvent>> = Vec::with_capacity(tasks.len());
    for (k, task) in tasks.iter().enumerate() {
        let graph_id = task.graph_id;
        let mut own = vec![NewEvent::new(EventKeys::default(), Event::TaskUpdated { task: Box::new(task.clone()) })];
        let last_of_graph = !tasks[k + 1..].iter().any(|t| t.graph_id == graph_id);
        if last_of_graph && let Some(g) = grown.iter().find(|g| g.id == graph_id) {
            own.push(graph_event(g.clone()));
        }
        events.push(own);
    }
    Ok(events)
}

/// The number of adds `graphs` counts for graph `id`.
fn counts_of(graphs: &[(Id, i64, i64)], id: Id) -> u32 {
    graphs.iter().find(|g| g.0 == id).map_or(0, |g| u32::try_from(g.1).unwrap_or(u32::MAX))
}

/// Those of tasks `ids` that have completed or been skipped. Each is locked (`FOR SHARE`) until the
/// transaction ends: a task finishing in another transaction at the same time has either committed
/// (and is read finished here), or waits for this one to commit and then finds the dependents it
/// added (its release of dependents is a statement after its update).
async fn done_of(db: &Db, conn: &mut PgConnection, ids: &[Id]) -> StoreResult<Vec<Id>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows =
        sqlx::query(&db.sql("SELECT id, status FROM {S}.tasks WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE"))
            .bind(ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let mut done = Vec::with_capacity(rows.len());
    for row in &rows {
        if get_enum::<TaskStatus>(row, 1)?.releases_dependents() {
            done.push(get(row, 0)?);
        }
    }
    Ok(done)
}

/// [`grow_graph`]'s work: the graph's row as grown.
async fn grown_graph(db: &Db, conn: &mut PgConnection, id: Id, tasks: u32, waves: u32) -> StoreResult<TaskGraph> {
    let row = sqlx::query(&db.sql(&format!(
        "UPDATE {{S}}.task_graphs SET total_tasks = total_tasks + $2, waves = GREATEST(waves, $3), updated_at = $4 \
         WHERE id = $1 AND status NOT IN ('completed', 'failed', 'cancelled') RETURNING {GRAPH_COLS}"
    )))
    .bind(id)
    .bind(i64::from(tasks))
    .bind(i64::from(waves))
    .bind(now_us())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if let Some(g) = row.as_ref().map(graph_row).transpose()? {
        return Ok(g);
    }
    let status: Option<String> = sqlx::query_scalar(&db.sql("SELECT status FROM {S}.task_graphs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    match status {
        Some(status) => Err(StoreError::GraphEnded { id, status }),
        None => Err(not_found("task graph", id)),
    }
}

/// Sets (or removes) a graph's USD limit; returns its `GraphUpdated` event.
pub(crate) async fn set_graph_budget(
    db: &Db,
    conn: &mut PgConnection,
    id: Id,
    limit: Option<f64>,
) -> StoreResult<Vec<NewEvent>> {
    let row = sqlx::query(&db.sql(&format!(
        "UPDATE {{S}}.task_graphs SET budget_usd = $2, updated_at = $3 WHERE id = $1 RETURNING {GRAPH_COLS}"
    )))
    .bind(id)
    .bind(limit)
    .bind(now_us())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let g = row.as_ref().map(graph_row).transpose()?.ok_or_else(|| not_found("task graph", id))?;
    Ok(vec![graph_event(g)])
}

// ---- workers ----

/// Inserts a worker's row, or records its heartbeat (and concurrency) on the row it has.
pub(crate) async fn heartbeat(db: &Db, conn: &mut PgConnection, w: &WorkerInfo) -> StoreResult<()> {
    sqlx::query(&db.sql(
        "INSERT INTO {S}.workers (id, host, pid, concurrency, started_at, heartbeat_at, role) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET concurrency = excluded.concurrency, heartbeat_at = excluded.heartbeat_at, \
         role = excluded.role",
    ))
    .bind(&w.id)
    .bind(&w.host)
    .bind(i64::from(w.pid))
    .bind(i64::from(w.concurrency))
    .bind(w.started_at)
    .bind(w.heartbeat_at)
    .bind(w.role.as_str())
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn remove_worker(db: &Db, conn: &mut PgConnection, id: &str) -> StoreResult<()> {
    sqlx::query(&db.sql("DELETE FROM {S}.workers WHERE id = $1")).bind(id).execute(&mut *conn).await.map_err(db_err)?;
    Ok(())
}

pub(crate) async fn forget_workers(
    db: &Db,
    conn: &mut PgConnection,
    silent_before: orch_core::wire::Timestamp,
) -> StoreResult<()> {
    sqlx::query(&db.sql("DELETE FROM {S}.workers WHERE heartbeat_at < $1"))
        .bind(silent_before)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

fn worker_row(row: &PgRow) -> StoreResult<WorkerInfo> {
    Ok(WorkerInfo {
        id: get(row, 0)?,
        host: get(row, 1)?,
        pid: get_u32(row, 2)?,
        concurrency: get_u32(row, 3)?,
        started_at: get(row, 4)?,
        heartbeat_at: get(row, 5)?,
        role: WorkerRole::from_stored(&get::<String>(row, 6)?),
    })
}

/// The workers, most recent heartbeat first.
pub(crate) async fn list_workers(db: &Db) -> StoreResult<Vec<WorkerInfo>> {
    let rows = sqlx::query(&db.sql(
        "SELECT id, host, pid, concurrency, started_at, heartbeat_at, role FROM {S}.workers \
         ORDER BY heartbeat_at DESC, id",
    ))
    .fetch_all(db)
    .await
    .map_err(db_err)?;
    rows.iter().map(worker_row).collect()
}

// ---- budgets ----

/// The `budget_spend` keys of a reservation, sorted (the order their rows are locked in): its day, its
/// graph if any, its month.
pub(crate) fn periods(r: &Reservation) -> Vec<String> {
    let mut v = vec![format!("day:{}", r.day), format!("month:{}", r.month)];
    if let Some(id) = r.graph_id {
        v.push(format!("graph:{id}"));
    }
    v.sort();
    v
}

pub(crate) async fn limits(db: &Db, conn: &mut PgConnection) -> StoreResult<(Option<f64>, Option<f64>)> {
    sqlx::query_as(&db.sql(
        "SELECT (SELECT limit_usd FROM {S}.budget_limits WHERE scope = 'daily'), \
         (SELECT limit_usd FROM {S}.budget_limits WHERE scope = 'monthly')",
    ))
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)
}

/// Reserves `r.amount` on its day, its month and its graph, or fails naming the first limit it would
/// pass, reserving nothing (the transaction is rolled back). The graph row, then the period rows (made
/// if missing) are locked before the check, so concurrent reservers, in any process, take turns.
pub(crate) async fn reserve(db: &Db, conn: &mut PgConnection, r: &Reservation) -> StoreResult<()> {
    // The graph's limit and spending (its cost_usd), its row locked.
    let graph: Option<(Id, Option<f64>, f64)> = match r.graph_id {
        Some(id) => {
            let row: Option<(Option<f64>, f64)> =
                sqlx::query_as(&db.sql("SELECT budget_usd, cost_usd FROM {S}.task_graphs WHERE id = $1 FOR UPDATE"))
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
            let (limit, cost) = row.ok_or_else(|| not_found("task graph", id))?;
            Some((id, limit, cost))
        }
        None => None,
    };
    let keys = periods(r);
    sqlx::query(&db.sql(
        "INSERT INTO {S}.budget_spend (period) SELECT p FROM UNNEST($1::text[]) AS u(p) ORDER BY p \
         ON CONFLICT (period) DO NOTHING",
    ))
    .bind(&keys)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let rows: Vec<(String, f64, f64)> = sqlx::query_as(&db.sql(
        "SELECT period, spent_usd, reserved_usd FROM {S}.budget_spend WHERE period = ANY($1::text[]) \
         ORDER BY period FOR UPDATE",
    ))
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let spend = |key: &str| rows.iter().find(|(p, ..)| p == key).map_or((0.0, 0.0), |(_, s, r)| (*s, *r));
    let (daily, monthly) = limits(db, conn).await?;
    let mut checks = vec![
        ("daily".to_string(), daily, spend(&format!("day:{}", r.day))),
        ("monthly".to_string(), monthly, spend(&format!("month:{}", r.month))),
    ];
    if let Some((id, limit, cost)) = graph {
        // A graph's spending is its cost_usd; its row holds reservations only.
        let (_, reserved) = spend(&format!("graph:{id}"));
        checks.push((format!("graph {id}"), limit, (cost, reserved)));
    }
    for (scope, limit, (spent, reserved)) in checks {
        if let Some(limit) = limit
            && spent + reserved + r.amount > limit + 1e-12
        {
            return Err(StoreError::BudgetExhausted { scope, limit, spent, reserved, asked: r.amount });
        }
    }
    sqlx::query(&db.sql("UPDATE {S}.budget_spend SET reserved_usd = reserved_usd + $2 WHERE period = ANY($1::text[])"))
        .bind(&keys)
        .bind(r.amount)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Releases a reservation and spends the real cost on its day and month, and on its graph's `cost_usd`
/// (the graph row first, then the period rows: the order of [`reserve`]).
pub(crate) async fn settle(db: &Db, conn: &mut PgConnection, r: &Reservation, actual: f64) -> StoreResult<()> {
    if let Some(id) = r.graph_id {
        let done = sqlx::query(&db.sql("UPDATE {S}.task_graphs SET cost_usd = cost_usd + $2 WHERE id = $1"))
            .bind(id)
            .bind(actual)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(not_found("task graph", id));
        }
    }
    let keys = periods(r);
    // The graph's row keeps reservations only.
    let spent: Vec<f64> = keys.iter().map(|k| if k.starts_with("graph:") { 0.0 } else { actual }).collect();
    sqlx::query(&db.sql(
        "INSERT INTO {S}.budget_spend AS b (period, spent_usd, reserved_usd) \
         SELECT p, s, 0 FROM UNNEST($1::text[], $2::float8[]) AS u(p, s) ORDER BY p \
         ON CONFLICT (period) DO UPDATE SET spent_usd = b.spent_usd + excluded.spent_usd, \
         reserved_usd = GREATEST(b.reserved_usd - $3, 0)",
    ))
    .bind(&keys)
    .bind(&spent)
    .bind(r.amount)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Sets (or removes) the daily or monthly limit.
pub(crate) async fn set_limit(
    db: &Db,
    conn: &mut PgConnection,
    scope: BudgetScope,
    limit: Option<f64>,
) -> StoreResult<()> {
    let sql = match limit {
        Some(_) => db.sql(
            "INSERT INTO {S}.budget_limits (scope, limit_usd) VALUES ($1, $2) \
             ON CONFLICT (scope) DO UPDATE SET limit_usd = excluded.limit_usd",
        ),
        None => db.sql("DELETE FROM {S}.budget_limits WHERE scope = $1 AND $2::float8 IS NULL"),
    };
    sqlx::query(&sql).bind(scope.as_str()).bind(limit).execute(&mut *conn).await.map_err(db_err)?;
    Ok(())
}

/// The daily and monthly lines, in one statement.
pub(crate) async fn budget(db: &Db, day: &str, month: &str) -> StoreResult<BudgetStatus> {
    type Line = (Option<f64>, Option<f64>, Option<f64>);
    // limit, spent and reserved of the day, then of the month.
    type Row = (Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>);
    let ((dl, ds, dr), (ml, ms, mr)): (Line, Line) = {
        let row: Row = sqlx::query_as(&db.sql(
            "SELECT (SELECT limit_usd FROM {S}.budget_limits WHERE scope = 'daily'), d.spent_usd, \
                 d.reserved_usd, (SELECT limit_usd FROM {S}.budget_limits WHERE scope = 'monthly'), m.spent_usd, \
                 m.reserved_usd FROM (SELECT 1) one \
                 LEFT JOIN {S}.budget_spend d ON d.period = $1 LEFT JOIN {S}.budget_spend m ON m.period = $2",
        ))
        .bind(format!("day:{day}"))
        .bind(format!("month:{month}"))
        .fetch_one(db)
        .await
        .map_err(db_err)?;
        ((row.0, row.1, row.2), (row.3, row.4, row.5))
    };
    let line = |scope: BudgetScope, period: &str, limit_usd: Option<f64>, spent: Option<f64>, reserved: Option<f64>| {
        BudgetLine {
            scope,
            period: period.to_string(),
            limit_usd,
            spent_usd: spent.unwrap_or(0.0),
            reserved_usd: reserved.unwrap_or(0.0),
        }
    };
    Ok(BudgetStatus {
        daily: line(BudgetScope::Daily, day, dl, ds, dr),
        monthly: line(BudgetScope::Monthly, month, ml, ms, mr),
    })
}
