//! The event log: one tagged enum for everything that happens, and the record the store gives it.
//!
//! Field names follow the seed's `agent_logs` payloads, so the seed's views are projections of this log.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::event_de::TYPE_TAG;
use super::{
    Agent, AgentStatus, ApprovalDecision, ChatMessage, CompactTrigger, EndReason, FileChange, FileRead, HookVerdict,
    Id, LogLevel, Message, Orchestrator, Plan, StepStatus, Task, TaskGraph, Timestamp, Usage, WorkflowRecord,
};

/// Everything that happens, as appended to the log. Serialized with a `type` tag.
///
/// Decoding never fails on a `type` this build does not know (written by a newer orch): such an event
/// becomes [`Event::Unknown`], which keeps its fields and serializes back to the same JSON.
///
/// Encode through serde's trait (`serde_json::to_string`, `<Event as Serialize>::serialize`): the
/// inherent `Event::serialize` that serde's derive generates here handles the known types only. Decoding
/// is written by hand (module `event_de`; the field attributes below describe it too).
// `remote = "Self"` makes the derive generate an inherent function, which the `Serialize` impl below
// calls for the known variants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", remote = "Self")]
#[non_exhaustive]
pub enum Event {
    // ---- agent lifecycle ----
    /// An agent was created.
    AgentCreated {
        /// The agent as created.
        agent: Box<Agent>,
    },
    /// An agent's status changed (the agent is the record's `agent_id`).
    AgentStatusChanged {
        /// Before.
        old_status: AgentStatus,
        /// After.
        new_status: AgentStatus,
    },
    /// Usage and cost were added to an agent after a model call (the agent is the record's `agent_id`).
    AgentCostsUpdated {
        /// Model that was called.
        model: String,
        /// Usage of this call.
        usage: Usage,
        /// Cost of this call in USD.
        cost_usd: f64,
        /// The agent's usage after the increment.
        total_usage: Usage,
        /// The agent's cost after the increment.
        total_cost_usd: f64,
        /// Tokens of context this call used (its input, cached or not, and its output), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context_used: Option<u64>,
        /// The model's context window, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context_window: Option<u64>,
    },
    /// An agent was deleted (archived); the agent is the record's `agent_id`.
    AgentDeleted {},
    /// Someone asked for the agent's running turn to stop (the agent is the record's `agent_id`). The
    /// process running the turn follows the log and interrupts it, so this works across processes.
    InterruptRequested {
        /// Who asked (`cli`, `orchestrator`, `http`, …).
        requested_by: String,
    },
    /// An orchestrator was created (its id is the record's `orchestrator_id`).
    OrchestratorCreated {
        /// The orchestrator as created.
        orchestrator: Box<Orchestrator>,
    },
    /// Usage and cost were added to an orchestrator after one of its turns (the seed's
    /// `orchestrator_updated`).
    OrchestratorCostsUpdated {
        /// Usage of the turn.
        usage: Usage,
        /// Cost of the turn in USD.
        cost_usd: f64,
        /// The orchestrator's usage after the increment.
        total_usage: Usage,
        /// The orchestrator's cost after the increment.
        total_cost_usd: f64,
    },

