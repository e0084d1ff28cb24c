//! The in-memory store's task queue and budgets: claims, finished tasks and the dependents they
//! release, graph status, worker heartbeats, reservations and limits.

use std::collections::HashMap;

use super::{Data, Undo, not_found};
use crate::store::{Change, StoreError, StoreResult};
use crate::wire::{
    BudgetLine, BudgetScope, BudgetStatus, Event, EventKeys, GraphStatus, Id, NewEvent, Reservation, Task, TaskClaim,
    TaskGraph, TaskStatus, WorkerInfo, now,
};

/// Heartbeats, limits and spending (per period key: `day:…`, `month:…`, `graph:…`).
#[derive(Default)]
pub(super) struct WorkData {
    workers: HashMap<String, WorkerInfo>,
    limits: HashMap<BudgetScope, f64>,
    /// (spent, reserved) per period; a graph's spending is its `cost_usd`, so its entry keeps 0 spent.
    spend: HashMap<String, (f64, f64)>,
}

/// What a change of this module replaced, to put back.
#[derive(Default)]
pub(super) struct WorkUndo {
    tasks: Vec<Task>,
    /// Tasks this change inserted, to remove.
    added: Vec<Id>,
    graphs: Vec<TaskGraph>,
    workers: Vec<(String, Option<WorkerInfo>)>,
    limits: Vec<(BudgetScope, Option<f64>)>,
    spend: Vec<(String, Option<(f64, f64)>)>,
}

impl WorkUndo {
    pub(super) fn revert(self, d: &mut Data) {
        for id in self.added {
            d.tasks.remove(&id);
        }
        for t in self.tasks.into_iter().rev() {
            d.tasks.insert(t.id, t);
        }
        for g in self.graphs.into_iter().rev() {
            d.graphs.insert(g.id, g);
        }
        for (id, w) in self.workers.into_iter().rev() {
            match w {
                Some(w) => d.work.workers.insert(id, w),
                None => d.work.workers.remove(&id),
            };
        }
        for (scope, l) in self.limits.into_iter().rev() {
            match l {
                Some(l) => d.work.limits.insert(scope, l),
                None => d.work.limits.remove(&scope),
            };
        }
        for (key, s) in self.spend.into_iter().rev() {
            match s {
                Some(s) => d.work.spend.insert(key, s),
                None => d.work.spend.remove(&key),
            };
        }
    }
}

fn task_event(t: &Task) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::TaskUpdated { task: Box::new(t.clone()) })
}

fn graph_event(g: &TaskGraph) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::GraphUpdated { graph: Box::new(g.clone()) })
}

/// Adds a task at its graph's next position (see [`Change::AddTask`]): all or nothing.
fn add_task(d: &mut Data, mut task: Task, undo: &mut WorkUndo, generated: &mut Vec<NewEvent>) -> StoreResult<()> {
    let id = task.graph_id;
    let g = d.graphs.get(&id).ok_or_else(|| not_found("task graph", id))?;
    if g.status.is_final() {
        return Err(StoreError::GraphEnded { id, status: g.status.as_str().into() });
    }
    let due = task.depends_on.iter().all(|dep| d.tasks.get(dep).is_some_and(|t| t.status.releases_dependents()));
    task.place(g.total_tasks, due);
    super::refuse_taken(d, std::slice::from_ref(&task))?;
    let g = d.graphs.get_mut(&id).ok_or_else(|| not_found("task graph", id))?;
    undo.graphs.push(g.clone());
    g.total_tasks = g.total_tasks.saturating_add(1);
    g.waves = g.waves.max(task.wave);
    g.updated_at = now();
    let grown = graph_event(g);
    generated.push(NewEvent::new(EventKeys::default(), Event::TaskUpdated { task: Box::new(task.clone()) }));
    generated.push(grown);
    undo.added.push(task.id);
    d.tasks.insert(task.id, task);
    Ok(())
}

