//! The one write path: a [`Batch`] serialized before it reaches the writer thread (so encoding runs in
//! parallel), then applied inside the request's savepoint: all of it, or none of it.

use orch_core::store::{Batch, Change, StoreError, StoreResult};
use orch_core::wire::{AgentStatus, Event, EventKeys, EventRecord, Id, NewEvent, RunLease, now};
use rusqlite::{OptionalExtension, params};

use crate::sql::{self, PreparedEvent, db_err, id_text, json_text, lease_text, not_found, ts_text, usage_params};
use crate::writer::WriteCtx;

/// One prepared change.
enum Op {
    /// Consecutive status, usage and state changes of one agent, merged into one UPDATE (what an agent
    /// step writes; one statement keeps a step's commit cheap).
    Agent {
        id: Id,
        status: Option<AgentStatus>,
        usage: Option<([i64; 4], f64)>,
        state: Option<State>,
        context: Option<Context>,
    },
    /// Conversation messages, serialized.
    Messages { agent_id: Id, messages: Vec<String> },
    /// A compare-and-swap of the agent's run lease.
    SwapRun { agent_id: Id, expect: Option<Id>, lease: Option<String> },
    /// The agent's run lease cleared if that run holds it.
    ReleaseRun { agent_id: Id, run_id: Id },
    /// A compare-and-swap of the workflow's run lease.
    SwapWorkflowRun { workflow_id: Id, expect: Option<Id>, lease: Option<String> },
    /// Any other change, applied as it is.
    Other(Change),
}

/// Loop state and session id, serialized.
type State = (Option<String>, Option<String>);

/// Context used and window.
type Context = (i64, Option<i64>);

/// A batch ready for the writer thread.
pub(crate) struct PreparedBatch {
    ops: Vec<Op>,
    events: Vec<PreparedEvent>,
}

/// The agent op to merge `id`'s next field change into: the last op, if it is that agent's.
fn agent_op(ops: &mut Vec<Op>, id: Id) -> &mut Op {
    if !matches!(ops.last(), Some(Op::Agent { id: last, .. }) if *last == id) {
        ops.push(Op::Agent { id, status: None, usage: None, state: None, context: None });
    }
    let last = ops.len() - 1;
    &mut ops[last]
}

