//! A person in the loop: what a parked tool call waits for ([`ApprovalDecision`]) and the items of the
//! attention inbox ([`AttentionItem`]) — everything that waits for a person.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Id, Timestamp};

/// The name of the tool whose calls are questions for a person (Claude Code's): a parked call of it
/// is listed as a `question`, and an answer is its result.
pub const ASK_USER_QUESTION: &str = "AskUserQuestion";

/// How a person resolved a parked tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Run the tool.
    Approve,
    /// Do not run it; the model gets the reason as the tool's error.
    Deny,
    /// Do not run it; the model gets the answer as the tool's result.
    Answer,
}

impl ApprovalDecision {
    /// `approve`, `deny` or `answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
            Self::Answer => "answer",
        }
    }

    /// What the decision is called once made (`approved`, `denied`, `answered`).
    pub fn past(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Deny => "denied",
            Self::Answer => "answered",
        }
    }
}

impl std::fmt::Display for ApprovalDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of thing waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttentionKind {
    /// A tool call a hook or a permission rule asked a person to approve.
    Approval,
    /// A question for a person (a parked `AskUserQuestion` call).
    Question,
    /// A task graph's checkpoint.
    Checkpoint,
    /// A run that failed: a workflow run, a task graph, or an agent whose last run failed.
    FailedRun,
}

/// One thing waiting for a person, as `GET /api/attention` and `orch attention` list them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionItem {
    /// What kind.
    pub kind: AttentionKind,
    /// Its id: the approval's, the checkpoint task's, the workflow run's, the graph's or the agent's.
    pub id: Id,
    /// The agent concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    /// The agent's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// The task graph concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_id: Option<Id>,
    /// The graph's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_name: Option<String>,
    /// The workflow run concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<Id>,
    /// The workflow run's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_name: Option<String>,
    /// What the person is asked, or what failed.
    pub question: String,
    /// The tool of a parked call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The tool call's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The tool call's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// When it began to wait.
    pub created_at: Timestamp,
    /// The seq of the event that made it wait, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl AttentionItem {
    /// An item of `kind` with only its id, question and time set.
    pub fn new(kind: AttentionKind, id: Id, question: impl Into<String>, created_at: Timestamp) -> Self {
        Self {
            kind,
            id,
            agent_id: None,
            agent_name: None,
            graph_id: None,
            graph_name: None,
            workflow_id: None,
            workflow_name: None,
            question: question.into(),
            tool: None,
            input: None,
            tool_use_id: None,
            created_at,
            seq: None,
        }
    }
}
