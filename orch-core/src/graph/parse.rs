//! Reading a plan as models and people write it: the JSON inside a reply (bare, in a fenced block, or
//! amid prose), and tasks with the field names and value shapes the seeds tolerate.
//!
//! Nothing is resolved here: dependencies stay as written ([`DepRef`]) until [`validate`](super::validate)
//! matches them to tasks.

use serde_json::{Map, Value};

use super::validate::{Problem, default_key};
use crate::wire::Complexity;

/// Most candidate start positions tried when looking for JSON amid prose.
const MAX_CANDIDATES: usize = 64;

/// A dependency as written: a task's id or key, or its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepRef {
    /// A number: a task whose key is that number, else the task at that position (from 0).
    Number(i64),
    /// Text: a task's key (or id), else a number in text (`"2"`).
    Text(String),
}

impl std::fmt::Display for DepRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// A task as read, before its key and dependencies are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTask {
    /// Position in the plan, from 0.
    pub index: usize,
    /// The id the plan gave it, if any.
    pub id: Option<String>,
    /// Title (may be empty: validation says so).
    pub title: String,
    /// Description.
    pub description: String,
    /// Kind of work, lowercase (`code` when not given).
    pub task_type: String,
    /// Complexity (`medium` when not given).
    pub complexity: Complexity,
    /// Dependencies as written.
    pub depends_on: Vec<DepRef>,
    /// Model tier or model, if given.
    pub model: Option<String>,
    /// Tools.
    pub tools: Vec<String>,
    /// Verification criteria.
    pub verification: Vec<String>,
    /// The plan's estimate of its cost, USD, as written (range checked by validation).
    pub estimated_cost_usd: Option<f64>,
    /// The plan's estimate of its duration, minutes, as written (range checked by validation).
    pub estimated_minutes: Option<f64>,
}

/// A plan as read: its requirements, if it states them, and its tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPlan {
    /// The plan's `requirements`, if it has that field.
    pub requirements: Option<String>,
    /// The tasks, in order.
    pub tasks: Vec<RawTask>,
}

/// The JSON value in `text`: the whole text, else the first fenced code block holding JSON, else the
/// first object or array that parses, with whatever prose around it. The error says what was seen.
pub fn extract_json(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the reply is empty".into());
    }
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return Ok(v);
    }
    for block in fenced_blocks(trimmed) {
        if let Ok(v) = serde_json::from_str::<Value>(block.trim()) {
            return Ok(v);
        }
    }
    let mut last_error = None;
    for (i, _) in trimmed.char_indices().filter(|(_, c)| *c == '{' || *c == '[').take(MAX_CANDIDATES) {
        let mut values = serde_json::Deserializer::from_str(&trimmed[i..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(v @ (Value::Object(_) | Value::Array(_)))) => return Ok(v),
            Some(Err(e)) => last_error = Some(e.to_string()),
            _ => {}
        }
    }
    Err(match last_error {
        Some(e) => format!("no valid JSON object found in the reply ({e})"),
        None => "no JSON object found in the reply".into(),
    })
}

/// The contents of the ``` fenced blocks of `text`, in order (the language tag line dropped).
fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        // The info string (`json`) runs to the end of the opening line.
        let body_start = after.find('\n').map_or(after.len(), |n| n + 1);
        let body = &after[body_start..];
        let Some(end) = body.find("```") else { break };
        out.push(&body[..end]);
        rest = &body[end + 3..];
    }
    out
}

/// Reads a plan from a JSON value: `{"tasks": [...]}` (with optional `requirements`), a bare array of
/// tasks, `{"phases": [{"tasks": [...]}, ...]}` (phases flattened in order, after any top-level
/// `tasks`), or any of these under a `plan` key.
pub fn read_plan(value: &Value) -> Result<RawPlan, Vec<Problem>> {
    let (obj, list) = match value {
        Value::Array(items) => (None, items.iter().collect::<Vec<_>>()),
        Value::Object(o) => {
            if let Some(inner @ (Value::Object(_) | Value::Array(_))) = o.get("plan")
                && !o.contains_key("tasks")
                && !o.contains_key("phases")
            {
                return read_plan(inner);
            }
            (Some(o), object_tasks(o)?)
        }
        _ => return Err(vec![Problem::NotAPlan("expected a JSON object with a `tasks` list".into())]),
    };
    let requirements = obj.and_then(|o| o.get("requirements")).and_then(Value::as_str).map(str::to_string);
    let mut problems = Vec::new();
    let mut tasks = Vec::with_capacity(list.len());
    for (index, item) in list.into_iter().enumerate() {
        match read_task(index, item) {
            Ok(t) => tasks.push(t),
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() { Ok(RawPlan { requirements, tasks }) } else { Err(problems) }
}

fn object_tasks(o: &Map<String, Value>) -> Result<Vec<&Value>, Vec<Problem>> {
    let mut list = Vec::new();
    match o.get("tasks") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => list.extend(items.iter()),
        Some(_) => return Err(vec![Problem::NotAPlan("`tasks` must be a list".into())]),
    }
    match o.get("phases") {
        None | Some(Value::Null) => {}
        Some(Value::Array(phases)) => {
            for (p, phase) in phases.iter().enumerate() {
                match phase.get("tasks") {
                    Some(Value::Array(items)) => list.extend(items.iter()),
                    _ => return Err(vec![Problem::NotAPlan(format!("phases[{p}] has no `tasks` list"))]),
                }
            }
        }
        Some(_) => return Err(vec![Problem::NotAPlan("`phases` must be a list".into())]),
    }
    if !o.contains_key("tasks") && !o.contains_key("phases") {
        return Err(vec![Problem::NotAPlan("expected a JSON object with a `tasks` list".into())]);
    }
    Ok(list)
}

/// The first of `keys` that `o` has (not null).
fn field<'a>(o: &'a Map<String, Value>, keys: &[&str]) -> Option<(&'static str, &'a Value)> {
    keys.iter().find_map(|k| o.get(*k).filter(|v| !v.is_null()).map(|v| (static_key(k), v)))
}

