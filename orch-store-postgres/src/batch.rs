//! The one write path: a [`Batch`] applied in one transaction. An agent step (status, usage, state,
//! messages and events of one agent) and a batch of events alone keep their single-statement forms;
//! anything else runs its statements in a transaction that appends the events last: the batch's own,
//! then those its changes record themselves (claimed and released tasks, ended graphs).

use orch_core::store::{Batch, Change, Durability, StepCommit, StoreError, StoreResult};
use orch_core::wire::{AgentStatus, EventRecord, Id, NewEvent, Reservation, RunLease};
use sqlx_postgres::PgConnection;

use crate::agent_runs::{self, Swap, is_step_change};
use crate::budget_runs;
use crate::events;
use crate::graphs;
use crate::sql::{self, Db, db_err, json_decode, json_param, not_found, now_us};
use crate::sqlx;
use crate::work;

/// Commits a batch already [projected](Batch::projected) alone, in a transaction of its own (or one
/// statement); returns the appended records.
pub(crate) async fn commit_projected(db: &Db, channel: &str, batch: Batch) -> StoreResult<Vec<EventRecord>> {
    if batch.changes.is_empty() {
        return events::append(db, db, channel, events::Batch::new(batch.events)?).await;
    }
    let mut batch = match as_step(batch) {
        Ok((step, release)) => return events::commit_step(db, channel, step, release).await,
        Err(batch) => batch,
    };
    let mut prepared = events::Batch::new(std::mem::take(&mut batch.events))?;
    let mut conn = db.conns.get().await.map_err(db_err)?;
    let mut tx = begin_on(&mut conn, batch.durability == Durability::Relaxed).await.map_err(db_err)?;
    let applied = async {
        work::lock_graphs(db, &mut tx, &graphs_changed(&batch.changes)).await?;
        let changes = group_changes(&[&batch]);
        let mut generated = vec![Vec::new()];
        apply_all(db, &mut tx, &changes, &mut generated).await.map_err(|(_, e)| e)?;
        for events in generated.into_iter().filter(|e| !e.is_empty()) {
            prepared.extend(events)?;
        }
        events::append(db, &mut *tx, channel, prepared).await
    }
    .await;
    let mut records = match applied {
        Ok(records) => records,
        Err(e) => {
            // Rolled back before the caller hears of the failure: a transaction merely dropped is
            // rolled back later, by the pool, and until then its row locks stand (a claim right after
            // would skip the tasks this one had locked).
            let _ = tx.rollback().await;
            return Err(e);
        }
    };
    tx.commit().await.map_err(db_err)?;
    records.extend(crate::ends::after_commit(db, &mut conn, channel, batch.changes.iter()).await);
    conn.done();
    Ok(records)
}

/// Begins a transaction on `conn` (the caller keeps the connection for what follows the commit); a
/// `relaxed` one commits without waiting for its WAL to reach the disk (`synchronous_commit = off`,
/// set in the same round trip as `BEGIN`): visible to every reader at once, on disk with the next
/// durable commit or within the WAL writer's delay, as [`Durability::Relaxed`] allows.
pub(crate) async fn begin_on(
    conn: &mut PgConnection,
    relaxed: bool,
) -> Result<sqlx_core::transaction::Transaction<'_, sqlx::Postgres>, sqlx::Error> {
    if relaxed {
        sqlx::Connection::begin_with(conn, "BEGIN; SET LOCAL synchronous_commit TO off").await
    } else {
        sqlx::Connection::begin(conn).await
    }
}

