//! Statements of plans, task graphs and tasks.

use orch_core::store::{StoreError, StoreResult};
use orch_core::wire::{Complexity, Id, Plan, Task, TaskGraph, TaskStatus};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use super::{
    conv, db_err, enum_text, get_enum, get_id, get_json_list, get_known, get_opt_id, get_opt_ts, get_ts, get_u32,
    id_text, limit_param, not_found, opt_id_text, opt_ts_text, ts_text,
};

// ---- plans ----

const PLAN_COLS: &str =
    "id, version, status, requirements, tasks, model, source_file, cost_usd, created_at, updated_at";

fn plan_row(row: &Row<'_>) -> rusqlite::Result<Plan> {
    let tasks: String = row.get(4)?;
    Ok(Plan {
        id: get_id(row, 0)?,
        version: get_u32(row, 1)?,
        status: get_enum(row, 2)?,
        requirements: row.get(3)?,
        tasks: conv(4, serde_json::from_str(&tasks))?,
        model: row.get(5)?,
        source_file: row.get(6)?,
        cost_usd: row.get(7)?,
        created_at: get_ts(row, 8)?,
        updated_at: get_ts(row, 9)?,
    })
}

/// Inserts a new plan version; a version the plan has is [`StoreError::Duplicate`].
pub(crate) fn insert_plan(conn: &Connection, p: &Plan) -> StoreResult<()> {
    write_plan(conn, p, &plan_tasks(p)?, "").map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => {
            StoreError::Duplicate { what: format!("plan {} version {}", p.id, p.version) }
        }
        _ => db_err(e),
    })
}

/// Inserts a plan version or replaces the row of its id and version.
pub(crate) fn upsert_plan(conn: &Connection, p: &Plan) -> StoreResult<()> {
    write_plan(
        conn,
        p,
        &plan_tasks(p)?,
        " ON CONFLICT (id, version) DO UPDATE SET status = excluded.status, requirements = excluded.requirements, \
         tasks = excluded.tasks, model = excluded.model, source_file = excluded.source_file, \
         cost_usd = excluded.cost_usd, created_at = excluded.created_at, updated_at = excluded.updated_at",
    )
    .map_err(db_err)
}

fn plan_tasks(p: &Plan) -> StoreResult<String> {
    serde_json::to_string(&p.tasks).map_err(|e| StoreError::Backend(format!("cannot encode plan: {e}")))
}

/// `tasks`: the plan's tasks as JSON text.
fn write_plan(conn: &Connection, p: &Plan, tasks: &str, on_conflict: &str) -> rusqlite::Result<()> {
    let status = p.status.as_str();
    conn.prepare_cached(&format!(
        "INSERT INTO plans ({PLAN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10){on_conflict}"
    ))?
    .execute(params![
        id_text(p.id),
        p.version,
        status,
        p.requirements,
        tasks,
        p.model,
        p.source_file,
        p.cost_usd,
        ts_text(p.created_at),
        ts_text(p.updated_at),
    ])?;
    Ok(())
}

pub(crate) fn get_plan(conn: &Connection, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>> {
    let sql = match version {
        Some(_) => format!("SELECT {PLAN_COLS} FROM plans WHERE id = ?1 AND version = ?2"),
        None => format!("SELECT {PLAN_COLS} FROM plans WHERE id = ?1 AND ?2 IS NULL ORDER BY version DESC LIMIT 1"),
    };
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params![id_text(id), version], plan_row).optional())
        .map_err(db_err)
}

