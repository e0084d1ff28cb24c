"""A Python class per event type of the log, generated from the Rust wire type (`pub enum Event` in
orch-core/src/wire/event.rs) by orch-py/scripts/gen_events.py: do not edit by hand.

``event.typed()`` (or ``typed(event)``) gives an event as its class: the record's fields (``seq``,
``type``, ``ts``, ``agent_id``, …, ``payload``) and the type's own, typed::

    for ev in engine.sync.events():
        match ev.typed():
            case orch.events.ToolUse(tool_name=name, tool_input=args):
                print(name, args)
            case orch.events.UnknownEvent(type=kind):   # written by a newer orch
                print("unknown", kind)

A type this package does not know (written by a newer orch) comes through as an ``UnknownEvent``,
its fields in ``payload``. A type's field named like one of the record's is the attribute with a
trailing ``_`` (``StepEnd.payload_``, ``Compacted.summary_``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Dict, List, Optional, Type

if TYPE_CHECKING:
    from ._orch import Event


@dataclass(frozen=True)
class TypedEvent:
    """An event of the log as a class: the record's fields; a subclass per type adds the type's own."""

    TYPE: ClassVar[str] = ""
    FIELDS: ClassVar[Dict[str, str]] = {}
    """The type's own fields: attribute name → payload key."""

    seq: int
    type: str
    category: str
    agent_id: Optional[str]
    orchestrator_id: Optional[str]
    workflow_id: Optional[str]
    step: Optional[str]
    task_slug: Optional[str]
    ts: datetime.datetime
    summary: str
    payload: Dict[str, Any]


@dataclass(frozen=True)
class UnknownEvent(TypedEvent):
    """An event of a type this package does not know (written by a newer orch): its fields are in
    ``payload``."""


@dataclass(frozen=True)
class AgentCreated(TypedEvent):
    """An agent was created."""

    TYPE: ClassVar[str] = "AgentCreated"
    FIELDS: ClassVar[Dict[str, str]] = {"agent": "agent"}
    agent: Dict[str, Any] = field(default_factory=dict)
    """The agent as created."""


@dataclass(frozen=True)
class AgentStatusChanged(TypedEvent):
    """An agent's status changed (the agent is the record's `agent_id`)."""

    TYPE: ClassVar[str] = "AgentStatusChanged"
    FIELDS: ClassVar[Dict[str, str]] = {"old_status": "old_status", "new_status": "new_status"}
    old_status: str = ""
    """Before."""
    new_status: str = ""
    """After."""


@dataclass(frozen=True)
class AgentCostsUpdated(TypedEvent):
    """Usage and cost were added to an agent after a model call (the agent is the record's `agent_id`)."""

    TYPE: ClassVar[str] = "AgentCostsUpdated"
    FIELDS: ClassVar[Dict[str, str]] = {"model": "model", "usage": "usage", "cost_usd": "cost_usd", "total_usage": "total_usage", "total_cost_usd": "total_cost_usd", "context_used": "context_used", "context_window": "context_window"}
    model: str = ""
    """Model that was called."""
    usage: Dict[str, Any] = field(default_factory=dict)
    """Usage of this call."""
    cost_usd: float = 0.0
    """Cost of this call in USD."""
    total_usage: Dict[str, Any] = field(default_factory=dict)
    """The agent's usage after the increment."""
    total_cost_usd: float = 0.0
    """The agent's cost after the increment."""
    context_used: Optional[int] = None
    """Tokens of context this call used (its input, cached or not, and its output), when known."""
    context_window: Optional[int] = None
    """The model's context window, when known."""


@dataclass(frozen=True)
class AgentDeleted(TypedEvent):
    """An agent was deleted (archived); the agent is the record's `agent_id`."""

    TYPE: ClassVar[str] = "AgentDeleted"
    FIELDS: ClassVar[Dict[str, str]] = {}


@dataclass(frozen=True)
class InterruptRequested(TypedEvent):
    """Someone asked for the agent's running turn to stop (the agent is the record's `agent_id`). The process running the turn follows the log and interrupts it, so this works across processes."""

    TYPE: ClassVar[str] = "InterruptRequested"
    FIELDS: ClassVar[Dict[str, str]] = {"requested_by": "requested_by"}
    requested_by: str = ""
    """Who asked (`cli`, `orchestrator`, `http`, …)."""


