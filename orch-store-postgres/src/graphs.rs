//! Statements of plans, task graphs and tasks. Every statement names its tables with the schema.

use orch_core::store::{Change, StoreError, StoreResult};
use orch_core::wire::{Id, Plan, Task, TaskGraph, Timestamp};
use sqlx::postgres::PgRow;
use sqlx_postgres::PgConnection;

use crate::sql::{Db, db_err, enum_text, get, get_enum, get_json, get_u32, json_param, limit_param, not_found};
use crate::sqlx;

fn get_opt_u32(row: &PgRow, i: usize) -> StoreResult<Option<u32>> {
    let v: Option<i64> = get(row, i)?;
    v.map(|v| u32::try_from(v).map_err(|_| StoreError::Decode(format!("value {v} in column {i} is out of range"))))
        .transpose()
}

// ---- plans ----

const PLAN_COLS: &str =
    "id, version, status, requirements, tasks::text, model, source_file, cost_usd, created_at, updated_at";

fn plan_row(row: &PgRow) -> StoreResult<Plan> {
    Ok(Plan {
        id: get(row, 0)?,
        version: get_u32(row, 1)?,
        status: get_enum(row, 2)?,
        requirements: get(row, 3)?,
        tasks: get_json(row, 4, "plan tasks")?,
        model: get(row, 5)?,
        source_file: get(row, 6)?,
        cost_usd: get(row, 7)?,
        created_at: get(row, 8)?,
        updated_at: get(row, 9)?,
    })
}

/// Inserts a new plan version; a version the plan has is [`StoreError::Duplicate`].
pub(crate) async fn insert_plan(db: &Db, conn: &mut PgConnection, p: &Plan) -> StoreResult<()> {
    let tasks = json_param(&p.tasks)?;
    write_plan(db, conn, p, tasks, "").await.map_err(|e| match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
            StoreError::Duplicate { what: format!("plan {} version {}", p.id, p.version) }
        }
        _ => db_err(e),
    })
}

/// Inserts a plan version or replaces the row of its id and version.
pub(crate) async fn upsert_plan(db: &Db, conn: &mut PgConnection, p: &Plan) -> StoreResult<()> {
    let tasks = json_param(&p.tasks)?;
    write_plan(
        db,
        conn,
        p,
        tasks,
        " ON CONFLICT (id, version) DO UPDATE SET status = excluded.status, requirements = excluded.requirements, \
         tasks = excluded.tasks, model = excluded.model, source_file = excluded.source_file, \
         cost_usd = excluded.cost_usd, created_at = excluded.created_at, updated_at = excluded.updated_at",
    )
    .await
    .map_err(db_err)
}

