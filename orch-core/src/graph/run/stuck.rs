//! Stuck detection of a running attempt (the Parent Harness's rules): no new tool call for a while, no
//! output at all for a while, the same tool error three times in a row, or the agent asking for a
//! person. The watch reads the attempt's events as they are committed; the worker checks it on a tick
//! and interrupts the attempt, recording why.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::wire::{Event, EventRecord};

/// Thresholds of stuck detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StuckSettings {
    /// No event at all for this long (default 10 minutes).
    pub no_output: Duration,
    /// No new tool call for this long (default 5 minutes).
    pub no_tool: Duration,
    /// The same tool error this many times in a row (default 3).
    pub same_error: usize,
}

impl Default for StuckSettings {
    fn default() -> Self {
        Self { no_output: Duration::from_secs(600), no_tool: Duration::from_secs(300), same_error: 3 }
    }
}

/// Why an attempt was judged stuck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stuck {
    /// A rule fired (the reason, for the record and the retry's prompt).
    Rule(String),
    /// The agent asked for a person (its question): a checkpoint, not a retry.
    AskedHuman(String),
}

struct Activity {
    last_event: Instant,
    last_tool: Instant,
    errors: Vec<String>,
    asked: Option<String>,
}

/// What an attempt has been doing.
pub(crate) struct Watch {
    settings: StuckSettings,
    activity: Mutex<Activity>,
}

/// A line of the agent's text asking for a person: `NEEDS HUMAN: question` (also `NEEDS_HUMAN:`).
fn asks_human(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim();
        ["NEEDS HUMAN:", "NEEDS_HUMAN:"].iter().find_map(|p| l.strip_prefix(p)).map(|q| q.trim().to_string())
    })
}

/// The question of an event that asks for a person: an `AskUserQuestion` call, or a line of text
/// (see [`asks_human`]).
fn asked_by(event: &Event) -> Option<String> {
    match event {
        Event::ToolUse { tool_name, tool_input, .. } if tool_name == "AskUserQuestion" => Some(tool_input.to_string()),
        Event::Text { text } => asks_human(text),
        _ => None,
    }
}

impl Watch {
    pub(crate) fn new(settings: StuckSettings) -> Self {
        let now = Instant::now();
        Self {
            settings,
            activity: Mutex::new(Activity { last_event: now, last_tool: now, errors: Vec::new(), asked: None }),
        }
    }

    /// Takes in committed events of the attempt.
    pub(crate) fn observe(&self, records: &[EventRecord]) {
        let mut a = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for r in records {
            a.last_event = now;
            if a.asked.is_none() {
                a.asked = asked_by(&r.event);
            }
            match &r.event {
                Event::ToolUse { .. } => a.last_tool = now,
                Event::PostToolUse { is_error: true, result, tool_name, .. } => {
                    a.errors.push(format!("{tool_name}: {}", result.as_deref().unwrap_or_default()));
                }
                Event::PostToolUse { is_error: false, .. } => a.errors.clear(),
                _ => {}
            }
        }
    }

    /// Whether any of these events (not committed yet) asks for a person.
    pub(crate) fn asks_in<'a>(events: impl IntoIterator<Item = &'a Event>) -> bool {
        events.into_iter().any(|e| asked_by(e).is_some())
    }

    /// Whether the attempt is stuck now, and why.
    pub(crate) fn check(&self) -> Option<Stuck> {
        let a = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = &a.asked {
            return Some(Stuck::AskedHuman(q.clone()));
        }
        let n = self.settings.same_error;
        if n > 0 && a.errors.len() >= n {
            let last = &a.errors[a.errors.len() - n..];
            if last.iter().all(|e| e == &last[0]) {
                return Some(Stuck::Rule(format!("the same error {n} times in a row: {}", last[0])));
            }
        }
        let quiet = a.last_event.elapsed();
        if quiet >= self.settings.no_output {
            return Some(Stuck::Rule(format!("no output for {:.0} s", quiet.as_secs_f64())));
        }
        let toolless = a.last_tool.elapsed();
        if toolless >= self.settings.no_tool {
            return Some(Stuck::Rule(format!("no new tool call for {:.0} s", toolless.as_secs_f64())));
        }
        None
    }

    /// Whether the agent asked for a person (checked once more when its turn ends: a question in its
    /// last answer comes after the last tick).
    pub(crate) fn check_asked(&self) -> Option<Stuck> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner()).asked.clone().map(Stuck::AskedHuman)
    }

    /// How often to check.
    pub(crate) fn tick(&self) -> Duration {
        (self.settings.no_output.min(self.settings.no_tool) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(5))
    }
}
