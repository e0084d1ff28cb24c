"""Type stubs of the native module ``orch._orch`` (the Rust engine, built with pyo3)."""

from __future__ import annotations

import datetime
import os
import pathlib
from typing import (
    Any,
    Awaitable,
    Callable,
    ClassVar,
    Coroutine,
    Dict,
    Generator,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    TypeVar,
    Union,
    overload,
)

from .events import TypedEvent
from .hooks import HookResult
from .workflow import Workflow as _Workflow

__version__: str

_Path = Union[str, os.PathLike[str]]
InterruptResult = Literal["stopped", "requested", "not_running"]

_T = TypeVar("_T")

HookEvent = Literal["PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SubagentStop", "PreCompact"]
"""The points where hooks run."""

HookFunction = Callable[[Dict[str, Any]], Union[HookResult, Awaitable[HookResult]]]
"""A hook: called with the hook input (Claude Code's hook input: ``hook_event_name``, ``tool_name``,
``tool_input``, ``tool_use_id``, ``cwd``, ``session_id``, … and ``agent_name``), returning its decision,
sync or async."""

_F = TypeVar("_F", bound=Callable[..., Any])
_H = TypeVar("_H", bound=HookFunction)

class ToolDecorator:
    """What ``engine.tool(name, description, input_schema)`` returns: decorating a function adds it as
    a tool and gives it back unchanged."""

    def __call__(self, func: _F) -> _F: ...

class HookDecorator:
    """What ``engine.hook(event, matcher)`` returns: decorating a function adds it as a hook and gives it
    back unchanged."""

    def __call__(self, func: _H) -> _H: ...

class Call(Coroutine[Any, Any, _T]):
    """An engine call: a coroutine that starts on the running asyncio loop when first awaited
    (``await``, ``asyncio.run``, ``asyncio.create_task``, ``asyncio.gather``). Cancelling it stops the
    call (a command's agent run is interrupted)."""

    def __await__(self) -> Generator[Any, None, _T]: ...
    def send(self, value: Any) -> Any: ...
    def throw(self, exc: Any, value: Any = None, traceback: Any = None) -> Any: ...
    def close(self) -> None: ...

class OrchError(Exception):
    """Any failure of the orch engine; ``kind`` names its class."""

    kind: ClassVar[str]

class UsageError(OrchError):
    """Bad input: a setting, model spec, parameter or file."""

class NotFoundError(OrchError):
    """No such agent, workflow run, template or entity."""

class ConflictError(OrchError):
    """The request contradicts the stored state."""

class BusyError(OrchError):
    """The agent or workflow run is busy (here or in another process)."""

class UnavailableError(OrchError):
    """The store or provider cannot be reached now."""

class ProviderError(OrchError):
    """The model provider refused or broke the call."""

class RunInterrupted(OrchError):
    """Stopped on request (an interrupt, Ctrl-C)."""

class InternalError(OrchError):
    """Damaged or incompatible data, or a bug."""

class RunFailedError(OrchError):
    """An agent's run failed (the message says why)."""