@dataclass(frozen=True)
class OrchestratorCreated(TypedEvent):
    """An orchestrator was created (its id is the record's `orchestrator_id`)."""

    TYPE: ClassVar[str] = "OrchestratorCreated"
    FIELDS: ClassVar[Dict[str, str]] = {"orchestrator": "orchestrator"}
    orchestrator: Dict[str, Any] = field(default_factory=dict)
    """The orchestrator as created."""


@dataclass(frozen=True)
class OrchestratorCostsUpdated(TypedEvent):
    """Usage and cost were added to an orchestrator after one of its turns (the seed's `orchestrator_updated`)."""

    TYPE: ClassVar[str] = "OrchestratorCostsUpdated"
    FIELDS: ClassVar[Dict[str, str]] = {"usage": "usage", "cost_usd": "cost_usd", "total_usage": "total_usage", "total_cost_usd": "total_cost_usd"}
    usage: Dict[str, Any] = field(default_factory=dict)
    """Usage of the turn."""
    cost_usd: float = 0.0
    """Cost of the turn in USD."""
    total_usage: Dict[str, Any] = field(default_factory=dict)
    """The orchestrator's usage after the increment."""
    total_cost_usd: float = 0.0
    """The orchestrator's cost after the increment."""


@dataclass(frozen=True)
class UserPromptSubmit(TypedEvent):
    """A prompt was submitted to an agent."""

    TYPE: ClassVar[str] = "UserPromptSubmit"
    FIELDS: ClassVar[Dict[str, str]] = {"prompt": "prompt", "prompt_length": "prompt_length"}
    prompt: str = ""
    """The prompt (first 1000 chars)."""
    prompt_length: int = 0
    """Full length in chars."""


@dataclass(frozen=True)
class PreToolUse(TypedEvent):
    """A tool is about to run."""

    TYPE: ClassVar[str] = "PreToolUse"
    FIELDS: ClassVar[Dict[str, str]] = {"tool_name": "tool_name", "tool_input": "tool_input", "tool_use_id": "tool_use_id"}
    tool_name: str = ""
    """Tool."""
    tool_input: Any = None
    """Input."""
    tool_use_id: str = ""
    """Call id."""


@dataclass(frozen=True)
class PostToolUse(TypedEvent):
    """A tool ran."""

    TYPE: ClassVar[str] = "PostToolUse"
    FIELDS: ClassVar[Dict[str, str]] = {"tool_name": "tool_name", "result": "result", "is_error": "is_error", "tool_use_id": "tool_use_id"}
    tool_name: str = ""
    """Tool."""
    result: Optional[str] = None
    """Result text (first 500 chars)."""
    is_error: bool = False
    """Whether it failed."""
    tool_use_id: str = ""
    """Call id."""


@dataclass(frozen=True)
class Stop(TypedEvent):
    """A turn ended."""

    TYPE: ClassVar[str] = "Stop"
    FIELDS: ClassVar[Dict[str, str]] = {"reason": "reason", "num_turns": "num_turns", "duration_ms": "duration_ms"}
    reason: str = ""
    """`end_turn`, `max_turns`, `interrupted`, `hook: …`, `error`, …"""
    num_turns: int = 0
    """Model calls in the turn."""
    duration_ms: int = 0
    """Wall time."""


@dataclass(frozen=True)
class SubagentStart(TypedEvent):
    """A subagent started: a `Task` tool call of the record's agent runs another agent (recorded under the parent, with the parent's run)."""

    TYPE: ClassVar[str] = "SubagentStart"
    FIELDS: ClassVar[Dict[str, str]] = {"subagent_id": "subagent_id", "subagent_type": "subagent_type", "description": "description", "tool_use_id": "tool_use_id"}
    subagent_id: str = ""
    """The subagent (an agent id; for Claude Code, the `Task` call id)."""
    subagent_type: str = ""
    """Its template (`subagent_type`)."""
    description: str = ""
    """The task's short description."""
    tool_use_id: str = ""
    """The parent's `Task` call."""


