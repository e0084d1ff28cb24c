//! What a committed event says to a person, in the Parent Harness's message formats:
//!
//! ```text
//! 🔧 build-1a2b3c4d starting add-a-parser-build
//! 📝 File written: src/parser.rs (+26 lines)
//! ✅ add-a-parser-build completed (3 model calls)
//! ❌ add-a-parser-review failed: the model's provider is unavailable
//! ⚠️ build-1a2b3c4d stuck for 15 minutes
//! 🙋 build-1a2b3c4d waits for a person: Bash(rm -rf target) — Run it? /approve 0192…
//! ```

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use orch_core::config::notify::NotifyEvent;
use orch_core::wire::{
    AgentStatus, EndReason, Event, EventRecord, FileChange, FileChangeStatus, GraphStatus, Id, TaskStatus, Timestamp,
    WorkflowStatus,
};
use serde::Serialize;

/// Characters of a failure's text or a question kept in a message.
const DETAIL_CHARS: usize = 300;

/// One notification: its kind, its text, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// What it is about.
    pub event: NotifyEvent,
    /// The message.
    pub text: String,
    /// Whether it goes to the critical chat.
    pub critical: bool,
    /// When the event was committed (now, for a stuck agent).
    pub at: Timestamp,
    /// The event's seq (none for a stuck agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The agent's name, when about an agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    /// The workflow run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<Id>,
    /// The run's slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_slug: Option<String>,
}

impl Notification {
    /// A notification of `event` with `text`, keyed by `record` (when there is one).
    pub fn new(event: NotifyEvent, text: String, record: Option<&EventRecord>) -> Self {
        Notification {
            event,
            text,
            critical: event.is_critical(),
            at: record.map_or_else(orch_core::wire::now, |r| r.timestamp),
            seq: record.map(|r| r.seq),
            agent: None,
            agent_id: record.and_then(|r| r.keys.agent_id),
            workflow_id: record.and_then(|r| r.keys.workflow_id),
            task_slug: record.and_then(|r| r.keys.task_slug.clone()),
        }
    }
}

/// What the formatter knows of an agent.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    /// Its name.
    pub name: String,
    /// An orchestrator's own agent (its chat turns are not notified).
    pub orchestrator: bool,
    /// A graph task's attempt (its task's own updates are notified instead of its turn's end).
    pub graph_task: bool,
}

/// Turns events into notifications; remembers the last status of workflow runs, graphs and tasks, so
/// only changes are notified.
#[derive(Debug, Default)]
pub struct Formatter {
    last: HashMap<Id, String>,
    /// `Write` and `Edit` calls not yet done, by tool use id: the file, and lines added and removed.
    writes: HashMap<String, FileWrite>,
    /// The files told of in each agent's current turn (its `FileTracking` then tells only the others).
    told: HashMap<Id, HashSet<String>>,
}

/// A file a `Write` or `Edit` call changes.
#[derive(Debug)]
struct FileWrite {
    path: String,
    edit: bool,
    added: usize,
    removed: usize,
}

