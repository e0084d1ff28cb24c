//! Runs of agent changes (one batch's, or several grouped batches', one after the other) applied as a
//! few statements whatever their number: agent steps (status, usage, executor state, context, new
//! conversation messages, prompt rows) and run-lease swaps. Under load a group holds many agents'
//! steps and claims; applied one change at a time, they would cost the group's writer a round trip
//! each. Each run ends exactly as applying its changes one at a time in order would.

use std::collections::HashMap;

use orch_core::store::{Change, StoreError};
use orch_core::wire::{Agent, AgentStatus, Id, Prompt, RunLease, Timestamp, Usage};
use sqlx_postgres::PgConnection;

use crate::budget_runs::RunError;
use crate::sql::{Db, db_err, enum_text, json_decode, json_param, not_found, now_us, usage_params};
use crate::sqlx;

/// Whether `c` is a change of an agent step that [`apply_steps`] applies.
pub(crate) fn is_step_change(c: &Change) -> bool {
    matches!(
        c,
        Change::SetAgentStatus { .. }
            | Change::AddAgentUsage { .. }
            | Change::SaveAgentState { .. }
            | Change::SetAgentContext { .. }
            | Change::AppendMessages { .. }
            | Change::InsertPrompt(_)
            | Change::ReleaseRun { .. }
    )
}

/// What a run of step changes writes on one agent's row, merged in order: the last status, state and
/// context, the sum of the usage.
#[derive(Default)]
struct AgentFields {
    /// The change (index in the run) that first names the agent: it fails when the agent is missing.
    first: usize,
    status: Option<AgentStatus>,
    usage: Usage,
    cost: f64,
    /// Whether any change of the run writes the row's `updated_at` (all but the context do).
    touch: bool,
    state: Option<(Option<String>, Option<String>)>,
    context: Option<(i64, Option<i64>)>,
    /// The run whose claim on the agent ends (`ReleaseRun`), if it still holds it.
    release: Option<Id>,
}

impl AgentFields {
    /// Whether a change other than a release names the agent (a release of a missing agent is no
    /// error): every other change writes a field.
    fn named(&self) -> bool {
        self.touch || self.context.is_some()
    }
}

/// The fields of agent `id` in `agents`, added (named first by change `i`) if missing.
fn fields_of<'m>(
    agents: &'m mut HashMap<Id, AgentFields>,
    order: &mut Vec<Id>,
    id: Id,
    i: usize,
) -> &'m mut AgentFields {
    agents.entry(id).or_insert_with(|| {
        order.push(id);
        AgentFields { first: i, ..AgentFields::default() }
    })
}

/// The agents' columns of one statement.
#[derive(Default)]
struct AgentColumns {
    id: Vec<Id>,
    status: Vec<Option<&'static str>>,
    tokens: [Vec<i64>; 4],
    cost: Vec<f64>,
    touch: Vec<bool>,
    has_state: Vec<bool>,
    state: Vec<Option<String>>,
    session: Vec<Option<String>>,
    has_context: Vec<bool>,
    used: Vec<i64>,
    window: Vec<Option<i64>>,
    release: Vec<Option<Id>>,
}