/// Serializes a batch (with its projected rows) for [`commit`].
pub(crate) fn prepare(batch: Batch) -> StoreResult<PreparedBatch> {
    let batch = batch.projected();
    let mut ops: Vec<Op> = Vec::with_capacity(batch.changes.len());
    for change in batch.changes {
        match change {
            Change::SetAgentStatus { id, status: new } => {
                if let Op::Agent { status, .. } = agent_op(&mut ops, id) {
                    *status = Some(new);
                }
            }
            Change::AddAgentUsage { id, usage: u, cost_usd } => {
                let p = usage_params(&u)?;
                if let Op::Agent { usage, .. } = agent_op(&mut ops, id) {
                    let (mut sum, cost) = usage.unwrap_or(([0; 4], 0.0));
                    for (s, v) in sum.iter_mut().zip(p) {
                        *s = s.saturating_add(v);
                    }
                    *usage = Some((sum, cost + cost_usd));
                }
            }
            Change::SaveAgentState { id, state: saved } => {
                let st = saved.state.as_ref().map(json_text).transpose()?;
                if let Op::Agent { state, .. } = agent_op(&mut ops, id) {
                    *state = Some((st, saved.session_id));
                }
            }
            Change::SetAgentContext { id, used, window } => {
                let used = i64::try_from(used).unwrap_or(i64::MAX);
                let window = window.map(|w| i64::try_from(w).unwrap_or(i64::MAX));
                if let Op::Agent { context, .. } = agent_op(&mut ops, id) {
                    *context = Some((used, window));
                }
            }
            Change::AppendMessages { agent_id, messages } => {
                let messages = messages
                    .iter()
                    .map(|m| {
                        serde_json::to_string(m).map_err(|e| StoreError::Backend(format!("cannot encode message: {e}")))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                ops.push(Op::Messages { agent_id, messages });
            }
            Change::SwapRun { agent_id, expect, lease } => {
                ops.push(Op::SwapRun { agent_id, expect, lease: lease.as_ref().map(lease_text).transpose()? });
            }
            Change::ReleaseRun { agent_id, run_id } => ops.push(Op::ReleaseRun { agent_id, run_id }),
            Change::SwapWorkflowRun { workflow_id, expect, lease } => {
                let lease = lease.as_ref().map(lease_text).transpose()?;
                ops.push(Op::SwapWorkflowRun { workflow_id, expect, lease });
            }
            other => ops.push(Op::Other(other)),
        }
    }
    Ok(PreparedBatch { ops, events: sql::prepare_events(batch.events)? })
}

/// Applies a prepared batch inside the writer's transaction (the request's savepoint).
pub(crate) fn commit(ctx: &mut WriteCtx<'_>, batch: PreparedBatch) -> StoreResult<Vec<EventRecord>> {
    // Events a change records itself (claims, released tasks, ended graphs), after the batch's own.
    let mut generated = Vec::new();
    for op in batch.ops {
        match op {
            Op::Agent { id, status, usage, state, context } => update_agent(ctx, id, status, usage, state, context)?,
            Op::Messages { agent_id, messages } => {
                let mut s = ctx
                    .conn
                    .prepare_cached("INSERT INTO conversation (agent_id, message) VALUES (?1, ?2)")
                    .map_err(db_err)?;
                let id = id_text(agent_id);
                for m in &messages {
                    s.execute(params![id, m]).map_err(db_err)?;
                }
            }
            Op::SwapRun { agent_id, expect, lease } => swap_run(ctx, agent_id, expect, lease)?,
            Op::ReleaseRun { agent_id, run_id } => release_run(ctx, agent_id, run_id)?,
            Op::SwapWorkflowRun { workflow_id, expect, lease } => swap_workflow_run(ctx, workflow_id, expect, lease)?,
            Op::Other(change) => generated.extend(apply(ctx, change)?),
        }
    }
    let mut events = batch.events;
    if !generated.is_empty() {
        events.extend(sql::prepare_events(generated)?);
    }
    sql::insert_events(ctx, events)
}

/// Agent status, usage and state in one UPDATE.
fn update_agent(
    ctx: &mut WriteCtx<'_>,
    agent_id: Id,
    status: Option<AgentStatus>,
    usage: Option<([i64; 4], f64)>,
    state: Option<State>,
    context: Option<Context>,
) -> StoreResult<()> {
    let (u, cost) = usage.unwrap_or(([0; 4], 0.0));
    let (has_context, used, window) = match context {
        Some((used, window)) => (true, used, window),
        None => (false, 0, None),
    };
    let (has_state, state, session) = match state {
        Some((state, session)) => (true, state, session),
        None => (false, None, None),
    };
    let n = ctx
        .conn
        .prepare_cached(
            "UPDATE agents SET status = COALESCE(?2, status), input_tokens = input_tokens + ?3, \
             output_tokens = output_tokens + ?4, cache_read_input_tokens = cache_read_input_tokens + ?5, \
             cache_creation_input_tokens = cache_creation_input_tokens + ?6, total_cost_usd = total_cost_usd + ?7, \
             state = CASE WHEN ?8 THEN ?9 ELSE state END, session_id = CASE WHEN ?8 THEN ?10 ELSE session_id END, \
             context_used = CASE WHEN ?12 THEN ?13 ELSE context_used END, \
             context_window = CASE WHEN ?12 THEN ?14 ELSE context_window END, updated_at = ?11 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                id_text(agent_id),
                status.map(AgentStatus::as_str),
                u[0],
                u[1],
                u[2],
                u[3],
                cost,
                has_state,
                state,
                session,
                ts_text(now()),
                has_context,
                used,
                window,
            ])
        })
        .map_err(db_err)?;
    if n == 0 {
        return Err(not_found("agent", agent_id));
    }
    Ok(())
}