@dataclass(frozen=True)
class SubagentStop(TypedEvent):
    """A subagent finished."""

    TYPE: ClassVar[str] = "SubagentStop"
    FIELDS: ClassVar[Dict[str, str]] = {"subagent_id": "subagent_id", "tool_use_id": "tool_use_id", "reason": "reason", "cost_usd": "cost_usd"}
    subagent_id: str = ""
    """The subagent."""
    tool_use_id: Optional[str] = None
    """The parent's `Task` call (absent in logs of older builds)."""
    reason: Optional[str] = None
    """How its run ended (absent in logs of older builds)."""
    cost_usd: float = 0.0
    """What it cost, in USD (rolled up into the parent's cost)."""


@dataclass(frozen=True)
class PreCompact(TypedEvent):
    """The context is about to be compacted."""

    TYPE: ClassVar[str] = "PreCompact"
    FIELDS: ClassVar[Dict[str, str]] = {"tokens_before": "tokens_before"}
    tokens_before: int = 0
    """Tokens before compaction."""


@dataclass(frozen=True)
class Compacted(TypedEvent):
    """An agent's conversation was compacted: its older messages were replaced by a summary. The replaced messages are kept here, verbatim, so the log still holds the whole history."""

    TYPE: ClassVar[str] = "Compacted"
    FIELDS: ClassVar[Dict[str, str]] = {"trigger": "trigger", "tokens_before": "tokens_before", "tokens_after": "tokens_after", "messages_replaced": "messages_replaced", "messages_kept": "messages_kept", "summary_": "summary", "replaced": "replaced"}
    trigger: str = ""
    """What started it."""
    tokens_before: int = 0
    """The context before (tokens, as last measured or estimated)."""
    tokens_after: int = 0
    """The context after (estimated)."""
    messages_replaced: int = 0
    """Messages replaced by the summary."""
    messages_kept: int = 0
    """Messages kept verbatim after the summary."""
    summary_: str = ""
    """The summary that replaced them."""
    replaced: List[Dict[str, Any]] = field(default_factory=list)
    """The replaced messages (empty where the executor does not see them, e.g. Claude Code)."""


@dataclass(frozen=True)
class HookInvoked(TypedEvent):
    """A hook was invoked and decided."""

    TYPE: ClassVar[str] = "HookInvoked"
    FIELDS: ClassVar[Dict[str, str]] = {"hook_event": "hook_event", "hook_name": "hook_name", "tool_name": "tool_name", "decision": "decision", "detail": "detail"}
    hook_event: str = ""
    """Hook event (`PreToolUse`, …)."""
    hook_name: str = ""
    """Hook name."""
    tool_name: Optional[str] = None
    """The tool it matched, if any."""
    decision: str = ""
    """Its decision (`continue`, `deny`, …)."""
    detail: Optional[str] = None
    """Reason, context or error text."""


@dataclass(frozen=True)
class ApprovalRequested(TypedEvent):
    """A hook or a permission rule asked a person before a tool runs: the run parked (the agent is the record's `agent_id`, its status `waiting`) until an [`Event::ApprovalResolved`] of this approval."""

    TYPE: ClassVar[str] = "ApprovalRequested"
    FIELDS: ClassVar[Dict[str, str]] = {"approval": "approval", "tool_use_id": "tool_use_id", "tool_name": "tool_name", "tool_input": "tool_input", "question": "question"}
    approval: str = ""
    """The approval's id (what `orch approve` and `/api/approvals/{id}` take)."""
    tool_use_id: str = ""
    """The tool call."""
    tool_name: str = ""
    """The tool."""
    tool_input: Any = None
    """Its input, as it would run."""
    question: str = ""
    """What the person is asked."""