class Event:
    """One appended event of the log."""

    @property
    def seq(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def agent_id(self) -> Optional[str]: ...
    @property
    def orchestrator_id(self) -> Optional[str]: ...
    @property
    def workflow_id(self) -> Optional[str]: ...
    @property
    def step(self) -> Optional[str]: ...
    @property
    def task_slug(self) -> Optional[str]: ...
    @property
    def ts(self) -> datetime.datetime: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def summary(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def typed(self) -> TypedEvent:
        """This event as the class of its type (``orch.events``; ``UnknownEvent`` for a type this package
        does not know)."""

class Agent:
    """An agent's record: status, model, tokens and cost."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def working_dir(self) -> pathlib.Path: ...
    @property
    def orchestrator_id(self) -> Optional[str]: ...
    @property
    def workflow_id(self) -> Optional[str]: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def total_cost_usd(self) -> float: ...
    def to_dict(self) -> dict[str, Any]: ...

class Outcome:
    """How a command's run ended."""

    @property
    def agent(self) -> str: ...
    @property
    def status(self) -> Literal["completed", "interrupted"]: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def final_text(self) -> Optional[str]: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def num_turns(self) -> int: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def task_slug(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...

class WorkflowRun:
    """A workflow run's record."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> Literal["pending", "in_progress", "completed", "failed", "cancelled"]: ...
    @property
    def current_step(self) -> Optional[str]: ...
    @property
    def completed_steps(self) -> int: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def error_message(self) -> Optional[str]: ...
    @property
    def error_step(self) -> Optional[str]: ...
    @property
    def duration_seconds(self) -> Optional[int]: ...
    @property
    def input(self) -> dict[str, Any]: ...
    @property
    def output(self) -> dict[str, Any]: ...
    def to_dict(self) -> dict[str, Any]: ...

class Follower:
    """A live follower of the event log: ``async for`` (or ``for``, from ``engine.sync.follow``)."""

    def __aiter__(self) -> Follower: ...
    def __anext__(self) -> Awaitable[Event]: ...  # StopAsyncIteration when the store's stream ends
    def __iter__(self) -> Iterator[Event]: ...
    def __next__(self) -> Event: ...
    def next_event(self) -> Call[Optional[Event]]: ...

class Workflows:
    """Workflow runs (ADWs), with awaitable methods."""

    def types(self) -> List[dict[str, Any]]: ...
    def register(self, workflow: type[_Workflow]) -> str:
        """Registers a Python workflow class (``orch.workflow``) on the engine's workflow runner; its
        type name."""
    def start(
        self,
        workflow_type: str,
        prompt: Optional[str] = None,
        *,
        inputs: Optional[dict[str, Any]] = None,
        name: Optional[str] = None,
        model: Optional[str] = None,
        worktree: bool = False,
        wait: bool = True,
    ) -> Call[WorkflowRun]: ...
    def resume(self, id: str) -> Call[WorkflowRun]: ...
    def cancel(self, id: str) -> Call[WorkflowRun]: ...
    def get(self, id: str) -> Call[WorkflowRun]: ...
    def list(self) -> Call[List[WorkflowRun]]: ...
    def wait(self, id: str) -> Call[WorkflowRun]: ...

class SyncWorkflows:
    """Workflow runs (ADWs), with blocking methods."""

    def types(self) -> List[dict[str, Any]]: ...
    def register(self, workflow: type[_Workflow]) -> str:
        """Registers a Python workflow class (``orch.workflow``) on the engine's workflow runner; its
        type name."""
    def start(
        self,
        workflow_type: str,
        prompt: Optional[str] = None,
        *,
        inputs: Optional[dict[str, Any]] = None,
        name: Optional[str] = None,
        model: Optional[str] = None,
        worktree: bool = False,
        wait: bool = True,
    ) -> WorkflowRun: ...
    def resume(self, id: str) -> WorkflowRun: ...
    def cancel(self, id: str) -> WorkflowRun: ...
    def get(self, id: str) -> WorkflowRun: ...
    def list(self) -> List[WorkflowRun]: ...
    def wait(self, id: str) -> WorkflowRun: ...

class Engine:
    """An open engine; its methods return awaitables. ``engine.sync`` blocks instead."""

    @property
    def sync(self) -> SyncEngine: ...
    @property
    def workflows(self) -> Workflows: ...
    @property
    def working_dir(self) -> pathlib.Path: ...
    @property
    def model(self) -> Optional[str]: ...
    @property
    def hook_problems(self) -> List[str]: ...
    def create_agent(
        self,
        name: str,
        *,
        system_prompt: Optional[str] = None,
        template: Optional[str] = None,
        model: Optional[str] = None,
        compact_at: Optional[float] = None,
    ) -> Call[Agent]: ...
    def command(self, name: str, prompt: str) -> Call[Outcome]: ...
    def interrupt(self, name: str) -> Call[InterruptResult]: ...
    def delete_agent(self, name: str) -> Call[Agent]: ...
    def agents(self) -> Call[List[Agent]]: ...
    def agent(self, name: str) -> Call[Agent]: ...
    def events(
        self,
        since: int = 0,
        *,
        agent: Optional[str] = None,
        workflow: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Call[List[Event]]: ...
    def follow(self, since: int = 0, *, agent: Optional[str] = None, workflow: Optional[str] = None) -> Follower: ...
    def last_seq(self) -> Call[int]: ...
    @overload
    def tool(
        self, name: _F, description: Optional[str] = None, input_schema: Optional[Mapping[str, Any]] = None
    ) -> _F:
        """``@engine.tool``: adds the function as a tool named after it, described by its docstring, its
        input schema from its signature."""
    @overload
    def tool(
        self,
        name: Optional[str] = None,
        description: Optional[str] = None,
        input_schema: Optional[Mapping[str, Any]] = None,
    ) -> ToolDecorator:
        """``@engine.tool(name, description, input_schema)``: a decorator adding the function as a tool."""
    def add_tool(
        self,
        func: Callable[..., Any],
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        input_schema: Optional[Mapping[str, Any]] = None,
    ) -> str:
        """Adds ``func`` (sync or async) as a tool of this engine's agents, from their next turn on; returns
        its name. The model's input comes as keyword arguments; the result is the tool's text (``str``, or
        JSON of other data); an exception is a tool error carrying the traceback."""
    def remove_tool(self, name: str) -> bool:
        """Removes the Python tool ``name``; whether there was one."""
    def hook(self, event: HookEvent, matcher: Optional[str] = None, *, name: Optional[str] = None) -> HookDecorator:
        """``@engine.hook("PreToolUse", matcher)``: a decorator adding the function as a hook."""
    def add_hook(
        self, event: HookEvent, func: HookFunction, matcher: Optional[str] = None, *, name: Optional[str] = None
    ) -> None:
        """Adds ``func`` (sync or async) as a hook at ``event`` for tools whose name matches ``matcher``
        (an anchored regex; every tool when None), after the hooks already there. An exception is recorded
        in the ``HookInvoked`` event with its traceback, and the run goes on."""

class SyncEngine:
    """An open engine with blocking methods (the GIL is released while the engine works)."""

    @property
    def workflows(self) -> SyncWorkflows: ...
    @property
    def aio(self) -> Engine: ...
    @property
    def working_dir(self) -> pathlib.Path: ...
    def create_agent(
        self,
        name: str,
        *,
        system_prompt: Optional[str] = None,
        template: Optional[str] = None,
        model: Optional[str] = None,
        compact_at: Optional[float] = None,
    ) -> Agent: ...
    def command(self, name: str, prompt: str) -> Outcome: ...
    def interrupt(self, name: str) -> InterruptResult: ...
    def delete_agent(self, name: str) -> Agent: ...
    def agents(self) -> List[Agent]: ...
    def agent(self, name: str) -> Agent: ...
    def events(
        self,
        since: int = 0,
        *,
        agent: Optional[str] = None,
        workflow: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> List[Event]: ...
    def follow(self, since: int = 0, *, agent: Optional[str] = None, workflow: Optional[str] = None) -> Follower: ...
    def last_seq(self) -> int: ...
    @overload
    def tool(
        self, name: _F, description: Optional[str] = None, input_schema: Optional[Mapping[str, Any]] = None
    ) -> _F:
        """``@engine.tool``: adds the function as a tool named after it, described by its docstring, its
        input schema from its signature."""
    @overload
    def tool(
        self,
        name: Optional[str] = None,
        description: Optional[str] = None,
        input_schema: Optional[Mapping[str, Any]] = None,
    ) -> ToolDecorator:
        """``@engine.tool(name, description, input_schema)``: a decorator adding the function as a tool."""
    def add_tool(
        self,
        func: Callable[..., Any],
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        input_schema: Optional[Mapping[str, Any]] = None,
    ) -> str:
        """Adds ``func`` (sync or async) as a tool of this engine's agents, from their next turn on; returns
        its name. The model's input comes as keyword arguments; the result is the tool's text (``str``, or
        JSON of other data); an exception is a tool error carrying the traceback."""
    def remove_tool(self, name: str) -> bool:
        """Removes the Python tool ``name``; whether there was one."""
    def hook(self, event: HookEvent, matcher: Optional[str] = None, *, name: Optional[str] = None) -> HookDecorator:
        """``@engine.hook("PreToolUse", matcher)``: a decorator adding the function as a hook."""
    def add_hook(
        self, event: HookEvent, func: HookFunction, matcher: Optional[str] = None, *, name: Optional[str] = None
    ) -> None:
        """Adds ``func`` (sync or async) as a hook at ``event`` for tools whose name matches ``matcher``
        (an anchored regex; every tool when None), after the hooks already there. An exception is recorded
        in the ``HookInvoked`` event with its traceback, and the run goes on."""

def open(
    target: Optional[_Path] = None,
    *,
    model: Optional[str] = None,
    cwd: Optional[_Path] = None,
    db: Optional[str] = None,
    record: Optional[_Path] = None,
) -> Engine:
    """Opens an engine: ``target`` is a store URL (``sqlite:///…``, ``sqlite::memory:``,
    ``postgres://…``), a database file, or a working directory whose ``.env`` and
    ``.orch/config.toml`` are read (default: the current directory)."""

def open_async(
    target: Optional[_Path] = None,
    *,
    model: Optional[str] = None,
    cwd: Optional[_Path] = None,
    db: Optional[str] = None,
    record: Optional[_Path] = None,
) -> Call[Engine]:
    """``open`` as an awaitable."""

# The records behind ``orch.adw`` (the seed's ``adw_database`` and ``adw_logging``; use those modules).
def adw_get(engine: Engine, adw_id: str) -> Optional[dict[str, Any]]: ...
def adw_create(
    engine: Engine, workflow_type: str, input_data: Optional[Mapping[str, Any]] = None, adw_name: Optional[str] = None
) -> str: ...
def adw_create_agent(
    engine: Engine,
    orchestrator_agent_id: Optional[str],
    name: str,
    model: str,
    working_dir: Optional[str] = None,
    adw_id: Optional[str] = None,
    adw_step: Optional[str] = None,
    agent_id: Optional[str] = None,
) -> str: ...
def adw_update_agent(
    engine: Engine,
    agent_id: str,
    status: Optional[str] = None,
    session_id: Optional[str] = None,
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    total_cost: Optional[float] = None,
) -> bool: ...
def adw_log_step(
    engine: Engine,
    adw_id: str,
    adw_step: str,
    end: bool,
    agent_id: Optional[str] = None,
    payload: Optional[Mapping[str, Any]] = None,
    status: str = "success",
    duration_ms: Optional[int] = None,
) -> str: ...
def adw_log_event(
    engine: Engine,
    adw_id: Optional[str],
    adw_step: Optional[str],
    event_category: str,
    event_type: str,
    content: Optional[str],
    agent_id: Optional[str] = None,
    payload: Optional[Mapping[str, Any]] = None,
    summary: Optional[str] = None,
) -> str: ...
def adw_log_system(
    engine: Engine,
    adw_id: Optional[str],
    adw_step: Optional[str],
    level: str,
    message: str,
    file_path: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> str: ...
def adw_update_status(
    engine: Engine,
    adw_id: str,
    status: str,
    current_step: Optional[str] = None,
    completed_steps: Optional[int] = None,
    error_message: Optional[str] = None,
    error_step: Optional[str] = None,
) -> bool: ...

# The runs behind ``orch.adw.adw_agent_sdk`` and the summaries behind ``orch.adw.adw_summarizer``.
def adw_query(
    engine: Engine,
    prompt: str,
    *,
    agent_id: Optional[str] = None,
    model: Optional[str] = None,
    cwd: Optional[str] = None,
    allowed_tools: Optional[List[str]] = None,
    system_prompt: Optional[str] = None,
    max_turns: Optional[int] = None,
    name: Optional[str] = None,
) -> Call[dict[str, Any]]: ...
def adw_summarize(engine: Engine, event_data: Mapping[str, Any], event_type: str) -> Optional[str]: ...
def adw_has_summarizer(engine: Engine) -> bool: ...
def wind_down(timeout_s: float = 10.0, grace_s: float = 0.5) -> int:
    """Waits (bounded) for the runs whose Python caller went away to record their end; how many had
    not ended. Registered with ``atexit`` by the package."""

def exiting(timeout_s: float = 1.0) -> int:
    """Shuts the engine's threads out of Python for good (the program is exiting) and waits up to
    ``timeout_s`` for those inside to leave; how many had not. Engine calls that complete later are
    dropped. Called by the package's ``atexit`` hook, after ``wind_down``."""
