//! Plans and graphs in the store: saving, revising and approving plans, making a graph of an approved
//! plan, adding a task to a graph. Each operation is one batch: the rows and the events recording them.

use std::collections::HashMap;
use std::sync::Arc;

use super::validate::{Problem, Problems, estimate_problems, label, revalidate};
use super::waves::{plan_waves, wave_after};
use super::{GraphError, ReadPlan};
use crate::store::{Batch, Change, Store, StoreError};
use crate::wire::{
    Complexity, Event, EventKeys, GraphStatus, Id, Plan, PlanStatus, PlannedTask, Task, TaskGraph, TaskStatus, new_id,
    now,
};

/// Where a plan came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanOrigin {
    /// The model that wrote it.
    pub model: Option<String>,
    /// The file it was read from.
    pub source_file: Option<String>,
    /// What writing it cost, in USD.
    pub cost_usd: f64,
}

/// A task to add to a graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTask {
    /// Its key; empty: `task-N`, N the graph's task count after adding it.
    pub key: String,
    /// Title (required).
    pub title: String,
    /// What to do.
    pub description: String,
    /// Kind of work (empty: `code`).
    pub task_type: String,
    /// How much work it is.
    pub complexity: Complexity,
    /// The tasks it depends on: their keys, ids, or positions from 0.
    pub depends_on: Vec<String>,
    /// Model tier or model.
    pub model: Option<String>,
    /// Tools it needs.
    pub tools: Vec<String>,
    /// How to tell it is done.
    pub verification: Vec<String>,
    /// Its estimated cost, USD (a finite number, 0 or more), as a plan's task carries it.
    pub estimated_cost_usd: Option<f64>,
    /// Its estimated duration, minutes (a finite number, 0 or more).
    pub estimated_minutes: Option<f64>,
}

/// Plans and task graphs over a store.
#[derive(Clone)]
pub struct TaskGraphs {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for TaskGraphs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskGraphs")
    }
}

fn plan_event(plan: &Plan) -> (EventKeys, Event) {
    (EventKeys::default(), Event::PlanUpdated { plan: Box::new(plan.clone()) })
}

impl TaskGraphs {
    /// Plans and graphs of `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Stores a new plan (version 1, a draft) of `requirements`. The tasks are checked again first.
    pub async fn create_plan(
        &self,
        requirements: &str,
        tasks: Vec<PlannedTask>,
        origin: PlanOrigin,
    ) -> Result<Plan, GraphError> {
        let tasks = revalidate(&tasks).map_err(GraphError::Invalid)?;
        let at = now();
        let plan = Plan {
            id: new_id(),
            version: 1,
            status: PlanStatus::Draft,
            requirements: requirements.trim().to_string(),
            tasks,
            model: origin.model,
            source_file: origin.source_file,
            cost_usd: origin.cost_usd,
            created_at: at,
            updated_at: at,
        };
        let (keys, event) = plan_event(&plan);
        self.store.commit(Batch::new().change(Change::InsertPlan(Box::new(plan.clone()))).event(keys, event)).await?;
        Ok(plan)
    }

    /// Stores a plan read from a file or a reply: its requirements are `requirements`, else the plan's
    /// own `requirements` field, else empty.
    pub async fn create_plan_from(
        &self,
        requirements: Option<&str>,
        read: ReadPlan,
        origin: PlanOrigin,
    ) -> Result<Plan, GraphError> {
        let requirements = requirements.map(str::to_string).or(read.requirements).unwrap_or_default();
        self.create_plan(&requirements, read.tasks, origin).await
    }

    /// Asks `planner` for a plan of `requirements` and stores it as a new draft. When the model gives no
    /// valid plan (after its one retry) or fails, nothing is stored.
    pub async fn plan_requirements(&self, planner: &super::Planner, requirements: &str) -> Result<Plan, GraphError> {
        let drafted = planner.draft(requirements).await?;
        let origin = PlanOrigin { model: Some(drafted.model), source_file: None, cost_usd: drafted.cost_usd };
        self.create_plan(requirements, drafted.tasks, origin).await
    }

