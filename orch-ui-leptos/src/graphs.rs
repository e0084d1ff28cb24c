//! Task graphs as the graphs view shows them: every graph (from `GET /api/graphs`), the tasks of the
//! ones opened (`GET /api/graphs/{id}`), kept current by `GraphUpdated` and `TaskUpdated` events, and
//! laid out in waves.

use std::collections::BTreeMap;

use orch_core::wire::{Complexity, Event, EventRecord, Id, Task, TaskGraph, TaskStatus, Timestamp};
use serde_json::Value;

use crate::{format, protocol};

/// What a graph's plan estimated of one task (`GET /api/graphs/{id}`'s `estimates`, by task key).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// Its cost, USD.
    pub cost_usd: Option<f64>,
    /// Its duration, minutes.
    pub minutes: Option<f64>,
}

/// The graphs and the tasks known of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graphs {
    graphs: BTreeMap<Id, TaskGraph>,
    tasks: BTreeMap<Id, Task>,
    /// The plans' estimates, by graph and task key (lists: maps of their own types would add their
    /// code to the wasm bundle).
    estimates: Vec<(Id, Vec<(String, Estimate)>)>,
}

/// A plan's figure as the dashboard takes it: a finite number, 0 or more.
fn figure(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|x| x.is_finite() && *x >= 0.0)
}

impl Graphs {
    /// Takes `GET /api/graphs`.
    pub fn load_list(&mut self, v: &Value) {
        for g in protocol::list::<TaskGraph>(v, "graphs") {
            self.upsert_graph(g);
        }
    }