/// Sets the agent's run lease if the run holding it now is `expect`; else a conflict naming the holder.
fn swap_run(ctx: &mut WriteCtx<'_>, agent_id: Id, expect: Option<Id>, lease: Option<String>) -> StoreResult<()> {
    swap_lease(ctx, "agents", agent_id, expect, lease)
        .map_err(|e| e.into_error(|current| StoreError::RunConflict { agent_id, current }))
}

/// Clears the agent's run lease if run `run_id` holds it; nothing otherwise.
fn release_run(ctx: &mut WriteCtx<'_>, agent_id: Id, run_id: Id) -> StoreResult<()> {
    ctx.conn
        .prepare_cached("UPDATE agents SET run_lease = NULL WHERE id = ?1 AND json_extract(run_lease, '$.run_id') = ?2")
        .and_then(|mut s| s.execute(params![id_text(agent_id), id_text(run_id)]))
        .map_err(db_err)?;
    Ok(())
}

fn swap_workflow_run(
    ctx: &mut WriteCtx<'_>,
    workflow_id: Id,
    expect: Option<Id>,
    lease: Option<String>,
) -> StoreResult<()> {
    swap_lease(ctx, "workflows", workflow_id, expect, lease)
        .map_err(|e| e.into_error(|current| StoreError::WorkflowRunConflict { workflow_id, current }))
}

/// Why a [`swap_lease`] did not swap.
enum SwapFailed {
    /// Held by another run than expected (this one, or none).
    Conflict(Option<Box<RunLease>>),
    /// Any other error.
    Store(StoreError),
}

impl SwapFailed {
    fn into_error(self, conflict: impl FnOnce(Option<Box<RunLease>>) -> StoreError) -> StoreError {
        match self {
            Self::Conflict(current) => conflict(current),
            Self::Store(e) => e,
        }
    }
}

/// The compare-and-swap of the `run_lease` column of row `id` of `table` (`agents` or `workflows`).
fn swap_lease(
    ctx: &mut WriteCtx<'_>,
    table: &'static str,
    id: Id,
    expect: Option<Id>,
    lease: Option<String>,
) -> Result<(), SwapFailed> {
    let what = table.trim_end_matches('s');
    let key = id_text(id);
    let current: Option<Option<String>> = ctx
        .conn
        .prepare_cached(&format!("SELECT run_lease FROM {table} WHERE id = ?1"))
        .and_then(|mut s| s.query_row([&key], |r| r.get(0)).optional())
        .map_err(|e| SwapFailed::Store(db_err(e)))?;
    let current = current.ok_or_else(|| SwapFailed::Store(not_found(what, id)))?;
    let current = current
        .map(|text| {
            serde_json::from_str::<RunLease>(&text)
                .map_err(|e| SwapFailed::Store(StoreError::Decode(format!("run lease of {what} {id}: {e}"))))
        })
        .transpose()?;
    if current.as_ref().map(|l| l.run_id) != expect {
        return Err(SwapFailed::Conflict(current.map(Box::new)));
    }
    ctx.conn
        .prepare_cached(&format!("UPDATE {table} SET run_lease = ?2 WHERE id = ?1"))
        .and_then(|mut s| s.execute(params![key, lease]))
        .map_err(|e| SwapFailed::Store(db_err(e)))?;
    Ok(())
}

