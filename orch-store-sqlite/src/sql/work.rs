//! Statements of running task graphs: claims, finished tasks and the dependents they release, graph
//! status, worker heartbeats, budget reservations and limits. They run on the one writer connection, so
//! each is alone in its transaction: no two claims ever see the same ready task.

use std::sync::LazyLock;

use orch_core::store::{StoreError, StoreResult};
use orch_core::wire::{
    BudgetLine, BudgetScope, BudgetStatus, Event, EventKeys, GraphStatus, Id, NewEvent, Reservation, Task, TaskClaim,
    TaskGraph, TaskStatus, WorkerInfo, WorkerRole, now,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    GRAPH_COLS, TASK_COLS, db_err, get_graph, get_ts, get_u32, graph_row, id_text, not_found, task_cols_of, task_row,
    ts_text, update_task,
};

fn task_event(t: Task) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::TaskUpdated { task: Box::new(t) })
}

fn graph_event(g: TaskGraph) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g) })
}

/// Ready tasks to claim, in claim order: the open-task index gives them in wave order, so only the
/// first `?3` are read. (`LIMIT ?n + 0`: SQLite plans with the value of a bare `LIMIT ?n`, so binding
/// one made it compile the statement again on every claim; the plan is the same.)
const CLAIM_READY: &str = "SELECT t.wave, t.idx, t.id FROM tasks t JOIN task_graphs g ON g.id = t.graph_id \
    WHERE t.status = 'ready' AND g.status = 'running' AND (?1 IS NULL OR t.graph_id = ?1) \
    AND (t.not_before IS NULL OR t.not_before <= ?2) ORDER BY t.wave, t.idx, t.id LIMIT ?3 + 0";

/// Abandoned attempts to take over: running tasks (as many as workers run) whose lease passed, or whose
/// worker stopped beating (never within the staleness window of the claim).
const CLAIM_ABANDONED: &str = "SELECT t.wave, t.idx, t.id FROM tasks t JOIN task_graphs g ON g.id = t.graph_id \
    WHERE t.status = 'running' AND g.status = 'running' AND (?1 IS NULL OR t.graph_id = ?1) \
    AND (t.lease_until < ?2 OR ((t.started_at IS NULL OR t.started_at < ?3) \
    AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = t.claimed_by AND w.heartbeat_at >= ?3))) \
    ORDER BY t.wave, t.idx, t.id LIMIT ?4 + 0";

/// Claims the tasks whose ids are in the JSON array `?1`, in one statement.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE tasks SET status = 'running', attempt = attempt + 1, claimed_by = ?2, lease_until = ?3, \
         not_before = NULL, started_at = ?4, updated_at = ?4 WHERE id IN (SELECT value FROM json_each(?1)) \
         RETURNING {TASK_COLS}"
    )
});

/// The pending dependents of task `?1` whose every dependency is completed or skipped, by id. CROSS
/// JOIN keeps the edges of `?1` the outer loop (else SQLite may walk every pending task).
static RELEASABLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM task_deps d CROSS JOIN tasks t ON t.id = d.task_id \
         WHERE d.depends_on = ?1 AND t.status = 'pending' AND NOT EXISTS (SELECT 1 FROM task_deps o \
         JOIN tasks p ON p.id = o.depends_on WHERE o.task_id = t.id \
         AND p.status <> 'completed' AND p.status <> 'skipped') ORDER BY d.task_id",
        task_cols_of("t")
    )
});

/// Makes a pending task ready.
const RELEASE: &str = "UPDATE tasks SET status = 'ready', updated_at = ?2 WHERE id = ?1";

/// Whether graph `?1` has work left: one lookup in the open-task index per open status (an IN list
/// would build a temporary table on every run).
const GRAPH_OPEN: &str = "SELECT EXISTS (SELECT 1 FROM tasks WHERE graph_id = ?1 AND status = 'pending') \
    OR EXISTS (SELECT 1 FROM tasks WHERE graph_id = ?1 AND status = 'ready') \
    OR EXISTS (SELECT 1 FROM tasks WHERE graph_id = ?1 AND status = 'running') \
    OR EXISTS (SELECT 1 FROM tasks WHERE graph_id = ?1 AND status = 'blocked')";

