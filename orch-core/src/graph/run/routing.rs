//! Model routing: a task's type and complexity pick its model from a table (the configuration's rules,
//! then the built-in table after the Orchestration Engine's: local Ollama for simple research and
//! analysis, Haiku for simple code, Sonnet for medium and complex work and for planning), with
//! fallbacks used while a model's provider is unavailable.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RouteRule;
use crate::wire::{Complexity, Task};

/// The built-in table: (task type or `*`, complexity or any, model, fallbacks).
const BUILT_IN: &[(&str, Option<Complexity>, &str, &[&str])] = &[
    ("research", Some(Complexity::Simple), "ollama:llama3.2", &["haiku"]),
    ("analysis", Some(Complexity::Simple), "ollama:llama3.2", &["haiku"]),
    ("planning", None, "sonnet", &[]),
    ("*", Some(Complexity::Simple), "haiku", &["sonnet"]),
    ("*", None, "sonnet", &[]),
];

/// Where a task goes: its model, then the models to use while that one's provider is unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The model.
    pub model: String,
    /// Fallbacks, in order.
    pub fallback: Vec<String>,
}

/// The routing table and the health of providers.
#[derive(Debug, Default)]
pub struct Router {
    rules: Vec<RouteRule>,
    /// Providers seen unavailable, until when.
    down: Mutex<HashMap<String, Instant>>,
}

fn matches(rule_type: Option<&str>, rule_complexity: Option<&str>, task: &Task) -> bool {
    let type_ok = rule_type.is_none_or(|t| t == "*" || t.eq_ignore_ascii_case(&task.task_type));
    let complexity_ok = rule_complexity.is_none_or(|c| Complexity::parse(c) == Some(task.complexity));
    type_ok && complexity_ok
}

/// The provider part of a model spec (`ollama` of `ollama:llama3.2`); a bare model is the default
/// provider's.
pub fn provider_of(model: &str) -> &str {
    match model.split_once(':') {
        Some((p, _)) if !p.is_empty() => p,
        _ => "default",
    }
}

impl Router {
    /// A router trying `rules` (the configuration's) before the built-in table.
    pub fn new(rules: Vec<RouteRule>) -> Self {
        Self { rules, down: Mutex::new(HashMap::new()) }
    }

    /// Checks the rules: each names a model and, if any, a known complexity.
    pub fn check(rules: &[RouteRule]) -> Result<(), String> {
        for (i, r) in rules.iter().enumerate() {
            if r.model.trim().is_empty() {
                return Err(format!("graphs.routes[{i}]: model is empty"));
            }
            if let Some(c) = &r.complexity
                && Complexity::parse(c).is_none()
            {
                return Err(format!("graphs.routes[{i}]: unknown complexity {c:?} (simple, medium or complex)"));
            }
        }
        Ok(())
    }

    /// The route of `task`: its own model when the plan named one, else the first matching rule.
    pub fn route(&self, task: &Task) -> Route {
        if let Some(m) = task.model.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            return Route { model: m.to_string(), fallback: Vec::new() };
        }
        if let Some(r) = self.rules.iter().find(|r| matches(r.task_type.as_deref(), r.complexity.as_deref(), task)) {
            return Route { model: r.model.clone(), fallback: r.fallback.clone() };
        }
        BUILT_IN
            .iter()
            .find(|(t, c, ..)| matches(Some(t), c.map(Complexity::as_str), task))
            .map(|(_, _, m, f)| Route {
                model: (*m).to_string(),
                fallback: f.iter().map(|s| (*s).to_string()).collect(),
            })
            .unwrap_or_else(|| Route { model: "sonnet".into(), fallback: Vec::new() })
    }

    /// The first model of `route` whose provider is available, or when none is, the time the first
    /// becomes available again.
    pub fn pick(&self, route: &Route) -> Result<String, Instant> {
        let now = Instant::now();
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        down.retain(|_, until| *until > now);
        let mut soonest: Option<Instant> = None;
        for m in std::iter::once(&route.model).chain(&route.fallback) {
            match down.get(provider_of(m)) {
                None => return Ok(m.clone()),
                Some(until) => soonest = Some(soonest.map_or(*until, |s| s.min(*until))),
            }
        }
        Err(soonest.unwrap_or(now))
    }

    /// Marks `model`'s provider unavailable for `for_`.
    pub fn mark_down(&self, model: &str, for_: Duration) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        down.insert(provider_of(model).to_string(), Instant::now() + for_);
    }
}