/// Applies a run of step changes ([`is_step_change`]), in three statements at most: one update of the
/// agents' rows (each missing agent fails the first change that names it; the same update clears the
/// run leases that `ReleaseRun`s end), one insert of the new conversation messages, one of the prompt
/// rows (both in the run's order).
pub(crate) async fn apply_steps(db: &Db, conn: &mut PgConnection, changes: &[&Change]) -> Result<(), RunError> {
    let mut agents: HashMap<Id, AgentFields> = HashMap::new();
    let mut order: Vec<Id> = Vec::new();
    let mut messages: (Vec<Id>, Vec<String>, Option<usize>) = (Vec::new(), Vec::new(), None);
    let mut prompts: Vec<&Prompt> = Vec::new();
    let mut prompt_first: Option<usize> = None;
    for (i, c) in changes.iter().enumerate() {
        match c {
            Change::SetAgentStatus { id, status } => {
                let f = fields_of(&mut agents, &mut order, *id, i);
                (f.status, f.touch) = (Some(*status), true);
            }
            Change::AddAgentUsage { id, usage, cost_usd } => {
                let f = fields_of(&mut agents, &mut order, *id, i);
                f.usage.add(usage);
                f.cost += cost_usd;
                f.touch = true;
            }
            Change::SaveAgentState { id, state } => {
                let text = state.state.as_ref().map(json_param).transpose().map_err(|e| (i, e))?;
                let f = fields_of(&mut agents, &mut order, *id, i);
                (f.state, f.touch) = (Some((text, state.session_id.clone())), true);
            }
            Change::SetAgentContext { id, used, window } => {
                let used = i64::try_from(*used).unwrap_or(i64::MAX);
                fields_of(&mut agents, &mut order, *id, i).context =
                    Some((used, window.map(|w| i64::try_from(w).unwrap_or(i64::MAX))));
            }
            Change::AppendMessages { agent_id, messages: list } => {
                for m in list {
                    messages.0.push(*agent_id);
                    messages.1.push(json_param(m).map_err(|e| (i, e))?);
                }
                messages.2.get_or_insert(i);
            }
            Change::InsertPrompt(p) => {
                prompts.push(p);
                prompt_first.get_or_insert(i);
            }
            Change::ReleaseRun { agent_id, run_id } => {
                fields_of(&mut agents, &mut order, *agent_id, i).release = Some(*run_id);
            }
            _ => return Err((i, StoreError::Backend("not a change of an agent step".into()))),
        }
    }
    // By id, as every statement that locks several agents' rows goes.
    order.sort_unstable();
    let mut cols = AgentColumns::default();
    for id in &order {
        let Some(f) = agents.get(id) else { continue };
        let tokens = usage_params(&f.usage).map_err(|e| (f.first, e))?;
        cols.id.push(*id);
        cols.status.push(f.status.map(AgentStatus::as_str));
        for (col, v) in cols.tokens.iter_mut().zip(tokens) {
            col.push(v);
        }
        cols.cost.push(f.cost);
        cols.touch.push(f.touch);
        cols.has_state.push(f.state.is_some());
        let (state, session) = f.state.clone().unwrap_or((None, None));
        cols.state.push(state);
        cols.session.push(session);
        cols.has_context.push(f.context.is_some());
        let (used, window) = f.context.unwrap_or((0, None));
        cols.used.push(used);
        cols.window.push(window);
        cols.release.push(f.release);
    }
    if !cols.id.is_empty() {
        let updated: Vec<Id> = sqlx::query_scalar(&db.sql(
            "UPDATE {S}.agents a SET status = COALESCE(u.status, a.status), \
             input_tokens = a.input_tokens + u.t0, output_tokens = a.output_tokens + u.t1, \
             cache_read_input_tokens = a.cache_read_input_tokens + u.t2, \
             cache_creation_input_tokens = a.cache_creation_input_tokens + u.t3, \
             total_cost_usd = a.total_cost_usd + u.cost, \
             state = CASE WHEN u.has_state THEN u.state::jsonb ELSE a.state END, \
             session_id = CASE WHEN u.has_state THEN u.session ELSE a.session_id END, \
             context_used = CASE WHEN u.has_context THEN u.used ELSE a.context_used END, \
             context_window = CASE WHEN u.has_context THEN u.win ELSE a.context_window END, \
             updated_at = CASE WHEN u.touch THEN $15 ELSE a.updated_at END, \
             run_lease = CASE WHEN a.run_lease ->> 'run_id' = u.rel::text THEN NULL ELSE a.run_lease END \
             FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], \
             $7::float8[], $8::bool[], $9::bool[], $10::text[], $11::text[], $12::bool[], $13::bigint[], \
             $14::bigint[], $16::uuid[]) AS u(id, status, t0, t1, t2, t3, cost, touch, has_state, state, session, \
             has_context, used, win, rel) \
             WHERE a.id = u.id RETURNING a.id",
        ))
        .bind(&cols.id)
        .bind(&cols.status)
        .bind(&cols.tokens[0])
        .bind(&cols.tokens[1])
        .bind(&cols.tokens[2])
        .bind(&cols.tokens[3])
        .bind(&cols.cost)
        .bind(&cols.touch)
        .bind(&cols.has_state)
        .bind(&cols.state)
        .bind(&cols.session)
        .bind(&cols.has_context)
        .bind(&cols.used)
        .bind(&cols.window)
        .bind(now_us())
        .bind(&cols.release)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| (0, db_err(e)))?;
        if updated.len() < cols.id.len() {
            // A release alone of a missing agent releases nothing, and is no error.
            let missing = order.iter().filter_map(|id| agents.get(id).filter(|f| f.named()).map(|f| (id, f.first)));
            if let Some((id, first)) = missing.filter(|(id, _)| !updated.contains(id)).min_by_key(|(_, f)| *f) {
                return Err((first, not_found("agent", *id)));
            }
        }
    }
    if let Some(first) = messages.2 {
        sqlx::query(&db.sql(
            "INSERT INTO {S}.conversation (agent_id, message) SELECT u.agent_id, u.message::jsonb \
             FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY AS u(agent_id, message, ord) ORDER BY u.ord",
        ))
        .bind(&messages.0)
        .bind(&messages.1)
        .execute(&mut *conn)
        .await
        .map_err(|e| (first, db_err(e)))?;
    }
    if let Some(first) = prompt_first {
        insert_prompts(db, conn, &prompts).await.map_err(|e| (first, e))?;
    }
    Ok(())
}