/// Claims due tasks by wave and index (as [`TaskClaim`] says): ready tasks whose `not_before` passed, and
/// attempts whose worker is gone or whose deadline passed (taken over), all of running graphs. Returns a
/// `TaskUpdated` event per claimed task, in claim order.
///
/// Three statements, whatever the limit: the candidates of each kind ([`CLAIM_READY`],
/// [`CLAIM_ABANDONED`]), merged here, then one UPDATE of the chosen rows.
pub(crate) fn claim_tasks(conn: &Connection, c: &TaskClaim) -> StoreResult<Vec<NewEvent>> {
    let now_s = ts_text(c.now);
    let graph = c.graph_id.map(id_text);
    let limit = i64::from(c.limit);
    let candidates = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> StoreResult<Vec<(i64, i64, String)>> {
        let mut s = conn.prepare_cached(sql).map_err(db_err)?;
        let rows = s.query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
    };
    let mut due = candidates(CLAIM_READY, params![graph, now_s, limit])?;
    due.extend(candidates(CLAIM_ABANDONED, params![graph, now_s, ts_text(c.stale_before), limit])?);
    if due.is_empty() {
        return Ok(Vec::new());
    }
    due.sort_unstable();
    due.truncate(usize::try_from(c.limit).unwrap_or(usize::MAX));
    let ids = serde_json::to_string(&due.iter().map(|(_, _, id)| id.as_str()).collect::<Vec<_>>())
        .map_err(|e| StoreError::Backend(format!("cannot encode task ids: {e}")))?;
    let mut claim = conn.prepare_cached(&CLAIM).map_err(db_err)?;
    let rows = claim.query_map(params![ids, c.worker, ts_text(c.deadline), now_s], task_row).map_err(db_err)?;
    let mut tasks = rows.collect::<rusqlite::Result<Vec<Task>>>().map_err(db_err)?;
    // RETURNING gives the rows in no promised order.
    tasks.sort_unstable_by_key(|t| (t.wave, t.index, t.id));
    Ok(tasks.into_iter().map(task_event).collect())
}

/// Writes a finished attempt (fenced), releases the dependents it completes, and ends its graph when no
/// work is left. Returns the events of the released tasks and the ended graph.
pub(crate) fn finish_task(conn: &Connection, task: &Task, fence: u32) -> StoreResult<Vec<NewEvent>> {
    update_task(conn, task, Some(fence))?;
    let released = if task.status.releases_dependents() { release_dependents(conn, task.id)? } else { Vec::new() };
    if !released.is_empty() {
        // A released task is work left: the graph goes on.
        return Ok(released.into_iter().map(task_event).collect());
    }
    Ok(end_graph_if_done(conn, task.graph_id)?.map(graph_event).into_iter().collect())
}

/// The pending dependents of `parent` whose every dependency is now completed or skipped, made ready;
/// the rows as stored, by id.
fn release_dependents(conn: &Connection, parent: Id) -> StoreResult<Vec<Task>> {
    let mut ready = {
        let mut s = conn.prepare_cached(&RELEASABLE).map_err(db_err)?;
        let rows = s.query_map([id_text(parent)], task_row).map_err(db_err)?;
        rows.collect::<rusqlite::Result<Vec<Task>>>().map_err(db_err)?
    };
    if ready.is_empty() {
        return Ok(ready);
    }
    let at = now();
    let at_s = ts_text(at);
    let mut release = conn.prepare_cached(RELEASE).map_err(db_err)?;
    for t in &mut ready {
        release.execute(params![id_text(t.id), at_s]).map_err(db_err)?;
        // As the row now reads.
        t.status = TaskStatus::Ready;
        t.updated_at = at;
    }
    Ok(ready)
}

/// Ends a running graph without open tasks: completed, or failed when a task failed.
fn end_graph_if_done(conn: &Connection, graph_id: Id) -> StoreResult<Option<TaskGraph>> {
    let gid = id_text(graph_id);
    let open: bool =
        conn.prepare_cached(GRAPH_OPEN).and_then(|mut s| s.query_row([&gid], |r| r.get(0))).map_err(db_err)?;
    if open {
        return Ok(None);
    }
    let failed: i64 = conn
        .prepare_cached("SELECT count(*) FROM tasks WHERE graph_id = ?1 AND status = 'failed'")
        .and_then(|mut s| s.query_row([&gid], |r| r.get(0)))
        .map_err(db_err)?;
    let (status, error) = if failed > 0 {
        (GraphStatus::Failed, Some(format!("{failed} task(s) failed")))
    } else {
        (GraphStatus::Completed, None)
    };
    set_graph_status(conn, graph_id, status, error.as_deref(), &[GraphStatus::Running])
}

