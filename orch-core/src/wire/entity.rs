//! Stored entities: orchestrators, agents, prompts, chat messages, workflows and system logs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Id, Timestamp, Usage};

/// Lifecycle status of an agent or orchestrator (the seed's five values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentStatus {
    /// Not running.
    #[default]
    Idle,
    /// A turn is running.
    Executing,
    /// Waiting on something outside the agent (a person, a queue).
    Waiting,
    /// The last run failed; the agent can be commanded again.
    Blocked,
    /// Finished for good.
    Complete,
}

impl AgentStatus {
    /// The status as stored (`idle`, `executing`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Executing => "executing",
            Self::Waiting => "waiting",
            Self::Blocked => "blocked",
            Self::Complete => "complete",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "idle" => Self::Idle,
            "executing" => Self::Executing,
            "waiting" => Self::Waiting,
            "blocked" => Self::Blocked,
            "complete" => Self::Complete,
            _ => return None,
        })
    }
}

impl std::fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The orchestrator agent a person chats with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orchestrator {
    /// Id.
    pub id: Id,
    /// Provider session id (external executors), if any.
    pub session_id: Option<String>,
    /// System prompt template.
    pub system_prompt: String,
    /// Status.
    pub status: AgentStatus,
    /// Working directory.
    pub working_dir: String,
    /// Accumulated token usage.
    pub usage: Usage,
    /// Accumulated cost in USD.
    pub total_cost_usd: f64,
    /// Free-form metadata.
    pub metadata: Value,
    /// Archived (soft-deleted).
    pub archived: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A named agent with its model, prompt, working dir, conversation state and costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Id.
    pub id: Id,
    /// The orchestrator that owns it, if any.
    pub orchestrator_id: Option<Id>,
    /// Name, unique among live (non-archived) agents.
    pub name: String,
    /// Model, as `provider:model` or a bare name or alias.
    pub model: String,
    /// System prompt.
    pub system_prompt: Option<String>,
    /// Working directory; file tools are confined to it.
    pub working_dir: String,
    /// Status.
    pub status: AgentStatus,
    /// Provider session id (external executors), if any.
    pub session_id: Option<String>,
    /// Serialized conversation/loop state of the executor, saved at tool boundaries.
    pub state: Option<Value>,
    /// Accumulated token usage.
    pub usage: Usage,
    /// Accumulated cost in USD.
    pub total_cost_usd: f64,
    /// Free-form metadata (template name, colour, …).
    pub metadata: Value,
    /// The workflow this agent runs a step of, if any.
    pub workflow_id: Option<Id>,
    /// The workflow step, if any.
    pub workflow_step: Option<String>,
    /// Archived (soft-deleted). Its name can be reused.
    pub archived: bool,
    /// The run that holds the agent right now (claimed in the store, so two processes never run one
    /// agent's turns at once); `None` when no run holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunLease>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The name of the agent an orchestrator's own turns run as (one per orchestrator; reserved). The
/// orchestrator's status and usage are this agent's.
pub const ORCHESTRATOR_AGENT_NAME: &str = "orchestrator";

/// A run's claim on an agent, kept in the store: which run, which process on which host, and until
/// when the claim holds unless renewed.
///
/// A claim is stale (and may be taken over) when its process is gone on this host, or, for a process
/// on another host, when `expires_at` has passed without a renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLease {
    /// The run's id.
    pub run_id: Id,
    /// The run's slug, when it has one (`task …` in busy messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_slug: Option<String>,
    /// The process running it.
    pub pid: u32,
    /// When that process started, in the host's own units (tells a reused pid from the original).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
    /// The host (and boot) the process runs on.
    pub host: String,
    /// When the run claimed the agent.
    pub started_at: Timestamp,
    /// Until when the claim holds without a renewal.
    pub expires_at: Timestamp,
}

impl std::fmt::Display for RunLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.task_slug {
            Some(slug) => write!(f, "task {slug} (process {} on {})", self.pid, self.host),
            None => write!(f, "run {} (process {} on {})", self.run_id, self.pid, self.host),
        }
    }
}

