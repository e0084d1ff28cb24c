//! Rows ↔ entities and the statements of the entity operations (orchestrators, agents, prompts, chat,
//! system logs, workflows). Every statement names its tables with the schema (`{S}.table`).

use crate::sqlx;
use orch_core::store::{AgentFilter, StoreError, StoreResult, SystemLogQuery};
use orch_core::wire::{
    Agent, AgentRole, ChatMessage, Id, Orchestrator, Prompt, SystemLog, TemplateRef, Timestamp, Usage, WorkflowRecord,
    now,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx_postgres::PgConnection;

/// The store's connections and the quoted schema name every statement is written against.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    /// The pool's connections, those kept apart after clean work first.
    pub conns: std::sync::Arc<crate::conns::Conns>,
    /// `"schema"`.
    pub s: String,
}

impl Db {
    /// A statement with `{S}` replaced by the schema.
    pub fn sql(&self, template: &str) -> String {
        template.replace("{S}", &self.s)
    }
}

// ---- conversions ----

/// Maps a sqlx error met while running a statement.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Decode(e.to_string()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Backend("timed out waiting for a PostgreSQL connection from the pool".into())
        }
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default();
            StoreError::Backend(format!("PostgreSQL: {}{code}", db.message()))
        }
        other => StoreError::Backend(format!("PostgreSQL: {other}")),
    }
}

/// Key of the object that wraps JSON PostgreSQL cannot hold as `jsonb` (see [`json_param`]).
const WRAP_KEY: &str = "$orch_json";
/// How `jsonb` prints such a wrapper.
const WRAP_PREFIX: &str = "{\"$orch_json\": ";
/// How serde prints such a wrapper (and any object whose first key is `$orch_json`).
const WRAP_PREFIX_COMPACT: &str = "{\"$orch_json\":";

/// JSON text for a `jsonb` parameter (cast with `::jsonb` in the statement).
///
/// `jsonb` cannot hold the character U+0000 (a tool result with a NUL byte has it). Such a document is
/// stored as `{"$orch_json": "<its JSON text>"}` — a string, in which `\u0000` is six plain characters —
/// and unwrapped on reading ([`json_decode`]). A document that itself looks like the wrapper is wrapped
/// too, so reading is never ambiguous.
pub(crate) fn json_param<T: Serialize + ?Sized>(v: &T) -> StoreResult<String> {
    let text = serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))?;
    wrap_if_needed(text)
}

pub(crate) fn wrap_if_needed(text: String) -> StoreResult<String> {
    if text.contains("\\u0000") || text.starts_with(WRAP_PREFIX_COMPACT) {
        let mut m = serde_json::Map::new();
        m.insert(WRAP_KEY.to_string(), serde_json::Value::String(text));
        return serde_json::to_string(&m).map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")));
    }
    Ok(text)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    #[serde(rename = "$orch_json")]
    inner: String,
}

/// Decodes `jsonb` text written by [`json_param`].
pub(crate) fn json_decode<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    if text.starts_with(WRAP_PREFIX)
        && let Ok(w) = serde_json::from_str::<Wrapped>(text)
    {
        return serde_json::from_str(&w.inner);
    }
    serde_json::from_str(text)
}

fn decode_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Decode(format!("{what}: {e}"))
}

pub(crate) fn get<'r, T>(row: &'r PgRow, i: usize) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(i).map_err(db_err)
}

pub(crate) fn get_json<T: DeserializeOwned>(row: &PgRow, i: usize, what: &str) -> StoreResult<T> {
    let text: String = get(row, i)?;
    json_decode(&text).map_err(|e| decode_err(what, e))
}

fn get_opt_json<T: DeserializeOwned>(row: &PgRow, i: usize, what: &str) -> StoreResult<Option<T>> {
    let text: Option<String> = get(row, i)?;
    text.map(|t| json_decode(&t).map_err(|e| decode_err(what, e))).transpose()
}

pub(crate) fn get_u64(row: &PgRow, i: usize) -> StoreResult<u64> {
    let v: i64 = get(row, i)?;
    u64::try_from(v).map_err(|_| StoreError::Decode(format!("negative value {v} in column {i}")))
}

pub(crate) fn get_u32(row: &PgRow, i: usize) -> StoreResult<u32> {
    let v: i64 = get(row, i)?;
    u32::try_from(v).map_err(|_| StoreError::Decode(format!("value {v} in column {i} is out of range")))
}

