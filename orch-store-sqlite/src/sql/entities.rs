//! Statements of the entities: orchestrators, agents, prompts, chat, system logs, workflows.

use orch_core::store::{AgentFilter, StoreError, StoreResult, SystemLogQuery};
use orch_core::wire::{
    Agent, AgentRole, ChatMessage, Id, Orchestrator, Prompt, RunLease, SystemLog, TemplateRef, WorkflowRecord, now,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;

use super::{
    conv, db_err, enum_text, get_enum, get_id, get_json, get_opt_id, get_opt_json, get_opt_ts, get_ts, get_u32,
    get_u64, get_usage, id_text, int, json_text, lease_text, limit_param, not_found, opt_id_text, opt_ts_text, ts_text,
    usage_params,
};

// ---- orchestrators ----

const ORCH_COLS: &str = "id, session_id, system_prompt, status, working_dir, input_tokens, output_tokens, \
     cache_read_input_tokens, cache_creation_input_tokens, total_cost_usd, metadata, archived, created_at, updated_at";

/// What an orchestrator is read as: its row, with the status and usage of its own agent (the agent named
/// `orchestrator` under it, which its turns run as), so those are stored once. An orchestrator without
/// that agent shows its row's own values.
const ORCH_VIEW: &str = "o.id, o.session_id, o.system_prompt, COALESCE(a.status, o.status), o.working_dir, \
     COALESCE(a.input_tokens, o.input_tokens), COALESCE(a.output_tokens, o.output_tokens), \
     COALESCE(a.cache_read_input_tokens, o.cache_read_input_tokens), \
     COALESCE(a.cache_creation_input_tokens, o.cache_creation_input_tokens), \
     COALESCE(a.total_cost_usd, o.total_cost_usd), o.metadata, o.archived, o.created_at, o.updated_at, \
     COALESCE(a.context_used, 0), a.context_window \
     FROM orchestrators o LEFT JOIN agents a \
     ON a.orchestrator_id = o.id AND a.name = 'orchestrator' AND a.archived = 0";

fn orchestrator_row(row: &Row<'_>) -> rusqlite::Result<Orchestrator> {
    Ok(Orchestrator {
        id: get_id(row, 0)?,
        session_id: row.get(1)?,
        system_prompt: row.get(2)?,
        status: get_enum(row, 3)?,
        working_dir: row.get(4)?,
        usage: get_usage(row, 5)?,
        total_cost_usd: row.get(9)?,
        metadata: get_json(row, 10)?,
        archived: row.get(11)?,
        created_at: get_ts(row, 12)?,
        updated_at: get_ts(row, 13)?,
        context_used: get_u64(row, 14)?,
        context_window: row.get::<_, Option<i64>>(15)?.map(|w| u64::try_from(w).unwrap_or(0)),
    })
}

pub(crate) fn create_orchestrator(conn: &Connection, o: &Orchestrator) -> StoreResult<()> {
    let u = usage_params(&o.usage)?;
    conn.prepare_cached(&format!(
        "INSERT INTO orchestrators ({ORCH_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(o.id),
            o.session_id,
            o.system_prompt,
            o.status.as_str(),
            o.working_dir,
            u[0],
            u[1],
            u[2],
            u[3],
            o.total_cost_usd,
            json_text(&o.metadata).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
            o.archived,
            ts_text(o.created_at),
            ts_text(o.updated_at),
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn get_orchestrator(conn: &Connection, id: Id) -> StoreResult<Option<Orchestrator>> {
    conn.prepare_cached(&format!("SELECT {ORCH_VIEW} WHERE o.id = ?1"))
        .and_then(|mut s| s.query_row([id_text(id)], orchestrator_row).optional())
        .map_err(db_err)
}

pub(crate) fn list_orchestrators(conn: &Connection, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
    let mut s = conn
        .prepare_cached(&format!("SELECT {ORCH_VIEW} WHERE ?1 OR o.archived = 0 ORDER BY o.created_at DESC, o.id DESC"))
        .map_err(db_err)?;
    let rows = s.query_map([include_archived], orchestrator_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub(crate) fn update_orchestrator(conn: &Connection, o: &Orchestrator) -> StoreResult<()> {
    let n = conn
        .prepare_cached(
            "UPDATE orchestrators SET session_id = ?2, system_prompt = ?3, status = ?4, working_dir = ?5, \
             metadata = ?6, archived = ?7, updated_at = ?8 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                id_text(o.id),
                o.session_id,
                o.system_prompt,
                o.status.as_str(),
                o.working_dir,
                json_text(&o.metadata).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                o.archived,
                ts_text(now()),
            ])
        })
        .map_err(db_err)?;
    if n == 0 {
        return Err(not_found("orchestrator", o.id));
    }
    Ok(())
}

// ---- agents ----

const AGENT_COLS: &str = "id, orchestrator_id, name, model, system_prompt, working_dir, status, session_id, role, \
     input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_cost_usd, metadata, \
     workflow_id, workflow_step, archived, created_at, updated_at, run_lease, template_name, template_color, tools, \
     context_used, context_window, compact_at, parent_id";

fn agent_row(row: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: get_id(row, 0)?,
        orchestrator_id: get_opt_id(row, 1)?,
        name: row.get(2)?,
        model: row.get(3)?,
        system_prompt: row.get(4)?,
        working_dir: row.get(5)?,
        status: get_enum(row, 6)?,
        session_id: row.get(7)?,
        role: AgentRole::parse(&row.get::<_, String>(8)?),
        template: row
            .get::<_, Option<String>>(21)?
            .map(|name| Ok::<_, rusqlite::Error>(TemplateRef { name, color: row.get(22)? }))
            .transpose()?,
        tools: get_opt_json(row, 23)?.map(|v| conv(23, serde_json::from_value::<Vec<String>>(v))).transpose()?,
        usage: get_usage(row, 9)?,
        total_cost_usd: row.get(13)?,
        context_used: get_u64(row, 24)?,
        context_window: row.get::<_, Option<i64>>(25)?.map(|w| u64::try_from(w).unwrap_or(0)),
        compact_at: row.get(26)?,
        parent_id: get_opt_id(row, 27)?,
        metadata: get_json(row, 14)?,
        workflow_id: get_opt_id(row, 15)?,
        workflow_step: row.get(16)?,
        archived: row.get(17)?,
        created_at: get_ts(row, 18)?,
        updated_at: get_ts(row, 19)?,
        run: get_opt_json(row, 20)?.map(|v| conv(20, serde_json::from_value::<RunLease>(v))).transpose()?,
    })
}

pub(crate) fn create_agent(conn: &Connection, a: &Agent) -> StoreResult<()> {
    let u = usage_params(&a.usage)?;
    let tools = a.tools.as_ref().map(|t| json_text(&serde_json::json!(t))).transpose()?;
    let metadata = json_text(&a.metadata)?;
    let run = a.run.as_ref().map(lease_text).transpose()?;
    let res = conn
        .prepare_cached(&format!(
            "INSERT INTO agents ({AGENT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                id_text(a.id),
                opt_id_text(a.orchestrator_id),
                a.name,
                a.model,
                a.system_prompt,
                a.working_dir,
                a.status.as_str(),
                a.session_id,
                a.role.as_str(),
                u[0],
                u[1],
                u[2],
                u[3],
                a.total_cost_usd,
                metadata,
                opt_id_text(a.workflow_id),
                a.workflow_step,
                a.archived,
                ts_text(a.created_at),
                ts_text(a.updated_at),
                run,
                a.template.as_ref().map(|t| t.name.as_str()),
                a.template.as_ref().and_then(|t| t.color.as_deref()),
                tools,
                i64::try_from(a.context_used).unwrap_or(i64::MAX),
                a.context_window.map(|w| i64::try_from(w).unwrap_or(i64::MAX)),
                a.compact_at,
                opt_id_text(a.parent_id),
            ])
        });
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, Some(msg)))
            if f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains("agents_live_name") =>
        {
            Err(StoreError::NameTaken { name: a.name.clone() })
        }
        Err(e) => Err(db_err(e)),
    }
}