impl Formatter {
    /// The notification of `record`, if it is one; `agent` is what is known of the record's agent.
    pub fn format(&mut self, record: &EventRecord, agent: Option<&AgentInfo>) -> Option<Notification> {
        let name = agent.map_or("an agent", |a| a.name.as_str());
        let slug = || record.keys.task_slug.clone().unwrap_or_else(|| name.to_string());
        let agent_id = record.keys.agent_id;
        let (event, text) = match &record.event {
            Event::UserPromptSubmit { .. } if !agent.is_some_and(|a| a.orchestrator) => {
                if let Some(id) = agent_id {
                    self.told.remove(&id);
                }
                (NotifyEvent::TaskStarted, format!("🔧 {name} starting {}", slug()))
            }
            Event::PreToolUse { tool_name, tool_input, tool_use_id } => {
                if let Some(w) = file_write(tool_name, tool_input) {
                    self.writes.insert(tool_use_id.clone(), w);
                }
                return None;
            }
            Event::PostToolUse { tool_use_id, is_error, .. } => {
                let w = self.writes.remove(tool_use_id).filter(|_| !is_error)?;
                if let Some(id) = agent_id {
                    self.told.entry(id).or_default().insert(w.path.clone());
                }
                let verb = if w.edit { "modified" } else { "written" };
                (NotifyEvent::FileChanged, format!("📝 File {verb}: {} ({})", w.path, line_counts(w.added, w.removed)))
            }
            Event::FileTracking { file_changes, .. } => {
                let told = agent_id.and_then(|id| self.told.remove(&id)).unwrap_or_default();
                let lines: Vec<String> = file_changes
                    .iter()
                    .filter(|c| !told.contains(&c.path) && !told.contains(&c.absolute_path))
                    .map(file_line)
                    .collect();
                if lines.is_empty() {
                    return None;
                }
                (NotifyEvent::FileChanged, lines.join("\n"))
            }
            Event::Result { is_error, stop_reason, num_turns, result, .. }
                if !agent.is_some_and(|a| a.orchestrator || a.graph_task) =>
            {
                match (is_error, stop_reason) {
                    (true, _) | (_, EndReason::Error) => {
                        let why = result.as_deref().map(|r| clip(r.trim(), DETAIL_CHARS)).unwrap_or_default();
                        (NotifyEvent::Failed, format!("❌ {} failed: {why}", slug()))
                    }
                    (_, EndReason::Waiting) => return None,
                    (_, EndReason::Interrupted) => (NotifyEvent::Completed, format!("⏹️ {} interrupted", slug())),
                    _ => {
                        let calls = if *num_turns == 1 { "model call" } else { "model calls" };
                        (NotifyEvent::Completed, format!("✅ {} completed ({num_turns} {calls})", slug()))
                    }
                }
            }
            Event::ApprovalRequested { approval, tool_name, tool_input, question, .. } => {
                let arg = ["file_path", "command", "path", "url"]
                    .iter()
                    .find_map(|k| tool_input.get(*k).and_then(|v| v.as_str()))
                    .map(|a| format!("({})", clip(a, 80)))
                    .unwrap_or_default();
                let question = clip(question.trim(), DETAIL_CHARS);
                (
                    NotifyEvent::Waiting,
                    format!("🙋 {name} waits for a person: {tool_name}{arg} — {question} /approve {approval}"),
                )
            }
            Event::WorkflowUpdated { workflow } if self.changed(workflow.id, workflow.status.as_str()) => {
                let w = workflow;
                match w.status {
                    WorkflowStatus::Completed => (
                        NotifyEvent::Completed,
                        format!("✅ {} completed ({}/{} steps)", w.name, w.completed_steps, w.total_steps),
                    ),
                    WorkflowStatus::Failed => {
                        let why = w.error_message.as_deref().map(|e| clip(e, DETAIL_CHARS)).unwrap_or_default();
                        let step = w.error_step.as_deref().map(|s| format!(" at {s}")).unwrap_or_default();
                        (NotifyEvent::Failed, format!("❌ {} failed{step}: {why}", w.name))
                    }
                    WorkflowStatus::Cancelled => (NotifyEvent::Completed, format!("⏹️ {} cancelled", w.name)),
                    _ => return None,
                }
            }
            Event::GraphUpdated { graph } if self.changed(graph.id, graph.status.as_str()) => match graph.status {
                GraphStatus::Completed => {
                    (NotifyEvent::Completed, format!("✅ graph {} completed (${:.4})", graph.name, graph.cost_usd))
                }
                GraphStatus::Failed => (NotifyEvent::Failed, format!("❌ graph {} failed", graph.name)),
                _ => return None,
            },
            Event::TaskUpdated { task } if self.changed(task.id, task.status.as_str()) => match task.status {
                TaskStatus::Completed => (NotifyEvent::Completed, format!("✅ {} completed", task.key)),
                TaskStatus::Failed => {
                    let why = task.error.as_deref().map(|e| clip(e, DETAIL_CHARS)).unwrap_or_default();
                    (NotifyEvent::Failed, format!("❌ {} failed: {why}", task.key))
                }
                TaskStatus::Blocked => {
                    let why = task.checkpoint.as_deref().map(|c| clip(c, DETAIL_CHARS)).unwrap_or_default();
                    (
                        NotifyEvent::Waiting,
                        format!("🙋 {} needs a person: {why} — /approve {} retries it", task.key, task.id),
                    )
                }
                _ => return None,
            },
            _ => return None,
        };
        let mut n = Notification::new(event, text, Some(record));
        n.agent = agent.map(|a| a.name.clone());
        Some(n)
    }

    /// Whether `id`'s status is new (and remembers it).
    fn changed(&mut self, id: Id, status: &str) -> bool {
        self.last.insert(id, status.to_string()).is_none_or(|before| before != status)
    }
}