    // ---- hooks (seed `event_category = "hook"`) ----
    /// A prompt was submitted to an agent.
    UserPromptSubmit {
        /// The prompt (first 1000 chars).
        prompt: String,
        /// Full length in chars.
        prompt_length: usize,
    },
    /// A tool is about to run.
    PreToolUse {
        /// Tool.
        tool_name: String,
        /// Input.
        tool_input: Value,
        /// Call id.
        tool_use_id: String,
    },
    /// A tool ran.
    PostToolUse {
        /// Tool.
        tool_name: String,
        /// Result text (first 500 chars).
        result: Option<String>,
        /// Whether it failed.
        is_error: bool,
        /// Call id.
        tool_use_id: String,
    },
    /// A turn ended.
    Stop {
        /// `end_turn`, `max_turns`, `interrupted`, `hook: …`, `error`, …
        reason: EndReason,
        /// Model calls in the turn.
        num_turns: u32,
        /// Wall time.
        duration_ms: u64,
    },
    /// A subagent started: a `Task` tool call of the record's agent runs another agent (recorded
    /// under the parent, with the parent's run).
    SubagentStart {
        /// The subagent (an agent id; for Claude Code, the `Task` call id).
        subagent_id: String,
        /// Its template (`subagent_type`).
        subagent_type: String,
        /// The task's short description.
        description: String,
        /// The parent's `Task` call.
        tool_use_id: String,
    },
    /// A subagent finished.
    SubagentStop {
        /// The subagent.
        subagent_id: String,
        /// The parent's `Task` call (absent in logs of older builds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_use_id: Option<String>,
        /// How its run ended (absent in logs of older builds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<EndReason>,
        /// What it cost, in USD (rolled up into the parent's cost).
        #[serde(default)]
        cost_usd: f64,
    },
    /// The context is about to be compacted.
    PreCompact {
        /// Tokens before compaction.
        tokens_before: u64,
    },
    /// An agent's conversation was compacted: its older messages were replaced by a summary. The
    /// replaced messages are kept here, verbatim, so the log still holds the whole history.
    Compacted {
        /// What started it.
        trigger: CompactTrigger,
        /// The context before (tokens, as last measured or estimated).
        tokens_before: u64,
        /// The context after (estimated).
        tokens_after: u64,
        /// Messages replaced by the summary.
        messages_replaced: u32,
        /// Messages kept verbatim after the summary.
        messages_kept: u32,
        /// The summary that replaced them.
        summary: String,
        /// The replaced messages (empty where the executor does not see them, e.g. Claude Code).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replaced: Vec<Message>,
    },
    /// A hook was invoked and decided.
    HookInvoked {
        /// Hook event (`PreToolUse`, …).
        hook_event: String,
        /// Hook name.
        hook_name: String,
        /// The tool it matched, if any.
        tool_name: Option<String>,
        /// Its decision (`continue`, `deny`, …).
        decision: HookVerdict,
        /// Reason, context or error text.
        detail: Option<String>,
    },

    /// A hook or a permission rule asked a person before a tool runs: the run parked (the agent is the
    /// record's `agent_id`, its status `waiting`) until an [`Event::ApprovalResolved`] of this approval.
    ApprovalRequested {
        /// The approval's id (what `orch approve` and `/api/approvals/{id}` take).
        approval: Id,
        /// The tool call.
        tool_use_id: String,
        /// The tool.
        tool_name: String,
        /// Its input, as it would run.
        tool_input: Value,
        /// What the person is asked.
        question: String,
    },
    /// A person approved, denied or answered a parked tool call; the run continues from it.
    ApprovalResolved {
        /// The approval.
        approval: Id,
        /// `approve`, `deny` or `answer`.
        decision: ApprovalDecision,
        /// The reason of a denial, or the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Who resolved it (`api`, `cli`, …).
        by: String,
    },