/// Applies changes in order, each tagged with the batch it belongs to (its index in `generated`, which
/// receives the events each batch's changes record themselves). A run of two or more changes of one
/// kind, from one batch or several, is applied as one set of statements: the changes of agent steps
/// and `SwapRun`s ([`agent_runs`]), `AddTask`s ([`work::add_tasks`]), attempts' starts (`CreateAgent`s and `UpdateTask`s), `FinishTask`s of distinct tasks ([`work::finish_tasks`]; the events
/// they record go to the run's last batch, after the own events of every batch of the run),
/// `ReserveBudget`s and `SettleBudget`s ([`budget_runs`]). On failure: the batch of the change that
/// failed, and why.
pub(crate) async fn apply_all(
    db: &Db,
    conn: &mut PgConnection,
    changes: &[(usize, &Change)],
    generated: &mut [Vec<NewEvent>],
) -> Result<(), (usize, StoreError)> {
    let mut i = 0;
    while i < changes.len() {
        let owner = changes[i].0;
        let rest = &changes[i..];
        let at = |(k, e): (usize, StoreError)| (changes[i + k].0, e);
        let steps: Vec<&Change> = rest.iter().map_while(|(_, c)| is_step_change(c).then_some(*c)).collect();
        if steps.len() >= 2 {
            agent_runs::apply_steps(db, conn, &steps).await.map_err(at)?;
            i += steps.len();
            continue;
        }
        let swaps: Vec<Swap<'_>> = rest
            .iter()
            .map_while(|(_, c)| match c {
                Change::SwapRun { agent_id, expect, lease } => Some((*agent_id, *expect, lease.as_ref())),
                _ => None,
            })
            .collect();
        if swaps.len() >= 2 {
            agent_runs::swap_all(db, conn, &swaps).await.map_err(at)?;
            i += swaps.len();
            continue;
        }
        let adds: Vec<&orch_core::wire::Task> = rest
            .iter()
            .map_while(|(_, c)| match c {
                Change::AddTask(t) => Some(&**t),
                _ => None,
            })
            .collect();
        if adds.len() >= 2 {
            let events = work::add_tasks(db, conn, &adds).await.map_err(at)?;
            for (k, events) in events.into_iter().enumerate() {
                let batch_of = changes[i + k].0;
                push(generated, batch_of, events).map_err(|e| (batch_of, e))?;
            }
            i += adds.len();
            continue;
        }
        let starts = start_run(rest);
        if starts.len() >= 2 {
            apply_starts(db, conn, &starts).await.map_err(at)?;
            i += starts.len();
            continue;
        }
        let finishes = finish_run(rest);
        if finishes.len() >= 2 {
            let last = changes[i + finishes.len() - 1].0;
            let events = work::finish_tasks(db, conn, &finishes).await.map_err(at)?;
            push(generated, last, events).map_err(|e| (last, e))?;
            i += finishes.len();
            continue;
        }
        let reservations: Vec<&Reservation> = rest
            .iter()
            .map_while(|(_, c)| match c {
                Change::ReserveBudget(r) => Some(&**r),
                _ => None,
            })
            .collect();
        if reservations.len() >= 2 {
            budget_runs::reserve_all(db, conn, &reservations).await.map_err(at)?;
            i += reservations.len();
            continue;
        }
        let settlements: Vec<(&Reservation, f64)> = rest
            .iter()
            .map_while(|(_, c)| match c {
                Change::SettleBudget { reservation, actual } => Some((&**reservation, *actual)),
                _ => None,
            })
            .collect();
        if settlements.len() >= 2 {
            budget_runs::settle_all(db, conn, &settlements).await.map_err(at)?;
            i += settlements.len();
            continue;
        }
        let mut events = Vec::new();
        apply(db, conn, changes[i].1, &mut events).await.map_err(|e| (owner, e))?;
        push(generated, owner, events).map_err(|e| (owner, e))?;
        i += 1;
    }
    Ok(())
}

fn push(generated: &mut [Vec<NewEvent>], owner: usize, events: Vec<NewEvent>) -> StoreResult<()> {
    generated
        .get_mut(owner)
        .ok_or_else(|| StoreError::Backend(format!("no batch {owner} in the transaction")))?
        .extend(events);
    Ok(())
}

/// The `CreateAgent`s and `UpdateTask`s at the start of `changes` (attempts' starts), up to the first
/// other change or repeated task.
fn start_run<'a>(changes: &[(usize, &'a Change)]) -> Vec<&'a Change> {
    let mut run: Vec<&Change> = Vec::new();
    let mut tasks: Vec<Id> = Vec::new();
    for (_, c) in changes {
        match c {
            Change::CreateAgent(_) => run.push(c),
            Change::UpdateTask { task, .. } if !tasks.contains(&task.id) => {
                tasks.push(task.id);
                run.push(c);
            }
            _ => break,
        }
    }
    run
}

