//! Runs and agents as hosts see them: a turn's outcome, an agent's status report, the request that creates
//! an agent, and the frames a host streams to a dashboard.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{Agent, EndReason, EventRecord, Usage};

/// How a turn ended.
// Not `#[non_exhaustive]`: executors outside this crate (`AgentExecutor` is public) build it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// `end_turn`, `max_turns`, `interrupted`, `denied: …`, `hook: …`, `max_tokens`, …
    pub stop_reason: EndReason,
    /// Model calls made in this turn.
    pub num_turns: u32,
    /// Usage of this turn.
    pub usage: Usage,
    /// Cost of this turn in USD.
    pub cost_usd: f64,
    /// The last text the model produced, if any.
    pub final_text: Option<String>,
    /// Wall time of the turn.
    pub duration_ms: u64,
    /// The run slug.
    pub task_slug: String,
}

impl RunOutcome {
    /// Whether the turn was interrupted.
    pub fn interrupted(&self) -> bool {
        self.stop_reason == EndReason::Interrupted
    }
}

/// What `create_agent` is asked for.
// Not `#[non_exhaustive]`: callers build it as `CreateAgent { name, ..Default::default() }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CreateAgent {
    /// Name, unique among live agents of the orchestrator.
    pub name: String,
    /// System prompt (required unless `template` is given).
    pub system_prompt: Option<String>,
    /// Model: alias, bare id or spec; default: the manager's default model.
    pub model: Option<String>,
    /// An agent template of `.claude/agents` (its body, model and tools apply).
    pub template: Option<String>,
    /// The share of its context window past which its conversation is compacted (0 to 1; 0: never);
    /// default: the engine's (`limits.compact_at`).
    pub compact_at: Option<f64>,
}

/// An agent's status and its latest run's activity, for `check_agent_status` and `orch agent status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// The agent.
    pub agent: Agent,
    /// The latest run's slug, if it ever ran.
    pub task_slug: Option<String>,
    /// The latest run's events (the asked-for window), oldest first, each with its best summary.
    pub entries: Vec<StatusEntry>,
}

/// One event of a [`StatusReport`] with its best summary (a model-written one if it came, else
/// [`super::Event::summary`]). Serialized as `{"record": {…}, "summary": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusEntry {
    /// The event.
    pub record: EventRecord,
    /// Its summary.
    pub summary: String,
}

/// One message a host streams to a dashboard (a WebSocket text message, or an SSE `data:` line): a JSON
/// object.
///
/// An event frame is the [`EventRecord`] itself, flat: `{"seq": 7, "timestamp": "…", "agent_id": "…",
/// "type": "Text", "text": "…"}`. Control frames have no `seq`; they name themselves with a `frame` key:
/// `{"frame": "live", "last_seq": 7}`, `{"frame": "error", "message": "…"}` (so no event has a field named
/// `frame`). A control frame this build does not know decodes as [`WsFrame::Other`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WsFrame {
    /// An event of the log.
    Event(Box<EventRecord>),
    /// The replay of stored events is done; what follows is live.
    Live {
        /// The last seq of the replay (0 for an empty log).
        last_seq: u64,
    },
    /// The stream failed and ends.
    Error {
        /// What went wrong.
        message: String,
    },
    /// A control frame this build does not know, as received.
    Other(Value),
}

/// The key that names a control frame.
const FRAME_TAG: &str = "frame";

impl Serialize for WsFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Event(r) => r.serialize(s),
            Self::Live { last_seq } => serde_json::json!({FRAME_TAG: "live", "last_seq": last_seq}).serialize(s),
            Self::Error { message } => serde_json::json!({FRAME_TAG: "error", "message": message}).serialize(s),
            Self::Other(v) => v.serialize(s),
        }
    }
}

/// The control frames this build knows, for decoding.
#[derive(Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
enum Control {
    Live { last_seq: u64 },
    Error { message: String },
}

impl<'de> Deserialize<'de> for WsFrame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if !v.is_object() {
            return Err(D::Error::custom("a frame must be a JSON object"));
        }
        match v.get(FRAME_TAG).map(Value::as_str) {
            None => serde_json::from_value(v).map(|r| Self::Event(Box::new(r))).map_err(D::Error::custom),
            Some(Some("live" | "error")) => match serde_json::from_value(v).map_err(D::Error::custom)? {
                Control::Live { last_seq } => Ok(Self::Live { last_seq }),
                Control::Error { message } => Ok(Self::Error { message }),
            },
            Some(_) => Ok(Self::Other(v)),
        }
    }
}