/// `tasks`: the plan's tasks as `jsonb` text ([`json_param`]).
async fn write_plan(
    db: &Db,
    conn: &mut PgConnection,
    p: &Plan,
    tasks: String,
    on_conflict: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&db.sql(&format!(
        "INSERT INTO {{S}}.plans (id, version, status, requirements, tasks, model, source_file, cost_usd, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10){on_conflict}"
    )))
    .bind(p.id)
    .bind(i64::from(p.version))
    .bind(p.status.as_str())
    .bind(&p.requirements)
    .bind(tasks)
    .bind(&p.model)
    .bind(&p.source_file)
    .bind(p.cost_usd)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn get_plan(db: &Db, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>> {
    let sql = match version {
        Some(_) => format!("SELECT {PLAN_COLS} FROM {{S}}.plans WHERE id = $1 AND version = $2"),
        None => format!(
            "SELECT {PLAN_COLS} FROM {{S}}.plans WHERE id = $1 AND $2::bigint IS NULL ORDER BY version DESC LIMIT 1"
        ),
    };
    let row =
        sqlx::query(&db.sql(&sql)).bind(id).bind(version.map(i64::from)).fetch_optional(db).await.map_err(db_err)?;
    row.as_ref().map(plan_row).transpose()
}

pub(crate) async fn list_plans(db: &Db, limit: usize) -> StoreResult<Vec<Plan>> {
    let sql = format!(
        "SELECT {PLAN_COLS} FROM (SELECT DISTINCT ON (id) * FROM {{S}}.plans ORDER BY id, version DESC) p \
         ORDER BY created_at DESC, id DESC LIMIT $1"
    );
    let rows = sqlx::query(&db.sql(&sql)).bind(limit_param(limit)).fetch_all(db).await.map_err(db_err)?;
    rows.iter().map(plan_row).collect()
}

// ---- graphs ----

pub(crate) const GRAPH_COLS: &str = "id, name, plan_id, plan_version, status, total_tasks, waves, budget_usd, cost_usd, error, \
     created_at, updated_at, started_at, completed_at";

pub(crate) fn graph_row(row: &PgRow) -> StoreResult<TaskGraph> {
    Ok(TaskGraph {
        id: get(row, 0)?,
        name: get(row, 1)?,
        plan_id: get(row, 2)?,
        plan_version: get_opt_u32(row, 3)?,
        status: get_enum(row, 4)?,
        total_tasks: get_u32(row, 5)?,
        waves: get_u32(row, 6)?,
        budget_usd: get(row, 7)?,
        cost_usd: get(row, 8)?,
        error: get(row, 9)?,
        created_at: get(row, 10)?,
        updated_at: get(row, 11)?,
        started_at: get(row, 12)?,
        completed_at: get(row, 13)?,
    })
}

/// Inserts a graph or replaces its row, keeping a stored graph's spending (`cost_usd`, which only
/// [`Change::SettleBudget`](orch_core::store::Change::SettleBudget) adds to).
pub(crate) async fn upsert_graph(db: &Db, conn: &mut PgConnection, g: &TaskGraph) -> StoreResult<()> {
    sqlx::query(&db.sql(&format!(
        "INSERT INTO {{S}}.task_graphs ({GRAPH_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, plan_id = excluded.plan_id, \
         plan_version = excluded.plan_version, status = excluded.status, total_tasks = excluded.total_tasks, \
         waves = excluded.waves, budget_usd = excluded.budget_usd, \
         error = excluded.error, created_at = excluded.created_at, updated_at = excluded.updated_at, \
         started_at = excluded.started_at, completed_at = excluded.completed_at"
    )))
    .bind(g.id)
    .bind(&g.name)
    .bind(g.plan_id)
    .bind(g.plan_version.map(i64::from))
    .bind(enum_text(&g.status)?)
    .bind(i64::from(g.total_tasks))
    .bind(i64::from(g.waves))
    .bind(g.budget_usd)
    .bind(g.cost_usd)
    .bind(&g.error)
    .bind(g.created_at)
    .bind(g.updated_at)
    .bind(g.started_at)
    .bind(g.completed_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get_graph(db: &Db, id: Id) -> StoreResult<Option<TaskGraph>> {
    let row = sqlx::query(&db.sql(&format!("SELECT {GRAPH_COLS} FROM {{S}}.task_graphs WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    row.as_ref().map(graph_row).transpose()
}

pub(crate) async fn list_graphs(db: &Db, limit: usize) -> StoreResult<Vec<TaskGraph>> {
    let sql = format!("SELECT {GRAPH_COLS} FROM {{S}}.task_graphs ORDER BY created_at DESC, id DESC LIMIT $1");
    let rows = sqlx::query(&db.sql(&sql)).bind(limit_param(limit)).fetch_all(db).await.map_err(db_err)?;
    rows.iter().map(graph_row).collect()
}

// ---- tasks ----

pub(crate) const TASK_COLS: &str = "id, graph_id, idx, key, title, description, task_type, complexity, tools::text, \
     verification::text, depends_on::text, wave, status, attempt, model, claimed_by, lease_until, not_before, \
     agent_id, cost_usd, output, error, created_at, updated_at, started_at, completed_at, failures, checkpoint, \
     guidance::text, knowledge::text, estimated_cost_usd, estimated_minutes";

pub(crate) fn task_row(row: &PgRow) -> StoreResult<Task> {
    Ok(Task {
        id: get(row, 0)?,
        graph_id: get(row, 1)?,
        index: get_u32(row, 2)?,
        key: get(row, 3)?,
        title: get(row, 4)?,
        description: get(row, 5)?,
        task_type: get(row, 6)?,
        complexity: get_enum(row, 7)?,
        tools: get_json(row, 8, "task tools")?,
        verification: get_json(row, 9, "task verification")?,
        estimated_cost_usd: get(row, 30)?,
        estimated_minutes: get(row, 31)?,
        depends_on: get_json(row, 10, "task dependencies")?,
        wave: get_u32(row, 11)?,
        status: get_enum(row, 12)?,
        attempt: get_u32(row, 13)?,
        model: get(row, 14)?,
        claimed_by: get(row, 15)?,
        lease_until: get(row, 16)?,
        not_before: get(row, 17)?,
        agent_id: get(row, 18)?,
        cost_usd: get(row, 19)?,
        output: get(row, 20)?,
        error: get(row, 21)?,
        created_at: get(row, 22)?,
        updated_at: get(row, 23)?,
        started_at: get(row, 24)?,
        completed_at: get(row, 25)?,
        failures: get_u32(row, 26)?,
        checkpoint: get(row, 27)?,
        guidance: get_json(row, 28, "task guidance")?,
        knowledge: get_json(row, 29, "task knowledge")?,
    })
}

/// Fewest tasks one commit inserts for [`analyze_after_insert`] to refresh the planner's statistics.
pub(crate) const ANALYZE_AFTER: usize = 100;

/// Refreshes the planner's statistics of `tasks` and `task_deps` after a commit that inserted at least
/// [`ANALYZE_AFTER`] tasks, on `conn` (outside any transaction).
///
/// Autovacuum analyzes a table only after a while (a minute by default, and once a tenth of it
/// changed), and a graph usually runs as soon as it is created. Until then the planner sees a table
/// without the new graph's thousands of pending tasks, and plans the worker's hot statements (claims,
/// releasing dependents, task updates) as scans of every pending task: each cost milliseconds instead
/// of microseconds for the whole first minute of a large graph. Best effort: a failure is logged.
pub(crate) async fn analyze_after_insert<'a>(
    db: &Db,
    conn: &mut PgConnection,
    changes: impl Iterator<Item = &'a Change>,
) {
    let inserted: usize = changes
        .map(|c| match c {
            Change::InsertTasks(tasks) => tasks.len(),
            _ => 0,
        })
        .sum();
    if inserted < ANALYZE_AFTER {
        return;
    }
    let started = std::time::Instant::now();
    match sqlx::query(&db.sql("ANALYZE {S}.tasks, {S}.task_deps")).execute(&mut *conn).await {
        Ok(_) => tracing::debug!(inserted, took = ?started.elapsed(), "analyzed tasks after inserting a graph"),
        Err(e) => tracing::warn!(error = %e, inserted, "could not analyze the tasks table after inserting tasks"),
    }
}

/// Inserts tasks and their dependency edges, each in one statement over arrays (a graph of thousands of
/// tasks is two round trips); a taken id or key is [`StoreError::Duplicate`].
pub(crate) async fn insert_tasks(db: &Db, conn: &mut PgConnection, tasks: &[Task]) -> StoreResult<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let mut c = TaskColumns::default();
    for t in tasks {
        c.push(t)?;
    }
    let insert = db.sql(&format!(
        "INSERT INTO {{S}}.tasks ({}) SELECT id, graph_id, idx, key, title, description, task_type, complexity, \
         tools::jsonb, verification::jsonb, depends_on::jsonb, wave, status, attempt, model, claimed_by, \
         lease_until, not_before, agent_id, cost_usd, output, error, created_at, updated_at, started_at, \
         completed_at, failures, checkpoint, guidance::jsonb, knowledge::jsonb, estimated_cost_usd, \
         estimated_minutes \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::timestamptz[], \
         ${e}::float8[], ${m}::float8[], {}) \
         AS t(id, graph_id, idx, key, title, description, task_type, complexity, tools, verification, depends_on, \
         wave, created_at, estimated_cost_usd, estimated_minutes, {})",
        TASK_COLS.replace("::text", ""),
        ProgressColumns::params(16),
        ProgressColumns::NAMES,
        e = 14,
        m = 15,
    ));
    let first = &tasks[0];
    let query = sqlx::query(&insert)
        .bind(&c.id)
        .bind(&c.graph_id)
        .bind(&c.index)
        .bind(&c.key)
        .bind(&c.title)
        .bind(&c.description)
        .bind(&c.task_type)
        .bind(&c.complexity)
        .bind(&c.tools)
        .bind(&c.verification)
        .bind(&c.depends_on)
        .bind(&c.wave)
        .bind(&c.created_at)
        .bind(&c.estimated_cost_usd)
        .bind(&c.estimated_minutes);
    c.progress.bind(query).execute(&mut *conn).await.map_err(|e| duplicate_or(e, tasks, first))?;
    let (children, parents): (Vec<Id>, Vec<Id>) =
        tasks.iter().flat_map(|t| t.depends_on.iter().map(move |d| (t.id, *d))).unzip();
    if !children.is_empty() {
        sqlx::query(&db.sql(
            "INSERT INTO {S}.task_deps (task_id, depends_on) SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) \
             ON CONFLICT DO NOTHING",
        ))
        .bind(&children)
        .bind(&parents)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// The progress of tasks (what an attempt writes: every column but the definition fixed at insert),
/// column by column, for statements over arrays: inserts of tasks ([`TaskColumns`]) and fenced
/// updates of many at once ([`write_progress`]).
#[derive(Default)]
struct ProgressColumns {
    status: Vec<String>,
    attempt: Vec<i64>,
    model: Vec<Option<String>>,
    claimed_by: Vec<Option<String>>,
    lease_until: Vec<Option<Timestamp>>,
    not_before: Vec<Option<Timestamp>>,
    agent_id: Vec<Option<Id>>,
    cost_usd: Vec<f64>,
    output: Vec<Option<String>>,
    error: Vec<Option<String>>,
    updated_at: Vec<Timestamp>,
    started_at: Vec<Option<Timestamp>>,
    completed_at: Vec<Option<Timestamp>>,
    failures: Vec<i64>,
    checkpoint: Vec<Option<String>>,
    guidance: Vec<String>,
    knowledge: Vec<String>,
}

impl ProgressColumns {
    /// The columns' names, in the order [`ProgressColumns::bind`] binds them (`guidance` and
    /// `knowledge` are `jsonb` text).
    const NAMES: &'static str = "status, attempt, model, claimed_by, lease_until, not_before, agent_id, \
         cost_usd, output, error, updated_at, started_at, completed_at, failures, checkpoint, guidance, knowledge";

    /// The typed array parameters `$first`… of the columns, for `UNNEST(…)`.
    fn params(first: usize) -> String {
        const TYPES: [&str; 17] = [
            "text",
            "bigint",
            "text",
            "text",
            "timestamptz",
            "timestamptz",
            "uuid",
            "float8",
            "text",
            "text",
            "timestamptz",
            "timestamptz",
            "timestamptz",
            "bigint",
            "text",
            "text",
            "text",
        ];
        TYPES.iter().enumerate().map(|(i, t)| format!("${}::{t}[]", first + i)).collect::<Vec<_>>().join(", ")
    }

    fn push(&mut self, t: &Task) -> StoreResult<()> {
        self.status.push(enum_text(&t.status)?);
        self.attempt.push(i64::from(t.attempt));
        self.model.push(t.model.clone());
        self.claimed_by.push(t.claimed_by.clone());
        self.lease_until.push(t.lease_until);
        self.not_before.push(t.not_before);
        self.agent_id.push(t.agent_id);
        self.cost_usd.push(t.cost_usd);
        self.output.push(t.output.clone());
        self.error.push(t.error.clone());
        self.updated_at.push(t.updated_at);
        self.started_at.push(t.started_at);
        self.completed_at.push(t.completed_at);
        self.failures.push(i64::from(t.failures));
        self.checkpoint.push(t.checkpoint.clone());
        self.guidance.push(json_param(&t.guidance)?);
        self.knowledge.push(json_param(&t.knowledge)?);
        Ok(())
    }

    /// Binds the columns, in the order of [`ProgressColumns::NAMES`].
    fn bind<'q>(
        &'q self,
        query: sqlx_core::query::Query<'q, sqlx::Postgres, sqlx_postgres::PgArguments>,
    ) -> sqlx_core::query::Query<'q, sqlx::Postgres, sqlx_postgres::PgArguments> {
        query
            .bind(&self.status)
            .bind(&self.attempt)
            .bind(&self.model)
            .bind(&self.claimed_by)
            .bind(&self.lease_until)
            .bind(&self.not_before)
            .bind(&self.agent_id)
            .bind(&self.cost_usd)
            .bind(&self.output)
            .bind(&self.error)
            .bind(&self.updated_at)
            .bind(&self.started_at)
            .bind(&self.completed_at)
            .bind(&self.failures)
            .bind(&self.checkpoint)
            .bind(&self.guidance)
            .bind(&self.knowledge)
    }
}

/// The tasks of one insert, column by column: their definition, then their progress.
#[derive(Default)]
struct TaskColumns {
    id: Vec<Id>,
    graph_id: Vec<Id>,
    index: Vec<i64>,
    key: Vec<String>,
    title: Vec<String>,
    description: Vec<String>,
    task_type: Vec<String>,
    complexity: Vec<String>,
    tools: Vec<String>,
    verification: Vec<String>,
    depends_on: Vec<String>,
    wave: Vec<i64>,
    created_at: Vec<Timestamp>,
    estimated_cost_usd: Vec<Option<f64>>,
    estimated_minutes: Vec<Option<f64>>,
    progress: ProgressColumns,
}

impl TaskColumns {
    fn push(&mut self, t: &Task) -> StoreResult<()> {
        self.id.push(t.id);
        self.graph_id.push(t.graph_id);
        self.index.push(i64::from(t.index));
        self.key.push(t.key.clone());
        self.title.push(t.title.clone());
        self.description.push(t.description.clone());
        self.task_type.push(t.task_type.clone());
        self.complexity.push(enum_text(&t.complexity)?);
        self.tools.push(json_param(&t.tools)?);
        self.verification.push(json_param(&t.verification)?);
        self.depends_on.push(json_param(&t.depends_on)?);
        self.wave.push(i64::from(t.wave));
        self.created_at.push(t.created_at);
        self.estimated_cost_usd.push(t.estimated_cost_usd);
        self.estimated_minutes.push(t.estimated_minutes);
        self.progress.push(t)
    }
}

fn duplicate_or(e: sqlx::Error, tasks: &[Task], first: &Task) -> StoreError {
    let (constraint, detail) = match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
            let detail =
                d.try_downcast_ref::<sqlx_postgres::PgDatabaseError>().and_then(|p| p.detail()).map(str::to_string);
            (d.constraint().map(str::to_string), detail.unwrap_or_default())
        }
        _ => return db_err(e),
    };
    // The detail names the duplicate value (`Key (graph_id, key)=(…, task-1) already exists.`): name
    // the task it belongs to.
    let culprit =
        tasks.iter().find(|t| detail.contains(&format!(", {})", t.key)) || detail.contains(&t.id.to_string()));
    let t = culprit.unwrap_or(first);
    let what = match constraint.as_deref() {
        Some("tasks_graph_key") => format!("task key '{}' in graph {}", t.key, t.graph_id),
        _ => format!("task {}", t.id),
    };
    StoreError::Duplicate { what }
}

/// Writes a task's progress, at attempt `fence` only when given; returns the task's graph.
pub(crate) async fn update_task(db: &Db, conn: &mut PgConnection, t: &Task, fence: Option<u32>) -> StoreResult<Id> {
    let graph_id: Option<Id> = sqlx::query_scalar(&db.sql(
        "UPDATE {S}.tasks SET status = $2, attempt = $3, model = $4, claimed_by = $5, lease_until = $6, \
         not_before = $7, agent_id = $8, cost_usd = $9, output = $10, error = $11, updated_at = $12, \
         started_at = $13, completed_at = $14, failures = $16, checkpoint = $17, guidance = $18::jsonb, \
         knowledge = $19::jsonb WHERE id = $1 AND ($15::bigint IS NULL OR attempt = $15) RETURNING graph_id",
    ))
    .bind(t.id)
    .bind(enum_text(&t.status)?)
    .bind(i64::from(t.attempt))
    .bind(&t.model)
    .bind(&t.claimed_by)
    .bind(t.lease_until)
    .bind(t.not_before)
    .bind(t.agent_id)
    .bind(t.cost_usd)
    .bind(&t.output)
    .bind(&t.error)
    .bind(t.updated_at)
    .bind(t.started_at)
    .bind(t.completed_at)
    .bind(fence.map(i64::from))
    .bind(i64::from(t.failures))
    .bind(&t.checkpoint)
    .bind(json_param(&t.guidance)?)
    .bind(json_param(&t.knowledge)?)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if let Some(graph_id) = graph_id {
        return Ok(graph_id);
    }
    // Nothing written: the task is missing, or at another attempt.
    let found: Option<i64> = sqlx::query_scalar(&db.sql("SELECT attempt FROM {S}.tasks WHERE id = $1"))
        .bind(t.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    match (found, fence) {
        (Some(found), Some(expected)) => {
            Err(StoreError::Fenced { task_id: t.id, expected, found: u32::try_from(found).unwrap_or(u32::MAX) })
        }
        _ => Err(not_found("task", t.id)),
    }
}

/// Writes the progress of several tasks (distinct) in one statement, each at attempt `fence` only
/// when given, as [`update_task`] does one. On failure, the index of the first task that could not be
/// written (fenced or missing) and why; the caller rolls the transaction back.
pub(crate) async fn write_progress(
    db: &Db,
    conn: &mut PgConnection,
    tasks: &[(&Task, Option<u32>)],
) -> Result<(), (usize, StoreError)> {
    let progress = Progress::of(tasks).map_err(|e| (0, e))?;
    let sql = db.sql(&Progress::update(1));
    let rows = progress.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await.map_err(|e| (0, db_err(e)))?;
    check_written(db, conn, tasks, &rows).await
}

/// The fenced update of [`write_progress`], to be run by one statement with another's parameters
/// before its own.
pub(crate) struct Progress {
    ids: Vec<Id>,
    fences: Vec<Option<i64>>,
    columns: ProgressColumns,
}

impl Progress {
    pub(crate) fn of(tasks: &[(&Task, Option<u32>)]) -> StoreResult<Self> {
        let mut p = Progress { ids: Vec::new(), fences: Vec::new(), columns: ProgressColumns::default() };
        for (t, fence) in tasks {
            p.ids.push(t.id);
            p.fences.push(fence.map(i64::from));
            p.columns.push(t)?;
        }
        Ok(p)
    }

    /// The `UPDATE` (returning the ids written), its parameters numbered from `$first`.
    pub(crate) fn update(first: usize) -> String {
        format!(
            "UPDATE {{S}}.tasks t SET status = u.status, attempt = u.attempt, model = u.model, \
             claimed_by = u.claimed_by, lease_until = u.lease_until, not_before = u.not_before, \
             agent_id = u.agent_id, cost_usd = u.cost_usd, output = u.output, error = u.error, \
             updated_at = u.updated_at, started_at = u.started_at, completed_at = u.completed_at, \
             failures = u.failures, checkpoint = u.checkpoint, guidance = u.guidance::jsonb, \
             knowledge = u.knowledge::jsonb \
             FROM UNNEST(${}::uuid[], ${}::bigint[], {}) AS u(id, fence, {}) \
             WHERE t.id = u.id AND (u.fence IS NULL OR t.attempt = u.fence) RETURNING t.id",
            first,
            first + 1,
            ProgressColumns::params(first + 2),
            ProgressColumns::NAMES,
        )
    }

    /// Binds the parameters of [`Progress::update`] after those `query` has.
    pub(crate) fn bind<'q>(
        &'q self,
        query: sqlx_core::query::Query<'q, sqlx::Postgres, sqlx_postgres::PgArguments>,
    ) -> sqlx_core::query::Query<'q, sqlx::Postgres, sqlx_postgres::PgArguments> {
        self.columns.bind(query.bind(&self.ids).bind(&self.fences))
    }
}

/// Whether the rows [`Progress::update`] returned are all of `tasks`; if not, the index of the first
/// missing and why (the error [`update_task`] gives).
pub(crate) async fn check_written(
    db: &Db,
    conn: &mut PgConnection,
    tasks: &[(&Task, Option<u32>)],
    rows: &[PgRow],
) -> Result<(), (usize, StoreError)> {
    let written: Vec<Id> = rows.iter().map(|row| get(row, 0)).collect::<StoreResult<_>>().map_err(|e| (0, e))?;
    if written.len() == tasks.len() {
        return Ok(());
    }
    let (i, (t, fence)) = tasks
        .iter()
        .enumerate()
        .find(|(_, (t, _))| !written.contains(&t.id))
        .ok_or_else(|| (0, StoreError::Backend("a task was written twice in one statement".into())))?;
    let found: Option<i64> = sqlx::query_scalar(&db.sql("SELECT attempt FROM {S}.tasks WHERE id = $1"))
        .bind(t.id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| (i, db_err(e)))?;
    Err((
        i,
        match (found, fence) {
            (Some(found), Some(expected)) => StoreError::Fenced {
                task_id: t.id,
                expected: *expected,
                found: u32::try_from(found).unwrap_or(u32::MAX),
            },
            _ => not_found("task", t.id),
        },
    ))
}

pub(crate) async fn get_task(db: &Db, id: Id) -> StoreResult<Option<Task>> {
    let row = sqlx::query(&db.sql(&format!("SELECT {TASK_COLS} FROM {{S}}.tasks WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    row.as_ref().map(task_row).transpose()
}

pub(crate) async fn list_tasks(db: &Db, graph_id: Id) -> StoreResult<Vec<Task>> {
    let sql = format!("SELECT {TASK_COLS} FROM {{S}}.tasks WHERE graph_id = $1 ORDER BY idx, id");
    let rows = sqlx::query(&db.sql(&sql)).bind(graph_id).fetch_all(db).await.map_err(db_err)?;
    rows.iter().map(task_row).collect()
}

/// The facts of the completed tasks of a graph that reported some, task by task in index order.
pub(crate) async fn graph_facts(db: &Db, graph_id: Id) -> StoreResult<Vec<orch_core::wire::Fact>> {
    let sql = "SELECT knowledge::text FROM {S}.tasks WHERE graph_id = $1 AND status = 'completed' \
               AND knowledge <> '[]'::jsonb ORDER BY idx, id";
    let rows = sqlx::query(&db.sql(sql)).bind(graph_id).fetch_all(db).await.map_err(db_err)?;
    let mut facts = Vec::new();
    for row in &rows {
        facts.extend(get_json::<Vec<orch_core::wire::Fact>>(row, 0, "task knowledge")?);
    }
    Ok(facts)
}

/// The tasks of a graph named by key, id or index (see `Store::find_tasks`), by index: through the
/// graph's unique index of keys, the primary key and the index of positions. Only the lookups some
/// name can match are in the statement (most names are keys): a condition over an empty list would
/// still have to be planned, and was seen planned as a scan of every open task of the graph.
pub(crate) async fn find_tasks(db: &Db, graph_id: Id, names: &[String]) -> StoreResult<Vec<Task>> {
    let ids: Vec<Id> = names.iter().filter_map(|n| n.parse::<Id>().ok()).collect();
    let positions: Vec<i64> = names.iter().filter_map(|n| n.parse::<u32>().ok()).map(i64::from).collect();
    let mut lookups = vec!["key = ANY($2::text[])".to_string()];
    if !ids.is_empty() {
        lookups.push(format!("id = ANY(${}::uuid[])", lookups.len() + 2));
    }
    if !positions.is_empty() {
        lookups.push(format!("idx = ANY(${}::bigint[])", lookups.len() + 2));
    }
    let sql = format!(
        "SELECT {TASK_COLS} FROM {{S}}.tasks WHERE graph_id = $1 AND ({}) ORDER BY idx, id",
        lookups.join(" OR ")
    );
    let sql = db.sql(&sql);
    let mut query = sqlx::query(&sql).bind(graph_id).bind(names);
    if !ids.is_empty() {
        query = query.bind(&ids);
    }
    if !positions.is_empty() {
        query = query.bind(&positions);
    }
    let rows = query.fetch_all(db).await.map_err(db_err)?;
    rows.iter().map(task_row).collect()
}
