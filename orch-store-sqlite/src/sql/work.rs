//! Statements of running task graphs: claims, finished tasks and the dependents they release, graph
//! status, worker heartbeats, budget reservations and limits. They run on the one writer connection, so
//! each is alone in its transaction: no two claims ever see the same ready task.

use orch_core::store::{StoreError, StoreResult};
use orch_core::wire::{
    BudgetLine, BudgetScope, BudgetStatus, Event, EventKeys, GraphStatus, Id, NewEvent, Reservation, Task, TaskClaim,
    TaskGraph, WorkerInfo, now,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    GRAPH_COLS, TASK_COLS, db_err, get_graph, get_ts, get_u32, graph_row, id_text, not_found, task_row, ts_text,
    update_task,
};

fn task_event(t: Task) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::TaskUpdated { task: Box::new(t) })
}

fn graph_event(g: TaskGraph) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g) })
}

/// Claims due tasks by wave and index (as [`TaskClaim`] says): ready tasks whose `not_before` passed, and
/// attempts whose worker is gone or whose deadline passed (taken over), all of running graphs. Returns a
/// `TaskUpdated` event per claimed task.
pub(crate) fn claim_tasks(conn: &Connection, c: &TaskClaim) -> StoreResult<Vec<NewEvent>> {
    let now_s = ts_text(c.now);
    let graph = c.graph_id.map(id_text);
    let ids = {
        let mut due = conn
            .prepare_cached(
                "SELECT t.id FROM tasks t JOIN task_graphs g ON g.id = t.graph_id \
                 WHERE g.status = 'running' AND (?1 IS NULL OR t.graph_id = ?1) AND (\
                 (t.status = 'ready' AND (t.not_before IS NULL OR t.not_before <= ?2)) \
                 OR (t.status = 'running' AND (t.lease_until < ?2 OR ((t.started_at IS NULL OR t.started_at < ?3) \
                 AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = t.claimed_by AND w.heartbeat_at >= ?3))))) \
                 ORDER BY t.wave, t.idx, t.id LIMIT ?4",
            )
            .map_err(db_err)?;
        let rows = due
            .query_map(params![graph, now_s, ts_text(c.stale_before), i64::from(c.limit)], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(db_err)?
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut update = conn
        .prepare_cached(&format!(
            "UPDATE tasks SET status = 'running', attempt = attempt + 1, claimed_by = ?2, lease_until = ?3, \
             not_before = NULL, started_at = ?4, updated_at = ?4 WHERE id = ?1 RETURNING {TASK_COLS}"
        ))
        .map_err(db_err)?;
    let deadline = ts_text(c.deadline);
    let mut events = Vec::with_capacity(ids.len());
    for id in &ids {
        let t = update.query_row(params![id, c.worker, deadline, now_s], task_row).map_err(db_err)?;
        events.push(task_event(t));
    }
    Ok(events)
}

/// Writes a finished attempt (fenced), releases the dependents it completes, and ends its graph when no
/// work is left. Returns the events of the released tasks and the ended graph.
pub(crate) fn finish_task(conn: &Connection, task: &Task, fence: u32) -> StoreResult<Vec<NewEvent>> {
    update_task(conn, task, Some(fence))?;
    let mut events = Vec::new();
    if task.status.releases_dependents() {
        let mut release = conn
            .prepare_cached(&format!(
                "UPDATE tasks SET status = 'ready', updated_at = ?2 WHERE status = 'pending' \
                 AND id IN (SELECT task_id FROM task_deps WHERE depends_on = ?1) \
                 AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks p ON p.id = d.depends_on \
                 WHERE d.task_id = tasks.id AND p.status NOT IN ('completed', 'skipped')) RETURNING {TASK_COLS}"
            ))
            .map_err(db_err)?;
        let rows = release.query_map(params![id_text(task.id), ts_text(now())], task_row).map_err(db_err)?;
        let mut released = rows.collect::<rusqlite::Result<Vec<Task>>>().map_err(db_err)?;
        released.sort_by_key(|t| t.id);
        events.extend(released.into_iter().map(task_event));
    }
    if let Some(g) = end_graph_if_done(conn, task.graph_id)? {
        events.push(graph_event(g));
    }
    Ok(events)
}

/// Ends a running graph without open tasks: completed, or failed when a task failed.
fn end_graph_if_done(conn: &Connection, graph_id: Id) -> StoreResult<Option<TaskGraph>> {
    let gid = id_text(graph_id);
    let open: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE graph_id = ?1 \
             AND status IN ('pending', 'ready', 'running', 'blocked'))",
        )
        .and_then(|mut s| s.query_row([&gid], |r| r.get(0)))
        .map_err(db_err)?;
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

pub(crate) fn heartbeat(conn: &Connection, w: &WorkerInfo) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO workers (id, host, pid, concurrency, started_at, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (id) DO UPDATE SET concurrency = excluded.concurrency, heartbeat_at = excluded.heartbeat_at",
    )
    .and_then(|mut s| {
        s.execute(params![w.id, w.host, w.pid, w.concurrency, ts_text(w.started_at), ts_text(w.heartbeat_at)])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn remove_worker(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM workers WHERE id = ?1").and_then(|mut s| s.execute([id])).map_err(db_err)?;
    Ok(())
}

pub(crate) fn list_workers(conn: &Connection) -> StoreResult<Vec<WorkerInfo>> {
    let mut s = conn
        .prepare_cached(
            "SELECT id, host, pid, concurrency, started_at, heartbeat_at FROM workers ORDER BY heartbeat_at DESC, id",
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