@dataclass(frozen=True)
class ApprovalResolved(TypedEvent):
    """A person approved, denied or answered a parked tool call; the run continues from it."""

    TYPE: ClassVar[str] = "ApprovalResolved"
    FIELDS: ClassVar[Dict[str, str]] = {"approval": "approval", "decision": "decision", "text": "text", "by": "by"}
    approval: str = ""
    """The approval."""
    decision: str = ""
    """`approve`, `deny` or `answer`."""
    text: Optional[str] = None
    """The reason of a denial, or the answer."""
    by: str = ""
    """Who resolved it (`api`, `cli`, …)."""


@dataclass(frozen=True)
class Text(TypedEvent):
    """Text from the model."""

    TYPE: ClassVar[str] = "Text"
    FIELDS: ClassVar[Dict[str, str]] = {"text": "text"}
    text: str = ""
    """The text."""


@dataclass(frozen=True)
class Thinking(TypedEvent):
    """Thinking from the model."""

    TYPE: ClassVar[str] = "Thinking"
    FIELDS: ClassVar[Dict[str, str]] = {"thinking": "thinking", "signature": "signature"}
    thinking: str = ""
    """The thinking."""
    signature: Optional[str] = None
    """Its signature."""


@dataclass(frozen=True)
class ToolUse(TypedEvent):
    """The model asked for a tool call."""

    TYPE: ClassVar[str] = "ToolUse"
    FIELDS: ClassVar[Dict[str, str]] = {"tool_name": "tool_name", "tool_input": "tool_input", "tool_use_id": "tool_use_id"}
    tool_name: str = ""
    """Tool."""
    tool_input: Any = None
    """Input."""
    tool_use_id: str = ""
    """Call id."""


@dataclass(frozen=True)
class ToolResult(TypedEvent):
    """A tool call's result as given to the model."""

    TYPE: ClassVar[str] = "ToolResult"
    FIELDS: ClassVar[Dict[str, str]] = {"tool_use_id": "tool_use_id", "tool_name": "tool_name", "content": "content", "is_error": "is_error"}
    tool_use_id: str = ""
    """Call id."""
    tool_name: str = ""
    """Tool."""
    content: str = ""
    """Content."""
    is_error: bool = False
    """Whether it is an error."""


@dataclass(frozen=True)
class ToolRefused(TypedEvent):
    """A tool call was refused (sandbox, unknown tool, bad input)."""

    TYPE: ClassVar[str] = "ToolRefused"
    FIELDS: ClassVar[Dict[str, str]] = {"tool_name": "tool_name", "tool_use_id": "tool_use_id", "reason": "reason"}
    tool_name: str = ""
    """Tool."""
    tool_use_id: str = ""
    """Call id."""
    reason: str = ""
    """Why."""


@dataclass(frozen=True)
class Result(TypedEvent):
    """The final result of a turn."""

    TYPE: ClassVar[str] = "Result"
    FIELDS: ClassVar[Dict[str, str]] = {"is_error": "is_error", "stop_reason": "stop_reason", "num_turns": "num_turns", "duration_ms": "duration_ms", "usage": "usage", "cost_usd": "cost_usd", "result": "result"}
    is_error: bool = False
    """Whether the turn failed."""
    stop_reason: str = ""
    """Why it ended (`end_turn`, `max_turns`, …)."""
    num_turns: int = 0
    """Model calls made."""
    duration_ms: int = 0
    """Wall time."""
    usage: Dict[str, Any] = field(default_factory=dict)
    """Usage of the turn."""
    cost_usd: float = 0.0
    """Cost of the turn."""
    result: Optional[str] = None
    """Final text, or the error."""


@dataclass(frozen=True)
class ModelError(TypedEvent):
    """A model call failed (and may be retried)."""

    TYPE: ClassVar[str] = "ModelError"
    FIELDS: ClassVar[Dict[str, str]] = {"model": "model", "message": "message", "retryable": "retryable"}
    model: str = ""
    """Model."""
    message: str = ""
    """Error text."""
    retryable: bool = False
    """Whether a retry may help."""


@dataclass(frozen=True)
class ModelRetry(TypedEvent):
    """A model call is retried after a retryable failure (rate limit, overload, 5xx, dropped connection)."""

    TYPE: ClassVar[str] = "ModelRetry"
    FIELDS: ClassVar[Dict[str, str]] = {"model": "model", "attempt": "attempt", "wait_ms": "wait_ms", "error": "error"}
    model: str = ""
    """Model."""
    attempt: int = 0
    """Which retry (1 = the first)."""
    wait_ms: int = 0
    """Wait before the retry."""
    error: str = ""
    """What failed."""