/// Applies a change of the task queue or the budgets.
pub(super) fn apply(d: &mut Data, change: Change, generated: &mut Vec<NewEvent>) -> StoreResult<Undo> {
    let mut undo = WorkUndo::default();
    match change {
        Change::ClaimTasks(claim) => claim_tasks(d, &claim, &mut undo, generated),
        Change::FinishTask { task, fence } => finish_task(d, *task, fence, &mut undo, generated)?,
        Change::Heartbeat(w) => {
            let id = w.id.clone();
            let old = d.work.workers.insert(id.clone(), *w);
            undo.workers.push((id, old));
        }
        Change::RemoveWorker { id } => {
            let old = d.work.workers.remove(&id);
            undo.workers.push((id, old));
        }
        Change::ForgetWorkers { silent_before } => {
            let gone: Vec<String> =
                d.work.workers.values().filter(|w| w.heartbeat_at < silent_before).map(|w| w.id.clone()).collect();
            for id in gone {
                let old = d.work.workers.remove(&id);
                undo.workers.push((id, old));
            }
        }
        Change::SetGraphStatus { id, status, error, from } => {
            let g = d.graphs.get_mut(&id).ok_or_else(|| not_found("task graph", id))?;
            if from.contains(&g.status) {
                undo.graphs.push(g.clone());
                set_graph_status(g, status, error);
                generated.push(graph_event(g));
            }
        }
        Change::GrowGraph { id, tasks, waves } => {
            let g = d.graphs.get_mut(&id).ok_or_else(|| not_found("task graph", id))?;
            if g.status.is_final() {
                return Err(StoreError::GraphEnded { id, status: g.status.as_str().into() });
            }
            undo.graphs.push(g.clone());
            g.total_tasks = g.total_tasks.saturating_add(tasks);
            g.waves = g.waves.max(waves);
            g.updated_at = now();
            generated.push(graph_event(g));
        }
        Change::AddTask(task) => add_task(d, *task, &mut undo, generated)?,
        Change::SetGraphBudget { id, limit_usd } => {
            let g = d.graphs.get_mut(&id).ok_or_else(|| not_found("task graph", id))?;
            undo.graphs.push(g.clone());
            g.budget_usd = limit_usd;
            g.updated_at = now();
            generated.push(graph_event(g));
        }
        Change::ReserveBudget(r) => reserve(d, &r, &mut undo)?,
        Change::SettleBudget { reservation, actual } => settle(d, &reservation, actual, &mut undo)?,
        Change::SetBudgetLimit { scope, limit_usd } => {
            let old = match limit_usd {
                Some(l) => d.work.limits.insert(scope, l),
                None => d.work.limits.remove(&scope),
            };
            undo.limits.push((scope, old));
        }
        other => {
            return Err(StoreError::Backend(format!("the in-memory store does not support the change {other:?}")));
        }
    }
    Ok(Undo::Work(Box::new(undo)))
}

/// Sets a graph's status and error, stamping its first start and its end.
pub(crate) fn set_graph_status(g: &mut TaskGraph, status: GraphStatus, error: Option<String>) {
    let at = now();
    g.status = status;
    g.error = error;
    g.updated_at = at;
    if status == GraphStatus::Running && g.started_at.is_none() {
        g.started_at = Some(at);
    }
    g.completed_at = if status.is_final() { Some(at) } else { None };
}

fn claim_tasks(d: &mut Data, claim: &TaskClaim, undo: &mut WorkUndo, generated: &mut Vec<NewEvent>) {
    let workers = &d.work.workers;
    let graphs = &d.graphs;
    let mut due: Vec<(u32, u32, Id)> = d
        .tasks
        .values()
        .filter(|t| claim.graph_id.is_none_or(|g| g == t.graph_id))
        .filter(|t| graphs.get(&t.graph_id).is_some_and(|g| g.status == GraphStatus::Running))
        .filter(|t| match t.status {
            TaskStatus::Ready => t.not_before.is_none_or(|nb| nb <= claim.now),
            TaskStatus::Running => {
                // A claim younger than the staleness window is never abandoned: its worker was alive
                // when it claimed.
                let worker_gone = t.started_at.is_none_or(|s| s < claim.stale_before)
                    && t.claimed_by
                        .as_ref()
                        .and_then(|w| workers.get(w))
                        .is_none_or(|w| w.heartbeat_at < claim.stale_before);
                worker_gone || t.lease_until.is_some_and(|l| l < claim.now)
            }
            _ => false,
        })
        .map(|t| (t.wave, t.index, t.id))
        .collect();
    due.sort_unstable();
    for (_, _, id) in due.into_iter().take(usize::try_from(claim.limit).unwrap_or(usize::MAX)) {
        let Some(t) = d.tasks.get_mut(&id) else { continue };
        undo.tasks.push(t.clone());
        claimed(t, claim);
        generated.push(task_event(t));
    }
}

/// A task as a claim leaves it: running at its next attempt, held by the claiming worker.
pub(crate) fn claimed(t: &mut Task, claim: &TaskClaim) {
    t.status = TaskStatus::Running;
    t.attempt += 1;
    t.claimed_by = Some(claim.worker.clone());
    t.lease_until = Some(claim.deadline);
    t.not_before = None;
    t.started_at = Some(claim.now);
    t.updated_at = claim.now;
}

fn finish_task(
    d: &mut Data,
    task: Task,
    fence: u32,
    undo: &mut WorkUndo,
    generated: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    let cur = d.tasks.get_mut(&task.id).ok_or_else(|| not_found("task", task.id))?;
    if cur.attempt != fence {
        return Err(StoreError::Fenced { task_id: task.id, expected: fence, found: cur.attempt });
    }
    undo.tasks.push(cur.clone());
    cur.set_progress(&task);
    let graph_id = cur.graph_id;
    if task.status.releases_dependents() {
        let mut released: Vec<Id> = d
            .tasks
            .values()
            .filter(|t| t.graph_id == graph_id && t.status == TaskStatus::Pending && t.depends_on.contains(&task.id))
            .filter(|t| t.depends_on.iter().all(|dep| d.tasks.get(dep).is_some_and(|x| x.status.releases_dependents())))
            .map(|t| t.id)
            .collect();
        released.sort_unstable();
        let at = now();
        for id in released {
            if let Some(t) = d.tasks.get_mut(&id) {
                undo.tasks.push(t.clone());
                t.status = TaskStatus::Ready;
                t.updated_at = at;
                generated.push(task_event(t));
            }
        }
    }
    end_graph_if_done(d, graph_id, undo, generated);
    Ok(())
}