    // ---- response blocks (seed `event_category = "response"`) ----
    /// Text from the model.
    Text {
        /// The text.
        text: String,
    },
    /// Thinking from the model.
    Thinking {
        /// The thinking.
        thinking: String,
        /// Its signature.
        signature: Option<String>,
    },
    /// The model asked for a tool call.
    ToolUse {
        /// Tool.
        tool_name: String,
        /// Input.
        tool_input: Value,
        /// Call id.
        tool_use_id: String,
    },
    /// A tool call's result as given to the model.
    ToolResult {
        /// Call id.
        tool_use_id: String,
        /// Tool.
        tool_name: String,
        /// Content.
        content: String,
        /// Whether it is an error.
        is_error: bool,
    },
    /// A tool call was refused (sandbox, unknown tool, bad input).
    ToolRefused {
        /// Tool.
        tool_name: String,
        /// Call id.
        tool_use_id: String,
        /// Why.
        reason: String,
    },
    /// The final result of a turn.
    Result {
        /// Whether the turn failed.
        is_error: bool,
        /// Why it ended (`end_turn`, `max_turns`, …).
        stop_reason: EndReason,
        /// Model calls made.
        num_turns: u32,
        /// Wall time.
        duration_ms: u64,
        /// Usage of the turn.
        usage: Usage,
        /// Cost of the turn.
        cost_usd: f64,
        /// Final text, or the error.
        result: Option<String>,
    },
    /// A model call failed (and may be retried).
    ModelError {
        /// Model.
        model: String,
        /// Error text.
        message: String,
        /// Whether a retry may help.
        retryable: bool,
    },

    /// A model call is retried after a retryable failure (rate limit, overload, 5xx, dropped connection).
    ModelRetry {
        /// Model.
        model: String,
        /// Which retry (1 = the first).
        attempt: u32,
        /// Wait before the retry.
        wait_ms: u64,
        /// What failed.
        error: String,
    },

    /// The files one agent run read and changed (the seed's `FileTrackingBlock`), appended when the run
    /// ends. Reset per run.
    FileTracking {
        /// Seq of the run's last `Text` event, which this report belongs to, if the run wrote text.
        text_seq: Option<u64>,
        /// Files created, modified or deleted.
        file_changes: Vec<FileChange>,
        /// Files read.
        read_files: Vec<FileRead>,
    },

    // ---- system and chat ----
    /// A model-written one-line summary of an earlier event (optional; see `ORCH_SUMMARY_MODEL`).
    /// Until one arrives, and if none ever does, [`Event::summary`] is the event's summary.
    SummaryUpdated {
        /// Seq of the summarised event.
        target_seq: u64,
        /// The summary.
        summary: String,
    },
    /// A system log line.
    SystemLog {
        /// Level.
        level: LogLevel,
        /// Message.
        message: String,
        /// Metadata.
        #[serde(default)]
        metadata: Value,
    },
    /// An orchestrator chat message.
    ChatMessage {
        /// The message.
        message: Box<ChatMessage>,
    },

    // ---- workflows ----
    /// A workflow run changed; the record as it is now (the record's `workflow_id`).
    WorkflowUpdated {
        /// The whole record after the change.
        workflow: Box<WorkflowRecord>,
    },
    /// A workflow step started (keys: the workflow, the step, and the step's agent).
    StepStart {
        /// The step (also the record's `step` key).
        step_name: String,
        /// Its prompt (after templates and slash-command expansion).
        prompt: String,
        /// Its model, as the agent runs it.
        model: String,
        /// Attempt, from 1 (a step with retries may run again).
        attempt: u32,
    },
    /// A workflow step ended.
    StepEnd {
        /// The step (also the record's `step` key).
        step_name: String,
        /// How it ended.
        status: StepStatus,
        /// Wall time of the step (0 when skipped).
        duration_ms: u64,
        /// What the step produced or why it failed: its outputs, `error`, `reason` (skipped), …
        #[serde(default)]
        payload: Value,
    },

    // ---- task graphs ----
    /// A plan version was written or changed (created, revised, approved, superseded); the whole
    /// version as it is now.
    PlanUpdated {
        /// The plan version after the change.
        plan: Box<Plan>,
    },
    /// A task graph was made or changed; the whole record as it is now.
    GraphUpdated {
        /// The graph after the change.
        graph: Box<TaskGraph>,
    },
    /// A task of a graph was added or changed; the whole task as it is now.
    TaskUpdated {
        /// The task after the change.
        task: Box<Task>,
    },