pub(crate) fn get_agent(conn: &Connection, id: Id) -> StoreResult<Option<Agent>> {
    conn.prepare_cached(&format!("SELECT {AGENT_COLS} FROM agents WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id_text(id)], agent_row).optional())
        .map_err(db_err)
}

pub(crate) fn find_agent(conn: &Connection, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>> {
    conn.prepare_cached(&format!(
        "SELECT {AGENT_COLS} FROM agents \
         WHERE COALESCE(orchestrator_id, '') = COALESCE(?1, '') AND name = ?2 AND archived = 0"
    ))
    .and_then(|mut s| s.query_row(params![opt_id_text(orchestrator_id), name], agent_row).optional())
    .map_err(db_err)
}

pub(crate) fn list_agents(conn: &Connection, filter: &AgentFilter) -> StoreResult<Vec<Agent>> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {AGENT_COLS} FROM agents WHERE {} AND (?2 OR archived = 0) ORDER BY created_at DESC, id DESC",
            // Separate statements, so each can use its index.
            if filter.orchestrator_id.is_some() { "orchestrator_id = ?1" } else { "?1 IS NULL" }
        ))
        .map_err(db_err)?;
    let rows = s
        .query_map(params![opt_id_text(filter.orchestrator_id), filter.include_archived], agent_row)
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub(crate) fn load_executor_state(conn: &Connection, agent_id: Id) -> StoreResult<Option<Value>> {
    conn.prepare_cached("SELECT state FROM agents WHERE id = ?1")
        .and_then(|mut s| s.query_row([id_text(agent_id)], |row| get_opt_json(row, 0)).optional())
        .map(Option::flatten)
        .map_err(db_err)
}

pub(crate) fn set_agent_metadata(conn: &Connection, id: Id, metadata: &Value) -> StoreResult<()> {
    let metadata = json_text(metadata)?;
    let n = conn
        .prepare_cached("UPDATE agents SET metadata = ?2, updated_at = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id_text(id), metadata, ts_text(now())]))
        .map_err(db_err)?;
    if n == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

pub(crate) fn archive_agent(conn: &Connection, id: Id) -> StoreResult<()> {
    let n = conn
        .prepare_cached("UPDATE agents SET archived = 1, run_lease = NULL, updated_at = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id_text(id), ts_text(now())]))
        .map_err(db_err)?;
    if n == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

// ---- prompts, chat, system logs, workflows ----

const PROMPT_COLS: &str = "id, agent_id, task_slug, author, prompt_text, summary, session_id, created_at";

pub(crate) fn insert_prompt(conn: &Connection, p: &Prompt) -> StoreResult<()> {
    let author = enum_text(&p.author)?;
    conn.prepare_cached(&format!("INSERT INTO prompts ({PROMPT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))
        .and_then(|mut s| {
            s.execute(params![
                id_text(p.id),
                opt_id_text(p.agent_id),
                p.task_slug,
                author,
                p.prompt_text,
                p.summary,
                p.session_id,
                ts_text(p.created_at),
            ])
        })
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn list_prompts(conn: &Connection, agent_id: Id) -> StoreResult<Vec<Prompt>> {
    let mut s = conn
        .prepare_cached(&format!("SELECT {PROMPT_COLS} FROM prompts WHERE agent_id = ?1 ORDER BY created_at, rowid"))
        .map_err(db_err)?;
    let rows = s
        .query_map([id_text(agent_id)], |row| {
            Ok(Prompt {
                id: get_id(row, 0)?,
                agent_id: get_opt_id(row, 1)?,
                task_slug: row.get(2)?,
                author: get_enum(row, 3)?,
                prompt_text: row.get(4)?,
                summary: row.get(5)?,
                session_id: row.get(6)?,
                created_at: get_ts(row, 7)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

const CHAT_COLS: &str = "id, orchestrator_id, sender, receiver, agent_id, message, summary, metadata, created_at";

pub(crate) fn insert_chat(conn: &Connection, m: &ChatMessage) -> StoreResult<()> {
    let (sender, receiver, metadata) = (enum_text(&m.sender)?, enum_text(&m.receiver)?, json_text(&m.metadata)?);
    conn.prepare_cached(&format!("INSERT INTO chat ({CHAT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"))
        .and_then(|mut s| {
            s.execute(params![
                id_text(m.id),
                id_text(m.orchestrator_id),
                sender,
                receiver,
                opt_id_text(m.agent_id),
                m.message,
                m.summary,
                metadata,
                ts_text(m.created_at),
            ])
        })
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn list_chat(conn: &Connection, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {CHAT_COLS} FROM (SELECT {CHAT_COLS}, rowid AS r FROM chat WHERE orchestrator_id = ?1 \
             ORDER BY created_at DESC, rowid DESC LIMIT ?2) ORDER BY created_at, r"
        ))
        .map_err(db_err)?;
    let rows = s
        .query_map(params![id_text(orchestrator_id), limit_param(limit)], |row| {
            Ok(ChatMessage {
                id: get_id(row, 0)?,
                orchestrator_id: get_id(row, 1)?,
                sender: get_enum(row, 2)?,
                receiver: get_enum(row, 3)?,
                agent_id: get_opt_id(row, 4)?,
                message: row.get(5)?,
                summary: row.get(6)?,
                metadata: get_json(row, 7)?,
                created_at: get_ts(row, 8)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

const LOG_COLS: &str = "id, level, message, summary, file_path, workflow_id, workflow_step, metadata, created_at";

pub(crate) fn insert_system_log(conn: &Connection, l: &SystemLog) -> StoreResult<()> {
    let metadata = json_text(&l.metadata)?;
    conn.prepare_cached(&format!(
        "INSERT INTO system_logs ({LOG_COLS}, message_folded) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(l.id),
            l.level.as_str(),
            l.message,
            l.summary,
            l.file_path,
            opt_id_text(l.workflow_id),
            l.workflow_step,
            metadata,
            ts_text(l.created_at),
            l.message.to_lowercase(),
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn list_system_logs(conn: &Connection, q: &SystemLogQuery) -> StoreResult<Vec<SystemLog>> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {LOG_COLS} FROM system_logs WHERE {} AND (?2 IS NULL OR instr(message_folded, ?2) > 0) \
             ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4",
            if q.level.is_some() { "level = ?1" } else { "?1 IS NULL" }
        ))
        .map_err(db_err)?;
    let needle = q.message_contains.as_ref().map(|s| s.to_lowercase());
    let rows = s
        .query_map(params![q.level.map(|l| l.as_str()), needle, limit_param(q.limit), limit_param(q.offset)], |row| {
            Ok(SystemLog {
                id: get_id(row, 0)?,
                level: get_enum(row, 1)?,
                message: row.get(2)?,
                summary: row.get(3)?,
                file_path: row.get(4)?,
                workflow_id: get_opt_id(row, 5)?,
                workflow_step: row.get(6)?,
                metadata: get_json(row, 7)?,
                created_at: get_ts(row, 8)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

const WORKFLOW_COLS: &str = "id, orchestrator_id, name, workflow_type, description, status, current_step, \
     total_steps, completed_steps, started_at, completed_at, duration_seconds, input_data, output_data, \
     error_message, error_step, error_count, metadata, created_at, updated_at";

/// The columns a workflow is read from: [`WORKFLOW_COLS`] and its holder (written only by
/// [`swap_workflow_run`](crate::batch)).
const WORKFLOW_READ_COLS: &str = "id, orchestrator_id, name, workflow_type, description, status, current_step, \
     total_steps, completed_steps, started_at, completed_at, duration_seconds, input_data, output_data, \
     error_message, error_step, error_count, metadata, created_at, updated_at, run_lease";

fn workflow_row(row: &Row<'_>) -> rusqlite::Result<WorkflowRecord> {
    let duration: Option<i64> = row.get(11)?;
    Ok(WorkflowRecord {
        id: get_id(row, 0)?,
        orchestrator_id: get_opt_id(row, 1)?,
        name: row.get(2)?,
        workflow_type: row.get(3)?,
        description: row.get(4)?,
        status: get_enum(row, 5)?,
        current_step: row.get(6)?,
        total_steps: get_u32(row, 7)?,
        completed_steps: get_u32(row, 8)?,
        started_at: get_opt_ts(row, 9)?,
        completed_at: get_opt_ts(row, 10)?,
        duration_seconds: duration.map(|d| conv(11, u64::try_from(d))).transpose()?,
        input_data: get_json(row, 12)?,
        output_data: get_json(row, 13)?,
        error_message: row.get(14)?,
        error_step: row.get(15)?,
        error_count: get_u32(row, 16)?,
        metadata: get_json(row, 17)?,
        created_at: get_ts(row, 18)?,
        updated_at: get_ts(row, 19)?,
        run: get_opt_json(row, 20)?.map(|v| conv(20, serde_json::from_value::<RunLease>(v))).transpose()?,
    })
}

pub(crate) fn upsert_workflow(conn: &Connection, w: &WorkflowRecord) -> StoreResult<()> {
    let status = enum_text(&w.status)?;
    let duration = w.duration_seconds.map(|d| int(d, "duration_seconds")).transpose()?;
    let (input, output, metadata) = (json_text(&w.input_data)?, json_text(&w.output_data)?, json_text(&w.metadata)?);
    conn.prepare_cached(&format!(
        "INSERT INTO workflows ({WORKFLOW_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
         ?14, ?15, ?16, ?17, ?18, ?19, ?20) \
         ON CONFLICT (id) DO UPDATE SET orchestrator_id = excluded.orchestrator_id, name = excluded.name, \
         workflow_type = excluded.workflow_type, description = excluded.description, status = excluded.status, \
         current_step = excluded.current_step, total_steps = excluded.total_steps, \
         completed_steps = excluded.completed_steps, started_at = excluded.started_at, \
         completed_at = excluded.completed_at, duration_seconds = excluded.duration_seconds, \
         input_data = excluded.input_data, output_data = excluded.output_data, \
         error_message = excluded.error_message, error_step = excluded.error_step, \
         error_count = excluded.error_count, metadata = excluded.metadata, created_at = excluded.created_at, \
         updated_at = excluded.updated_at"
    ))
    .and_then(|mut s| {
        s.execute(params![
            id_text(w.id),
            opt_id_text(w.orchestrator_id),
            w.name,
            w.workflow_type,
            w.description,
            status,
            w.current_step,
            w.total_steps,
            w.completed_steps,
            opt_ts_text(w.started_at),
            opt_ts_text(w.completed_at),
            duration,
            input,
            output,
            w.error_message,
            w.error_step,
            w.error_count,
            metadata,
            ts_text(w.created_at),
            ts_text(w.updated_at),
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

pub(crate) fn get_workflow(conn: &Connection, id: Id) -> StoreResult<Option<WorkflowRecord>> {
    conn.prepare_cached(&format!("SELECT {WORKFLOW_READ_COLS} FROM workflows WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id_text(id)], workflow_row).optional())
        .map_err(db_err)
}

pub(crate) fn list_workflows(
    conn: &Connection,
    orchestrator_id: Option<Id>,
    limit: usize,
) -> StoreResult<Vec<WorkflowRecord>> {
    let mut s = conn
        .prepare_cached(&format!(
            "SELECT {WORKFLOW_READ_COLS} FROM workflows WHERE {} ORDER BY created_at DESC, id DESC LIMIT ?2",
            if orchestrator_id.is_some() { "orchestrator_id = ?1" } else { "?1 IS NULL" }
        ))
        .map_err(db_err)?;
    let rows = s.query_map(params![opt_id_text(orchestrator_id), limit_param(limit)], workflow_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}
