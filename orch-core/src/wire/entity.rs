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
    /// Tokens of context its last turn's last model call used (those of its own agent).
    #[serde(default)]
    pub context_used: u64,
    /// Its model's context window, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Free-form metadata.
    pub metadata: Value,
    /// Archived (soft-deleted).
    pub archived: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// What an agent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentRole {
    /// An agent commanded by a person, an orchestrator, a workflow or a task graph.
    #[default]
    Agent,
    /// An orchestrator's own agent: the orchestrator's turns run as it (one per orchestrator, named
    /// [`ORCHESTRATOR_AGENT_NAME`]).
    Orchestrator,
    /// A subagent another agent started with the `Task` tool (its `parent_id`).
    Subagent,
    /// A role this build does not know (written by a newer one); treated as [`AgentRole::Agent`].
    #[serde(other)]
    Other,
}

impl AgentRole {
    /// The role as stored (`agent`, `orchestrator`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent | Self::Other => "agent",
            Self::Orchestrator => "orchestrator",
            Self::Subagent => "subagent",
        }
    }

    /// Parses a stored role; an unknown one is [`AgentRole::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "agent" => Self::Agent,
            "orchestrator" => Self::Orchestrator,
            "subagent" => Self::Subagent,
            _ => Self::Other,
        }
    }
}

impl std::fmt::Display for AgentRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The template (a `.claude/agents/*.md` file) an agent was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    /// The template's name.
    pub name: String,
    /// Its colour, if it names one (the dashboard tints the agent's card with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A named agent with its model, prompt, working dir, status and costs.
///
/// The executor's private loop state is not part of it: executors read it with
/// `Store::load_executor_state`, so listing agents never moves conversations around.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "compat::AgentJson")]
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
    /// What the agent is for.
    #[serde(default)]
    pub role: AgentRole,
    /// The agent whose `Task` call started this one (subagents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Id>,
    /// The template it was made from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,
    /// The tools it may use, by name; `None`: every tool its runner has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Accumulated token usage.
    pub usage: Usage,
    /// Accumulated cost in USD.
    pub total_cost_usd: f64,
    /// Tokens of context its last model call used (input, cached or not, and output; 0 before any).
    #[serde(default)]
    pub context_used: u64,
    /// Its model's context window, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// The fraction of the context window past which its conversation is compacted before a model
    /// call; `None`: the engine's default (0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_at: Option<f64>,
    /// Free-form metadata for hosts and users (the engine's own fields are typed above).
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
    /// Whether this is an orchestrator's own agent.
    pub fn is_orchestrator(&self) -> bool {
        self.role == AgentRole::Orchestrator
    }

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
            role: AgentRole::Agent,
            parent_id: None,
            template: None,
            tools: None,
            usage: Usage::default(),
            total_cost_usd: 0.0,
            context_used: 0,
            context_window: None,
            compact_at: None,
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

impl WorkflowStatus {
    /// As stored (`pending`, `in_progress`, `completed`, `failed`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
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
    /// The process running it right now (claimed in the store with a compare-and-swap, so two
    /// processes never run one workflow at once); `None` when no process holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunLease>,
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

/// Reading agents written before the role, template and tools became fields (in events and rows of
/// databases written then, they sat in `metadata` as `role`, `template_name`, `template_color` and
/// `tools`, and the executor's `state` sat on the agent): the typed fields win, else the metadata
/// keys are lifted into them and removed from `metadata`.
mod compat {
    use serde::Deserialize;
    use serde_json::Value;

    use super::{Agent, AgentRole, AgentStatus, RunLease, TemplateRef};
    use crate::wire::{Id, Timestamp, Usage};

    #[derive(Deserialize)]
    pub(super) struct AgentJson {
        id: Id,
        #[serde(default)]
        orchestrator_id: Option<Id>,
        name: String,
        model: String,
        #[serde(default)]
        system_prompt: Option<String>,
        working_dir: String,
        status: AgentStatus,
        #[serde(default)]
        session_id: Option<String>,
        #[serde(default)]
        role: Option<AgentRole>,
        #[serde(default)]
        parent_id: Option<Id>,
        #[serde(default)]
        template: Option<TemplateRef>,
        #[serde(default)]
        tools: Option<Vec<String>>,
        #[serde(default)]
        usage: Usage,
        #[serde(default)]
        total_cost_usd: f64,
        #[serde(default)]
        context_used: u64,
        #[serde(default)]
        context_window: Option<u64>,
        #[serde(default)]
        compact_at: Option<f64>,
        #[serde(default)]
        metadata: Value,
        #[serde(default)]
        workflow_id: Option<Id>,
        #[serde(default)]
        workflow_step: Option<String>,
        #[serde(default)]
        archived: bool,
        #[serde(default)]
        run: Option<RunLease>,
        created_at: Timestamp,
        updated_at: Timestamp,
    }

    impl From<AgentJson> for Agent {
        fn from(a: AgentJson) -> Self {
            let mut metadata = a.metadata;
            let mut take = |key: &str| metadata.as_object_mut().and_then(|m| m.remove(key));
            let old_role = take("role");
            let old_name = take("template_name");
            let old_color = take("template_color");
            let old_tools = take("tools");
            let role = a.role.unwrap_or_else(|| {
                old_role.as_ref().and_then(Value::as_str).map_or(AgentRole::Agent, AgentRole::parse)
            });
            let template = a.template.or_else(|| {
                let name = old_name.as_ref().and_then(Value::as_str)?.to_string();
                Some(TemplateRef { name, color: old_color.as_ref().and_then(Value::as_str).map(str::to_string) })
            });
            let tools = a.tools.or_else(|| serde_json::from_value(old_tools?).ok());
            if metadata.is_null() {
                metadata = Value::Object(Default::default());
            }
            Agent {
                id: a.id,
                orchestrator_id: a.orchestrator_id,
                name: a.name,
                model: a.model,
                system_prompt: a.system_prompt,
                working_dir: a.working_dir,
                status: a.status,
                session_id: a.session_id,
                role,
                parent_id: a.parent_id,
                template,
                tools,
                usage: a.usage,
                total_cost_usd: a.total_cost_usd,
                context_used: a.context_used,
                context_window: a.context_window,
                compact_at: a.compact_at,
                metadata,
                workflow_id: a.workflow_id,
                workflow_step: a.workflow_step,
                archived: a.archived,
                run: a.run,
                created_at: a.created_at,
                updated_at: a.updated_at,
            }
        }
    }
}