/// The file a `Write` or `Edit` call's input changes.
fn file_write(tool: &str, input: &serde_json::Value) -> Option<FileWrite> {
    let text = |k: &str| input.get(k).and_then(|v| v.as_str());
    let path = text("file_path")?.to_string();
    match tool {
        "Write" => Some(FileWrite { path, edit: false, added: text("content")?.lines().count(), removed: 0 }),
        "Edit" => Some(FileWrite {
            path,
            edit: true,
            added: text("new_string").map_or(0, |t| t.lines().count()),
            removed: text("old_string").map_or(0, |t| t.lines().count()),
        }),
        _ => None,
    }
}

/// `+26 lines`, `+1 line`, `+3 −1 lines`.
fn line_counts(added: usize, removed: usize) -> String {
    match (added, removed) {
        (1, 0) => "+1 line".to_string(),
        (a, 0) => format!("+{a} lines"),
        (a, r) => format!("+{a} −{r} lines"),
    }
}

/// `📝 File modified: src/main.rs (+3 lines)`.
fn file_line(c: &FileChange) -> String {
    let what = match c.status {
        FileChangeStatus::Created => "created",
        FileChangeStatus::Modified => "modified",
        FileChangeStatus::Deleted => "deleted",
        _ => "changed",
    };
    let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    format!("📝 File {what}: {} ({})", c.path, line_counts(count(c.lines_added), count(c.lines_removed)))
}

/// `⚠️ NAME stuck for 15 minutes`.
pub fn stuck(agent: &str, agent_id: Id, silent: Duration) -> Notification {
    let secs = silent.as_secs();
    let span = match secs {
        120.. => format!("{} minutes", secs / 60),
        1 => "1 second".to_string(),
        _ => format!("{secs} seconds"),
    };
    let mut n = Notification::new(NotifyEvent::Stuck, format!("⚠️ {agent} stuck for {span}"), None);
    n.agent = Some(agent.to_string());
    n.agent_id = Some(agent_id);
    n
}

/// Whether a status change starts (`Some(true)`) or ends (`Some(false)`) an agent's activity.
pub fn activity(event: &Event) -> Option<bool> {
    match event {
        Event::AgentStatusChanged { new_status, .. } => Some(*new_status == AgentStatus::Executing),
        Event::AgentDeleted {} => Some(false),
        _ => None,
    }
}

/// The first `n` characters of `s`, with `…` when cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_core::wire::{EventKeys, Usage};

    fn record(event: Event) -> EventRecord {
        let keys = EventKeys { task_slug: Some("add-a-parser-build".into()), ..EventKeys::default() };
        EventRecord { seq: 7, timestamp: orch_core::wire::now(), keys, event }
    }

    fn agent() -> AgentInfo {
        AgentInfo { name: "build-1a2b3c4d".into(), orchestrator: false, graph_task: false }
    }

    #[test]
    fn messages_follow_the_parent_harness_formats() {
        let mut f = Formatter::default();
        let a = agent();
        let started = f.format(&record(Event::UserPromptSubmit { prompt: "x".into(), prompt_length: 1 }), Some(&a));
        assert_eq!(started.unwrap().text, "🔧 build-1a2b3c4d starting add-a-parser-build");
        let result = |is_error, reason| Event::Result {
            is_error,
            stop_reason: reason,
            num_turns: 3,
            duration_ms: 10,
            usage: Usage::default(),
            cost_usd: 0.0,
            result: Some("TypeScript error".into()),
        };
        let done = f.format(&record(result(false, EndReason::EndTurn)), Some(&a)).unwrap();
        assert_eq!(done.text, "✅ add-a-parser-build completed (3 model calls)");
        assert!(!done.critical);
        let failed = f.format(&record(result(true, EndReason::Error)), Some(&a)).unwrap();
        assert_eq!(failed.text, "❌ add-a-parser-build failed: TypeScript error");
        assert!(failed.critical);
        let n = stuck("build-1a2b3c4d", orch_core::wire::new_id(), Duration::from_secs(15 * 60));
        assert_eq!(n.text, "⚠️ build-1a2b3c4d stuck for 15 minutes");
        assert!(n.critical);
        let change = FileChange {
            path: "system-prompt.ts".into(),
            absolute_path: "/w/system-prompt.ts".into(),
            status: FileChangeStatus::Modified,
            lines_added: 26,
            lines_removed: 0,
            diff: None,
            summary: String::new(),
            tools: vec!["Edit".into()],
        };
        let files = Event::FileTracking { text_seq: None, file_changes: vec![change], read_files: Vec::new() };
        assert_eq!(f.format(&record(files), Some(&a)).unwrap().text, "📝 File modified: system-prompt.ts (+26 lines)");
    }
}