/// Applies a run of [`start_run`]: its agents created by one statement, then its tasks' progress
/// written by one (the two touch different tables, so this ends as applying them in order would). On
/// failure, the index in the run of the change that failed, and why.
async fn apply_starts(db: &Db, conn: &mut PgConnection, run: &[&Change]) -> Result<(), (usize, StoreError)> {
    let mut agents = Vec::new();
    let mut tasks = Vec::new();
    for (i, c) in run.iter().enumerate() {
        match c {
            Change::CreateAgent(a) => agents.push((i, &**a)),
            Change::UpdateTask { task, fence } => tasks.push((i, (&**task, *fence))),
            _ => {}
        }
    }
    if !agents.is_empty() {
        let list: Vec<&orch_core::wire::Agent> = agents.iter().map(|(_, a)| *a).collect();
        agent_runs::create_agents(db, conn, &list).await.map_err(|(k, e)| (agents.get(k).map_or(0, |a| a.0), e))?;
    }
    if !tasks.is_empty() {
        let list: Vec<(&orch_core::wire::Task, Option<u32>)> = tasks.iter().map(|(_, t)| *t).collect();
        graphs::write_progress(db, conn, &list).await.map_err(|(k, e)| (tasks.get(k).map_or(0, |t| t.0), e))?;
    }
    Ok(())
}

/// The `FinishTask`s at the start of `changes`, up to the first other change or repeated task.
fn finish_run<'a>(changes: &[(usize, &'a Change)]) -> Vec<(&'a orch_core::wire::Task, u32)> {
    let mut run: Vec<(&orch_core::wire::Task, u32)> = Vec::new();
    for (_, c) in changes {
        match c {
            Change::FinishTask { task, fence } if !run.iter().any(|(t, _)| t.id == task.id) => {
                run.push((task, *fence));
            }
            _ => break,
        }
    }
    run
}

/// Where a batch goes among the batches of a group, so that changes applied as one run
/// ([`apply_all`]) come together: other batches first, then run-lease swaps and agent steps (batches
/// that touch no graph), or added tasks, reservations, model calls' steps with their settlements and runs' ends with
/// their tasks' (see [`group_changes`]) and finished tasks.
pub(crate) fn run_rank(batch: &Batch) -> u8 {
    match batch.changes.as_slice() {
        [Change::AddTask(_)] => 1,
        [Change::ReserveBudget(_)] => 2,
        [Change::FinishTask { .. }] => 4,
        [Change::SwapRun { .. }] => 2,
        _ if is_step_or_settle(batch) => 3,
        _ => 0,
    }
}

/// Whether a batch is made of agent-step changes and budget settlements or reservations, then at most
/// a finished task and a claim ([`step_tail`]): an agent's step, a turn's first step with the
/// reservation of its first model call, a model call's step with its settlement (or a settlement
/// alone), a run's end with its task's end.
fn is_step_or_settle(batch: &Batch) -> bool {
    step_tail(batch).is_some()
}

/// Whether a change settles or reserves budget.
fn is_budget(c: &Change) -> bool {
    matches!(c, Change::SettleBudget { .. } | Change::ReserveBudget(_))
}

/// The number of leading agent-step changes, settlements and reservations of a batch (at least one),
/// when all that follows them is a finished task, optionally with a claim after it.
fn step_tail(batch: &Batch) -> Option<usize> {
    let lead = batch.changes.iter().take_while(|c| is_step_change(c) || is_budget(c)).count();
    match &batch.changes[lead..] {
        _ if lead == 0 => None,
        [] | [Change::FinishTask { .. }] | [Change::FinishTask { .. }, Change::ClaimTasks(_)] => Some(lead),
        _ => None,
    }
}