    // ---- read side ----
    /// A stored event that could not be decoded (its JSON is damaged, or too deeply nested to read back).
    /// Stores return this instead of failing the whole read, so one bad row never stops a reader of the
    /// log; the record keeps its seq, time and keys.
    Undecodable {
        /// The `type` the event was stored with.
        stored_type: String,
        /// Why it could not be decoded.
        error: String,
    },
    /// An event of a `type` this build does not know (appended by a newer orch). Its fields are kept and
    /// it serializes back to the JSON it was read from.
    #[serde(skip)]
    Unknown(UnknownEvent),
}

/// An event of a `type` this build does not know: its type and its other fields, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent {
    kind: String,
    fields: Map<String, Value>,
}

impl UnknownEvent {
    /// An event of type `kind` with these fields (a `type` among them is ignored). `kind` should not be a
    /// type this build knows: such an event is read back as that type, or as [`Event::Undecodable`].
    pub fn new(kind: impl Into<String>, mut fields: Map<String, Value>) -> Self {
        fields.remove(TYPE_TAG);
        Self { kind: kind.into(), fields }
    }

    /// Its `type`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Its fields other than `type` (for an event read from a record: other than the record's keys too).
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The event as JSON, `type` included.
    pub fn to_value(&self) -> Value {
        let mut m = self.fields.clone();
        m.insert(TYPE_TAG.into(), Value::String(self.kind.clone()));
        Value::Object(m)
    }
}

impl Serialize for UnknownEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.fields.len() + 1))?;
        m.serialize_entry(TYPE_TAG, &self.kind)?;
        for (k, v) in &self.fields {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Unknown(u) => u.serialize(s),
            // The derived serialization (an inherent function, see the enum's attributes).
            known => Event::serialize(known, s),
        }
    }
}

/// Coarse grouping of events, used for filtering (the seed's `event_category` plus ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventCategory {
    /// Agent lifecycle.
    Agent,
    /// Hook events.
    Hook,
    /// Response blocks.
    Response,
    /// System logs and errors.
    System,
    /// Orchestrator chat.
    Chat,
    /// Workflow runs and their steps.
    Workflow,
    /// Plans, task graphs and their tasks.
    Graph,
}

impl EventCategory {
    /// The category as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Hook => "hook",
            Self::Response => "response",
            Self::System => "system",
            Self::Chat => "chat",
            Self::Workflow => "workflow",
            Self::Graph => "graph",
        }
    }

    /// Parses a stored category.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agent" => Self::Agent,
            "hook" => Self::Hook,
            "response" => Self::Response,
            "system" => Self::System,
            "chat" => Self::Chat,
            "workflow" => Self::Workflow,
            "graph" => Self::Graph,
            _ => return None,
        })
    }
}

