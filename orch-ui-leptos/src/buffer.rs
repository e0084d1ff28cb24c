//! The event stream's rows: every event the page has received, once each, in seq order. The server's
//! replay after a reconnect may repeat events the page already has; they are dropped by seq, and rows
//! already loaded are never wiped by a reconnect.

use orch_core::wire::{Event, EventCategory, EventRecord, Id};

use crate::format;

/// The stream's category filters (the seed's RESPONSE / TOOL / THINKING / HOOK, plus SYSTEM for the
/// rest: agent lifecycle, workflows, graphs, chat and system logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Model text, results and model errors.
    Response,
    /// Tool calls, their hooks and results.
    Tool,
    /// Model thinking.
    Thinking,
    /// Hooks other than the tool hooks (prompts, stops, subagents, compaction).
    Hook,
    /// Everything else.
    System,
}

impl Class {
    /// Every class, in the order the filter buttons show them.
    pub const ALL: [Class; 5] = [Class::Response, Class::Tool, Class::Thinking, Class::Hook, Class::System];

    /// The class of an event.
    pub fn of(event: &Event) -> Class {
        match event {
            Event::Thinking { .. } => Class::Thinking,
            Event::ToolUse { .. }
            | Event::ToolResult { .. }
            | Event::ToolRefused { .. }
            | Event::PreToolUse { .. }
            | Event::PostToolUse { .. } => Class::Tool,
            e => match e.category() {
                EventCategory::Response => Class::Response,
                EventCategory::Hook => Class::Hook,
                _ => Class::System,
            },
        }
    }

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            Class::Response => "RESPONSE",
            Class::Tool => "TOOL",
            Class::Thinking => "THINKING",
            Class::Hook => "HOOK",
            Class::System => "SYSTEM",
        }
    }

    /// The CSS class suffix (`cls-tool`, …) and URL name.
    pub fn name(self) -> &'static str {
        match self {
            Class::Response => "response",
            Class::Tool => "tool",
            Class::Thinking => "thinking",
            Class::Hook => "hook",
            Class::System => "system",
        }
    }

    /// Parses [`Class::name`].
    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Index into per-class counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Whether an event reports a failure (the `e` key jumps to the next one; such rows are marked).
pub fn is_error(event: &Event) -> bool {
    match event {
        Event::ModelError { .. } | Event::ToolRefused { .. } => true,
        Event::PostToolUse { is_error, .. } | Event::ToolResult { is_error, .. } | Event::Result { is_error, .. } => {
            *is_error
        }
        Event::SystemLog { level, .. } => *level == orch_core::wire::LogLevel::Error,
        Event::AgentStatusChanged { new_status, .. } => *new_status == orch_core::wire::AgentStatus::Blocked,
        _ => false,
    }
}

/// The next (or, `back`, previous) entry of `seqs` after `from` (`None`: from the start or the end).
pub fn step(seqs: &[u64], from: Option<u64>, back: bool) -> Option<u64> {
    match (from, back) {
        (None, false) => seqs.first().copied(),
        (None, true) => seqs.last().copied(),
        (Some(f), false) => seqs.iter().copied().find(|s| *s > f),
        (Some(f), true) => seqs.iter().rev().copied().find(|s| *s < f),
    }
}

/// One row of the stream: what the list shows, precomputed once, and the event itself for its detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The event's seq.
    pub seq: u64,
    /// `HH:MM:SS` (UTC).
    pub time: String,
    /// The agent it belongs to, if any.
    pub agent_id: Option<Id>,
    /// Its type (the tool's name for tool events).
    pub label: String,
    /// Its class.
    pub class: Class,
    /// One line of summary (truncated).
    pub summary: String,
    /// Lower-case text the search looks through.
    pub haystack: String,
    /// Whether it reports a failure.
    pub error: bool,
    /// The event.
    pub record: EventRecord,
}

/// The longest summary a row keeps (its detail has the whole event).
const SUMMARY_CHARS: usize = 400;

impl Row {
    /// The row of `record`, whose agent is called `agent_name` (empty when it has none).
    pub fn new(record: EventRecord, agent_name: &str) -> Row {
        let class = Class::of(&record.event);
        let label = match &record.event {
            Event::ToolUse { tool_name, .. }
            | Event::PreToolUse { tool_name, .. }
            | Event::PostToolUse { tool_name, .. }
            | Event::ToolResult { tool_name, .. }
            | Event::ToolRefused { tool_name, .. } => format!("{} {tool_name}", record.event.kind()),
            e => e.kind().to_string(),
        };
        let summary = format::truncate(&format::one_line(&record.event.summary()), SUMMARY_CHARS);
        let mut haystack = format!("{label} {agent_name} {summary}");
        for extra in [record.keys.task_slug.as_deref(), record.keys.step.as_deref()].into_iter().flatten() {
            haystack.push(' ');
            haystack.push_str(extra);
        }
        if let Some(w) = record.keys.workflow_id {
            haystack.push(' ');
            haystack.push_str(&w.to_string());
        }
        Row {
            seq: record.seq,
            time: format::clock(&record.timestamp),
            agent_id: record.keys.agent_id,
            label,
            class,
            summary,
            haystack: haystack.to_lowercase(),
            error: is_error(&record.event),
            record,
        }
    }
}

/// The rows, in seq order, each seq once; at most its capacity (the oldest go first).
#[derive(Debug, Clone, PartialEq)]
pub struct EventBuffer {
    rows: Vec<Row>,
    max_seq: u64,
    capacity: usize,
}

/// How many rows a page keeps by default.
pub const DEFAULT_CAPACITY: usize = 50_000;