/// Inserts prompt rows in order, in one statement.
async fn insert_prompts(db: &Db, conn: &mut PgConnection, prompts: &[&Prompt]) -> Result<(), StoreError> {
    let mut authors = Vec::with_capacity(prompts.len());
    for p in prompts {
        authors.push(enum_text(&p.author)?);
    }
    let ids: Vec<Id> = prompts.iter().map(|p| p.id).collect();
    let agents: Vec<Option<Id>> = prompts.iter().map(|p| p.agent_id).collect();
    let slugs: Vec<Option<String>> = prompts.iter().map(|p| p.task_slug.clone()).collect();
    let texts: Vec<String> = prompts.iter().map(|p| p.prompt_text.clone()).collect();
    let summaries: Vec<Option<String>> = prompts.iter().map(|p| p.summary.clone()).collect();
    let sessions: Vec<Option<String>> = prompts.iter().map(|p| p.session_id.clone()).collect();
    let created: Vec<orch_core::wire::Timestamp> = prompts.iter().map(|p| p.created_at).collect();
    sqlx::query(&db.sql(
        "INSERT INTO {S}.prompts (id, agent_id, task_slug, author, prompt_text, summary, session_id, created_at) \
         SELECT u.id, u.agent_id, u.task_slug, u.author, u.prompt_text, u.summary, u.session_id, u.created_at \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::timestamptz[]) WITH ORDINALITY \
         AS u(id, agent_id, task_slug, author, prompt_text, summary, session_id, created_at, ord) ORDER BY u.ord",
    ))
    .bind(&ids)
    .bind(&agents)
    .bind(&slugs)
    .bind(&authors)
    .bind(&texts)
    .bind(&summaries)
    .bind(&sessions)
    .bind(&created)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// One run-lease swap of a run: the agent, the holder it expects, the new lease.
pub(crate) type Swap<'a> = (Id, Option<Id>, Option<&'a RunLease>);

/// Applies a run of run-lease swaps (`SwapRun`s) in order, or fails at the first whose agent is
/// missing or held by another run than it expects: the agents' rows are locked (by id) and read in one
/// statement, the swaps decided in order in memory, and the new leases written by one statement.
pub(crate) async fn swap_all(db: &Db, conn: &mut PgConnection, swaps: &[Swap<'_>]) -> Result<(), RunError> {
    let at0 = |e: StoreError| (0, e);
    let mut ids: Vec<Id> = swaps.iter().map(|s| s.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(Id, Option<String>)> =
        sqlx::query_as(&db.sql("SELECT id, run_lease::text FROM {S}.agents WHERE id = ANY($1) ORDER BY id FOR UPDATE"))
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| at0(db_err(e)))?;
    let mut held: HashMap<Id, Option<RunLease>> = HashMap::new();
    for (id, text) in rows {
        let lease = text
            .map(|t| json_decode::<RunLease>(&t))
            .transpose()
            .map_err(|e| at0(StoreError::Decode(format!("run lease of agent {id}: {e}"))))?;
        held.insert(id, lease);
    }
    let mut written: Vec<Id> = Vec::new();
    for (i, (id, expect, lease)) in swaps.iter().enumerate() {
        let current = held.get_mut(id).ok_or_else(|| (i, not_found("agent", *id)))?;
        if current.as_ref().map(|l| l.run_id) != *expect {
            return Err((i, StoreError::RunConflict { agent_id: *id, current: current.clone().map(Box::new) }));
        }
        *current = lease.cloned();
        if !written.contains(id) {
            written.push(*id);
        }
    }
    let leases: Vec<Option<String>> = written
        .iter()
        .map(|id| held.get(id).and_then(Option::as_ref).map(json_param).transpose())
        .collect::<Result<_, _>>()
        .map_err(at0)?;
    sqlx::query(&db.sql(
        "UPDATE {S}.agents a SET run_lease = u.lease::jsonb FROM UNNEST($1::uuid[], $2::text[]) AS u(id, lease) \
         WHERE a.id = u.id",
    ))
    .bind(&written)
    .bind(&leases)
    .execute(&mut *conn)
    .await
    .map_err(|e| at0(db_err(e)))?;
    Ok(())
}

/// Creates agents in one statement, in order; a live agent's name taken (by another agent or one of
/// these) fails the change of the agent whose name it is (the first of the run when unknown).
pub(crate) async fn create_agents(db: &Db, conn: &mut PgConnection, agents: &[&Agent]) -> Result<(), RunError> {
    let rows = AgentRows::of(agents)?;
    let sql = db.sql(INSERT_AGENTS);
    match rows.bind(sqlx::query(&sql)).execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) => Err(agents_error(e, agents)),
    }
}