impl Event {
    /// Every `type` this build knows, in declaration order (an [`Event::Unknown`] has any other).
    pub const KINDS: &'static [&'static str] = &[
        "AgentCreated",
        "AgentStatusChanged",
        "AgentCostsUpdated",
        "AgentDeleted",
        "InterruptRequested",
        "OrchestratorCreated",
        "OrchestratorCostsUpdated",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
        "SubagentStart",
        "SubagentStop",
        "PreCompact",
        "Compacted",
        "HookInvoked",
        "ApprovalRequested",
        "ApprovalResolved",
        "Text",
        "Thinking",
        "ToolUse",
        "ToolResult",
        "ToolRefused",
        "Result",
        "ModelError",
        "ModelRetry",
        "FileTracking",
        "SummaryUpdated",
        "SystemLog",
        "ChatMessage",
        "WorkflowUpdated",
        "StepStart",
        "StepEnd",
        "PlanUpdated",
        "GraphUpdated",
        "TaskUpdated",
        "Undecodable",
    ];

    /// The `type` tag of this event (`PreToolUse`, `Text`, …; for [`Event::Unknown`], the type it was
    /// stored with).
    pub fn kind(&self) -> &str {
        match self {
            Self::AgentCreated { .. } => "AgentCreated",
            Self::AgentStatusChanged { .. } => "AgentStatusChanged",
            Self::AgentCostsUpdated { .. } => "AgentCostsUpdated",
            Self::AgentDeleted { .. } => "AgentDeleted",
            Self::InterruptRequested { .. } => "InterruptRequested",
            Self::OrchestratorCreated { .. } => "OrchestratorCreated",
            Self::OrchestratorCostsUpdated { .. } => "OrchestratorCostsUpdated",
            Self::FileTracking { .. } => "FileTracking",
            Self::SummaryUpdated { .. } => "SummaryUpdated",
            Self::UserPromptSubmit { .. } => "UserPromptSubmit",
            Self::PreToolUse { .. } => "PreToolUse",
            Self::PostToolUse { .. } => "PostToolUse",
            Self::Stop { .. } => "Stop",
            Self::SubagentStart { .. } => "SubagentStart",
            Self::SubagentStop { .. } => "SubagentStop",
            Self::PreCompact { .. } => "PreCompact",
            Self::Compacted { .. } => "Compacted",
            Self::HookInvoked { .. } => "HookInvoked",
            Self::ApprovalRequested { .. } => "ApprovalRequested",
            Self::ApprovalResolved { .. } => "ApprovalResolved",
            Self::Text { .. } => "Text",
            Self::Thinking { .. } => "Thinking",
            Self::ToolUse { .. } => "ToolUse",
            Self::ToolResult { .. } => "ToolResult",
            Self::ToolRefused { .. } => "ToolRefused",
            Self::Result { .. } => "Result",
            Self::ModelError { .. } => "ModelError",
            Self::ModelRetry { .. } => "ModelRetry",
            Self::SystemLog { .. } => "SystemLog",
            Self::ChatMessage { .. } => "ChatMessage",
            Self::WorkflowUpdated { .. } => "WorkflowUpdated",
            Self::StepStart { .. } => "StepStart",
            Self::StepEnd { .. } => "StepEnd",
            Self::PlanUpdated { .. } => "PlanUpdated",
            Self::GraphUpdated { .. } => "GraphUpdated",
            Self::TaskUpdated { .. } => "TaskUpdated",
            Self::Undecodable { .. } => "Undecodable",
            Self::Unknown(u) => u.kind(),
        }
    }

    /// The category of this event.
    pub fn category(&self) -> EventCategory {
        match self {
            Self::AgentCreated { .. }
            | Self::AgentStatusChanged { .. }
            | Self::AgentCostsUpdated { .. }
            | Self::AgentDeleted { .. }
            | Self::InterruptRequested { .. }
            | Self::OrchestratorCreated { .. }
            | Self::OrchestratorCostsUpdated { .. } => EventCategory::Agent,
            Self::UserPromptSubmit { .. }
            | Self::PreToolUse { .. }
            | Self::PostToolUse { .. }
            | Self::Stop { .. }
            | Self::SubagentStart { .. }
            | Self::SubagentStop { .. }
            | Self::PreCompact { .. }
            | Self::Compacted { .. }
            | Self::HookInvoked { .. }
            | Self::ApprovalRequested { .. }
            | Self::ApprovalResolved { .. } => EventCategory::Hook,
            Self::Text { .. }
            | Self::Thinking { .. }
            | Self::ToolUse { .. }
            | Self::ToolResult { .. }
            | Self::ToolRefused { .. }
            | Self::FileTracking { .. }
            | Self::Result { .. } => EventCategory::Response,
            Self::ModelError { .. }
            | Self::ModelRetry { .. }
            | Self::SystemLog { .. }
            | Self::SummaryUpdated { .. }
            | Self::Undecodable { .. }
            | Self::Unknown(_) => EventCategory::System,
            Self::ChatMessage { .. } => EventCategory::Chat,
            Self::WorkflowUpdated { .. } | Self::StepStart { .. } | Self::StepEnd { .. } => EventCategory::Workflow,
            Self::PlanUpdated { .. } | Self::GraphUpdated { .. } | Self::TaskUpdated { .. } => EventCategory::Graph,
        }
    }

    /// A short, deterministic one-line summary (e.g. `Write: src/main.rs`).
    pub fn summary(&self) -> String {
        fn clip(s: &str, n: usize) -> String {
            crate::text::clip_chars(s, n, "…").replace('\n', " ")
        }
        fn tool_line(name: &str, input: &Value) -> String {
            let arg =
                ["file_path", "command", "pattern", "path"].iter().find_map(|k| input.get(*k).and_then(Value::as_str));
            match arg {
                Some(a) => format!("{name}: {}", clip(a, 60)),
                None => name.to_string(),
            }
        }
        match self {
            Self::AgentCreated { agent } => format!("Agent created: {}", agent.name),
            Self::AgentStatusChanged { old_status, new_status, .. } => format!("Status {old_status} → {new_status}"),
            Self::AgentCostsUpdated { cost_usd, usage, .. } => {
                format!("+{} in / +{} out tokens, +${cost_usd:.4}", usage.input_tokens, usage.output_tokens)
            }
            Self::AgentDeleted { .. } => "Agent deleted".into(),
            Self::InterruptRequested { requested_by } => format!("Interrupt requested by {requested_by}"),
            Self::OrchestratorCreated { .. } => "Orchestrator created".into(),
            Self::OrchestratorCostsUpdated { usage, cost_usd, .. } => format!(
                "Orchestrator +{} in / +{} out tokens, +${cost_usd:.4}",
                usage.input_tokens, usage.output_tokens
            ),
            Self::FileTracking { file_changes, read_files, .. } => {
                format!("📂 {} modified, {} read", file_changes.len(), read_files.len())
            }
            Self::SummaryUpdated { summary, .. } => clip(summary, 80),
            Self::UserPromptSubmit { prompt, .. } => format!("User: {}", clip(prompt, 50)),
            Self::PreToolUse { tool_name, tool_input, .. } => {
                format!("Using tool: {}", tool_line(tool_name, tool_input))
            }
            Self::PostToolUse { tool_name, is_error, .. } => {
                if *is_error {
                    format!("Tool failed: {tool_name}")
                } else {
                    format!("Completed tool: {tool_name}")
                }
            }
            Self::Stop { reason, num_turns, .. } => format!("Stopped ({reason}) after {num_turns} turns"),
            Self::SubagentStart { subagent_type, description, .. } => {
                format!("Subagent {subagent_type}: {}", clip(description, 60))
            }
            Self::SubagentStop { reason, cost_usd, .. } => match reason {
                Some(r) => format!("Subagent completed ({r}), ${cost_usd:.4}"),
                None => "Subagent completed".into(),
            },
            Self::PreCompact { tokens_before } => format!("Context compaction: {tokens_before} tokens"),
            Self::Compacted { trigger, tokens_before, tokens_after, messages_replaced, .. } => format!(
                "Context compacted ({trigger}): {messages_replaced} messages summarized, {tokens_before} → ~{tokens_after} tokens"
            ),
            Self::HookInvoked { hook_event, hook_name, decision, .. } => {
                format!("Hook {hook_name} ({hook_event}): {decision}")
            }
            Self::ApprovalRequested { tool_name, tool_input, question, .. } => {
                format!("Waiting for a person: {} — {}", tool_line(tool_name, tool_input), clip(question, 60))
            }
            Self::ApprovalResolved { decision, text, by, .. } => match text {
                Some(t) => format!("Tool call {} by {by}: {}", decision.past(), clip(t, 60)),
                None => format!("Tool call {} by {by}", decision.past()),
            },
            Self::Text { text } => clip(text, 80),
            Self::Thinking { .. } => "[Agent is thinking]".into(),
            Self::ToolUse { tool_name, tool_input, .. } => tool_line(tool_name, tool_input),
            Self::ToolResult { tool_name, content, is_error, .. } => {
                format!("{}{tool_name} → {}", if *is_error { "error: " } else { "" }, clip(content, 60))
            }
            Self::ToolRefused { tool_name, reason, .. } => format!("Refused {tool_name}: {}", clip(reason, 60)),
            Self::Result { stop_reason, num_turns, cost_usd, is_error, .. } => format!(
                "{} ({stop_reason}) after {num_turns} turns, ${cost_usd:.4}",
                if *is_error { "Failed" } else { "Done" }
            ),
            Self::ModelError { message, .. } => format!("Model error: {}", clip(message, 60)),
            Self::ModelRetry { attempt, wait_ms, error, .. } => {
                format!("Retry {attempt} in {wait_ms} ms after: {}", clip(error, 60))
            }
            Self::SystemLog { level, message, .. } => format!("[{}] {}", level.as_str(), clip(message, 80)),
            Self::ChatMessage { message } => clip(&message.message, 80),
            Self::WorkflowUpdated { workflow } => match &workflow.current_step {
                Some(step) => format!("Workflow {} {}: step {step}", workflow.name, workflow.status.as_str()),
                None => format!("Workflow {} {}", workflow.name, workflow.status.as_str()),
            },
            Self::StepStart { step_name: step, attempt, .. } if *attempt > 1 => {
                format!("Starting {step} step (attempt {attempt})")
            }
            Self::StepStart { step_name: step, .. } => format!("Starting {step} step"),
            Self::StepEnd { step_name: step, status, duration_ms, .. } => {
                format!("{step} {} in {:.1}s", status.as_str(), *duration_ms as f64 / 1000.0)
            }
            Self::PlanUpdated { plan } => {
                format!("Plan {} v{} {}: {} tasks", plan.id, plan.version, plan.status.as_str(), plan.tasks.len())
            }
            Self::GraphUpdated { graph } => format!(
                "Graph {} {}: {} tasks in {} waves",
                clip(&graph.name, 40),
                graph.status.as_str(),
                graph.total_tasks,
                graph.waves
            ),
            Self::TaskUpdated { task } if task.attempt > 1 => format!(
                "Task {} {} (attempt {}): {}",
                clip(&task.key, 20),
                task.status.as_str(),
                task.attempt,
                clip(&task.title, 50)
            ),
            Self::TaskUpdated { task } => {
                format!("Task {} {}: {}", clip(&task.key, 20), task.status.as_str(), clip(&task.title, 50))
            }
            Self::Undecodable { stored_type, error } => {
                format!("Undecodable {stored_type} event: {}", clip(error, 60))
            }
            Self::Unknown(u) => format!("{} (an event type this orch does not know)", clip(u.kind(), 40)),
        }
    }
}

/// Keys that locate an event: which agent, orchestrator, workflow, step and run it belongs to.
///
/// They are flattened beside the event's own fields in JSON, so no event variant has fields of these names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventKeys {
    /// Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Id>,
    /// Orchestrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_id: Option<Id>,
    /// Workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<Id>,
    /// Workflow step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Run slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_slug: Option<String>,
}

/// An event not yet appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Location keys.
    #[serde(flatten)]
    pub keys: EventKeys,
    /// The event.
    pub event: Event,
}

impl NewEvent {
    /// An event with the given keys.
    pub fn new(keys: EventKeys, event: Event) -> Self {
        Self { keys, event }
    }
}

/// An appended event: its global `seq`, time, keys and payload.
///
/// Serialized flat: `{"seq": 7, "timestamp": "…", "agent_id": "…", "type": "Text", "text": "…"}` (read
/// back by a hand-written `Deserialize`, module `event_de`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Global, gap-free, increasing sequence number (from 1).
    pub seq: u64,
    /// When it was appended.
    pub timestamp: Timestamp,
    /// Location keys.
    #[serde(flatten)]
    pub keys: EventKeys,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}