pub(crate) fn get_enum<T: DeserializeOwned>(row: &PgRow, i: usize) -> StoreResult<T> {
    let s: String = get(row, i)?;
    serde_json::from_value(serde_json::Value::String(s.clone()))
        .map_err(|_| StoreError::Decode(format!("unknown value '{s}' in column {i}")))
}

fn get_usage(row: &PgRow, first: usize) -> StoreResult<Usage> {
    Ok(Usage {
        input_tokens: get_u64(row, first)?,
        output_tokens: get_u64(row, first + 1)?,
        cache_read_input_tokens: get_u64(row, first + 2)?,
        cache_creation_input_tokens: get_u64(row, first + 3)?,
    })
}

pub(crate) fn int(v: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} is too large to store")))
}

pub(crate) fn usage_params(u: &Usage) -> StoreResult<[i64; 4]> {
    Ok([
        int(u.input_tokens, "input_tokens")?,
        int(u.output_tokens, "output_tokens")?,
        int(u.cache_read_input_tokens, "cache_read_input_tokens")?,
        int(u.cache_creation_input_tokens, "cache_creation_input_tokens")?,
    ])
}

pub(crate) fn enum_text<T: Serialize>(v: &T) -> StoreResult<String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Ok(other.to_string()),
        Err(e) => Err(StoreError::Backend(format!("cannot encode value: {e}"))),
    }
}

pub(crate) fn not_found(what: &str, id: Id) -> StoreError {
    StoreError::NotFound { what: format!("{what} {id}") }
}

