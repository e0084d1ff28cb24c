"""The seed's ``adw_modules.adw_agent_sdk`` on orch: ``query_to_completion`` and ``quick_prompt`` run real
agent runs on the engine (its model, tools, hooks and store), with the seed's types.

What differs from the seed's Claude Agent SDK wrapper, by design:

- A query runs on an agent of orch's store. After ``adw_database.create_agent(...)`` (the seed's step
  scaffolding), the next query of the same task (asyncio task or thread) runs on that agent, so the step's
  agent record carries the run; otherwise (``quick_prompt``, a script that creates no agent) a new agent
  ``query-<8 hex>`` is created for it. ``session_id`` is that agent's id: ``resume=session_id`` continues
  the conversation on the same agent.
- The run's records are the engine's: its ``Text``, ``ToolUse``, ``PreToolUse``, ``Stop``, ``Result`` …
  events. A script's hooks and handlers that log them again (``log_adw_event``) get the engine's event's
  id back instead of a second copy.
- Message handlers are called while the run goes on, as its events are committed (read back from the
  store, in order); hooks are called from the engine, and their ``HookResponse`` decides (deny, rewrite
  the input, stop).
- ``bypass_permissions``, ``setting_sources``, ``mcp_servers``, ``fork_session`` and ``max_tokens`` are
  accepted and ignored (the engine's own settings apply); a ``/command`` prompt expands from
  ``<cwd>/.claude/commands`` else orch's built-in ``plan``/``build``/``review``/``fix``.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

from .. import _orch
from . import _deferred, _step_agent
from . import engine as _engine


class ModelName(str, Enum):
    """The seed's model ids (on orch, a bare id runs on the engine's default provider)."""

    OPUS = "claude-opus-4-5-20251101"
    OPUS_4_5 = "claude-opus-4-5-20251101"
    SONNET = "claude-sonnet-4-5-20250929"
    HAIKU = "claude-haiku-4-5-20251001"


class SettingSource(str, Enum):
    """Where settings are read from (accepted; orch reads the working dir's own)."""

    USER = "user"
    PROJECT = "project"


class HookEventName(str, Enum):
    """The hook points."""

    PRE_TOOL_USE = "PreToolUse"
    POST_TOOL_USE = "PostToolUse"
    USER_PROMPT_SUBMIT = "UserPromptSubmit"
    STOP = "Stop"
    SUBAGENT_STOP = "SubagentStop"
    PRE_COMPACT = "PreCompact"


class PermissionDecision(str, Enum):
    """A PreToolUse hook's decision."""

    ALLOW = "allow"
    DENY = "deny"
    ASK = "ask"


class ResultSubtype(str, Enum):
    """How a query ended."""

    SUCCESS = "success"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class BuiltInTool(str, Enum):
    """The built-in tools' names."""

    READ = "Read"
    WRITE = "Write"
    EDIT = "Edit"
    BASH = "Bash"
    GLOB = "Glob"
    GREP = "Grep"
    TASK = "Task"
    TODO_WRITE = "TodoWrite"
    WEB_FETCH = "WebFetch"
    WEB_SEARCH = "WebSearch"
    SKILL = "Skill"


# ---- blocks and messages (the Claude Agent SDK's shapes) ----


@dataclass
class TextBlock:
    """Text from the model."""

    text: str


@dataclass
class ThinkingBlock:
    """Thinking from the model."""

    thinking: str
    signature: str = ""


@dataclass
class ToolUseBlock:
    """A tool call the model asked for."""

    id: str
    name: str
    input: Dict[str, Any]


@dataclass
class ToolResultBlock:
    """A tool's result as given to the model."""

    tool_use_id: str
    content: Optional[str] = None
    is_error: Optional[bool] = None


ContentBlock = Union[TextBlock, ThinkingBlock, ToolUseBlock, ToolResultBlock]


@dataclass
class TokenUsage:
    """Tokens and cost of a query."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    total_cost_usd: float = 0.0

    def model_dump(self) -> Dict[str, Any]:
        """As a dict (pydantic's name, which the seed's scripts call)."""
        return asdict(self)


@dataclass
class SystemMessage:
    """The run's start: ``subtype`` ``init`` with its session (agent) id."""

    subtype: str
    data: Dict[str, Any]


@dataclass
class AssistantMessage:
    """One model response: its blocks."""

    content: List[ContentBlock]
    model: str = ""


@dataclass
class UserMessage:
    """Tool results given back to the model."""

    content: List[ContentBlock]


@dataclass
class ResultMessage:
    """How the query ended."""

    subtype: ResultSubtype
    result: Optional[str]
    usage: TokenUsage
    session_id: str
    is_error: bool = False
    num_turns: int = 0
    duration_ms: int = 0
    total_cost_usd: float = 0.0


Message = Union[SystemMessage, AssistantMessage, UserMessage, ResultMessage]

# ---- hooks ----


@dataclass
class HookContext:
    """Passed to every hook (the SDK's; nothing in it on orch)."""

    signal: Optional[Any] = None


@dataclass
class HookInput:
    """What every hook gets."""

    hook_event_name: str
    session_id: str
    cwd: str
    transcript_path: str = ""
    raw: Dict[str, Any] = field(default_factory=dict)


@dataclass
class PreToolUseInput(HookInput):
    """A tool is about to run."""

    tool_name: str = ""
    tool_input: Dict[str, Any] = field(default_factory=dict)


@dataclass
class PostToolUseInput(HookInput):
    """A tool ran."""

    tool_name: str = ""
    tool_input: Dict[str, Any] = field(default_factory=dict)
    tool_response: Any = None


@dataclass
class StopInput(HookInput):
    """The turn ended (no ``reason`` field, as in the SDK)."""

    stop_hook_active: bool = False


@dataclass
class UserPromptSubmitInput(HookInput):
    """A prompt is about to be sent."""

    prompt: str = ""


@dataclass
class HookResponse:
    """A hook's answer: allow (go on), deny with a reason, allow with a changed input, or stop."""

    decision: Optional[str] = None
    reason: Optional[str] = None
    updated_input: Optional[Dict[str, Any]] = None
    stop_reason: Optional[str] = None

    @classmethod
    def allow(cls) -> "HookResponse":
        """Go on."""
        return cls()

    @classmethod
    def deny(cls, reason: str) -> "HookResponse":
        """Refuse the tool call; the model sees ``reason``."""
        return cls(decision="deny", reason=reason)

    @classmethod
    def allow_modified(cls, updated_input: Dict[str, Any]) -> "HookResponse":
        """Run the tool with ``updated_input``."""
        return cls(decision="rewrite_input", updated_input=dict(updated_input))

    @classmethod
    def stop(cls, reason: str) -> "HookResponse":
        """End the turn."""
        return cls(decision="stop", stop_reason=reason)

    def to_dict(self) -> Dict[str, Any]:
        """The engine's decision for it."""
        if self.decision == "deny":
            return {"decision": "deny", "reason": self.reason or "denied by a hook"}
        if self.decision == "rewrite_input":
            return {"decision": "rewrite_input", "input": self.updated_input or {}}
        if self.decision == "stop":
            return {"decision": "stop", "reason": self.stop_reason or "stopped by a hook"}
        return {"decision": "continue"}


HookCallback = Callable[[Any, Optional[str], HookContext], Awaitable[Any]]
"""``async (hook_input, tool_use_id, context) -> HookResponse`` (a sync function works too)."""


@dataclass
class HookMatcher:
    """Hooks for the tools whose name matches ``matcher`` (a regex; every tool when None)."""

    matcher: Optional[str] = None
    hooks: List[HookCallback] = field(default_factory=list)
    timeout: int = 60


@dataclass
class HooksConfig:
    """The hooks of a query, per point."""

    pre_tool_use: List[HookMatcher] = field(default_factory=list)
    post_tool_use: List[HookMatcher] = field(default_factory=list)
    user_prompt_submit: List[HookMatcher] = field(default_factory=list)
    stop: List[HookMatcher] = field(default_factory=list)
    subagent_stop: List[HookMatcher] = field(default_factory=list)
    pre_compact: List[HookMatcher] = field(default_factory=list)

    def for_event(self, event: str) -> List[HookMatcher]:
        """The matchers of hook point ``event`` (``PreToolUse``, …)."""
        key = re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()
        matchers: List[HookMatcher] = getattr(self, key, [])
        return matchers


class SystemPromptMode(str, Enum):
    """How a ``SystemPromptConfig`` applies."""

    DEFAULT = "default"
    APPEND = "append"
    OVERWRITE = "overwrite"


@dataclass
class SystemPromptConfig:
    """A system prompt: the agent's own (DEFAULT), it plus ``text`` (APPEND), or ``text`` (OVERWRITE)."""

    mode: SystemPromptMode = SystemPromptMode.DEFAULT
    text: str = ""


@dataclass
class QueryOptions:
    """How a query runs."""

    model: str = ModelName.SONNET.value
    resume: Optional[str] = None
    fork_session: bool = False
    cwd: Optional[str] = None
    allowed_tools: Optional[List[str]] = None
    permissions: Optional[Any] = None
    bypass_permissions: bool = True
    hooks: Optional[Union[HooksConfig, Dict[str, List[HookMatcher]]]] = None
    mcp_servers: Optional[Dict[str, Any]] = None
    setting_sources: List[str] = field(default_factory=lambda: ["project"])
    max_turns: Optional[int] = None
    max_tokens: Optional[int] = None
    system_prompt: Optional[Union[str, SystemPromptConfig]] = None


Handler = Callable[[Any], Any]


@dataclass
class MessageHandlers:
    """Called with the run's messages (sync or async callables)."""

    on_system: Optional[Handler] = None
    on_assistant: Optional[Handler] = None
    on_assistant_block: Optional[Handler] = None
    on_user: Optional[Handler] = None
    on_result: Optional[Handler] = None
    on_any: Optional[Handler] = None


@dataclass
class QueryInput:
    """A query: its prompt, options and handlers."""

    prompt: str
    options: QueryOptions = field(default_factory=QueryOptions)
    handlers: Optional[MessageHandlers] = None


@dataclass
class UsageAccumulator:
    """Usage summed over the query's model calls (one run: its totals)."""

    total: TokenUsage = field(default_factory=TokenUsage)


@dataclass
class QueryOutput:
    """How a query went."""

    success: bool
    result: Optional[str] = None
    error: Optional[str] = None
    session_id: Optional[str] = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    usage_accumulator: UsageAccumulator = field(default_factory=UsageAccumulator)
    messages: List[Message] = field(default_factory=list)
    started_at: Optional[datetime.datetime] = None
    completed_at: Optional[datetime.datetime] = None
    duration_seconds: float = 0.0
    agent_id: Optional[str] = None


@dataclass
class AdhocPrompt:
    """A one-shot prompt in a fresh session."""

    prompt: str
    model: str = ModelName.SONNET.value
    cwd: Optional[str] = None
    system_prompt: Optional[str] = None


# ---- hooks: one dispatcher per engine and point, the query's hooks by agent ----

_hooks_lock = threading.Lock()
_active: Dict[str, HooksConfig] = {}
_dispatching: Dict[int, Any] = {}

_POINTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SubagentStop", "PreCompact")


def _typed_input(event: Dict[str, Any]) -> HookInput:
    base: Dict[str, Any] = {
        "hook_event_name": str(event.get("hook_event_name", "")),
        "session_id": str(event.get("session_id", "")),
        "cwd": str(event.get("cwd", "")),
        "transcript_path": str(event.get("transcript_path", "")),
        "raw": event,
    }
    name = base["hook_event_name"]
    if name == "PreToolUse":
        return PreToolUseInput(**base, tool_name=event.get("tool_name", ""), tool_input=event.get("tool_input") or {})
    if name == "PostToolUse":
        return PostToolUseInput(
            **base,
            tool_name=event.get("tool_name", ""),
            tool_input=event.get("tool_input") or {},
            tool_response=event.get("tool_response"),
        )
    if name in ("Stop", "SubagentStop"):
        return StopInput(**base, stop_hook_active=bool(event.get("stop_hook_active", False)))
    if name == "UserPromptSubmit":
        return UserPromptSubmitInput(**base, prompt=str(event.get("prompt", "")))
    return HookInput(**base)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


async def _dispatch(event: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The engine's hook: runs the hooks of the query running on this agent, in order, until one
    decides something other than going on."""
    config = _active.get(str(event.get("session_id", "")))
    if config is None:
        return None
    point = str(event.get("hook_event_name", ""))
    tool = event.get("tool_name")
    typed = _typed_input(event)
    for m in config.for_event(point):
        if m.matcher not in (None, "", "*") and not (tool is not None and re.fullmatch(m.matcher, str(tool))):
            continue
        for hook in m.hooks:
            answer = await _maybe_await(hook(typed, event.get("tool_use_id"), HookContext()))
            if isinstance(answer, HookResponse):
                decided = answer.to_dict()
            elif isinstance(answer, dict):
                decided = answer
            else:
                decided = {"decision": "continue"}
            if decided.get("decision") not in (None, "continue", "allow", "approve"):
                return decided
    return None


def _install(eng: Any) -> None:
    with _hooks_lock:
        if id(eng) in _dispatching:
            return
        _dispatching[id(eng)] = eng  # kept: the id stays this engine's
    for point in _POINTS:
        eng.add_hook(point, _dispatch, None, name="orch.adw query hooks")


def _hooks_of(hooks: Optional[Union[HooksConfig, Dict[str, List[HookMatcher]]]]) -> Optional[HooksConfig]:
    if hooks is None or isinstance(hooks, HooksConfig):
        return hooks
    config = HooksConfig()
    for point, matchers in hooks.items():
        name = point.value if isinstance(point, Enum) else str(point)
        key = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        if not hasattr(config, key):
            raise ValueError(f"unknown hook point {name!r}; the points: {', '.join(_POINTS)}")
        setattr(config, key, list(matchers))
    return config


# ---- queries ----


def _system_prompt(value: Optional[Union[str, SystemPromptConfig]]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if value.mode == SystemPromptMode.DEFAULT:
        return None
    return value.text


class _Stream:
    """The run's messages, built as its events are committed and handed to the handlers as they come:
    each block to ``on_assistant_block`` at once; a model response's blocks as one AssistantMessage, and
    consecutive tool results as one UserMessage, once the next event (or the end) closes them."""

    def __init__(self, handlers: Optional[MessageHandlers], session_id: str, model: str) -> None:
        self.handlers = handlers
        self.model = model
        self.messages: List[Message] = []
        self.open: Optional[Union[AssistantMessage, UserMessage]] = None
        self.first: Message = SystemMessage("init", {"session_id": session_id, "model": model})

    async def start(self) -> None:
        await self._message(self.first)

    async def event(self, e: Dict[str, Any]) -> None:
        kind = e.get("type")
        block: Optional[ContentBlock] = None
        if kind == "Text":
            block = TextBlock(e.get("text", ""))
        elif kind == "Thinking":
            block = ThinkingBlock(e.get("thinking", ""), e.get("signature") or "")
        elif kind == "ToolUse":
            block = ToolUseBlock(e.get("tool_use_id", ""), e.get("tool_name", ""), e.get("tool_input") or {})
        elif kind == "ToolResult":
            result = ToolResultBlock(e.get("tool_use_id", ""), e.get("content"), e.get("is_error"))
            if not isinstance(self.open, UserMessage):
                await self.close()
                self.open = UserMessage([])
            self.open.content.append(result)
            return
        if block is None:
            return
        if not isinstance(self.open, AssistantMessage):
            await self.close()
            self.open = AssistantMessage([], self.model)
        self.open.content.append(block)
        if self.handlers is not None and self.handlers.on_assistant_block is not None:
            await _maybe_await(self.handlers.on_assistant_block(block))

    async def close(self) -> None:
        if self.open is not None:
            msg, self.open = self.open, None
            await self._message(msg)

    async def end(self, result: Optional[ResultMessage]) -> None:
        await self.close()
        if result is not None:
            await self._message(result)

    async def _message(self, msg: Message) -> None:
        self.messages.append(msg)
        h = self.handlers
        if h is None:
            return
        if h.on_any is not None:
            await _maybe_await(h.on_any(msg))
        if isinstance(msg, SystemMessage) and h.on_system is not None:
            await _maybe_await(h.on_system(msg))
        elif isinstance(msg, AssistantMessage) and h.on_assistant is not None:
            await _maybe_await(h.on_assistant(msg))
        elif isinstance(msg, UserMessage) and h.on_user is not None:
            await _maybe_await(h.on_user(msg))
        elif isinstance(msg, ResultMessage) and h.on_result is not None:
            await _maybe_await(h.on_result(msg))


def _as_dict(ev: Any) -> Dict[str, Any]:
    d: Dict[str, Any] = dict(ev.payload)
    d["type"] = ev.type
    return d


async def _run_streaming(eng: Any, agent_id: str, stream: _Stream, run: "asyncio.Future[Dict[str, Any]]") -> Dict[str, Any]:
    """Awaits ``run`` while handing the agent's events to ``stream`` as they are committed (the
    engine's own records of the run, read back from the store), then the ones committed before it
    ended; its result."""
    seen: int = await eng.last_seq()
    follower = eng.follow(seen, agent=agent_id)
    waiting: Optional["asyncio.Future[Any]"] = None
    try:
        while not run.done():
            if waiting is None:
                waiting = asyncio.ensure_future(follower.next_event())
            await asyncio.wait({run, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                ev = waiting.result()
                waiting = None
                if ev is None:
                    break
                seen = ev.seq
                await stream.event(_as_dict(ev))
    finally:
        if waiting is not None:
            waiting.cancel()
        if not run.done():
            run.cancel()
    raw = await run
    for ev in await eng.events(seen, agent=agent_id):
        await stream.event(_as_dict(ev))
    return raw


async def query_to_completion(query_input: QueryInput) -> QueryOutput:
    """Runs the query to its end on the engine and returns how it went; the handlers get its messages
    as the run commits them. A failed run, or an error raised on the way, is ``success=False`` with
    ``error``; a cancelled await (Ctrl-C) interrupts the run and propagates."""
    started = datetime.datetime.now(datetime.timezone.utc)
    opts = query_input.options
    eng = _engine()
    agent_id = opts.resume or _step_agent.get()
    _step_agent.set(None)
    if agent_id is None:
        # A fresh session: an agent of its own, made first so that the query's hooks apply to it.
        name = f"query-{uuid.uuid4().hex[:8]}"
        agent_id = _orch.adw_create_agent(eng, None, name, opts.model, opts.cwd, None, None, None)
    hooks = _hooks_of(opts.hooks)
    if hooks is not None:
        _install(eng)
    stream = _Stream(query_input.handlers, agent_id, opts.model)
    try:
        _deferred[agent_id] = []
        if hooks is not None:
            _active[agent_id] = hooks
        try:
            await stream.start()
            run = asyncio.ensure_future(
                _orch.adw_query(
                    eng,
                    query_input.prompt,
                    agent_id=agent_id,
                    model=opts.model,
                    cwd=opts.cwd,
                    allowed_tools=list(opts.allowed_tools) if opts.allowed_tools is not None else None,
                    system_prompt=_system_prompt(opts.system_prompt),
                    max_turns=opts.max_turns,
                )
            )
            raw = await _run_streaming(eng, agent_id, stream, run)
        finally:
            _active.pop(agent_id, None)
            for log in _deferred.pop(agent_id, []):
                log()
    except _orch.OrchError as e:
        done = datetime.datetime.now(datetime.timezone.utc)
        return QueryOutput(False, error=str(e), session_id=agent_id, started_at=started, completed_at=done, agent_id=agent_id)
    usage = TokenUsage(**{k: v for k, v in (raw.get("usage") or {}).items() if k in TokenUsage.__dataclass_fields__})
    session = str(raw.get("session_id") or agent_id)
    success = bool(raw.get("success"))
    interrupted = raw.get("stop_reason") == "interrupted"
    subtype = ResultSubtype.SUCCESS if success else ResultSubtype.INTERRUPTED if interrupted else ResultSubtype.ERROR
    result_msg = ResultMessage(
        subtype=subtype,
        result=raw.get("result"),
        usage=usage,
        session_id=session,
        is_error=not success,
        num_turns=int(raw.get("num_turns") or 0),
        duration_ms=int(raw.get("duration_ms") or 0),
        total_cost_usd=usage.total_cost_usd,
    )
    await stream.end(result_msg if "stop_reason" in raw else None)
    done = datetime.datetime.now(datetime.timezone.utc)
    return QueryOutput(
        success=success,
        result=raw.get("result"),
        error=raw.get("error"),
        session_id=session or None,
        usage=usage,
        usage_accumulator=UsageAccumulator(usage),
        messages=stream.messages,
        started_at=started,
        completed_at=done,
        duration_seconds=(done - started).total_seconds(),
        agent_id=raw.get("agent_id"),
    )


async def quick_prompt(prompt: AdhocPrompt) -> str:
    """A one-shot query in a fresh session (a new agent, no earlier context); its final text ("" when
    it failed)."""
    _step_agent.set(None)
    options = QueryOptions(model=prompt.model, cwd=prompt.cwd, system_prompt=prompt.system_prompt)
    out = await query_to_completion(QueryInput(prompt.prompt, options))
    return out.result or "" if out.success else ""


__all__ = [
    "AdhocPrompt",
    "AssistantMessage",
    "BuiltInTool",
    "ContentBlock",
    "HookContext",
    "HookEventName",
    "HookInput",
    "HookMatcher",
    "HookResponse",
    "HooksConfig",
    "MessageHandlers",
    "ModelName",
    "PermissionDecision",
    "PostToolUseInput",
    "PreToolUseInput",
    "QueryInput",
    "QueryOptions",
    "QueryOutput",
    "ResultMessage",
    "ResultSubtype",
    "SettingSource",
    "StopInput",
    "SystemMessage",
    "SystemPromptConfig",
    "SystemPromptMode",
    "TextBlock",
    "ThinkingBlock",
    "TokenUsage",
    "ToolResultBlock",
    "ToolUseBlock",
    "UsageAccumulator",
    "UserMessage",
    "UserPromptSubmitInput",
    "query_to_completion",
    "quick_prompt",
]