/// The changes of a group's batches (sorted by [`run_rank`]) in the order they are applied, each with
/// the index of its batch: batch after batch, except that in a run of consecutive batches of the kind
/// [`is_step_or_settle`] (one batch is a run too), the step changes of every batch come first, then
/// every settlement, then every reservation, then each batch's finished task and claim, batch after
/// batch. The step changes write agents' rows, their messages and prompts; settlements and
/// reservations graphs' and `budget_spend` rows; finished tasks tasks' rows; so this ends as applying
/// each batch in turn would, except that the run's settlements return their unspent reservations
/// before its reservations ask (as if the batches that settle had been committed first: they were
/// committed at the same time, and they record no event whose order would tell); a claim still sees
/// the tasks finished by its own batch and the batches before it, never those of a later batch (whose
/// events come after its own). [`apply_all`] applies each kind as one run of a few statements, however
/// many batches: a model call's step and its settlement (or a turn's first step and its reservation),
/// which are committed together, would otherwise break the run at every batch.
pub(crate) fn group_changes<'a>(batches: &[&'a Batch]) -> Vec<(usize, &'a Change)> {
    let mut out = Vec::with_capacity(batches.iter().map(|b| b.changes.len()).sum());
    let mut i = 0;
    while i < batches.len() {
        // Each batch of the run with the length of its leading step changes and settlements.
        let run: Vec<(usize, &Batch, usize)> = batches[i..]
            .iter()
            .map_while(|b| step_tail(b))
            .enumerate()
            .map(|(j, lead)| (i + j, batches[i + j], lead))
            .collect();
        if run.is_empty() {
            out.extend(batches[i].changes.iter().map(|c| (i, c)));
            i += 1;
            continue;
        }
        for &(k, b, _) in &run {
            out.extend(b.changes.iter().filter(|c| is_step_change(c)).map(|c| (k, c)));
        }
        for &(k, b, lead) in &run {
            out.extend(b.changes[..lead].iter().filter(|c| matches!(c, Change::SettleBudget { .. })).map(|c| (k, c)));
        }
        for &(k, b, lead) in &run {
            out.extend(b.changes[..lead].iter().filter(|c| matches!(c, Change::ReserveBudget(_))).map(|c| (k, c)));
        }
        for &(k, b, lead) in &run {
            out.extend(b.changes[lead..].iter().map(|c| (k, c)));
        }
        i += run.len();
    }
    out
}

/// The task graphs whose rows a batch's changes write or decide from, sorted and without repeats, when
/// they must be locked first so that every transaction takes its locks in one order (graph rows, tasks,
/// `budget_spend` rows, the event counter) and two never wait for each other: for a batch of several
/// graph changes. A batch of one change takes its locks in that order by itself (a task update or a
/// finished task locks task rows only; a reservation locks its graph row first), so it skips the extra
/// statement: an attempt's start and end and every budget reservation are on the hot path.
fn graphs_changed(changes: &[Change]) -> Vec<Id> {
    if changes.iter().filter(|c| touches_graph(c)).count() < 2 {
        return Vec::new();
    }
    graphs_touched(changes.iter())
}