/// Sets a graph's status if it is one of `from`; returns the row as stored then.
pub(crate) fn set_graph_status(
    conn: &Connection,
    id: Id,
    status: GraphStatus,
    error: Option<&str>,
    from: &[GraphStatus],
) -> StoreResult<Option<TaskGraph>> {
    let Some(g) = get_graph(conn, id)? else {
        return Err(not_found("task graph", id));
    };
    if !from.contains(&g.status) {
        return Ok(None);
    }
    let at = ts_text(now());
    let started = if status == GraphStatus::Running { Some(at.clone()) } else { None };
    let completed = if status.is_final() { Some(at.clone()) } else { None };
    conn.prepare_cached(&format!(
        "UPDATE task_graphs SET status = ?2, error = ?3, updated_at = ?4, started_at = COALESCE(started_at, ?5), \
         completed_at = ?6 WHERE id = ?1 RETURNING {GRAPH_COLS}"
    ))
    .and_then(|mut s| s.query_row(params![id_text(id), status.as_str(), error, at, started, completed], graph_row))
    .map(Some)
    .map_err(db_err)
}

/// Sets a graph's USD limit; returns the row.
pub(crate) fn set_graph_budget(conn: &Connection, id: Id, limit: Option<f64>) -> StoreResult<TaskGraph> {
    conn.prepare_cached(&format!(
        "UPDATE task_graphs SET budget_usd = ?2, updated_at = ?3 WHERE id = ?1 RETURNING {GRAPH_COLS}"
    ))
    .and_then(|mut s| s.query_row(params![id_text(id), limit, ts_text(now())], graph_row).optional())
    .map_err(db_err)?
    .ok_or_else(|| not_found("task graph", id))
}

/// Adds `tasks` to a graph's total and raises its waves to at least `waves`, unless it has ended; the
/// row as stored.
pub(crate) fn grow_graph(conn: &Connection, id: Id, tasks: u32, waves: u32) -> StoreResult<TaskGraph> {
    let grown = conn
        .prepare_cached(&format!(
            "UPDATE task_graphs SET total_tasks = total_tasks + ?2, waves = max(waves, ?3), updated_at = ?4 \
             WHERE id = ?1 AND status NOT IN ('completed', 'failed', 'cancelled') RETURNING {GRAPH_COLS}"
        ))
        .and_then(|mut s| s.query_row(params![id_text(id), tasks, waves, ts_text(now())], graph_row).optional())
        .map_err(db_err)?;
    if let Some(g) = grown {
        return Ok(g);
    }
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM task_graphs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id_text(id)], |r| r.get(0)).optional())
        .map_err(db_err)?;
    match status {
        Some(status) => Err(StoreError::GraphEnded { id, status }),
        None => Err(not_found("task graph", id)),
    }
}

