//! Checking a plan: every task titled and keyed once, every dependency naming another task of the plan,
//! no cycle. Problems name the task (its key and title) and what is wrong with it.

use std::collections::HashMap;
use std::fmt;

use super::parse::{DepRef, RawTask};
use crate::wire::PlannedTask;

/// One thing wrong with a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The JSON is not shaped like a plan.
    #[error("not a plan: {0}")]
    NotAPlan(String),
    /// The plan has no tasks.
    #[error("the plan has no tasks")]
    NoTasks,
    /// A task is not a JSON object.
    #[error("{task} is not a JSON object")]
    NotAnObject {
        /// The task (`task-N`).
        task: String,
    },
    /// A field of a task has the wrong type or value.
    #[error("{task}: `{field}` {message}")]
    BadField {
        /// The task.
        task: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A task has no title.
    #[error("{task} has no title")]
    EmptyTitle {
        /// The task.
        task: String,
    },
    /// Two tasks have the same key.
    #[error("{second} has the id '{key}', which {first} already has")]
    DuplicateKey {
        /// The key.
        key: String,
        /// The task that has it first.
        first: String,
        /// The other task.
        second: String,
    },
    /// A dependency names no task.
    #[error("{task} depends on {dependency}, which is not a task of the plan")]
    UnknownDependency {
        /// The task.
        task: String,
        /// The dependency as written.
        dependency: String,
    },
    /// A dependency of a task added to a graph names no task of the graph.
    #[error("{task} depends on {dependency}, which is not a task of the graph")]
    NotInGraph {
        /// The task.
        task: String,
        /// The dependency as written.
        dependency: String,
    },
    /// A task depends on itself.
    #[error("{task} depends on itself")]
    SelfDependency {
        /// The task.
        task: String,
    },
    /// Dependencies form a cycle: each task depends on the next, the last on the first.
    #[error("dependency cycle: {} (each depends on the next)", cycle_text(.tasks))]
    Cycle {
        /// Keys of the tasks in the cycle, the first repeated at the end.
        tasks: Vec<String>,
    },
}

fn cycle_text(tasks: &[String]) -> String {
    tasks.join(" → ")
}

/// Every problem found in a plan (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// How a problem names a task: its key, and its title when it has one.
pub fn label(key: &str, title: &str) -> String {
    if title.is_empty() { key.to_string() } else { format!("{key} ({title:?})") }
}

/// The key of a task without an id: `task-N`, N its position from 1.
pub fn default_key(index: usize) -> String {
    crate::wire::Task::default_key(u32::try_from(index).unwrap_or(u32::MAX))
}

/// Checks raw tasks and resolves their dependencies to keys. A dependency is matched, in order, to
/// the task whose key is exactly what it says, then (for a number, or text that is a number) to the task
/// at that position counting from 0. Repeated dependencies are kept once.
pub fn validate(raw: Vec<RawTask>) -> Result<Vec<PlannedTask>, Problems> {
    if raw.is_empty() {
        return Err(Problems(vec![Problem::NoTasks]));
    }
    let keys: Vec<String> = raw.iter().map(|t| t.id.clone().unwrap_or_else(|| default_key(t.index))).collect();
    let labels: Vec<String> = raw.iter().zip(&keys).map(|(t, k)| label(k, &t.title)).collect();
    let mut problems = Vec::new();
    let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        if let Some(&first) = by_key.get(k.as_str()) {
            problems.push(Problem::DuplicateKey {
                key: k.clone(),
                first: labels[first].clone(),
                second: labels[i].clone(),
            });
        } else {
            by_key.insert(k, i);
        }
    }
    let mut resolved: Vec<Vec<usize>> = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        if t.title.is_empty() {
            problems.push(Problem::EmptyTitle { task: labels[i].clone() });
        }
        estimate_problems(&labels[i], t.estimated_cost_usd, t.estimated_minutes, &mut problems);
        let mut deps: Vec<usize> = Vec::with_capacity(t.depends_on.len());
        for d in &t.depends_on {
            match resolve(d, &by_key, raw.len()) {
                Some(j) if j == i => problems.push(Problem::SelfDependency { task: labels[i].clone() }),
                Some(j) => {
                    if !deps.contains(&j) {
                        deps.push(j);
                    }
                }
                None => {
                    problems.push(Problem::UnknownDependency { task: labels[i].clone(), dependency: d.to_string() })
                }
            }
        }
        resolved.push(deps);
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    if let Some(cycle) = find_cycle(&resolved) {
        let mut tasks: Vec<String> = cycle.iter().map(|&i| keys[i].clone()).collect();
        tasks.push(keys[cycle[0]].clone());
        return Err(Problems(vec![Problem::Cycle { tasks }]));
    }
    Ok(raw
        .into_iter()
        .zip(keys.iter())
        .zip(resolved)
        .map(|((t, key), deps)| PlannedTask {
            key: key.clone(),
            title: t.title,
            description: t.description,
            task_type: t.task_type,
            complexity: t.complexity,
            depends_on: deps.into_iter().map(|j| keys[j].clone()).collect(),
            model: t.model,
            tools: t.tools,
            verification: t.verification,
            estimated_cost_usd: t.estimated_cost_usd,
            estimated_minutes: t.estimated_minutes,
        })
        .collect())
}