    /// Stores `tasks` as the next version of plan `id` (a draft); the version it replaces is marked
    /// superseded in the same commit. `requirements` replaces the plan's when given. Of two revisions
    /// made at once, the second fails (a conflict) and stores nothing.
    pub async fn revise_plan(
        &self,
        id: Id,
        requirements: Option<&str>,
        tasks: Vec<PlannedTask>,
        origin: PlanOrigin,
    ) -> Result<Plan, GraphError> {
        let tasks = revalidate(&tasks).map_err(GraphError::Invalid)?;
        let mut old = self.plan(id, None).await?;
        let at = now();
        let plan = Plan {
            id,
            version: old.version + 1,
            status: PlanStatus::Draft,
            requirements: requirements.map_or_else(|| old.requirements.clone(), |r| r.trim().to_string()),
            tasks,
            model: origin.model,
            source_file: origin.source_file,
            cost_usd: origin.cost_usd,
            created_at: at,
            updated_at: at,
        };
        old.status = PlanStatus::Superseded;
        old.updated_at = at;
        let (k1, e1) = plan_event(&old);
        let (k2, e2) = plan_event(&plan);
        let batch = Batch::new()
            .change(Change::UpsertPlan(Box::new(old)))
            .change(Change::InsertPlan(Box::new(plan.clone())))
            .event(k1, e1)
            .event(k2, e2);
        self.store.commit(batch).await?;
        Ok(plan)
    }

    /// Approves the latest version of plan `id`. Approving an approved plan changes nothing.
    pub async fn approve(&self, id: Id) -> Result<Plan, GraphError> {
        let mut plan = self.plan(id, None).await?;
        if plan.status == PlanStatus::Approved {
            return Ok(plan);
        }
        plan.status = PlanStatus::Approved;
        plan.updated_at = now();
        let (keys, event) = plan_event(&plan);
        self.store.commit(Batch::new().change(Change::UpsertPlan(Box::new(plan.clone()))).event(keys, event)).await?;
        Ok(plan)
    }

    /// Plan `id`: version `version`, or the latest.
    pub async fn plan(&self, id: Id, version: Option<u32>) -> Result<Plan, GraphError> {
        self.store.get_plan(id, version).await?.ok_or_else(|| {
            GraphError::PlanNotFound(match version {
                Some(v) => format!("{id} version {v}"),
                None => id.to_string(),
            })
        })
    }