/// The task graphs whose rows or tasks any of these changes write or decide from, sorted and without
/// repeats: a transaction made of several callers' batches locks them all first (see
/// [`crate::group`]), as a batch of several graph changes does, so that a lock taken by a later batch
/// never precedes, against the lock order (graphs, tasks, `budget_spend` rows, the counter), one taken
/// by an earlier batch. Finished tasks count for none: they lock no graph row, and they come last in
/// a group ([`run_rank`]); their graphs' end is checked after the commit ([`crate::ends`]).
pub(crate) fn graphs_touched<'a>(changes: impl Iterator<Item = &'a Change>) -> Vec<Id> {
    let mut ids: Vec<Id> = changes.filter(|c| touches_graph(c)).flat_map(graph_ids).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Whether a batch goes to the graph lane of the group commit ([`crate::group`]): whether any of its
/// changes writes, or decides from, a task graph's row, a budget, or other tasks than its own. A task's
/// progress written by its attempt (`UpdateTask`, fenced) locks that task's row only, so an attempt's
/// start (its agent created with the task's new state) goes to the other lane, whose writers run side
/// by side: it no longer waits behind the graph lane's reservations and ends. Nothing else writes a
/// running task but the attempt that owns it (a cancel writes the tasks it finds pending, ready or
/// blocked, fenced, and a claim skips locked rows), so the task rows of such a group are never waited
/// for in a cycle.
pub(crate) fn touches_graphs(batch: &Batch) -> bool {
    batch.changes.iter().any(|c| touches_graph(c) && !matches!(c, Change::UpdateTask { .. }))
}

/// The graphs whose rows a change writes or decides from (a task's progress, `UpdateTask`, names
/// none: it locks its task's row only).
fn graph_ids(c: &Change) -> Vec<Id> {
    match c {
        Change::UpsertGraph(g) => vec![g.id],
        Change::InsertTasks(tasks) => tasks.iter().map(|t| t.graph_id).collect(),
        Change::AddTask(task) => vec![task.graph_id],
        Change::SetGraphStatus { id, .. } | Change::SetGraphBudget { id, .. } | Change::GrowGraph { id, .. } => {
            vec![*id]
        }
        Change::ReserveBudget(r) | Change::SettleBudget { reservation: r, .. } => r.graph_id.into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Whether a change writes, or decides from, a task graph's row or its tasks.
fn touches_graph(c: &Change) -> bool {
    matches!(
        c,
        Change::UpsertGraph(_)
            | Change::InsertTasks(_)
            | Change::AddTask(_)
            | Change::UpdateTask { .. }
            | Change::FinishTask { .. }
            | Change::SetGraphStatus { .. }
            | Change::SetGraphBudget { .. }
            | Change::GrowGraph { .. }
            | Change::ReserveBudget(_)
            | Change::SettleBudget { .. }
    )
}

/// The batch as one agent step, if that is all it is (each field at most once, one agent), with the
/// run whose claim on the agent it ends (a `ReleaseRun` after the step's fields).
fn as_step(batch: Batch) -> Result<(StepCommit, Option<Id>), Batch> {
    let mut step = StepCommit::default();
    let mut release: Option<Id> = None;
    let mut agent: Option<Id> = None;
    let mut same = |id: Id| *agent.get_or_insert(id) == id;
    for c in &batch.changes {
        if let Change::ReleaseRun { agent_id, run_id } = c
            && same(*agent_id)
            && release.is_none()
        {
            release = Some(*run_id);
            continue;
        }
        if release.is_some() {
            return Err(batch);
        }
        let fits = match c {
            Change::SetAgentStatus { id, .. } => same(*id) && step.status.is_none(),
            Change::AddAgentUsage { id, .. } => same(*id) && step.usage.is_none(),
            Change::SaveAgentState { id, .. } => same(*id) && step.state.is_none(),
            Change::SetAgentContext { id, .. } => same(*id) && step.context.is_none(),
            Change::AppendMessages { agent_id, .. } => same(*agent_id) && step.messages.is_empty(),
            _ => false,
        };
        if !fits {
            return Err(batch);
        }
        match c.clone() {
            Change::SetAgentStatus { status, .. } => step.status = Some(status),
            Change::AddAgentUsage { usage, cost_usd, .. } => step.usage = Some((usage, cost_usd)),
            Change::SaveAgentState { state, .. } => step.state = Some(state),
            Change::SetAgentContext { used, window, .. } => step.context = Some((used, window)),
            Change::AppendMessages { messages, .. } => step.messages = messages,
            _ => return Err(batch),
        }
    }
    match agent {
        // A release alone is no step: its agent may be missing.
        Some(_) if release.is_some() && step.status.is_none() && step.usage.is_none() => Err(batch),
        Some(id) => {
            step.agent_id = id;
            step.events = batch.events;
            Ok((step, release))
        }
        None => Err(batch),
    }
}

/// One change inside the transaction; the events it records itself are pushed to `generated`.
async fn apply(db: &Db, conn: &mut PgConnection, change: &Change, generated: &mut Vec<NewEvent>) -> StoreResult<()> {
    match change {
        Change::CreateOrchestrator(o) => sql::create_orchestrator(db, conn, o).await,
        Change::UpdateOrchestrator(o) => sql::update_orchestrator(db, conn, o).await,
        // One insert path for agents: a single one is a run of one.
        Change::CreateAgent(a) => agent_runs::create_agents(db, conn, &[&**a]).await.map_err(|(_, e)| e),
        Change::SetAgentStatus { id, status } => set_status(db, conn, *id, *status).await,
        Change::SaveAgentState { id, state } => {
            sql::save_agent_state(db, conn, *id, state.state.as_ref(), state.session_id.as_deref()).await
        }
        Change::AddAgentUsage { id, usage, cost_usd } => add_agent_usage(db, conn, *id, usage, *cost_usd).await,
        Change::SetAgentContext { id, used, window } => set_context(db, conn, *id, *used, *window).await,
        Change::SetAgentMetadata { id, metadata } => sql::set_agent_metadata(db, conn, *id, metadata).await,
        Change::ArchiveAgent { id } => sql::archive_agent(db, conn, *id).await,
        Change::AppendMessages { agent_id, messages } => {
            let messages: Vec<String> = messages.iter().map(json_param).collect::<StoreResult<_>>()?;
            sqlx::query(&db.sql(
                "INSERT INTO {S}.conversation (agent_id, message) \
                 SELECT $1, u.message::jsonb FROM UNNEST($2::text[]) WITH ORDINALITY AS u(message, ord) ORDER BY u.ord",
            ))
            .bind(*agent_id)
            .bind(&messages)
            .execute(&mut *conn)
            .await
            .map_err(db_err)
            .map(drop)
        }
        Change::ClearConversation { agent_id } => events::clear_conversation(db, conn, *agent_id).await,
        Change::InsertPrompt(p) => sql::insert_prompt(db, conn, p).await,
        Change::InsertChat(m) => sql::insert_chat(db, conn, m).await,
        Change::InsertSystemLog(l) => sql::insert_system_log(db, conn, l).await,
        Change::UpsertWorkflow(w) => sql::upsert_workflow(db, conn, w).await,
        Change::SwapRun { agent_id, expect, lease } => swap_run(db, conn, *agent_id, *expect, lease.as_ref()).await,
        // A step change: alone, a run of one.
        Change::ReleaseRun { .. } => agent_runs::apply_steps(db, conn, &[change]).await.map_err(|(_, e)| e),
        Change::SwapWorkflowRun { workflow_id, expect, lease } => {
            swap_workflow_run(db, conn, *workflow_id, *expect, lease.as_ref()).await
        }
        Change::InsertPlan(p) => graphs::insert_plan(db, conn, p).await,
        Change::UpsertPlan(p) => graphs::upsert_plan(db, conn, p).await,
        Change::UpsertGraph(g) => graphs::upsert_graph(db, conn, g).await,
        Change::InsertTasks(tasks) => graphs::insert_tasks(db, conn, tasks).await,
        Change::UpdateTask { task, fence } => graphs::update_task(db, conn, task, *fence).await.map(drop),
        Change::ClaimTasks(claim) => work::claim_tasks(db, conn, claim).await.map(|e| generated.extend(e)),
        Change::FinishTask { task, fence } => {
            work::finish_task(db, conn, task, *fence).await.map(|e| generated.extend(e))
        }
        Change::Heartbeat(w) => work::heartbeat(db, conn, w).await,
        Change::RemoveWorker { id } => work::remove_worker(db, conn, id).await,
        Change::ForgetWorkers { silent_before } => work::forget_workers(db, conn, *silent_before).await,
        Change::SetGraphStatus { id, status, error, from } => {
            work::set_graph_status(db, conn, *id, *status, error.as_deref(), from).await.map(|e| generated.extend(e))
        }
        Change::GrowGraph { id, tasks, waves } => {
            work::grow_graph(db, conn, *id, *tasks, *waves).await.map(|e| generated.extend(e))
        }
        Change::AddTask(task) => work::add_tasks(db, conn, &[&**task])
            .await
            .map(|events| generated.extend(events.into_iter().flatten()))
            .map_err(|(_, e)| e),
        Change::SetGraphBudget { id, limit_usd } => {
            work::set_graph_budget(db, conn, *id, *limit_usd).await.map(|e| generated.extend(e))
        }
        Change::ReserveBudget(r) => work::reserve(db, conn, r).await,
        Change::SettleBudget { reservation, actual } => work::settle(db, conn, reservation, *actual).await,
        Change::SetBudgetLimit { scope, limit_usd } => work::set_limit(db, conn, *scope, *limit_usd).await,
        other => Err(StoreError::Backend(format!(
            "this store does not support the change {other:?}; upgrade orch-store-postgres"
        ))),
    }
}

async fn set_context(db: &Db, conn: &mut PgConnection, id: Id, used: u64, window: Option<u64>) -> StoreResult<()> {
    let done = sqlx::query(&db.sql("UPDATE {S}.agents SET context_used = $2, context_window = $3 WHERE id = $1"))
        .bind(id)
        .bind(i64::try_from(used).unwrap_or(i64::MAX))
        .bind(window.map(|w| i64::try_from(w).unwrap_or(i64::MAX)))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

async fn set_status(db: &Db, conn: &mut PgConnection, id: Id, status: AgentStatus) -> StoreResult<()> {
    let done = sqlx::query(&db.sql("UPDATE {S}.agents SET status = $2, updated_at = $3 WHERE id = $1"))
        .bind(id)
        .bind(status.as_str())
        .bind(now_us())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

async fn add_agent_usage(
    db: &Db,
    conn: &mut PgConnection,
    id: Id,
    usage: &orch_core::wire::Usage,
    cost: f64,
) -> StoreResult<()> {
    let u = sql::usage_params(usage)?;
    let done = sqlx::query(&db.sql(
        "UPDATE {S}.agents SET input_tokens = input_tokens + $2, output_tokens = output_tokens + $3, \
         cache_read_input_tokens = cache_read_input_tokens + $4, \
         cache_creation_input_tokens = cache_creation_input_tokens + $5, \
         total_cost_usd = total_cost_usd + $6, updated_at = $7 WHERE id = $1",
    ))
    .bind(id)
    .bind(u[0])
    .bind(u[1])
    .bind(u[2])
    .bind(u[3])
    .bind(cost)
    .bind(now_us())
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(not_found("agent", id));
    }
    Ok(())
}

/// Sets the agent's run lease if the run holding it now is `expect` (the row locked while checked).
async fn swap_workflow_run(
    db: &Db,
    conn: &mut PgConnection,
    workflow_id: Id,
    expect: Option<Id>,
    lease: Option<&RunLease>,
) -> StoreResult<()> {
    swap_lease(db, conn, "workflows", workflow_id, expect, lease)
        .await?
        .map_or(Ok(()), |current| Err(StoreError::WorkflowRunConflict { workflow_id, current }))
}

async fn swap_run(
    db: &Db,
    conn: &mut PgConnection,
    agent_id: Id,
    expect: Option<Id>,
    lease: Option<&RunLease>,
) -> StoreResult<()> {
    swap_lease(db, conn, "agents", agent_id, expect, lease)
        .await?
        .map_or(Ok(()), |current| Err(StoreError::RunConflict { agent_id, current }))
}

/// The compare-and-swap of the `run_lease` column of row `id` of `table` (`agents` or `workflows`):
/// `Some(current holder)` when it is held by another run than `expect`, and nothing was changed.
async fn swap_lease(
    db: &Db,
    conn: &mut PgConnection,
    table: &'static str,
    id: Id,
    expect: Option<Id>,
    lease: Option<&RunLease>,
) -> StoreResult<Option<Option<Box<RunLease>>>> {
    let what = table.trim_end_matches('s');
    let current: Option<Option<String>> =
        sqlx::query_scalar(&db.sql(&format!("SELECT run_lease::text FROM {{S}}.{table} WHERE id = $1 FOR UPDATE")))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    let current = current.ok_or_else(|| not_found(what, id))?;
    let current = current
        .map(|t| json_decode::<RunLease>(&t).map_err(|e| StoreError::Decode(format!("run lease of {what} {id}: {e}"))))
        .transpose()?;
    if current.as_ref().map(|l| l.run_id) != expect {
        return Ok(Some(current.map(Box::new)));
    }
    sqlx::query(&db.sql(&format!("UPDATE {{S}}.{table} SET run_lease = $2::jsonb WHERE id = $1")))
        .bind(id)
        .bind(lease.map(json_param).transpose()?)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(None)
}