@dataclass(frozen=True)
class FileTracking(TypedEvent):
    """The files one agent run read and changed (the seed's `FileTrackingBlock`), appended when the run ends. Reset per run."""

    TYPE: ClassVar[str] = "FileTracking"
    FIELDS: ClassVar[Dict[str, str]] = {"text_seq": "text_seq", "file_changes": "file_changes", "read_files": "read_files"}
    text_seq: Optional[int] = None
    """Seq of the run's last `Text` event, which this report belongs to, if the run wrote text."""
    file_changes: List[Dict[str, Any]] = field(default_factory=list)
    """Files created, modified or deleted."""
    read_files: List[Dict[str, Any]] = field(default_factory=list)
    """Files read."""


@dataclass(frozen=True)
class SummaryUpdated(TypedEvent):
    """A model-written one-line summary of an earlier event (optional; see `ORCH_SUMMARY_MODEL`). Until one arrives, and if none ever does, [`Event::summary`] is the event's summary."""

    TYPE: ClassVar[str] = "SummaryUpdated"
    FIELDS: ClassVar[Dict[str, str]] = {"target_seq": "target_seq", "summary_": "summary"}
    target_seq: int = 0
    """Seq of the summarised event."""
    summary_: str = ""
    """The summary."""


@dataclass(frozen=True)
class SystemLog(TypedEvent):
    """A system log line."""

    TYPE: ClassVar[str] = "SystemLog"
    FIELDS: ClassVar[Dict[str, str]] = {"level": "level", "message": "message", "metadata": "metadata"}
    level: str = ""
    """Level."""
    message: str = ""
    """Message."""
    metadata: Any = None
    """Metadata."""


@dataclass(frozen=True)
class ChatMessage(TypedEvent):
    """An orchestrator chat message."""

    TYPE: ClassVar[str] = "ChatMessage"
    FIELDS: ClassVar[Dict[str, str]] = {"message": "message"}
    message: Dict[str, Any] = field(default_factory=dict)
    """The message."""


@dataclass(frozen=True)
class WorkflowUpdated(TypedEvent):
    """A workflow run changed; the record as it is now (the record's `workflow_id`)."""

    TYPE: ClassVar[str] = "WorkflowUpdated"
    FIELDS: ClassVar[Dict[str, str]] = {"workflow": "workflow"}
    workflow: Dict[str, Any] = field(default_factory=dict)
    """The whole record after the change."""


@dataclass(frozen=True)
class StepStart(TypedEvent):
    """A workflow step started (keys: the workflow, the step, and the step's agent)."""

    TYPE: ClassVar[str] = "StepStart"
    FIELDS: ClassVar[Dict[str, str]] = {"step_name": "step_name", "prompt": "prompt", "model": "model", "attempt": "attempt"}
    step_name: str = ""
    """The step (also the record's `step` key)."""
    prompt: str = ""
    """Its prompt (after templates and slash-command expansion)."""
    model: str = ""
    """Its model, as the agent runs it."""
    attempt: int = 0
    """Attempt, from 1 (a step with retries may run again)."""


@dataclass(frozen=True)
class StepEnd(TypedEvent):
    """A workflow step ended."""

    TYPE: ClassVar[str] = "StepEnd"
    FIELDS: ClassVar[Dict[str, str]] = {"step_name": "step_name", "status": "status", "duration_ms": "duration_ms", "payload_": "payload"}
    step_name: str = ""
    """The step (also the record's `step` key)."""
    status: str = ""
    """How it ended."""
    duration_ms: int = 0
    """Wall time of the step (0 when skipped)."""
    payload_: Any = None
    """What the step produced or why it failed: its outputs, `error`, `reason` (skipped), …"""


