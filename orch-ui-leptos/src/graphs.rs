//! Task graphs as the graphs view shows them: every graph (from `GET /api/graphs`), the tasks of the
//! ones opened (`GET /api/graphs/{id}`), kept current by `GraphUpdated` and `TaskUpdated` events, and
//! laid out in waves.

use std::collections::BTreeMap;

use orch_core::wire::{Event, EventRecord, Id, Task, TaskGraph, TaskStatus};
use serde_json::Value;

use crate::protocol;

/// The graphs and the tasks known of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graphs {
    graphs: BTreeMap<Id, TaskGraph>,
    tasks: BTreeMap<Id, Task>,
}

impl Graphs {
    /// Takes `GET /api/graphs`.
    pub fn load_list(&mut self, v: &Value) {
        for g in protocol::list::<TaskGraph>(v, "graphs") {
            self.upsert_graph(g);
        }
    }

    /// Takes `GET /api/graphs/{id}` (the graph and its tasks).
    pub fn load_graph(&mut self, v: &Value) {
        if let Some(g) = v.get("graph").and_then(|g| serde_json::from_value::<TaskGraph>(g.clone()).ok()) {
            self.upsert_graph(g);
        }
        for t in protocol::list::<Task>(v, "tasks") {
            self.upsert_task(t);
        }
    }

    fn upsert_graph(&mut self, g: TaskGraph) {
        match self.graphs.get(&g.id) {
            Some(old) if old.updated_at > g.updated_at => {}
            _ => {
                self.graphs.insert(g.id, g);
            }
        }
    }

    fn upsert_task(&mut self, t: Task) {
        match self.tasks.get(&t.id) {
            Some(old) if old.updated_at > t.updated_at => {}
            _ => {
                self.tasks.insert(t.id, t);
            }
        }
    }

    /// Applies one new event.
    pub fn apply(&mut self, r: &EventRecord) {
        match &r.event {
            Event::GraphUpdated { graph } => self.upsert_graph((**graph).clone()),
            Event::TaskUpdated { task } => self.upsert_task((**task).clone()),
            _ => {}
        }
    }

    /// The graphs, newest first.
    pub fn list(&self) -> Vec<&TaskGraph> {
        let mut v: Vec<&TaskGraph> = self.graphs.values().collect();
        v.sort_by_key(|g| std::cmp::Reverse(g.created_at));
        v
    }

    /// One graph.
    pub fn graph(&self, id: Id) -> Option<&TaskGraph> {
        self.graphs.get(&id)
    }

    /// A graph's tasks by wave (wave 0 first), each wave in task order.
    pub fn waves(&self, id: Id) -> Vec<Vec<&Task>> {
        let mut waves: BTreeMap<u32, Vec<&Task>> = BTreeMap::new();
        for t in self.tasks.values().filter(|t| t.graph_id == id) {
            waves.entry(t.wave).or_default().push(t);
        }
        waves
            .into_values()
            .map(|mut w| {
                w.sort_by_key(|t| t.index);
                w
            })
            .collect()
    }

    /// How many of a graph's tasks are done (completed or skipped), of all known.
    pub fn progress(&self, id: Id) -> (usize, usize) {
        let tasks: Vec<&Task> = self.tasks.values().filter(|t| t.graph_id == id).collect();
        let done = tasks.iter().filter(|t| matches!(t.status, TaskStatus::Completed | TaskStatus::Skipped)).count();
        (done, tasks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph(id: u128, at: &str, status: &str) -> Value {
        json!({"id": Id::from_u128(id), "name": format!("g{id}"), "plan_id": null, "plan_version": null,
               "status": status, "total_tasks": 2, "waves": 2, "budget_usd": 1.0, "cost_usd": 0.25, "error": null,
               "created_at": at, "updated_at": at, "started_at": null, "completed_at": null})
    }

    fn task(id: u128, wave: u32, index: u32, status: &str, at: &str) -> Value {
        json!({"id": Id::from_u128(id), "graph_id": Id::from_u128(1), "index": index, "key": format!("t{id}"),
               "title": format!("task {id}"), "description": "", "task_type": "code", "complexity": "medium",
               "tools": [], "verification": [], "depends_on": [], "wave": wave, "status": status, "attempt": 0,
               "model": null, "claimed_by": null, "lease_until": null, "not_before": null, "agent_id": null,
               "cost_usd": 0.0, "output": null, "error": null, "created_at": at, "updated_at": at, "started_at": null,
               "completed_at": null})
    }

    #[test]
    fn waves_fill_and_follow_task_events() {
        let mut g = Graphs::default();
        g.load_list(&json!({"graphs": [graph(1, "2026-12-03T08:00:00Z", "running"), graph(2, "2026-12-03T09:00:00Z", "pending"), {"bad": 1}]}));
        assert_eq!(g.list().iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["g2", "g1"]);
        let detail = json!({"graph": graph(1, "2026-12-03T08:00:00Z", "running"), "tasks": [
            task(10, 1, 0, "pending", "2026-12-03T08:00:00Z"),
            task(11, 0, 1, "running", "2026-12-03T08:00:00Z"),
            task(12, 0, 0, "completed", "2026-12-03T08:00:00Z"),
        ]});
        g.load_graph(&detail);
        let waves: Vec<Vec<String>> =
            g.waves(Id::from_u128(1)).iter().map(|w| w.iter().map(|t| t.key.clone()).collect()).collect();
        assert_eq!(waves, [vec!["t12", "t11"], vec!["t10"]]);
        assert_eq!(g.progress(Id::from_u128(1)), (1, 3));
        let done: Task = serde_json::from_value(task(11, 0, 1, "completed", "2026-12-03T08:05:00Z")).unwrap();
        let r = EventRecord {
            seq: 9,
            timestamp: done.updated_at,
            keys: orch_core::wire::EventKeys::default(),
            event: Event::TaskUpdated { task: Box::new(done) },
        };
        g.apply(&r);
        assert_eq!(g.progress(Id::from_u128(1)), (2, 3));
        // An older copy (a late page load) does not undo it.
        g.load_graph(&detail);
        assert_eq!(g.progress(Id::from_u128(1)), (2, 3));
    }
}