/// Creates agents and writes the progress of the tasks whose attempts they run, in one statement
/// (a claim's attempts started in its commit): [`create_agents`] then
/// [`write_progress`](crate::graphs::write_progress). On failure, why (a name taken, a task fenced or
/// missing).
pub(crate) async fn create_agents_for(
    db: &Db,
    conn: &mut PgConnection,
    agents: &[&Agent],
    tasks: &[(&orch_core::wire::Task, Option<u32>)],
) -> Result<(), StoreError> {
    let rows = AgentRows::of(agents).map_err(|(_, e)| e)?;
    let progress = crate::graphs::Progress::of(tasks)?;
    let update = crate::graphs::Progress::update(AGENT_PARAMS + 1);
    let sql = db.sql(&format!("WITH a AS ({INSERT_AGENTS} RETURNING 1) {update}"));
    let written = match progress.bind(rows.bind(sqlx::query(&sql))).fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(e) => return Err(agents_error(e, agents).1),
    };
    crate::graphs::check_written(db, conn, tasks, &written).await.map_err(|(_, e)| e)
}

/// How many parameters [`INSERT_AGENTS`] takes.
const AGENT_PARAMS: usize = 28;

/// The insert of [`AgentRows`], parameters `$1`…`$28` ([`AGENT_PARAMS`]).
const INSERT_AGENTS: &str = "INSERT INTO {S}.agents (id, orchestrator_id, name, model, system_prompt, working_dir, \
     status, session_id, role, input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens, \
     total_cost_usd, metadata, workflow_id, workflow_step, archived, created_at, updated_at, run_lease, \
     template_name, template_color, tools, context_used, context_window, compact_at, parent_id) \
     SELECT u.id, u.orchestrator_id, u.name, u.model, u.system_prompt, u.working_dir, u.status, u.session_id, \
     u.role, u.t0, u.t1, u.t2, u.t3, u.cost, u.metadata::jsonb, u.workflow_id, u.workflow_step, u.archived, \
     u.created_at, u.updated_at, u.run_lease::jsonb, u.template_name, u.template_color, u.tools::jsonb, \
     u.context_used, u.context_window, u.compact_at, u.parent_id \
     FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::float8[], \
     $15::text[], $16::uuid[], $17::text[], $18::bool[], $19::timestamptz[], $20::timestamptz[], $21::text[], \
     $22::text[], $23::text[], $24::text[], $25::bigint[], $26::bigint[], $27::float8[], $28::uuid[]) \
     WITH ORDINALITY AS u(id, orchestrator_id, name, model, system_prompt, working_dir, status, session_id, \
     role, t0, t1, t2, t3, cost, metadata, workflow_id, workflow_step, archived, created_at, updated_at, \
     run_lease, template_name, template_color, tools, context_used, context_window, compact_at, parent_id, ord) \
     ORDER BY u.ord";

/// Why inserting `agents` failed: a live agent's name taken fails the agent whose name it is (the
/// first when the detail does not say).
fn agents_error(e: sqlx::Error, agents: &[&Agent]) -> (usize, StoreError) {
    match e {
        sqlx::Error::Database(e) if e.constraint() == Some("agents_live_name") => {
            // The detail names the key: `Key (COALESCE(…), name)=(…, NAME) already exists.`
            let detail = e
                .try_downcast_ref::<sqlx_postgres::PgDatabaseError>()
                .and_then(|p| p.detail())
                .map(str::to_string)
                .unwrap_or_default();
            let i = agents.iter().position(|a| detail.contains(&format!(", {})", a.name))).unwrap_or(0);
            (i, StoreError::NameTaken { name: agents.get(i).map(|a| a.name.clone()).unwrap_or_default() })
        }
        e => (0, db_err(e)),
    }
}

