//! The serializable state of the native loop, saved at every tool boundary.
//!
//! The conversation itself is not part of it: messages are appended to the agent's conversation in the
//! store by the same atomic commits, so each save is small and nothing grows blob-wise.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::{ApprovalDecision, Id, Timestamp, Usage};

/// Where the loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No turn running: the agent waits for a prompt.
    #[default]
    Idle,
    /// The next step is a model call.
    CallModel,
    /// The last model response asked for tools; some may have run.
    RunTools,
}

/// A tool call of the current step and, once it ran, its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCall {
    /// Call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Input.
    pub input: Value,
    /// Result text and error flag, once the tool ran.
    pub result: Option<(String, bool)>,
    /// The call waits (or waited) for a person: its PreToolUse hooks asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Parked>,
}

/// A tool call parked for a person by a PreToolUse hook's `ask`, and, once a person decided, how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parked {
    /// The approval's id (of its `ApprovalRequested` event).
    pub id: Id,
    /// What the person is asked.
    pub question: String,
    /// The input the tool runs with if approved (after the hooks' rewrites).
    pub input: Value,
    /// Context the hooks added, appended to the tool's result.
    #[serde(default)]
    pub context: Vec<String>,
    /// The person's decision, once made, and its reason or answer.
    #[serde(default)]
    pub resolution: Option<(ApprovalDecision, Option<String>)>,
}

impl TurnState {
    /// The parked call waiting for a person, if one is.
    pub fn waiting(&self) -> Option<(&PendingCall, &Parked)> {
        self.pending.iter().find_map(|p| match &p.approval {
            Some(a) if a.resolution.is_none() && p.result.is_none() => Some((p, a)),
            _ => None,
        })
    }
}

impl LoopState {
    /// The parked call waiting for a person, if the turn has one.
    pub fn waiting(&self) -> Option<(&PendingCall, &Parked)> {
        self.turn.as_ref().and_then(TurnState::waiting)
    }

    /// The parked call of approval `id` (resolved or not), if the turn has it and it has not run yet.
    pub fn parked_mut(&mut self, id: Id) -> Option<&mut Parked> {
        let turn = self.turn.as_mut()?;
        turn.pending.iter_mut().filter(|p| p.result.is_none()).find_map(|p| p.approval.as_mut().filter(|a| a.id == id))
    }
}

/// The turn in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnState {
    /// Run slug.
    pub task_slug: String,
    /// When it started.
    pub started_at: Timestamp,
    /// Model calls made.
    pub num_turns: u32,
    /// Limit of model calls.
    pub max_turns: u32,
    /// Usage so far.
    pub usage: Usage,
    /// Cost so far.
    pub cost_usd: f64,
    /// Tool calls of the current step.
    pub pending: Vec<PendingCall>,
    /// The last text the model produced.
    pub last_text: Option<String>,
    /// A hook asked to stop after the current step.
    pub stop_requested: Option<String>,
}

/// The native loop's saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoopState {
    /// Format version.
    pub version: u32,
    /// Where the loop is.
    pub phase: Phase,
    /// Messages of the conversation stored so far.
    pub message_count: usize,
    /// The running turn, if any.
    pub turn: Option<TurnState>,
    /// Tokens of context the last model call used (0: none since the conversation began or was
    /// compacted).
    #[serde(default)]
    pub context_used: u64,
    /// How many messages the conversation had when `context_used` was measured.
    #[serde(default)]
    pub context_at: usize,
}

impl LoopState {
    /// The current format version.
    pub const VERSION: u32 = 1;
}