impl Agent {
    /// A new idle agent with empty usage, created now.
    #[cfg(feature = "store")]
    pub fn new(name: impl Into<String>, model: impl Into<String>, working_dir: impl Into<String>) -> Self {
        let now = super::now();
        Self {
            id: super::new_id(),
            orchestrator_id: None,
            name: name.into(),
            model: model.into(),
            system_prompt: None,
            working_dir: working_dir.into(),
            status: AgentStatus::Idle,
            session_id: None,
            state: None,
            usage: Usage::default(),
            total_cost_usd: 0.0,
            metadata: Value::Object(Default::default()),
            workflow_id: None,
            workflow_step: None,
            archived: false,
            run: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Who wrote a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PromptAuthor {
    /// A person.
    Engineer,
    /// The orchestrator agent.
    OrchestratorAgent,
}

/// A prompt given to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// Id.
    pub id: Id,
    /// The agent prompted, if any.
    pub agent_id: Option<Id>,
    /// Run slug.
    pub task_slug: Option<String>,
    /// Author.
    pub author: PromptAuthor,
    /// The prompt.
    pub prompt_text: String,
    /// One-line summary, if made.
    pub summary: Option<String>,
    /// Provider session id at the time.
    pub session_id: Option<String>,
    /// Created.
    pub created_at: Timestamp,
}

/// A participant of the orchestrator chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Participant {
    /// The person.
    User,
    /// The orchestrator agent.
    Orchestrator,
    /// A managed agent.
    Agent,
}

/// One orchestrator chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Id.
    pub id: Id,
    /// Orchestrator.
    pub orchestrator_id: Id,
    /// Sender.
    pub sender: Participant,
    /// Receiver.
    pub receiver: Participant,
    /// The agent involved, when sender or receiver is an agent.
    pub agent_id: Option<Id>,
    /// Text.
    pub message: String,
    /// One-line summary, if made.
    pub summary: Option<String>,
    /// Metadata.
    pub metadata: Value,
    /// Created.
    pub created_at: Timestamp,
}

/// Status of a workflow run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkflowStatus {
    /// Not started.
    #[default]
    Pending,
    /// Running.
    InProgress,
    /// Finished.
    Completed,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// A workflow run (AI developer workflow or user-defined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    /// Id.
    pub id: Id,
    /// Orchestrator, if any.
    pub orchestrator_id: Option<Id>,
    /// Name.
    pub name: String,
    /// Workflow type (e.g. `plan_build`).
    pub workflow_type: String,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: WorkflowStatus,
    /// Current step.
    pub current_step: Option<String>,
    /// Steps in all.
    pub total_steps: u32,
    /// Steps completed.
    pub completed_steps: u32,
    /// Started.
    pub started_at: Option<Timestamp>,
    /// Ended.
    pub completed_at: Option<Timestamp>,
    /// Duration in seconds, once ended.
    pub duration_seconds: Option<u64>,
    /// Input.
    pub input_data: Value,
    /// Output.
    pub output_data: Value,
    /// Error message.
    pub error_message: Option<String>,
    /// Step that failed.
    pub error_step: Option<String>,
    /// Errors seen.
    pub error_count: u32,
    /// Metadata.
    pub metadata: Value,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Severity of a system log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warning,
    /// Error.
    Error,
}

impl LogLevel {
    /// `DEBUG`, `INFO`, `WARNING` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        }
    }
}

/// A system log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemLog {
    /// Id.
    pub id: Id,
    /// Level.
    pub level: LogLevel,
    /// Message.
    pub message: String,
    /// One-line summary, if made.
    pub summary: Option<String>,
    /// Source file, if any.
    pub file_path: Option<String>,
    /// Workflow, if any.
    pub workflow_id: Option<Id>,
    /// Workflow step, if any.
    pub workflow_step: Option<String>,
    /// Metadata.
    pub metadata: Value,
    /// Created.
    pub created_at: Timestamp,
}

/// What happened to a file during one agent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileChangeStatus {
    /// The file did not exist before the run (or is new to git).
    Created,
    /// The file existed and was changed.
    Modified,
    /// The file is gone after the run.
    Deleted,
}

/// A file an agent run created, modified or deleted (the seed's `FileChange`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path relative to the agent's working directory.
    pub path: String,
    /// Absolute path.
    pub absolute_path: String,
    /// Created, modified or deleted.
    pub status: FileChangeStatus,
    /// Lines added (`+` lines of the diff).
    pub lines_added: u64,
    /// Lines removed (`-` lines of the diff).
    pub lines_removed: u64,
    /// Unified diff against `HEAD` (or against nothing, for a new untracked file); `None` outside git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// One-line description (`Modified src/main.rs (+3 -1 lines)`).
    pub summary: String,
    /// The tools that touched it (`Write`, `Edit`, `Bash`, …).
    #[serde(default)]
    pub tools: Vec<String>,
}

/// A file an agent run read (the seed's `FileRead`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRead {
    /// Path relative to the agent's working directory.
    pub path: String,
    /// Absolute path.
    pub absolute_path: String,
    /// Lines in the file now (`None` if it is gone or unreadable).
    pub line_count: Option<u64>,
}