pub(crate) fn list_plans(conn: &Connection, limit: usize) -> StoreResult<Vec<Plan>> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {PLAN_COLS} FROM plans p WHERE version = (SELECT max(version) FROM plans WHERE id = p.id) \
             ORDER BY created_at DESC, id DESC LIMIT ?1"
        ))
        .map_err(db_err)?;
    let rows = s.query_map([limit_param(limit)], plan_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

// ---- graphs ----

pub(crate) const GRAPH_COLS: &str = "id, name, plan_id, plan_version, status, total_tasks, waves, budget_usd, cost_usd, error, \
     created_at, updated_at, started_at, completed_at";

pub(crate) fn graph_row(row: &Row<'_>) -> rusqlite::Result<TaskGraph> {
    let plan_version: Option<i64> = row.get(3)?;
    Ok(TaskGraph {
        id: get_id(row, 0)?,
        name: row.get(1)?,
        plan_id: get_opt_id(row, 2)?,
        plan_version: plan_version.map(|v| conv(3, u32::try_from(v))).transpose()?,
        status: get_enum(row, 4)?,
        total_tasks: get_u32(row, 5)?,
        waves: get_u32(row, 6)?,
        budget_usd: row.get(7)?,
        cost_usd: row.get(8)?,
        error: row.get(9)?,
        created_at: get_ts(row, 10)?,
        updated_at: get_ts(row, 11)?,
        started_at: get_opt_ts(row, 12)?,
        completed_at: get_opt_ts(row, 13)?,
    })
}

pub(crate) fn upsert_graph(conn: &Connection, g: &TaskGraph) -> StoreResult<()> {
    let status = enum_text(&g.status)?;
    conn.prepare_cached(&format!(
        "INSERT INTO task_graphs ({GRAPH_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, plan_id = excluded.plan_id, \
         plan_version = excluded.plan_version, status = excluded.status, total_tasks = excluded.total_tasks, \
         waves = excluded.waves, budget_usd = excluded.budget_usd, \
         error = excluded.error, created_at = excluded.created_at, updated_at = excluded.updated_at, \
         started_at = excluded.started_at, completed_at = excluded.completed_at"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(g.id),
            g.name,
            opt_id_text(g.plan_id),
            g.plan_version,
            status,
            g.total_tasks,
            g.waves,
            g.budget_usd,
            g.cost_usd,
            g.error,
            ts_text(g.created_at),
            ts_text(g.updated_at),
            opt_ts_text(g.started_at),
            opt_ts_text(g.completed_at),
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn get_graph(conn: &Connection, id: Id) -> StoreResult<Option<TaskGraph>> {
    conn.prepare_cached(&format!("SELECT {GRAPH_COLS} FROM task_graphs WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id_text(id)], graph_row).optional())
        .map_err(db_err)
}

pub(crate) fn list_graphs(conn: &Connection, limit: usize) -> StoreResult<Vec<TaskGraph>> {
    let mut s = conn
        .prepare_cached(&format!("SELECT {GRAPH_COLS} FROM task_graphs ORDER BY created_at DESC, id DESC LIMIT ?1"))
        .map_err(db_err)?;
    let rows = s.query_map([limit_param(limit)], graph_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

// ---- tasks ----

pub(crate) const TASK_COLS: &str = "id, graph_id, idx, key, title, description, task_type, complexity, tools, verification, \
     depends_on, wave, status, attempt, model, claimed_by, lease_until, not_before, agent_id, cost_usd, output, \
     error, created_at, updated_at, started_at, completed_at, failures, checkpoint, guidance, knowledge, \
     estimated_cost_usd, estimated_minutes";

/// [`TASK_COLS`], each qualified by a table alias (`t.id, t.graph_id, …`), for joins.
pub(crate) fn task_cols_of(alias: &str) -> String {
    TASK_COLS.split(',').map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// Every task status, for reading rows without a serde round trip.
const STATUSES: [TaskStatus; 8] = [
    TaskStatus::Pending,
    TaskStatus::Ready,
    TaskStatus::Running,
    TaskStatus::Completed,
    TaskStatus::Failed,
    TaskStatus::Skipped,
    TaskStatus::Blocked,
    TaskStatus::Cancelled,
];

/// Every complexity, likewise.
const COMPLEXITIES: [Complexity; 3] = [Complexity::Simple, Complexity::Medium, Complexity::Complex];

pub(crate) fn task_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: get_id(row, 0)?,
        graph_id: get_id(row, 1)?,
        index: get_u32(row, 2)?,
        key: row.get(3)?,
        title: row.get(4)?,
        description: row.get(5)?,
        task_type: row.get(6)?,
        complexity: get_known(row, 7, &COMPLEXITIES, Complexity::as_str)?,
        tools: get_json_list(row, 8)?,
        verification: get_json_list(row, 9)?,
        estimated_cost_usd: row.get(30)?,
        estimated_minutes: row.get(31)?,
        depends_on: get_json_list(row, 10)?,
        wave: get_u32(row, 11)?,
        status: get_known(row, 12, &STATUSES, TaskStatus::as_str)?,
        attempt: get_u32(row, 13)?,
        model: row.get(14)?,
        claimed_by: row.get(15)?,
        lease_until: get_opt_ts(row, 16)?,
        not_before: get_opt_ts(row, 17)?,
        agent_id: get_opt_id(row, 18)?,
        cost_usd: row.get(19)?,
        output: row.get(20)?,
        error: row.get(21)?,
        created_at: get_ts(row, 22)?,
        updated_at: get_ts(row, 23)?,
        started_at: get_opt_ts(row, 24)?,
        completed_at: get_opt_ts(row, 25)?,
        failures: get_u32(row, 26)?,
        checkpoint: row.get(27)?,
        guidance: get_json_list(row, 28)?,
        knowledge: get_json_list(row, 29)?,
    })
}

fn list_text<T: serde::Serialize>(v: &[T]) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("cannot encode task: {e}")))
}

/// Inserts tasks and their dependency edges; a taken id or key is [`StoreError::Duplicate`].
pub(crate) fn insert_tasks(conn: &Connection, tasks: &[Task]) -> StoreResult<()> {
    let mut insert = conn
        .prepare_cached(&format!(
            "INSERT INTO tasks ({TASK_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)"
        ))
        .map_err(db_err)?;
    let mut edge =
        conn.prepare_cached("INSERT OR IGNORE INTO task_deps (task_id, depends_on) VALUES (?1, ?2)").map_err(db_err)?;
    for t in tasks {
        let id = id_text(t.id);
        insert
            .execute(params![
                id,
                id_text(t.graph_id),
                t.index,
                t.key,
                t.title,
                t.description,
                t.task_type,
                enum_text(&t.complexity)?,
                list_text(&t.tools)?,
                list_text(&t.verification)?,
                list_text(&t.depends_on)?,
                t.wave,
                enum_text(&t.status)?,
                t.attempt,
                t.model,
                t.claimed_by,
                opt_ts_text(t.lease_until),
                opt_ts_text(t.not_before),
                opt_id_text(t.agent_id),
                t.cost_usd,
                t.output,
                t.error,
                ts_text(t.created_at),
                ts_text(t.updated_at),
                opt_ts_text(t.started_at),
                opt_ts_text(t.completed_at),
                t.failures,
                t.checkpoint,
                list_text(&t.guidance)?,
                list_text(&t.knowledge)?,
                t.estimated_cost_usd,
                t.estimated_minutes,
            ])
            .map_err(|e| duplicate_or(e, t))?;
        for dep in &t.depends_on {
            edge.execute(params![id, id_text(*dep)]).map_err(db_err)?;
        }
    }
    Ok(())
}

fn duplicate_or(e: rusqlite::Error, t: &Task) -> StoreError {
    if e.sqlite_error_code() != Some(ErrorCode::ConstraintViolation) {
        return db_err(e);
    }
    let what = if e.to_string().contains("tasks.key") {
        format!("task key '{}' in graph {}", t.key, t.graph_id)
    } else {
        format!("task {}", t.id)
    };
    StoreError::Duplicate { what }
}

/// Writes task `?1`'s progress, at attempt `?15` only when given (the fence: rows changed tell).
pub(crate) const UPDATE_TASK: &str = "UPDATE tasks SET status = ?2, attempt = ?3, model = ?4, claimed_by = ?5, \
    lease_until = ?6, not_before = ?7, agent_id = ?8, cost_usd = ?9, output = ?10, error = ?11, updated_at = ?12, \
    started_at = ?13, completed_at = ?14, failures = ?16, checkpoint = ?17, guidance = ?18, knowledge = ?19 \
    WHERE id = ?1 AND (?15 IS NULL OR attempt = ?15)";

/// Writes a task's progress, at attempt `fence` only when given.
pub(crate) fn update_task(conn: &Connection, t: &Task, fence: Option<u32>) -> StoreResult<()> {
    let status = t.status.as_str();
    let (guidance, knowledge) = (list_text(&t.guidance)?, list_text(&t.knowledge)?);
    let n = conn
        .prepare_cached(UPDATE_TASK)
        .and_then(|mut s| {
            s.execute(params![
                id_text(t.id),
                status,
                t.attempt,
                t.model,
                t.claimed_by,
                opt_ts_text(t.lease_until),
                opt_ts_text(t.not_before),
                opt_id_text(t.agent_id),
                t.cost_usd,
                t.output,
                t.error,
                ts_text(t.updated_at),
                opt_ts_text(t.started_at),
                opt_ts_text(t.completed_at),
                fence,
                t.failures,
                t.checkpoint,
                guidance,
                knowledge,
            ])
        })
        .map_err(db_err)?;
    if n == 1 {
        return Ok(());
    }
    // Nothing written: the task is missing, or at another attempt.
    let found: Option<i64> = conn
        .prepare_cached("SELECT attempt FROM tasks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id_text(t.id)], |r| r.get(0)).optional())
        .map_err(db_err)?;
    match (found, fence) {
        (Some(found), Some(expected)) => {
            Err(StoreError::Fenced { task_id: t.id, expected, found: u32::try_from(found).unwrap_or(u32::MAX) })
        }
        _ => Err(not_found("task", t.id)),
    }
}

pub(crate) fn get_task(conn: &Connection, id: Id) -> StoreResult<Option<Task>> {
    conn.prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id_text(id)], task_row).optional())
        .map_err(db_err)
}

/// The statement of [`find_tasks`]: `?1` the graph, `?2` the keys, `?3` the ids, `?4` the positions
/// (JSON arrays). `CROSS JOIN` keeps the names as the outer loop, each looked up in an index; the
/// order is by position in TASK_COLS (idx, then id), as a compound select's terms must be.
static FIND_TASKS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let cols = task_cols_of("t");
    format!(
        "SELECT {cols} FROM json_each(?2) AS j CROSS JOIN tasks AS t ON t.graph_id = ?1 AND t.key = j.value \
         UNION SELECT {cols} FROM json_each(?3) AS j CROSS JOIN tasks AS t ON t.id = j.value AND t.graph_id = ?1 \
         UNION SELECT {cols} FROM json_each(?4) AS j CROSS JOIN tasks AS t ON t.graph_id = ?1 AND t.idx = j.value \
         ORDER BY 3, 1"
    )
});