/// Whether every task of `ids` exists and has completed or been skipped (true for none).
pub(crate) fn all_done(conn: &Connection, ids: &[Id]) -> StoreResult<bool> {
    let mut read = conn.prepare_cached("SELECT status FROM tasks WHERE id = ?1").map_err(db_err)?;
    for id in ids {
        let status: Option<TaskStatus> =
            read.query_row([id_text(*id)], |r| super::get_enum(r, 0)).optional().map_err(db_err)?;
        if !status.is_some_and(TaskStatus::releases_dependents) {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(crate) fn heartbeat(conn: &Connection, w: &WorkerInfo) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO workers (id, host, pid, concurrency, started_at, heartbeat_at, role) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (id) DO UPDATE SET concurrency = excluded.concurrency, heartbeat_at = excluded.heartbeat_at, \
         role = excluded.role",
    )
    .and_then(|mut s| {
        let (started, beat) = (ts_text(w.started_at), ts_text(w.heartbeat_at));
        s.execute(params![w.id, w.host, w.pid, w.concurrency, started, beat, w.role.as_str()])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn remove_worker(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM workers WHERE id = ?1").and_then(|mut s| s.execute([id])).map_err(db_err)?;
    Ok(())
}

pub(crate) fn forget_workers(conn: &Connection, silent_before: orch_core::wire::Timestamp) -> StoreResult<()> {
    // Heartbeat times are stored as RFC 3339 UTC text of one width (`ts_text`): they compare as text.
    conn.prepare_cached("DELETE FROM workers WHERE heartbeat_at < ?1")
        .and_then(|mut s| s.execute([ts_text(silent_before)]))
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn list_workers(conn: &Connection) -> StoreResult<Vec<WorkerInfo>> {
    let mut s = conn
        .prepare_cached(
            "SELECT id, host, pid, concurrency, started_at, heartbeat_at, role FROM workers \
             ORDER BY heartbeat_at DESC, id",
        )
        .map_err(db_err)?;
    let rows = s
        .query_map([], |r| {
            Ok(WorkerInfo {
                id: r.get(0)?,
                host: r.get(1)?,
                pid: get_u32(r, 2)?,
                concurrency: get_u32(r, 3)?,
                started_at: get_ts(r, 4)?,
                heartbeat_at: get_ts(r, 5)?,
                role: WorkerRole::from_stored(&r.get::<_, String>(6)?),
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

/// A period a reservation counts against: its key, its name in errors, its limit, and what is spent
/// outside `budget_spend` (a graph's `cost_usd`).
struct Period {
    key: String,
    scope: String,
    limit: Option<f64>,
    spent_elsewhere: f64,
}

fn limit_of(conn: &Connection, scope: BudgetScope) -> StoreResult<Option<f64>> {
    conn.prepare_cached("SELECT limit_usd FROM budget_limits WHERE scope = ?1")
        .and_then(|mut s| s.query_row([scope.as_str()], |r| r.get(0)).optional())
        .map_err(db_err)
}

fn periods(conn: &Connection, r: &Reservation) -> StoreResult<Vec<Period>> {
    let mut v = vec![
        Period {
            key: format!("day:{}", r.day),
            scope: "daily".into(),
            limit: limit_of(conn, BudgetScope::Daily)?,
            spent_elsewhere: 0.0,
        },
        Period {
            key: format!("month:{}", r.month),
            scope: "monthly".into(),
            limit: limit_of(conn, BudgetScope::Monthly)?,
            spent_elsewhere: 0.0,
        },
    ];
    if let Some(id) = r.graph_id {
        let (limit, cost): (Option<f64>, f64) = conn
            .prepare_cached("SELECT budget_usd, cost_usd FROM task_graphs WHERE id = ?1")
            .and_then(|mut s| s.query_row([id_text(id)], |row| Ok((row.get(0)?, row.get(1)?))).optional())
            .map_err(db_err)?
            .ok_or_else(|| not_found("task graph", id))?;
        v.push(Period { key: format!("graph:{id}"), scope: format!("graph {id}"), limit, spent_elsewhere: cost });
    }
    Ok(v)
}

fn spend(conn: &Connection, key: &str) -> StoreResult<(f64, f64)> {
    Ok(conn
        .prepare_cached("SELECT spent_usd, reserved_usd FROM budget_spend WHERE period = ?1")
        .and_then(|mut s| s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db_err)?
        .unwrap_or((0.0, 0.0)))
}

/// Reserves `r.amount` on its day, month and graph, or fails naming the limit it would pass.
pub(crate) fn reserve(conn: &Connection, r: &Reservation) -> StoreResult<()> {
    let periods = periods(conn, r)?;
    for p in &periods {
        let (spent, reserved) = spend(conn, &p.key)?;
        let spent = spent + p.spent_elsewhere;
        if let Some(limit) = p.limit
            && spent + reserved + r.amount > limit + 1e-12
        {
            return Err(StoreError::BudgetExhausted {
                scope: p.scope.clone(),
                limit,
                spent,
                reserved,
                asked: r.amount,
            });
        }
    }
    add_spend(conn, &periods, 0.0, r.amount)
}

fn add_spend(conn: &Connection, periods: &[Period], spent: f64, reserved: f64) -> StoreResult<()> {
    let mut s = conn
        .prepare_cached(
            "INSERT INTO budget_spend (period, spent_usd, reserved_usd) VALUES (?1, ?2, max(?3, 0)) \
             ON CONFLICT (period) DO UPDATE SET spent_usd = spent_usd + excluded.spent_usd, \
             reserved_usd = max(reserved_usd + ?3, 0)",
        )
        .map_err(db_err)?;
    for p in periods {
        // A graph's spending is its cost_usd; its row keeps reservations only.
        let spent = if p.key.starts_with("graph:") { 0.0 } else { spent };
        s.execute(params![p.key, spent, reserved]).map_err(db_err)?;
    }
    Ok(())
}

/// Releases a reservation and spends the real cost.
pub(crate) fn settle(conn: &Connection, r: &Reservation, actual: f64) -> StoreResult<()> {
    let periods = periods(conn, r)?;
    add_spend(conn, &periods, actual, -r.amount)?;
    if let Some(id) = r.graph_id {
        conn.prepare_cached("UPDATE task_graphs SET cost_usd = cost_usd + ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id_text(id), actual]))
            .map_err(db_err)?;
    }
    Ok(())
}

pub(crate) fn set_limit(conn: &Connection, scope: BudgetScope, limit: Option<f64>) -> StoreResult<()> {
    match limit {
        Some(l) => conn
            .prepare_cached(
                "INSERT INTO budget_limits (scope, limit_usd) VALUES (?1, ?2) \
                 ON CONFLICT (scope) DO UPDATE SET limit_usd = excluded.limit_usd",
            )
            .and_then(|mut s| s.execute(params![scope.as_str(), l])),
        None => conn
            .prepare_cached("DELETE FROM budget_limits WHERE scope = ?1")
            .and_then(|mut s| s.execute([scope.as_str()])),
    }
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn budget(conn: &Connection, day: &str, month: &str) -> StoreResult<BudgetStatus> {
    let line = |scope: BudgetScope, period: &str, key: String| -> StoreResult<BudgetLine> {
        let (spent_usd, reserved_usd) = spend(conn, &key)?;
        Ok(BudgetLine { scope, period: period.to_string(), limit_usd: limit_of(conn, scope)?, spent_usd, reserved_usd })
    };
    Ok(BudgetStatus {
        daily: line(BudgetScope::Daily, day, format!("day:{day}"))?,
        monthly: line(BudgetScope::Monthly, month, format!("month:{month}"))?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sql::UPDATE_TASK;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::configure_common(&conn).unwrap();
        crate::schema::migrate(&mut conn, ":memory:").unwrap();
        conn
    }

    /// Column `col` of every row of `EXPLAIN [QUERY PLAN] sql`.
    fn explain(conn: &Connection, how: &str, sql: &str, col: usize) -> Vec<String> {
        let mut s = conn.prepare(&format!("EXPLAIN {how}{sql}")).unwrap();
        // Parameters left unbound (NULL): only the plan is wanted.
        let mut rows = s.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            out.push(r.get::<_, String>(col).unwrap());
        }
        out
    }

    /// What claiming and finishing tasks runs is found through indexes (no statement walks the tasks
    /// table), and what runs once per task (not once per claim) builds no temporary table.
    #[test]
    fn the_task_queue_uses_indexes_and_no_temporary_tables() {
        let conn = db();
        let per_claim = [CLAIM_READY, CLAIM_ABANDONED, CLAIM.as_str()];
        let per_task = [RELEASABLE.as_str(), RELEASE, GRAPH_OPEN, UPDATE_TASK];
        for sql in per_claim.into_iter().chain(per_task) {
            let plan = explain(&conn, "QUERY PLAN ", sql, 3);
            let walks =
                |step: &String| step.starts_with("SCAN") && !step.contains("json_each") && step != "SCAN CONSTANT ROW";
            assert!(!plan.iter().any(walks), "{sql}: {plan:?}");
        }
        for sql in per_task {
            // Nor every task of a status (what the planner picked for the dependents without CROSS JOIN).
            let plan = explain(&conn, "QUERY PLAN ", sql, 3);
            assert!(!plan.iter().any(|step| step.contains("(status=?)")), "{sql}: {plan:?}");
            let ops = explain(&conn, "", sql, 1);
            assert!(!ops.iter().any(|op| op == "OpenEphemeral" || op == "SorterOpen"), "{sql}: {ops:?}");
        }
    }

    /// Binding new times does not make SQLite compile a claim's statements again (it does when a bound
    /// value is compared with a partial index's condition).
    #[test]
    fn claims_are_not_compiled_again_for_each_time() {
        let conn = db();
        for sql in [CLAIM_READY, CLAIM_ABANDONED] {
            let mut s = conn.prepare(sql).unwrap();
            for i in 0..3 {
                let (now, stale) = (format!("2030-01-0{}T00:00:00Z", i + 1), "2029-01-01T00:00:00Z");
                let mut rows = match sql {
                    CLAIM_READY => s.query(params![None::<String>, now, 256]),
                    _ => s.query(params![None::<String>, now, stale, 256]),
                }
                .unwrap();
                while rows.next().unwrap().is_some() {}
            }
            assert_eq!(s.get_status(rusqlite::StatementStatus::RePrepare), 0, "{sql}");
        }
    }
}