    /// Takes `GET /api/graphs/{id}` (the graph, its tasks and its plan's estimates).
    pub fn load_graph(&mut self, v: &Value) {
        if let Some(g) = v.get("graph").and_then(|g| serde_json::from_value::<TaskGraph>(g.clone()).ok()) {
            if let Some(Value::Object(by_key)) = v.get("estimates") {
                let read =
                    |e: &Value| Estimate { cost_usd: figure(e.get("cost_usd")), minutes: figure(e.get("minutes")) };
                self.estimates.retain(|(id, _)| *id != g.id);
                self.estimates.push((g.id, by_key.iter().map(|(k, e)| (k.clone(), read(e))).collect()));
            }
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

/// A node's planned and actual cost and time.
///
/// "Planned" is the task's own estimate when it has one (`estimated_cost_usd`, `estimated_minutes`:
/// a task added to a running graph may carry its own), else its plan's. Otherwise it is derived, and marked so: the cost is the task's share of the
/// graph's budget by complexity (simple 1, medium 2, complex 4), and the time the mean of the graph's
/// finished tasks of the same complexity. Either is `None` when there is nothing to derive it from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Figures {
    /// The planned cost, USD.
    pub planned_cost: Option<f64>,
    /// The planned cost is derived, not the plan's.
    pub cost_derived: bool,
    /// The planned time, seconds.
    pub planned_secs: Option<f64>,
    /// The planned time is derived, not the plan's.
    pub secs_derived: bool,
    /// What its attempts cost so far, USD.
    pub actual_cost: f64,
    /// How long its last attempt took (or has been running), seconds.
    pub actual_secs: Option<f64>,
}

fn weight(c: Complexity) -> f64 {
    match c {
        Complexity::Simple => 1.0,
        Complexity::Complex => 4.0,
        _ => 2.0,
    }
}

fn secs(t: &Task, now: Timestamp) -> Option<f64> {
    let start = t.started_at?;
    let end = if t.status == TaskStatus::Running { now } else { t.completed_at? };
    Some(((end - start).num_milliseconds().max(0)) as f64 / 1000.0)
}

impl Graphs {
    /// The planned and actual figures of a graph's tasks, by task id (see [`Figures`]).
    pub fn figures(&self, id: Id, now: Timestamp) -> BTreeMap<Id, Figures> {
        let tasks: Vec<&Task> = self.tasks.values().filter(|t| t.graph_id == id).collect();
        let budget = self.graphs.get(&id).and_then(|g| g.budget_usd).filter(|b| *b > 0.0);
        let total_weight: f64 = tasks.iter().map(|t| weight(t.complexity)).sum();
        let mean_secs = |c: Complexity| {
            let done: Vec<f64> = tasks
                .iter()
                .filter(|t| t.complexity == c && t.status == TaskStatus::Completed)
                .filter_map(|t| secs(t, now))
                .collect();
            (!done.is_empty()).then(|| done.iter().sum::<f64>() / done.len() as f64)
        };
        let plan = self.estimates.iter().find(|(g, _)| *g == id).map(|(_, p)| p);
        tasks
            .iter()
            .map(|t| {
                let planned =
                    plan.and_then(|p| p.iter().find(|(k, _)| *k == t.key)).map(|(_, e)| *e).unwrap_or_default();
                let own = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
                let e = Estimate {
                    cost_usd: own(t.estimated_cost_usd).or(planned.cost_usd),
                    minutes: own(t.estimated_minutes).or(planned.minutes),
                };
                let planned_secs = e.minutes.map(|m| m * 60.0);
                let f = Figures {
                    planned_cost: e
                        .cost_usd
                        .or_else(|| budget.map(|b| b * weight(t.complexity) / total_weight.max(1.0))),
                    cost_derived: e.cost_usd.is_none(),
                    planned_secs: planned_secs.or_else(|| mean_secs(t.complexity)),
                    secs_derived: planned_secs.is_none(),
                    actual_cost: t.cost_usd,
                    actual_secs: secs(t, now),
                };
                (t.id, f)
            })
            .collect()
    }

    /// The planned figures as a node shows them: `planned $0.050 · 10m 00s` from the plan, a derived
    /// figure marked as an estimate (`≈$0.200`), `–` for one there is nothing to derive from.
    pub fn planned_text(f: &Figures) -> String {
        let mark = |derived: bool, text: String| if derived { format!("≈{text}") } else { text };
        let cost = f.planned_cost.map_or_else(|| "–".to_string(), |c| mark(f.cost_derived, format::cost(c)));
        let time = f
            .planned_secs
            .map_or_else(|| "–".to_string(), |s| mark(f.secs_derived, format::duration(s.round() as u64)));
        format!("planned {cost} · {time}")
    }

    /// The keys of a task's dependencies, in its order.
    pub fn dependency_keys(&self, t: &Task) -> Vec<String> {
        t.depends_on.iter().filter_map(|d| self.tasks.get(d).map(|d| d.key.clone())).collect()
    }

    /// The tasks a rerun from `id` queues again: it and its dependents, transitively (their keys).
    pub fn rerun_set(&self, id: Id) -> Vec<String> {
        let Some(root) = self.tasks.get(&id) else { return Vec::new() };
        let mut chosen = vec![id];
        let mut changed = true;
        while changed {
            changed = false;
            for t in self.tasks.values().filter(|t| t.graph_id == root.graph_id) {
                if !chosen.contains(&t.id) && t.depends_on.iter().any(|d| chosen.contains(d)) {
                    chosen.push(t.id);
                    changed = true;
                }
            }
        }
        chosen.iter().filter_map(|c| self.tasks.get(c).map(|t| t.key.clone())).collect()
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

    #[test]
    fn planned_figures_come_from_the_plan_when_it_has_them() {
        let mut g = Graphs::default();
        let mut t10 = task(10, 0, 0, "completed", "2026-12-03T08:00:00Z");
        t10["started_at"] = json!("2026-12-03T08:00:00Z");
        t10["completed_at"] = json!("2026-12-03T08:12:00Z");
        t10["cost_usd"] = json!(0.3);
        let t11 = task(11, 0, 1, "pending", "2026-12-03T08:00:00Z");
        let t12 = task(12, 1, 0, "pending", "2026-12-03T08:00:00Z");
        // The plan estimated t10 fully and t11's time only; t12 not at all; a bad figure is ignored.
        let estimates = json!({"t10": {"cost_usd": 0.25, "minutes": 10}, "t11": {"minutes": 2.5, "cost_usd": -1},
                               "t12": {}});
        g.load_graph(&json!({"graph": graph(1, "2026-12-03T08:00:00Z", "running"), "tasks": [t10, t11, t12],
                             "estimates": estimates}));
        let now: Timestamp = "2026-12-03T08:20:00Z".parse().unwrap();
        let f = g.figures(Id::from_u128(1), now);
        let text = |id: u128| Graphs::planned_text(&f[&Id::from_u128(id)]);
        assert_eq!(text(10), "planned $0.250 · 10m 00s", "the plan's own figures are not marked");
        assert_eq!(text(11), "planned ≈$0.333 · 2m 30s", "the cost is the budget's share, the time the plan's");
        assert_eq!(text(12), "planned ≈$0.333 · ≈12m 00s", "the mean of finished peers, marked");
        let a = f[&Id::from_u128(10)];
        assert!(a.actual_cost > a.planned_cost.unwrap_or(f64::MAX), "over its plan: the node shows it");

        // A task added later, known only from its event, brings its own estimates; they win over the plan's.
        let mut t13 = task(13, 1, 1, "ready", "2026-12-03T08:10:00Z");
        t13["estimated_cost_usd"] = json!(0.05);
        t13["estimated_minutes"] = json!(3);
        let t13: Task = serde_json::from_value(t13).unwrap();
        let keys = orch_core::wire::EventKeys::default();
        g.apply(&EventRecord {
            seq: 3,
            timestamp: t13.updated_at,
            keys,
            event: Event::TaskUpdated { task: Box::new(t13) },
        });
        let f = g.figures(Id::from_u128(1), now);
        assert_eq!(Graphs::planned_text(&f[&Id::from_u128(13)]), "planned $0.050 · 3m 00s");
    }

    #[test]
    fn planned_against_actual_and_what_a_rerun_queues() {
        let mut g = Graphs::default();
        let mut t10 = task(10, 0, 0, "completed", "2026-12-03T08:00:00Z");
        t10["started_at"] = json!("2026-12-03T08:00:00Z");
        t10["completed_at"] = json!("2026-12-03T08:00:30Z");
        t10["cost_usd"] = json!(0.1);
        let mut t11 = task(11, 1, 0, "running", "2026-12-03T08:00:00Z");
        t11["depends_on"] = json!([Id::from_u128(10)]);
        t11["started_at"] = json!("2026-12-03T08:01:00Z");
        let mut t12 = task(12, 2, 0, "pending", "2026-12-03T08:00:00Z");
        t12["depends_on"] = json!([Id::from_u128(11)]);
        t12["complexity"] = json!("complex");
        let t13 = task(13, 0, 1, "pending", "2026-12-03T08:00:00Z");
        g.load_graph(&json!({"graph": graph(1, "2026-12-03T08:00:00Z", "running"), "tasks": [t10, t11, t12, t13]}));
        let now: Timestamp = "2026-12-03T08:01:10Z".parse().unwrap();
        let f = g.figures(Id::from_u128(1), now);
        // Budget $1 over weights 2 + 2 + 4 + 2.
        let a = f[&Id::from_u128(10)];
        assert_eq!(
            (a.planned_cost, a.planned_secs, a.actual_cost, a.actual_secs),
            (Some(0.2), Some(30.0), 0.1, Some(30.0))
        );
        assert_eq!(f[&Id::from_u128(11)].actual_secs, Some(10.0), "running: so far");
        assert_eq!((f[&Id::from_u128(12)].planned_cost, f[&Id::from_u128(12)].planned_secs), (Some(0.4), None));
        assert_eq!(Graphs::planned_text(&a), "planned ≈$0.200 · ≈30s", "derived figures are marked");
        assert_eq!(Graphs::planned_text(&f[&Id::from_u128(12)]), "planned ≈$0.400 · –");
        assert_eq!(g.rerun_set(Id::from_u128(10)), ["t10", "t11", "t12"]);
        assert_eq!(g.rerun_set(Id::from_u128(13)), ["t13"]);
        let t12: Task = g.tasks[&Id::from_u128(12)].clone();
        assert_eq!(g.dependency_keys(&t12), ["t11"]);
    }
}