/// The remaining changes, one statement each (the task queue's a few); returns the events they record
/// themselves.
fn apply(ctx: &mut WriteCtx<'_>, change: Change) -> StoreResult<Vec<NewEvent>> {
    let conn = ctx.conn;
    let none = |r: StoreResult<()>| r.map(|()| Vec::new());
    match change {
        Change::ClaimTasks(claim) => {
            let claimed = sql::claim_tasks(conn, &claim)?;
            let Some(start) = &claim.start else { return Ok(claimed) };
            let (agents, tasks, events) = orch_core::store::start_claimed(start, claimed);
            for a in &agents {
                sql::create_agent(conn, a)?;
            }
            for t in &tasks {
                sql::update_task(conn, t, Some(t.attempt))?;
            }
            Ok(events)
        }
        Change::FinishTask { task, fence } => sql::finish_task(conn, &task, fence),
        Change::Heartbeat(w) => none(sql::heartbeat(conn, &w)),
        Change::RemoveWorker { id } => none(sql::remove_worker(conn, &id)),
        Change::ForgetWorkers { silent_before } => none(sql::forget_workers(conn, silent_before)),
        Change::SetGraphStatus { id, status, error, from } => {
            let g = sql::set_graph_status(conn, id, status, error.as_deref(), &from)?;
            Ok(g.map(|g| vec![NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g) })])
                .unwrap_or_default())
        }
        Change::GrowGraph { id, tasks, waves } => {
            let g = sql::grow_graph(conn, id, tasks, waves)?;
            Ok(vec![NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g) })])
        }
        Change::AddTask(task) => {
            // The graph's row, grown, says the position: its count before this task.
            let g = sql::grow_graph(conn, task.graph_id, 1, task.wave)?;
            let mut task = *task;
            task.place(g.total_tasks.saturating_sub(1), sql::all_done(conn, &task.depends_on)?);
            sql::insert_tasks(conn, std::slice::from_ref(&task))?;
            Ok(vec![
                NewEvent::new(EventKeys::default(), Event::TaskUpdated { task: Box::new(task) }),
                NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g) }),
            ])
        }
        Change::SetGraphBudget { id, limit_usd } => {
            let g = sql::set_graph_budget(conn, id, limit_usd)?;
            Ok(vec![NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g) })])
        }
        Change::ReserveBudget(r) => none(sql::reserve(conn, &r)),
        Change::SettleBudget { reservation, actual } => none(sql::settle(conn, &reservation, actual)),
        Change::SetBudgetLimit { scope, limit_usd } => none(sql::set_limit(conn, scope, limit_usd)),
        other => none(apply_row(conn, other)),
    }
}

/// Changes of one row each.
fn apply_row(conn: &rusqlite::Connection, change: Change) -> StoreResult<()> {
    match change {
        Change::CreateOrchestrator(o) => sql::create_orchestrator(conn, &o),
        Change::UpdateOrchestrator(o) => sql::update_orchestrator(conn, &o),
        Change::CreateAgent(a) => sql::create_agent(conn, &a),
        Change::SetAgentMetadata { id, metadata } => sql::set_agent_metadata(conn, id, &metadata),
        Change::ArchiveAgent { id } => sql::archive_agent(conn, id),
        Change::ClearConversation { agent_id } => sql::clear_conversation(conn, agent_id),
        Change::InsertPrompt(p) => sql::insert_prompt(conn, &p),
        Change::InsertChat(m) => sql::insert_chat(conn, &m),
        Change::InsertSystemLog(l) => sql::insert_system_log(conn, &l),
        Change::UpsertWorkflow(w) => sql::upsert_workflow(conn, &w),
        Change::InsertPlan(p) => sql::insert_plan(conn, &p),
        Change::UpsertPlan(p) => sql::upsert_plan(conn, &p),
        Change::UpsertGraph(g) => sql::upsert_graph(conn, &g),
        Change::InsertTasks(tasks) => sql::insert_tasks(conn, &tasks),
        Change::UpdateTask { task, fence } => sql::update_task(conn, &task, fence),
        // Prepared into their own ops; listed so a new kind of change is a compile error here.
        c @ (Change::SetAgentStatus { .. }
        | Change::AddAgentUsage { .. }
        | Change::SaveAgentState { .. }
        | Change::AppendMessages { .. }
        | Change::SwapRun { .. }
        | Change::ReleaseRun { .. }
        | Change::SwapWorkflowRun { .. }) => Err(StoreError::Backend(format!("unprepared change {c:?}"))),
        other => Err(StoreError::Backend(format!(
            "this store does not support the change {other:?}; upgrade orch-store-sqlite"
        ))),
    }
}