pub(crate) fn limit_param(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The current time at the precision PostgreSQL keeps (microseconds), so what a call returns equals what
/// is read back.
pub(crate) fn now_us() -> Timestamp {
    use chrono::SubsecRound;
    now().trunc_subsecs(6)
}

// ---- orchestrators ----

/// What an orchestrator is read as: its row, with the status and usage of its own agent (the agent named
/// `orchestrator` under it, which its turns run as), so those are stored once. An orchestrator without
/// that agent shows its row's own values.
const ORCH_VIEW: &str = "o.id, o.session_id, o.system_prompt, COALESCE(a.status, o.status), o.working_dir, \
     COALESCE(a.input_tokens, o.input_tokens), COALESCE(a.output_tokens, o.output_tokens), \
     COALESCE(a.cache_read_input_tokens, o.cache_read_input_tokens), \
     COALESCE(a.cache_creation_input_tokens, o.cache_creation_input_tokens), \
     COALESCE(a.total_cost_usd, o.total_cost_usd), o.metadata::text, o.archived, o.created_at, o.updated_at, \
     COALESCE(a.context_used, 0), a.context_window \
     FROM {S}.orchestrators o LEFT JOIN {S}.agents a \
     ON a.orchestrator_id = o.id AND a.name = 'orchestrator' AND NOT a.archived";

fn orchestrator_row(row: &PgRow) -> StoreResult<Orchestrator> {
    Ok(Orchestrator {
        id: get(row, 0)?,
        session_id: get(row, 1)?,
        system_prompt: get(row, 2)?,
        status: get_enum(row, 3)?,
        working_dir: get(row, 4)?,
        usage: get_usage(row, 5)?,
        total_cost_usd: get(row, 9)?,
        metadata: get_json(row, 10, "orchestrator metadata")?,
        archived: get(row, 11)?,
        created_at: get(row, 12)?,
        updated_at: get(row, 13)?,
        context_used: get_u64(row, 14)?,
        context_window: get::<Option<i64>>(row, 15)?.map(|w| u64::try_from(w).unwrap_or(0)),
    })
}

pub(crate) async fn create_orchestrator(db: &Db, conn: &mut PgConnection, o: &Orchestrator) -> StoreResult<()> {
    let u = usage_params(&o.usage)?;
    sqlx::query(&db.sql(
        "INSERT INTO {S}.orchestrators (id, session_id, system_prompt, status, working_dir, input_tokens, \
         output_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_cost_usd, metadata, archived, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14)",
    ))
    .bind(o.id)
    .bind(&o.session_id)
    .bind(&o.system_prompt)
    .bind(o.status.as_str())
    .bind(&o.working_dir)
    .bind(u[0])
    .bind(u[1])
    .bind(u[2])
    .bind(u[3])
    .bind(o.total_cost_usd)
    .bind(json_param(&o.metadata)?)
    .bind(o.archived)
    .bind(o.created_at)
    .bind(o.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get_orchestrator(db: &Db, id: Id) -> StoreResult<Option<Orchestrator>> {
    let row = sqlx::query(&db.sql(&format!("SELECT {ORCH_VIEW} WHERE o.id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    row.as_ref().map(orchestrator_row).transpose()
}

pub(crate) async fn list_orchestrators(db: &Db, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
    let rows = sqlx::query(
        &db.sql(&format!("SELECT {ORCH_VIEW} WHERE $1 OR NOT o.archived ORDER BY o.created_at DESC, o.id DESC")),
    )
    .bind(include_archived)
    .fetch_all(db)
    .await
    .map_err(db_err)?;
    rows.iter().map(orchestrator_row).collect()
}

pub(crate) async fn update_orchestrator(db: &Db, conn: &mut PgConnection, o: &Orchestrator) -> StoreResult<()> {
    let done = sqlx::query(&db.sql(
        "UPDATE {S}.orchestrators SET session_id = $2, system_prompt = $3, status = $4, working_dir = $5, \
         metadata = $6::jsonb, archived = $7, updated_at = $8 WHERE id = $1",
    ))
    .bind(o.id)
    .bind(&o.session_id)
    .bind(&o.system_prompt)
    .bind(o.status.as_str())
    .bind(&o.working_dir)
    .bind(json_param(&o.metadata)?)
    .bind(o.archived)
    .bind(now_us())
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found("orchestrator", o.id));
    }
    Ok(())
}

// ---- agents ----

const AGENT_COLS: &str = "id, orchestrator_id, name, model, system_prompt, working_dir, status, session_id, \
     role, input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_cost_usd, \
     metadata::text, workflow_id, workflow_step, archived, created_at, updated_at, run_lease::text, template_name, \
     template_color, tools::text, context_used, context_window, compact_at, parent_id";

fn agent_row(row: &PgRow) -> StoreResult<Agent> {
    Ok(Agent {
        id: get(row, 0)?,
        orchestrator_id: get(row, 1)?,
        name: get(row, 2)?,
        model: get(row, 3)?,
        system_prompt: get(row, 4)?,
        working_dir: get(row, 5)?,
        status: get_enum(row, 6)?,
        session_id: get(row, 7)?,
        role: AgentRole::parse(&get::<String>(row, 8)?),
        template: get::<Option<String>>(row, 21)?
            .map(|name| Ok::<_, StoreError>(TemplateRef { name, color: get(row, 22)? }))
            .transpose()?,
        tools: get_opt_json(row, 23, "agent tools")?,
        usage: get_usage(row, 9)?,
        total_cost_usd: get(row, 13)?,
        context_used: get_u64(row, 24)?,
        context_window: get::<Option<i64>>(row, 25)?.map(|w| u64::try_from(w).unwrap_or(0)),
        compact_at: get(row, 26)?,
        parent_id: get(row, 27)?,
        metadata: get_json(row, 14, "agent metadata")?,
        workflow_id: get(row, 15)?,
        workflow_step: get(row, 16)?,
        archived: get(row, 17)?,
        created_at: get(row, 18)?,
        updated_at: get(row, 19)?,
        run: get_opt_json(row, 20, "agent run lease")?,
    })
}

pub(crate) async fn get_agent(db: &Db, id: Id) -> StoreResult<Option<Agent>> {
    let row = sqlx::query(&db.sql(&format!("SELECT {AGENT_COLS} FROM {{S}}.agents WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    row.as_ref().map(agent_row).transpose()
}

pub(crate) async fn find_agent(db: &Db, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>> {
    // The same expression as the unique index, so the lookup is one index probe.
    let row = sqlx::query(&db.sql(&format!(
        "SELECT {AGENT_COLS} FROM {{S}}.agents \
         WHERE COALESCE(orchestrator_id::text, '') = $1 AND name = $2 AND NOT archived"
    )))
    .bind(orchestrator_id.map(|id| id.hyphenated().to_string()).unwrap_or_default())
    .bind(name)
    .fetch_optional(db)
    .await
    .map_err(db_err)?;
    row.as_ref().map(agent_row).transpose()
}

pub(crate) async fn list_agents(db: &Db, filter: &AgentFilter) -> StoreResult<Vec<Agent>> {
    // Separate statements, so each can use its index.
    let sql = format!(
        "SELECT {AGENT_COLS} FROM {{S}}.agents WHERE {} AND ($2 OR NOT archived) ORDER BY created_at DESC, id DESC",
        if filter.orchestrator_id.is_some() { "orchestrator_id = $1" } else { "$1::uuid IS NULL" }
    );
    let rows = sqlx::query(&db.sql(&sql))
        .bind(filter.orchestrator_id)
        .bind(filter.include_archived)
        .fetch_all(db)
        .await
        .map_err(db_err)?;
    rows.iter().map(agent_row).collect()
}

pub(crate) async fn load_executor_state(db: &Db, agent_id: Id) -> StoreResult<Option<serde_json::Value>> {
    let row = sqlx::query(&db.sql("SELECT state::text FROM {S}.agents WHERE id = $1"))
        .bind(agent_id)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    Ok(row.as_ref().map(|r| get_opt_json(r, 0, "agent state")).transpose()?.flatten())
}

pub(crate) async fn save_agent_state(
    db: &Db,
    conn: &mut PgConnection,
    id: Id,
    state: Option<&serde_json::Value>,
    session_id: Option<&str>,
) -> StoreResult<()> {
    let state = state.map(json_param).transpose()?;
    let done =
        sqlx::query(&db.sql("UPDATE {S}.agents SET state = $2::jsonb, session_id = $3, updated_at = $4 WHERE id = $1"))
            .bind(id)
            .bind(state)
            .bind(session_id)
            .bind(now_us())
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

pub(crate) async fn set_agent_metadata(
    db: &Db,
    conn: &mut PgConnection,
    id: Id,
    metadata: &serde_json::Value,
) -> StoreResult<()> {
    let done = sqlx::query(&db.sql("UPDATE {S}.agents SET metadata = $2::jsonb, updated_at = $3 WHERE id = $1"))
        .bind(id)
        .bind(json_param(metadata)?)
        .bind(now_us())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

pub(crate) async fn archive_agent(db: &Db, conn: &mut PgConnection, id: Id) -> StoreResult<()> {
    let done =
        sqlx::query(&db.sql("UPDATE {S}.agents SET archived = true, run_lease = NULL, updated_at = $2 WHERE id = $1"))
            .bind(id)
            .bind(now_us())
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

// ---- prompts, chat, system logs, workflows ----

pub(crate) async fn insert_prompt(db: &Db, conn: &mut PgConnection, p: &Prompt) -> StoreResult<()> {
    sqlx::query(&db.sql(
        "INSERT INTO {S}.prompts (id, agent_id, task_slug, author, prompt_text, summary, session_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    ))
    .bind(p.id)
    .bind(p.agent_id)
    .bind(&p.task_slug)
    .bind(enum_text(&p.author)?)
    .bind(&p.prompt_text)
    .bind(&p.summary)
    .bind(&p.session_id)
    .bind(p.created_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_prompts(db: &Db, agent_id: Id) -> StoreResult<Vec<Prompt>> {
    let rows = sqlx::query(&db.sql(
        "SELECT id, agent_id, task_slug, author, prompt_text, summary, session_id, created_at FROM {S}.prompts \
         WHERE agent_id = $1 ORDER BY created_at, ord",
    ))
    .bind(agent_id)
    .fetch_all(db)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(Prompt {
                id: get(row, 0)?,
                agent_id: get(row, 1)?,
                task_slug: get(row, 2)?,
                author: get_enum(row, 3)?,
                prompt_text: get(row, 4)?,
                summary: get(row, 5)?,
                session_id: get(row, 6)?,
                created_at: get(row, 7)?,
            })
        })
        .collect()
}

pub(crate) async fn insert_chat(db: &Db, conn: &mut PgConnection, m: &ChatMessage) -> StoreResult<()> {
    sqlx::query(&db.sql(
        "INSERT INTO {S}.chat (id, orchestrator_id, sender, receiver, agent_id, message, summary, metadata, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
    ))
    .bind(m.id)
    .bind(m.orchestrator_id)
    .bind(enum_text(&m.sender)?)
    .bind(enum_text(&m.receiver)?)
    .bind(m.agent_id)
    .bind(&m.message)
    .bind(&m.summary)
    .bind(json_param(&m.metadata)?)
    .bind(m.created_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_chat(db: &Db, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
    let rows = sqlx::query(&db.sql(
        "SELECT id, orchestrator_id, sender, receiver, agent_id, message, summary, metadata, created_at FROM \
         (SELECT id, orchestrator_id, sender, receiver, agent_id, message, summary, metadata::text, created_at, ord \
          FROM {S}.chat WHERE orchestrator_id = $1 ORDER BY created_at DESC, ord DESC LIMIT $2) latest \
         ORDER BY created_at, ord",
    ))
    .bind(orchestrator_id)
    .bind(limit_param(limit))
    .fetch_all(db)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(ChatMessage {
                id: get(row, 0)?,
                orchestrator_id: get(row, 1)?,
                sender: get_enum(row, 2)?,
                receiver: get_enum(row, 3)?,
                agent_id: get(row, 4)?,
                message: get(row, 5)?,
                summary: get(row, 6)?,
                metadata: get_json(row, 7, "chat metadata")?,
                created_at: get(row, 8)?,
            })
        })
        .collect()
}

pub(crate) async fn insert_system_log(db: &Db, conn: &mut PgConnection, l: &SystemLog) -> StoreResult<()> {
    sqlx::query(&db.sql(
        "INSERT INTO {S}.system_logs (id, level, message, message_folded, summary, file_path, workflow_id, \
         workflow_step, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)",
    ))
    .bind(l.id)
    .bind(l.level.as_str())
    .bind(&l.message)
    .bind(l.message.to_lowercase())
    .bind(&l.summary)
    .bind(&l.file_path)
    .bind(l.workflow_id)
    .bind(&l.workflow_step)
    .bind(json_param(&l.metadata)?)
    .bind(l.created_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn list_system_logs(db: &Db, q: &SystemLogQuery) -> StoreResult<Vec<SystemLog>> {
    let sql = format!(
        "SELECT id, level, message, summary, file_path, workflow_id, workflow_step, metadata::text, created_at \
         FROM {{S}}.system_logs WHERE {} AND ($2::text IS NULL OR strpos(message_folded, $2) > 0) \
         ORDER BY created_at DESC, ord DESC LIMIT $3 OFFSET $4",
        if q.level.is_some() { "level = $1" } else { "$1::text IS NULL" }
    );
    let rows = sqlx::query(&db.sql(&sql))
        .bind(q.level.map(|l| l.as_str()))
        .bind(q.message_contains.as_ref().map(|s| s.to_lowercase()))
        .bind(limit_param(q.limit))
        .bind(limit_param(q.offset))
        .fetch_all(db)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(SystemLog {
                id: get(row, 0)?,
                level: get_enum(row, 1)?,
                message: get(row, 2)?,
                summary: get(row, 3)?,
                file_path: get(row, 4)?,
                workflow_id: get(row, 5)?,
                workflow_step: get(row, 6)?,
                metadata: get_json(row, 7, "system log metadata")?,
                created_at: get(row, 8)?,
            })
        })
        .collect()
}

const WORKFLOW_COLS: &str = "id, orchestrator_id, name, workflow_type, description, status, current_step, \
     total_steps, completed_steps, started_at, completed_at, duration_seconds, input_data::text, output_data::text, \
     error_message, error_step, error_count, metadata::text, created_at, updated_at, run_lease::text";

fn workflow_row(row: &PgRow) -> StoreResult<WorkflowRecord> {
    let duration: Option<i64> = get(row, 11)?;
    Ok(WorkflowRecord {
        id: get(row, 0)?,
        orchestrator_id: get(row, 1)?,
        name: get(row, 2)?,
        workflow_type: get(row, 3)?,
        description: get(row, 4)?,
        status: get_enum(row, 5)?,
        current_step: get(row, 6)?,
        total_steps: get_u32(row, 7)?,
        completed_steps: get_u32(row, 8)?,
        started_at: get(row, 9)?,
        completed_at: get(row, 10)?,
        duration_seconds: duration
            .map(|d| u64::try_from(d).map_err(|_| StoreError::Decode(format!("negative duration {d}"))))
            .transpose()?,
        input_data: get_json(row, 12, "workflow input")?,
        output_data: get_json(row, 13, "workflow output")?,
        error_message: get(row, 14)?,
        error_step: get(row, 15)?,
        error_count: get_u32(row, 16)?,
        metadata: get_json(row, 17, "workflow metadata")?,
        created_at: get(row, 18)?,
        updated_at: get(row, 19)?,
        run: get_opt_json(row, 20, "workflow run lease")?,
    })
}

pub(crate) async fn upsert_workflow(db: &Db, conn: &mut PgConnection, w: &WorkflowRecord) -> StoreResult<()> {
    let duration = w.duration_seconds.map(|d| int(d, "duration_seconds")).transpose()?;
    sqlx::query(&db.sql(
        "INSERT INTO {S}.workflows (id, orchestrator_id, name, workflow_type, description, status, current_step, \
         total_steps, completed_steps, started_at, completed_at, duration_seconds, input_data, output_data, \
         error_message, error_step, error_count, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, \
         $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb, $15, $16, $17, $18::jsonb, $19, $20) \
         ON CONFLICT (id) DO UPDATE SET orchestrator_id = excluded.orchestrator_id, name = excluded.name, \
         workflow_type = excluded.workflow_type, description = excluded.description, status = excluded.status, \
         current_step = excluded.current_step, total_steps = excluded.total_steps, \
         completed_steps = excluded.completed_steps, started_at = excluded.started_at, \
         completed_at = excluded.completed_at, duration_seconds = excluded.duration_seconds, \
         input_data = excluded.input_data, output_data = excluded.output_data, \
         error_message = excluded.error_message, error_step = excluded.error_step, \
         error_count = excluded.error_count, metadata = excluded.metadata, created_at = excluded.created_at, \
         updated_at = excluded.updated_at",
    ))
    .bind(w.id)
    .bind(w.orchestrator_id)
    .bind(&w.name)
    .bind(&w.workflow_type)
    .bind(&w.description)
    .bind(enum_text(&w.status)?)
    .bind(&w.current_step)
    .bind(i64::from(w.total_steps))
    .bind(i64::from(w.completed_steps))
    .bind(w.started_at)
    .bind(w.completed_at)
    .bind(duration)
    .bind(json_param(&w.input_data)?)
    .bind(json_param(&w.output_data)?)
    .bind(&w.error_message)
    .bind(&w.error_step)
    .bind(i64::from(w.error_count))
    .bind(json_param(&w.metadata)?)
    .bind(w.created_at)
    .bind(w.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn get_workflow(db: &Db, id: Id) -> StoreResult<Option<WorkflowRecord>> {
    let row = sqlx::query(&db.sql(&format!("SELECT {WORKFLOW_COLS} FROM {{S}}.workflows WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    row.as_ref().map(workflow_row).transpose()
}

pub(crate) async fn list_workflows(
    db: &Db,
    orchestrator_id: Option<Id>,
    limit: usize,
) -> StoreResult<Vec<WorkflowRecord>> {
    let sql = format!(
        "SELECT {WORKFLOW_COLS} FROM {{S}}.workflows WHERE {} ORDER BY created_at DESC, id DESC LIMIT $2",
        if orchestrator_id.is_some() { "orchestrator_id = $1" } else { "$1::uuid IS NULL" }
    );
    let rows = sqlx::query(&db.sql(&sql))
        .bind(orchestrator_id)
        .bind(limit_param(limit))
        .fetch_all(db)
        .await
        .map_err(db_err)?;
    rows.iter().map(workflow_row).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_wrapped_and_unwrapped() {
        let v = serde_json::json!({"out": "a\u{0}b", "n": 1});
        let text = json_param(&v).unwrap();
        // The document is now one string: its `\u0000` escape is plain text, preceded by an escaped backslash.
        let outer: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(outer.len(), 1);
        assert!(outer[WRAP_KEY].as_str().unwrap().contains("\\u0000"), "{text}");
        assert!(!outer[WRAP_KEY].as_str().unwrap().contains('\0'), "{text}");
        // jsonb prints the wrapper with a space after the colon.
        let as_jsonb = text.replacen("{\"$orch_json\":", "{\"$orch_json\": ", 1);
        assert_eq!(json_decode::<serde_json::Value>(&as_jsonb).unwrap(), v);
    }

    #[test]
    fn lookalikes_of_the_wrapper_round_trip() {
        for v in [
            serde_json::json!({"$orch_json": "{\"x\": 1}"}),
            serde_json::json!({"$orch_json": 5}),
            serde_json::json!({"$orch_json": "s", "other": 1}),
            serde_json::json!("plain"),
        ] {
            let text = json_param(&v).unwrap();
            let as_jsonb = text.replacen("{\"$orch_json\":", "{\"$orch_json\": ", 1);
            assert_eq!(json_decode::<serde_json::Value>(&as_jsonb).unwrap(), v, "{text}");
        }
    }
}