/// Ends a running graph that has no open task left: completed, or failed when a task failed.
fn end_graph_if_done(d: &mut Data, graph_id: Id, undo: &mut WorkUndo, generated: &mut Vec<NewEvent>) {
    let open = d.tasks.values().any(|t| {
        t.graph_id == graph_id
            && matches!(t.status, TaskStatus::Pending | TaskStatus::Ready | TaskStatus::Running | TaskStatus::Blocked)
    });
    if open {
        return;
    }
    let failed = d.tasks.values().filter(|t| t.graph_id == graph_id && t.status == TaskStatus::Failed).count();
    let Some(g) = d.graphs.get_mut(&graph_id) else { return };
    if g.status != GraphStatus::Running {
        return;
    }
    undo.graphs.push(g.clone());
    if failed > 0 {
        set_graph_status(g, GraphStatus::Failed, Some(format!("{failed} task(s) failed")));
    } else {
        set_graph_status(g, GraphStatus::Completed, None);
    }
    generated.push(graph_event(g));
}

fn spend_entry(d: &mut Data, key: &str, undo: &mut WorkUndo) -> (f64, f64) {
    let cur = d.work.spend.get(key).copied();
    if !undo.spend.iter().any(|(k, _)| k == key) {
        undo.spend.push((key.to_string(), cur));
    }
    cur.unwrap_or((0.0, 0.0))
}

/// A period a reservation counts against: its key, its name in errors, its limit, and what is spent
/// outside the spend table (a graph's cost).
type Scope = (String, String, Option<f64>, f64);

/// The periods a reservation counts against, each with its limit.
fn scopes(d: &Data, r: &Reservation) -> StoreResult<Vec<Scope>> {
    let mut v = vec![
        (
            format!("day:{}", r.day),
            BudgetScope::Daily.as_str().to_string(),
            d.work.limits.get(&BudgetScope::Daily).copied(),
            0.0,
        ),
        (
            format!("month:{}", r.month),
            BudgetScope::Monthly.as_str().to_string(),
            d.work.limits.get(&BudgetScope::Monthly).copied(),
            0.0,
        ),
    ];
    if let Some(id) = r.graph_id {
        let g = d.graphs.get(&id).ok_or_else(|| not_found("task graph", id))?;
        v.push((format!("graph:{id}"), format!("graph {id}"), g.budget_usd, g.cost_usd));
    }
    Ok(v)
}

fn reserve(d: &mut Data, r: &Reservation, undo: &mut WorkUndo) -> StoreResult<()> {
    let scopes = scopes(d, r)?;
    for (key, scope, limit, graph_spent) in &scopes {
        let (spent, reserved) = d.work.spend.get(key).copied().unwrap_or((0.0, 0.0));
        let spent = spent + graph_spent;
        if let Some(limit) = *limit
            && spent + reserved + r.amount > limit + 1e-12
        {
            return Err(StoreError::BudgetExhausted { scope: scope.clone(), limit, spent, reserved, asked: r.amount });
        }
    }
    for (key, ..) in scopes {
        let (spent, reserved) = spend_entry(d, &key, undo);
        d.work.spend.insert(key, (spent, reserved + r.amount));
    }
    Ok(())
}

fn settle(d: &mut Data, r: &Reservation, actual: f64, undo: &mut WorkUndo) -> StoreResult<()> {
    for (key, _, _, _) in scopes(d, r)? {
        let (spent, reserved) = spend_entry(d, &key, undo);
        let spent = if key.starts_with("graph:") { spent } else { spent + actual };
        d.work.spend.insert(key, (spent, (reserved - r.amount).max(0.0)));
    }
    if let Some(id) = r.graph_id
        && let Some(g) = d.graphs.get_mut(&id)
    {
        undo.graphs.push(g.clone());
        g.cost_usd += actual;
    }
    Ok(())
}

/// The daily and monthly lines.
pub(super) fn budget(d: &Data, day: &str, month: &str) -> BudgetStatus {
    let line = |scope: BudgetScope, period: &str, key: String| {
        let (spent, reserved) = d.work.spend.get(&key).copied().unwrap_or((0.0, 0.0));
        BudgetLine {
            scope,
            period: period.to_string(),
            limit_usd: d.work.limits.get(&scope).copied(),
            spent_usd: spent,
            reserved_usd: reserved,
        }
    };
    BudgetStatus {
        daily: line(BudgetScope::Daily, day, format!("day:{day}")),
        monthly: line(BudgetScope::Monthly, month, format!("month:{month}")),
    }
}

/// The workers, most recent heartbeat first.
pub(super) fn workers(d: &Data) -> Vec<WorkerInfo> {
    let mut v: Vec<WorkerInfo> = d.work.workers.values().cloned().collect();
    v.sort_by(|a, b| b.heartbeat_at.cmp(&a.heartbeat_at).then(a.id.cmp(&b.id)));
    v
}