@dataclass(frozen=True)
class PlanUpdated(TypedEvent):
    """A plan version was written or changed (created, revised, approved, superseded); the whole version as it is now."""

    TYPE: ClassVar[str] = "PlanUpdated"
    FIELDS: ClassVar[Dict[str, str]] = {"plan": "plan"}
    plan: Dict[str, Any] = field(default_factory=dict)
    """The plan version after the change."""


@dataclass(frozen=True)
class GraphUpdated(TypedEvent):
    """A task graph was made or changed; the whole record as it is now."""

    TYPE: ClassVar[str] = "GraphUpdated"
    FIELDS: ClassVar[Dict[str, str]] = {"graph": "graph"}
    graph: Dict[str, Any] = field(default_factory=dict)
    """The graph after the change."""


@dataclass(frozen=True)
class TaskUpdated(TypedEvent):
    """A task of a graph was added or changed; the whole task as it is now."""

    TYPE: ClassVar[str] = "TaskUpdated"
    FIELDS: ClassVar[Dict[str, str]] = {"task": "task"}
    task: Dict[str, Any] = field(default_factory=dict)
    """The task after the change."""


@dataclass(frozen=True)
class Undecodable(TypedEvent):
    """A stored event that could not be decoded (its JSON is damaged, or too deeply nested to read back). Stores return this instead of failing the whole read, so one bad row never stops a reader of the log; the record keeps its seq, time and keys."""

    TYPE: ClassVar[str] = "Undecodable"
    FIELDS: ClassVar[Dict[str, str]] = {"stored_type": "stored_type", "error": "error"}
    stored_type: str = ""
    """The `type` the event was stored with."""
    error: str = ""
    """Why it could not be decoded."""


CLASSES: Dict[str, Type[TypedEvent]] = {
    "AgentCreated": AgentCreated,
    "AgentStatusChanged": AgentStatusChanged,
    "AgentCostsUpdated": AgentCostsUpdated,
    "AgentDeleted": AgentDeleted,
    "InterruptRequested": InterruptRequested,
    "OrchestratorCreated": OrchestratorCreated,
    "OrchestratorCostsUpdated": OrchestratorCostsUpdated,
    "UserPromptSubmit": UserPromptSubmit,
    "PreToolUse": PreToolUse,
    "PostToolUse": PostToolUse,
    "Stop": Stop,
    "SubagentStart": SubagentStart,
    "SubagentStop": SubagentStop,
    "PreCompact": PreCompact,
    "Compacted": Compacted,
    "HookInvoked": HookInvoked,
    "ApprovalRequested": ApprovalRequested,
    "ApprovalResolved": ApprovalResolved,
    "Text": Text,
    "Thinking": Thinking,
    "ToolUse": ToolUse,
    "ToolResult": ToolResult,
    "ToolRefused": ToolRefused,
    "Result": Result,
    "ModelError": ModelError,
    "ModelRetry": ModelRetry,
    "FileTracking": FileTracking,
    "SummaryUpdated": SummaryUpdated,
    "SystemLog": SystemLog,
    "ChatMessage": ChatMessage,
    "WorkflowUpdated": WorkflowUpdated,
    "StepStart": StepStart,
    "StepEnd": StepEnd,
    "PlanUpdated": PlanUpdated,
    "GraphUpdated": GraphUpdated,
    "TaskUpdated": TaskUpdated,
    "Undecodable": Undecodable,
}
"""The class of each event type this package knows."""


def typed(event: Event) -> TypedEvent:
    """``event`` as the class of its type (``UnknownEvent`` for a type this package does not know)."""
    cls = CLASSES.get(event.type, UnknownEvent)
    payload = event.payload
    own = {attr: payload[key] for attr, key in cls.FIELDS.items() if key in payload}
    return cls(
        seq=event.seq,
        type=event.type,
        category=event.category,
        agent_id=event.agent_id,
        orchestrator_id=event.orchestrator_id,
        workflow_id=event.workflow_id,
        step=event.step,
        task_slug=event.task_slug,
        ts=event.ts,
        summary=event.summary,
        payload=payload,
        **own,
    )


__all__ = [
    "CLASSES",
    "TypedEvent",
    "UnknownEvent",
    "typed",
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
]