impl Default for EventBuffer {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl EventBuffer {
    /// An empty buffer keeping at most `capacity` rows (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { rows: Vec::new(), max_seq: 0, capacity: capacity.max(1) }
    }

    /// Whether the buffer has (or had, before [`EventBuffer::clear`] or trimming) the event `seq`.
    pub fn seen(&self, seq: u64) -> bool {
        seq <= self.max_seq && (self.rows.first().is_none_or(|r| seq < r.seq) || self.position(seq).is_ok())
    }

    fn position(&self, seq: u64) -> Result<usize, usize> {
        self.rows.binary_search_by_key(&seq, |r| r.seq)
    }

    /// Adds a row; `false` (and nothing changes) when its seq is already here, or older than every row
    /// kept after a clear or a trim.
    pub fn insert(&mut self, row: Row) -> bool {
        let seq = row.seq;
        if seq > self.max_seq {
            self.rows.push(row);
            self.max_seq = seq;
        } else if self.seen(seq) {
            return false;
        } else {
            match self.position(seq) {
                Ok(_) => return false,
                Err(at) => self.rows.insert(at, row),
            }
        }
        if self.rows.len() > self.capacity {
            // Trim a tenth at once, so a full buffer does not shift on every event.
            let excess = self.rows.len() - self.capacity + self.capacity / 10;
            self.rows.drain(..excess.min(self.rows.len()));
        }
        true
    }

    /// The highest seq ever received (kept across [`EventBuffer::clear`]): where a replay resumes.
    pub fn max_seq(&self) -> u64 {
        self.max_seq
    }

    /// Hides every row received so far (the "clear" button); later events still arrive.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The rows, oldest first.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The row of `seq`.
    pub fn find(&self, seq: u64) -> Option<&Row> {
        self.position(seq).ok().and_then(|i| self.rows.get(i))
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use orch_core::wire::EventKeys;

    pub(crate) fn record(seq: u64, event: Event) -> EventRecord {
        EventRecord {
            seq,
            timestamp: chrono::DateTime::from_timestamp(1_700_000_000 + seq as i64, 0).unwrap_or_default(),
            keys: EventKeys::default(),
            event,
        }
    }

    pub(crate) fn text(seq: u64, t: &str) -> EventRecord {
        record(seq, Event::Text { text: t.into() })
    }

    #[test]
    fn each_seq_is_kept_once_in_order() {
        let mut b = EventBuffer::default();
        for seq in [1, 2, 3] {
            assert!(b.insert(Row::new(text(seq, "x"), "")));
        }
        // A replay after a reconnect repeats what the page has.
        assert!(!b.insert(Row::new(text(2, "again"), "")));
        assert!(!b.insert(Row::new(text(3, "again"), "")));
        assert!(b.insert(Row::new(text(5, "y"), "")));
        // A late one fills its gap.
        assert!(b.insert(Row::new(text(4, "late"), "")));
        let seqs: Vec<u64> = b.rows().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(b.find(2).map(|r| r.summary.as_str()), Some("x"));
        assert_eq!(b.max_seq(), 5);
    }

    #[test]
    fn clear_hides_rows_but_a_replay_does_not_bring_them_back() {
        let mut b = EventBuffer::default();
        for seq in 1..=3 {
            b.insert(Row::new(text(seq, "x"), ""));
        }
        b.clear();
        assert!(b.is_empty());
        assert!(!b.insert(Row::new(text(2, "x"), "")));
        assert!(b.insert(Row::new(text(4, "new"), "")));
        assert_eq!(b.len(), 1);
        assert_eq!(b.max_seq(), 4);
    }

    #[test]
    fn a_full_buffer_drops_its_oldest_rows() {
        let mut b = EventBuffer::with_capacity(100);
        for seq in 1..=101 {
            b.insert(Row::new(text(seq, "x"), ""));
        }
        assert_eq!(b.len(), 90);
        assert_eq!(b.rows().first().map(|r| r.seq), Some(12));
        assert!(!b.insert(Row::new(text(5, "trimmed"), "")), "a trimmed seq is not re-added");
    }

    #[test]
    fn errors_and_stepping_through_rows() {
        let failed =
            Event::PostToolUse { tool_name: "Bash".into(), result: None, is_error: true, tool_use_id: "t".into() };
        assert!(is_error(&failed));
        assert!(Row::new(record(1, failed), "").error);
        assert!(!is_error(&Event::Text { text: "fine".into() }));
        let seqs = [3, 5, 9];
        assert_eq!(step(&seqs, None, false), Some(3));
        assert_eq!(step(&seqs, None, true), Some(9));
        assert_eq!(step(&seqs, Some(5), false), Some(9));
        assert_eq!(step(&seqs, Some(5), true), Some(3));
        assert_eq!(step(&seqs, Some(9), false), None);
        assert_eq!(step(&[], Some(1), true), None);
    }

    #[test]
    fn rows_carry_class_label_and_searchable_text() {
        let tool = record(
            1,
            Event::PreToolUse {
                tool_name: "Bash".into(),
                tool_input: serde_json::json!({"command": "ls"}),
                tool_use_id: "t1".into(),
            },
        );
        let row = Row::new(tool, "Alice");
        assert_eq!(row.class, Class::Tool);
        assert_eq!(row.label, "PreToolUse Bash");
        assert!(row.haystack.contains("alice") && row.haystack.contains("bash"), "{}", row.haystack);
        assert_eq!(row.time, "22:13:21");
        assert_eq!(Class::of(&Event::Thinking { thinking: "hm".into(), signature: None }), Class::Thinking);
        assert_eq!(Class::of(&Event::Text { text: "hi".into() }), Class::Response);
        assert_eq!(Class::parse("hook"), Some(Class::Hook));
    }
}
