//! What a client asks a store for, and what it reports about itself.

use serde::{Deserialize, Serialize};

use super::{EventCategory, EventRecord, Id};

/// Which events to read. All set filters must match.
///
/// Serialized with every field optional, so a client (a dashboard subscribing over a WebSocket) can send
/// just the filters it sets: `{"agent_id": "…", "types": ["ToolUse"]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventQuery {
    /// Only events with `seq > after_seq`.
    pub after_seq: u64,
    /// Only events with `seq <= until_seq`.
    pub until_seq: Option<u64>,
    /// Only this agent's events.
    pub agent_id: Option<Id>,
    /// Only this orchestrator's events.
    pub orchestrator_id: Option<Id>,
    /// Only this workflow's events.
    pub workflow_id: Option<Id>,
    /// Only this step's events.
    pub step: Option<String>,
    /// Only this run's events.
    pub task_slug: Option<String>,
    /// Only these categories (empty: all).
    pub categories: Vec<EventCategory>,
    /// Only these types (empty: all), e.g. `PreToolUse`.
    pub types: Vec<String>,
    /// At most this many (oldest first). `None`: no limit.
    pub limit: Option<usize>,
}

impl EventQuery {
    /// Events after `seq`, unfiltered.
    pub fn after(seq: u64) -> Self {
        Self { after_seq: seq, ..Self::default() }
    }

    /// Whether a record passes the filters (not the seq range or limit). Stores may use this.
    pub fn matches(&self, r: &EventRecord) -> bool {
        (self.agent_id.is_none() || r.keys.agent_id == self.agent_id)
            && (self.orchestrator_id.is_none() || r.keys.orchestrator_id == self.orchestrator_id)
            && (self.workflow_id.is_none() || r.keys.workflow_id == self.workflow_id)
            && (self.step.is_none() || r.keys.step == self.step)
            && (self.task_slug.is_none() || r.keys.task_slug == self.task_slug)
            && (self.categories.is_empty() || self.categories.contains(&r.event.category()))
            && (self.types.is_empty() || self.types.iter().any(|t| t == r.event.kind()))
    }
}

/// What `orch db status` shows about a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// `memory`, `sqlite`, `postgres`.
    pub backend: String,
    /// File path or URL (without password).
    pub location: String,
    /// Schema version applied.
    pub schema_version: i64,
    /// Events stored.
    pub events: u64,
    /// Highest seq appended (0 when empty).
    pub last_seq: u64,
    /// Size on disk, when known.
    pub size_bytes: Option<u64>,
}