fn resolve(d: &DepRef, by_key: &HashMap<&str, usize>, len: usize) -> Option<usize> {
    let (text, number) = match d {
        DepRef::Number(n) => (n.to_string(), Some(*n)),
        DepRef::Text(s) => (s.clone(), s.trim().parse::<i64>().ok()),
    };
    if let Some(&i) = by_key.get(text.trim()) {
        return Some(i);
    }
    number.and_then(|n| usize::try_from(n).ok()).filter(|&n| n < len)
}

/// Checks tasks already keyed (a stored plan, a plan file in stored form) again: the same rules.
pub fn revalidate(tasks: &[PlannedTask]) -> Result<Vec<PlannedTask>, Problems> {
    validate(
        tasks
            .iter()
            .enumerate()
            .map(|(index, t)| RawTask {
                index,
                id: Some(t.key.clone()),
                title: t.title.clone(),
                description: t.description.clone(),
                task_type: t.task_type.clone(),
                complexity: t.complexity,
                depends_on: t.depends_on.iter().map(|d| DepRef::Text(d.clone())).collect(),
                model: t.model.clone(),
                tools: t.tools.clone(),
                verification: t.verification.clone(),
                estimated_cost_usd: t.estimated_cost_usd,
                estimated_minutes: t.estimated_minutes,
            })
            .collect(),
    )
}

/// A cycle of the dependency graph (`deps[i]`: what task `i` depends on), if there is one: the tasks in
/// dependency order, starting from the one with the lowest position. Iterative, so a long chain cannot
/// overflow the stack.
pub fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    for start in 0..deps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // The current path, each with the next of its dependencies to visit.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if let Some(&dep) = deps[node].get(*next) {
                *next += 1;
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::OnPath;
                        path.push((dep, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                        let lowest = cycle.iter().enumerate().min_by_key(|&(_, n)| *n).map_or(0, |(i, _)| i);
                        cycle.rotate_left(lowest);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// Pushes a problem for each estimate (`estimated_cost_usd`, `estimated_minutes`) that is not a finite
/// number of 0 or more, naming task `label`.
pub(crate) fn estimate_problems(label: &str, cost_usd: Option<f64>, minutes: Option<f64>, problems: &mut Vec<Problem>) {
    for (field, value) in [("estimated_cost_usd", cost_usd), ("estimated_minutes", minutes)] {
        if let Some(v) = value.filter(|v| !v.is_finite() || *v < 0.0) {
            let message = format!("must be a finite number, 0 or more (it is {v})");
            problems.push(Problem::BadField { task: label.to_string(), field, message });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GraphError, read_plan_text};
    use super::*;

    fn message(text: &str) -> String {
        match read_plan_text(text) {
            Err(GraphError::Invalid(p)) => p.to_string(),
            other => format!("not refused: {other:?}"),
        }
    }

    #[test]
    fn estimates_are_read_kept_and_optional() {
        let text = r#"{"tasks": [
            {"id": "a", "title": "Design", "estimated_cost_usd": 0.05, "estimated_minutes": 12},
            {"id": "b", "title": "Build", "depends_on": ["a"], "estimated_minutes": 0}
        ]}"#;
        let tasks = read_plan_text(text).unwrap().tasks;
        let got: Vec<_> = tasks.iter().map(|t| (t.key.as_str(), t.estimated_cost_usd, t.estimated_minutes)).collect();
        assert_eq!(got, [("a", Some(0.05), Some(12.0)), ("b", None, Some(0.0))]);
        // Stored form round trip: what was estimated is written, what was not is left out.
        let json = serde_json::to_value(&tasks).unwrap();
        assert_eq!(json[0]["estimated_cost_usd"], 0.05);
        assert!(json[1].get("estimated_cost_usd").is_none(), "{json}");
        assert_eq!(revalidate(&tasks).ok(), Some(tasks));
        // A plan written before estimates existed still reads, with none.
        let old: PlannedTask = serde_json::from_str(r#"{"key": "k", "title": "Old"}"#).unwrap();
        assert_eq!((old.estimated_cost_usd, old.estimated_minutes), (None, None));
    }

    #[test]
    fn a_bad_estimate_is_refused_naming_the_task() {
        let msg = message(r#"[{"id": "ship", "title": "Ship it", "estimated_cost_usd": -0.5}]"#);
        assert!(msg.contains("ship (\"Ship it\"): `estimated_cost_usd` must be a finite number, 0 or more"), "{msg}");
        let msg = message(r#"[{"id": "ship", "title": "Ship it", "estimated_minutes": "ten"}]"#);
        assert!(msg.contains("ship: `estimated_minutes` must be a number, found \"ten\""), "{msg}");
        // A stored plan checked again refuses what the parser would have.
        let mut task: PlannedTask = serde_json::from_str(r#"{"key": "k", "title": "T"}"#).unwrap();
        task.estimated_minutes = Some(f64::INFINITY);
        let msg = revalidate(&[task]).err().map(|p| p.to_string()).unwrap_or_default();
        assert!(msg.contains("k (\"T\"): `estimated_minutes` must be a finite number"), "{msg}");
    }
}