/// Agents' rows, column by column, for [`create_agents`].
#[derive(Default)]
struct AgentRows {
    id: Vec<Id>,
    orchestrator_id: Vec<Option<Id>>,
    name: Vec<String>,
    model: Vec<String>,
    system_prompt: Vec<Option<String>>,
    working_dir: Vec<String>,
    status: Vec<&'static str>,
    session_id: Vec<Option<String>>,
    role: Vec<&'static str>,
    tokens: [Vec<i64>; 4],
    cost: Vec<f64>,
    metadata: Vec<String>,
    workflow_id: Vec<Option<Id>>,
    workflow_step: Vec<Option<String>>,
    archived: Vec<bool>,
    created_at: Vec<Timestamp>,
    updated_at: Vec<Timestamp>,
    run_lease: Vec<Option<String>>,
    template_name: Vec<Option<String>>,
    template_color: Vec<Option<String>>,
    tools: Vec<Option<String>>,
    context_used: Vec<i64>,
    context_window: Vec<Option<i64>>,
    compact_at: Vec<Option<f64>>,
    parent_id: Vec<Option<Id>>,
}

impl AgentRows {
    fn of(agents: &[&Agent]) -> Result<Self, RunError> {
        let mut rows = AgentRows::default();
        for (i, a) in agents.iter().enumerate() {
            rows.push(a).map_err(|e| (i, e))?;
        }
        Ok(rows)
    }

    /// Binds `$1`…`$28` of [`INSERT_AGENTS`].
    fn bind<'q>(
        &'q self,
        query: sqlx_core::query::Query<'q, sqlx::Postgres, sqlx_postgres::PgArguments>,
    ) -> sqlx_core::query::Query<'q, sqlx::Postgres, sqlx_postgres::PgArguments> {
        query
            .bind(&self.id)
            .bind(&self.orchestrator_id)
            .bind(&self.name)
            .bind(&self.model)
            .bind(&self.system_prompt)
            .bind(&self.working_dir)
            .bind(&self.status)
            .bind(&self.session_id)
            .bind(&self.role)
            .bind(&self.tokens[0])
            .bind(&self.tokens[1])
            .bind(&self.tokens[2])
            .bind(&self.tokens[3])
            .bind(&self.cost)
            .bind(&self.metadata)
            .bind(&self.workflow_id)
            .bind(&self.workflow_step)
            .bind(&self.archived)
            .bind(&self.created_at)
            .bind(&self.updated_at)
            .bind(&self.run_lease)
            .bind(&self.template_name)
            .bind(&self.template_color)
            .bind(&self.tools)
            .bind(&self.context_used)
            .bind(&self.context_window)
            .bind(&self.compact_at)
            .bind(&self.parent_id)
    }

    fn push(&mut self, a: &Agent) -> Result<(), StoreError> {
        let tokens = usage_params(&a.usage)?;
        self.id.push(a.id);
        self.orchestrator_id.push(a.orchestrator_id);
        self.name.push(a.name.clone());
        self.model.push(a.model.clone());
        self.system_prompt.push(a.system_prompt.clone());
        self.working_dir.push(a.working_dir.clone());
        self.status.push(a.status.as_str());
        self.session_id.push(a.session_id.clone());
        self.role.push(a.role.as_str());
        for (col, v) in self.tokens.iter_mut().zip(tokens) {
            col.push(v);
        }
        self.cost.push(a.total_cost_usd);
        self.metadata.push(json_param(&a.metadata)?);
        self.workflow_id.push(a.workflow_id);
        self.workflow_step.push(a.workflow_step.clone());
        self.archived.push(a.archived);
        self.created_at.push(a.created_at);
        self.updated_at.push(a.updated_at);
        self.run_lease.push(a.run.as_ref().map(json_param).transpose()?);
        self.template_name.push(a.template.as_ref().map(|t| t.name.clone()));
        self.template_color.push(a.template.as_ref().and_then(|t| t.color.clone()));
        self.tools.push(a.tools.as_ref().map(json_param).transpose()?);
        self.context_used.push(i64::try_from(a.context_used).unwrap_or(i64::MAX));
        self.context_window.push(a.context_window.map(|w| i64::try_from(w).unwrap_or(i64::MAX)));
        self.compact_at.push(a.compact_at);
        self.parent_id.push(a.parent_id);
        Ok(())
    }
}