/// The tasks of a graph named by key, id or index (see `Store::find_tasks`), by index: through the
/// graph's unique index of keys, the primary key and the index of positions, one lookup per name.
/// (Written as one condition of three `IN`s, SQLite's planner read every task of the graph instead.)
pub(crate) fn find_tasks(conn: &Connection, graph_id: Id, names: &[String]) -> StoreResult<Vec<Task>> {
    let ids: Vec<String> = names.iter().filter_map(|n| n.parse::<Id>().ok()).map(id_text).collect();
    let positions: Vec<u32> = names.iter().filter_map(|n| n.parse::<u32>().ok()).collect();
    let mut s = conn.prepare_cached(FIND_TASKS.as_str()).map_err(db_err)?;
    let text = |v: serde_json::Result<String>| v.map_err(|e| StoreError::Backend(format!("cannot encode names: {e}")));
    let names = text(serde_json::to_string(names))?;
    let (ids, positions) = (text(serde_json::to_string(&ids))?, text(serde_json::to_string(&positions))?);
    let rows = s.query_map(params![id_text(graph_id), names, ids, positions], task_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

/// The facts of the completed tasks of a graph that reported some, task by task in index order.
pub(crate) fn graph_facts(conn: &Connection, graph_id: Id) -> StoreResult<Vec<orch_core::wire::Fact>> {
    let mut s = conn
        .prepare_cached(
            "SELECT knowledge FROM tasks WHERE graph_id = ?1 AND status = 'completed' AND knowledge <> '[]' \
             ORDER BY idx, id",
        )
        .map_err(db_err)?;
    let rows =
        s.query_map([id_text(graph_id)], |row| get_json_list::<orch_core::wire::Fact>(row, 0)).map_err(db_err)?;
    let lists = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?;
    Ok(lists.into_iter().flatten().collect())
}

pub(crate) fn list_tasks(conn: &Connection, graph_id: Id) -> StoreResult<Vec<Task>> {
    let mut s = conn
        .prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE graph_id = ?1 ORDER BY idx, id"))
        .map_err(db_err)?;
    let rows = s.query_map([id_text(graph_id)], task_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Finding a few tasks of a graph by name looks each up in an index: it never reads the graph's
    /// tasks one after another (as the planner chose for one condition of three `IN`s).
    #[test]
    fn finding_tasks_by_name_reads_no_other_task() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::configure_common(&conn).unwrap();
        crate::schema::migrate(&mut conn, ":memory:").unwrap();
        let mut s = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", FIND_TASKS.as_str())).unwrap();
        let mut rows = s.raw_query();
        let mut plan = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            plan.push(r.get::<_, String>(3).unwrap());
        }
        let lookups = plan.iter().filter(|step| step.starts_with("SEARCH t USING")).count();
        assert_eq!(lookups, 3, "{plan:?}");
        let by_graph_only = |step: &&String| step.contains("(graph_id=?)") || (step.starts_with("SCAN t"));
        assert!(!plan.iter().any(|step| by_graph_only(&step)), "{plan:?}");
    }
}