/// The canonical names used in problem messages.
fn static_key(k: &str) -> &'static str {
    match k {
        "title" | "name" => "title",
        "description" | "details" => "description",
        "task_type" | "type" => "task_type",
        "complexity" => "complexity",
        "depends_on" | "dependencies" | "deps" => "depends_on",
        "model" | "model_tier" => "model",
        "tools" | "tools_needed" => "tools",
        "verification" | "verification_criteria" => "verification",
        "estimated_cost_usd" => "estimated_cost_usd",
        "estimated_minutes" => "estimated_minutes",
        _ => "id",
    }
}

/// One task of a plan.
pub fn read_task(index: usize, item: &Value) -> Result<RawTask, Vec<Problem>> {
    let Value::Object(o) = item else {
        return Err(vec![Problem::NotAnObject { task: default_key(index) }]);
    };
    let mut problems = Vec::new();
    let id = match field(o, &["id", "key"]) {
        None => None,
        Some((_, Value::String(s))) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some((_, Value::Number(n))) => Some(n.to_string()),
        Some((f, _)) => {
            problems.push(bad(index, f, "must be a string or a number"));
            None
        }
    };
    let label = id.clone().unwrap_or_else(|| default_key(index));
    let bad_here = |f: &'static str, m: &str| Problem::BadField { task: label.clone(), field: f, message: m.into() };
    let text = |keys: &[&str], problems: &mut Vec<Problem>| match field(o, keys) {
        None => String::new(),
        Some((_, Value::String(s))) => s.trim().to_string(),
        Some((f, _)) => {
            problems.push(bad_here(f, "must be a string"));
            String::new()
        }
    };
    let title = text(&["title", "name"], &mut problems);
    let description = text(&["description", "details"], &mut problems);
    let task_type = match text(&["task_type", "type"], &mut problems) {
        t if t.is_empty() => "code".to_string(),
        t => t.to_lowercase(),
    };
    let complexity = match text(&["complexity"], &mut problems) {
        c if c.is_empty() => Complexity::default(),
        c => Complexity::parse(&c).unwrap_or_else(|| {
            problems.push(bad_here("complexity", &format!("{c:?} is not simple, medium or complex")));
            Complexity::default()
        }),
    };
    let model = Some(text(&["model", "model_tier"], &mut problems)).filter(|m| !m.is_empty());
    let depends_on = match field(o, &["depends_on", "dependencies", "deps"]) {
        None => Vec::new(),
        Some((f, v)) => deps(v).unwrap_or_else(|m| {
            problems.push(bad_here(f, &m));
            Vec::new()
        }),
    };
    let list = |keys: &[&str], problems: &mut Vec<Problem>| match field(o, keys) {
        None => Vec::new(),
        Some((f, v)) => strings(v).unwrap_or_else(|m| {
            problems.push(bad_here(f, &m));
            Vec::new()
        }),
    };
    let tools = list(&["tools", "tools_needed"], &mut problems);
    let verification = list(&["verification", "verification_criteria"], &mut problems);
    let number = |key: &str, problems: &mut Vec<Problem>| match field(o, &[key]) {
        None => None,
        Some((_, Value::Number(n))) => n.as_f64(),
        Some((f, other)) => {
            problems.push(bad_here(f, &format!("must be a number, found {other}")));
            None
        }
    };
    let estimated_cost_usd = number("estimated_cost_usd", &mut problems);
    let estimated_minutes = number("estimated_minutes", &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(RawTask {
        index,
        id,
        title,
        description,
        task_type,
        complexity,
        depends_on,
        model,
        tools,
        verification,
        estimated_cost_usd,
        estimated_minutes,
    })
}

fn bad(index: usize, field: &'static str, message: &str) -> Problem {
    Problem::BadField { task: default_key(index), field, message: message.into() }
}

/// Dependencies: a list of numbers and strings, one number, or one string (comma-separated).
fn deps(v: &Value) -> Result<Vec<DepRef>, String> {
    let one = |v: &Value| -> Result<Vec<DepRef>, String> {
        match v {
            Value::Number(n) => {
                n.as_i64().map(|n| vec![DepRef::Number(n)]).ok_or_else(|| format!("{n} is not a task position"))
            }
            Value::String(s) => {
                Ok(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| DepRef::Text(s.to_string())).collect())
            }
            other => Err(format!("{other} is not a task id or position")),
        }
    };
    match v {
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(one(item)?);
            }
            Ok(out)
        }
        other => one(other),
    }
}

/// A list of strings, or one string.
fn strings(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()).into_iter().collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!("expected strings, found {other}")),
            })
            .filter(|r| !matches!(r, Ok(s) if s.is_empty()))
            .collect(),
        other => Err(format!("expected a list of strings, found {other}")),
    }
}