    /// Makes a graph of the latest version of plan `id`, which must be approved: one task per planned
    /// task, in waves; tasks without dependencies are ready, the others pending. `name` defaults to the
    /// first line of the requirements.
    pub async fn create_graph(&self, plan_id: Id, name: Option<String>) -> Result<(TaskGraph, Vec<Task>), GraphError> {
        let plan = self.plan(plan_id, None).await?;
        if plan.status != PlanStatus::Approved {
            return Err(GraphError::NotApproved { id: plan.id, version: plan.version, status: plan.status });
        }
        let planned = revalidate(&plan.tasks).map_err(GraphError::Invalid)?;
        let waves = plan_waves(&planned);
        let at = now();
        let graph_id = new_id();
        let ids: HashMap<&str, Id> = planned.iter().map(|t| (t.key.as_str(), new_id())).collect();
        let mut tasks = Vec::with_capacity(planned.len());
        for (i, (t, wave)) in planned.iter().zip(&waves).enumerate() {
            let depends_on: Vec<Id> = t.depends_on.iter().filter_map(|d| ids.get(d.as_str()).copied()).collect();
            let id = ids.get(t.key.as_str()).copied().unwrap_or_else(new_id);
            let ready = depends_on.is_empty();
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            tasks.push(new_task(id, graph_id, index, t.clone(), depends_on, *wave, ready, at));
        }
        let name = name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_name(&plan.requirements, plan.id));
        let graph = TaskGraph {
            id: graph_id,
            name,
            plan_id: Some(plan.id),
            plan_version: Some(plan.version),
            status: GraphStatus::Pending,
            total_tasks: u32::try_from(tasks.len()).unwrap_or(u32::MAX),
            waves: waves.iter().copied().max().unwrap_or(0),
            budget_usd: None,
            cost_usd: 0.0,
            error: None,
            created_at: at,
            updated_at: at,
            started_at: None,
            completed_at: None,
        };
        let mut batch = Batch::new()
            .change(Change::UpsertGraph(Box::new(graph.clone())))
            .change(Change::InsertTasks(tasks.clone()))
            .event(EventKeys::default(), Event::GraphUpdated { graph: Box::new(graph.clone()) });
        for t in &tasks {
            batch.push_event(EventKeys::default(), Event::TaskUpdated { task: Box::new(t.clone()) });
        }
        self.store.commit(batch).await?;
        Ok((graph, tasks))
    }

    /// Graph `id` and its tasks (by index).
    pub async fn graph(&self, id: Id) -> Result<(TaskGraph, Vec<Task>), GraphError> {
        let graph = self.store.get_graph(id).await?.ok_or(GraphError::GraphNotFound(id))?;
        let tasks = self.store.list_tasks(id).await?;
        Ok((graph, tasks))
    }

    /// Adds a task to graph `graph_id` (one that has not ended), checked like a plan's: a title, a key
    /// the graph does not have, dependencies naming tasks of the graph. Its wave follows from its
    /// dependencies; it is ready when they all completed or were skipped when it is added (also one
    /// that completes while it is added), else pending.
    ///
    /// Reads only the tasks the new one names (its key, its dependencies), not the whole graph (nor
    /// its row, unless the task is refused): adding to a graph of many tasks costs what adding to a
    /// small one does.
    pub async fn add_task(&self, graph_id: Id, new: NewTask) -> Result<Task, GraphError> {
        // The graph's row is not read first: the store refuses a missing or ended graph in the commit
        // (and only a refused task reads it, so that such a graph is what its error says).
        // Its position is the graph's count when the store adds it (tasks added at the same time get
        // distinct ones), and so is the default key, `task-N`: empty until then.
        let key = new.key.trim().to_string();
        let title = new.title.trim().to_string();
        let me = if key.is_empty() { label("the new task", &title) } else { label(&key, &title) };
        let mut names: Vec<String> = Vec::new();
        if !key.is_empty() {
            names.push(key.clone());
        }
        names.extend(new.depends_on.iter().map(|d| d.trim().to_string()).filter(|d| !d.is_empty() && *d != key));
        let tasks = self.store.find_tasks(graph_id, &names).await?;
        let mut problems = Vec::new();
        if title.is_empty() {
            problems.push(Problem::EmptyTitle { task: me.clone() });
        }
        estimate_problems(&me, new.estimated_cost_usd, new.estimated_minutes, &mut problems);
        if let Some(t) = tasks.iter().find(|t| t.key == key) {
            problems.push(Problem::DuplicateKey {
                key: key.clone(),
                first: label(&t.key, &t.title),
                second: me.clone(),
            });
        }
        let mut deps: Vec<&Task> = Vec::new();
        for d in &new.depends_on {
            let d = d.trim();
            if d == key {
                problems.push(Problem::SelfDependency { task: me.clone() });
                continue;
            }
            let found = tasks
                .iter()
                .find(|t| t.key == d)
                .or_else(|| d.parse::<Id>().ok().and_then(|id| tasks.iter().find(|t| t.id == id)))
                .or_else(|| d.parse::<u32>().ok().and_then(|i| tasks.iter().find(|t| t.index == i)));
            match found {
                Some(t) if !deps.iter().any(|x| x.id == t.id) => deps.push(t),
                Some(_) => {}
                None => problems.push(Problem::NotInGraph { task: me.clone(), dependency: format!("{d:?}") }),
            }
        }
        if !problems.is_empty() {
            self.open_graph(graph_id).await?;
            return Err(GraphError::InvalidTask(Problems(problems)));
        }
        let at = now();
        let definition = PlannedTask {
            key,
            title,
            description: new.description.trim().to_string(),
            task_type: match new.task_type.trim() {
                "" => "code".to_string(),
                t => t.to_lowercase(),
            },
            complexity: new.complexity,
            depends_on: Vec::new(),
            model: new.model,
            tools: new.tools,
            verification: new.verification,
            estimated_cost_usd: new.estimated_cost_usd,
            estimated_minutes: new.estimated_minutes,
        };
        let depends_on = deps.iter().map(|t| t.id).collect();
        let wave = wave_after(deps.iter().map(|t| t.wave));
        // Its position and status (ready or pending, from its dependencies as they are in the commit)
        // are the store's to set.
        let task = new_task(new_id(), graph_id, 0, definition, depends_on, wave, false, at);
        // The store sets its position (and default key) and grows the graph's counts only (its
        // GraphUpdated event is the row as stored): the graph's status, limit and spending are kept as
        // they are. The task as stored is in its TaskUpdated event.
        let id = task.id;
        let added = self.store.commit(Batch::new().change(Change::AddTask(Box::new(task)))).await;
        let records = match added {
            Ok(records) => records,
            Err(StoreError::NotFound { .. }) => return Err(GraphError::GraphNotFound(graph_id)),
            Err(e @ StoreError::GraphEnded { .. }) => {
                // Said as when the graph had ended before: an ended graph stays ended.
                self.open_graph(graph_id).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let task = records
            .into_iter()
            .find_map(|r| match r.event {
                Event::TaskUpdated { task } if task.id == id => Some(*task),
                _ => None,
            })
            .ok_or_else(|| {
                GraphError::Store(StoreError::Backend(format!(
                    "the store added task {id} without its TaskUpdated event"
                )))
            })?;
        Ok(task)
    }

    /// Graph `graph_id` when it exists and has not ended, else the error saying which.
    async fn open_graph(&self, graph_id: Id) -> Result<TaskGraph, GraphError> {
        let graph = self.store.get_graph(graph_id).await?.ok_or(GraphError::GraphNotFound(graph_id))?;
        if graph.status.is_final() {
            return Err(GraphError::GraphEnded { id: graph_id, status: graph.status.as_str() });
        }
        Ok(graph)
    }
}

/// A graph's default name: the first line of its requirements (at most 60 characters), else the plan id.
fn default_name(requirements: &str, plan_id: Id) -> String {
    match requirements.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => crate::text::clip_chars(line, 60, "…"),
        None => format!("plan {plan_id}"),
    }
}

/// A new task of a graph from its definition: `ready` or pending, no attempt yet.
#[allow(clippy::too_many_arguments)]
fn new_task(
    id: Id,
    graph_id: Id,
    index: u32,
    def: PlannedTask,
    depends_on: Vec<Id>,
    wave: u32,
    ready: bool,
    at: crate::wire::Timestamp,
) -> Task {
    Task {
        id,
        graph_id,
        index,
        key: def.key,
        title: def.title,
        description: def.description,
        task_type: def.task_type,
        complexity: def.complexity,
        tools: def.tools,
        verification: def.verification,
        estimated_cost_usd: def.estimated_cost_usd,
        estimated_minutes: def.estimated_minutes,
        status: if ready { TaskStatus::Ready } else { TaskStatus::Pending },
        depends_on,
        wave,
        attempt: 0,
        model: def.model,
        claimed_by: None,
        lease_until: None,
        not_before: None,
        agent_id: None,
        cost_usd: 0.0,
        output: None,
        error: None,
        failures: 0,
        checkpoint: None,
        guidance: Vec::new(),
        knowledge: Vec::new(),
        created_at: at,
        updated_at: at,
        started_at: None,
        completed_at: None,
    }
}
