//! Rerun from a task: the task and every task depending on it, transitively, are queued again, and a
//! graph that had ended runs again. One commit holds the tasks' changes, their events and the graph's.

use std::collections::HashSet;

use super::{GraphRunner, Nudge, task_event};
use crate::graph::GraphError;
use crate::store::{Batch, Change, StoreError};
use crate::wire::{Event, EventKeys, GraphStatus, Id, LogLevel, Task, TaskStatus, now};

/// How many times a rerun reads again when a task of it was claimed between its read and its commit.
const TRIES: u32 = 5;

impl GraphRunner {
    /// Queues task `task_id` and its dependents (transitively) again: each back to pending (the task
    /// itself ready when its dependencies are done), its output, error, checkpoint and reported facts
    /// cleared; attempts, cost so far and guidance are kept. A graph that ended (completed, failed or
    /// cancelled) runs again; a pending or paused one stays so. Returns the tasks as queued, the named
    /// one first.
    ///
    /// Refused, changing nothing, while one of those tasks is running (stop or wait for it first), and
    /// when one of the task's own dependencies failed or was cancelled (rerun from that one instead).
    pub async fn rerun_from(&self, task_id: Id) -> Result<Vec<Task>, GraphError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.rerun_once(task_id).await {
                Err(GraphError::Store(StoreError::Fenced { .. })) if tries < TRIES => continue,
                other => return other,
            }
        }
    }

    async fn rerun_once(&self, task_id: Id) -> Result<Vec<Task>, GraphError> {
        let root = self.store.get_task(task_id).await?.ok_or(GraphError::TaskNotFound(task_id))?;
        let graph = self.graph(root.graph_id).await?;
        let tasks = self.store.list_tasks(root.graph_id).await?;
        let chosen = with_dependents(&tasks, root.id);
        if let Some(t) = tasks.iter().find(|t| chosen.contains(&t.id) && t.status == TaskStatus::Running) {
            return Err(GraphError::TaskState(format!(
                "task {} ({}) is running: wait for it to end, or cancel the graph, before rerunning from {}",
                t.id, t.key, root.key
            )));
        }
        let deps: Vec<&Task> = tasks.iter().filter(|t| root.depends_on.contains(&t.id)).collect();
        if let Some(d) = deps.iter().find(|d| matches!(d.status, TaskStatus::Failed | TaskStatus::Cancelled)) {
            return Err(GraphError::TaskState(format!(
                "task {} depends on {}, which is {}: rerun from {} instead",
                root.key,
                d.key,
                d.status.as_str(),
                d.key
            )));
        }
        let root_ready = deps.iter().all(|d| d.status.releases_dependents());

        let at = now();
        let mut batch = Batch::new();
        let mut queued = Vec::with_capacity(chosen.len());
        // The named task first, then its dependents in graph order.
        let order = std::iter::once(&root).chain(tasks.iter().filter(|t| t.id != root.id && chosen.contains(&t.id)));
        for t in order {
            let fence = t.attempt;
            let mut t = t.clone();
            t.status = if t.id == root.id && root_ready { TaskStatus::Ready } else { TaskStatus::Pending };
            t.output = None;
            t.error = None;
            t.checkpoint = None;
            t.knowledge.clear();
            t.failures = 0;
            t.not_before = None;
            t.claimed_by = None;
            t.lease_until = None;
            t.started_at = None;
            t.completed_at = None;
            t.updated_at = at;
            let (k, e) = task_event(&t);
            batch.push_change(Change::UpdateTask { task: Box::new(t.clone()), fence: Some(fence) });
            batch.push_event(k, e);
            queued.push(t);
        }
        batch.push_event(
            EventKeys::default(),
            Event::SystemLog {
                level: LogLevel::Info,
                message: format!("Rerun from task {}: {} task(s) queued again", root.key, queued.len()),
                metadata: serde_json::json!({
                    "event": "rerun", "graph_id": graph.id, "task_id": root.id,
                    "tasks": queued.iter().map(|t| t.id).collect::<Vec<_>>(),
                }),
            },
        );
        batch.push_change(Change::SetGraphStatus {
            id: graph.id,
            status: GraphStatus::Running,
            error: None,
            from: vec![GraphStatus::Completed, GraphStatus::Failed, GraphStatus::Cancelled],
        });
        self.store.commit(batch).await?;
        self.nudge(Nudge::Due);
        Ok(queued)
    }
}

/// Task `root` and the tasks that depend on it, directly or through others.
fn with_dependents(tasks: &[Task], root: Id) -> HashSet<Id> {
    let mut chosen = HashSet::from([root]);
    let mut changed = true;
    while changed {
        changed = false;
        for t in tasks {
            if !chosen.contains(&t.id) && t.depends_on.iter().any(|d| chosen.contains(d)) {
                chosen.insert(t.id);
                changed = true;
            }
        }
    }
    chosen
}
