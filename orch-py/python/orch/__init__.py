"""orch: run LLM agents under deterministic orchestration, from Python.

The same engine, store and events as the Rust library and the ``orch`` command::

    import asyncio, orch

    engine = orch.open("/path/to/project", model="scripted:examples/scripts/demo.json")

    async def main() -> None:
        await engine.create_agent("ada", system_prompt="You write greetings.")
        out = await engine.command("ada", "write a greeting for Ada")
        print(out.final_text, out.cost_usd)
        async for ev in engine.follow(since=0):
            print(ev.seq, ev.type, ev.summary)

    asyncio.run(main())

``engine.sync`` has the same methods, blocking (the GIL is released while the engine works)::

    engine.sync.command("ada", "write a greeting for Ada")

Python functions (sync or ``async``) become tools of the engine's agents, and hooks::

    @engine.tool  # the name, description and input schema: the function's name, docstring, signature
    def weather(city: str, days: int = 1) -> str:
        return f"{city}: sunny for {days} days"

    @engine.hook("PreToolUse", matcher="Write|Edit")
    def read_only(event: dict) -> orch.hooks.Deny:
        return orch.hooks.Deny("this agent only reads")

Errors are ``OrchError`` subclasses named after the engine's error kinds (``UsageError``,
``NotFoundError``, ``ConflictError``, ``BusyError``, ``UnavailableError``, ``ProviderError``,
``RunInterrupted``, ``InternalError``) plus ``RunFailedError`` for a failed agent run.
"""

from __future__ import annotations

import atexit

from . import _orch, events, hooks, workflow
from ._orch import (
    Agent,
    BusyError,
    Call,
    ConflictError,
    Engine,
    Event,
    Follower,
    HookDecorator,
    InternalError,
    NotFoundError,
    OrchError,
    Outcome,
    ProviderError,
    RunFailedError,
    RunInterrupted,
    SyncEngine,
    SyncWorkflows,
    ToolDecorator,
    UnavailableError,
    UsageError,
    WorkflowRun,
    Workflows,
    __version__,
    open,
    open_async,
)


def _at_exit() -> None:
    # Runs whose caller went away (Ctrl-C, a cancelled await) get a moment to record their end; then no
    # engine thread enters Python any more (one inside it as the interpreter finalizes would abort it).
    _orch.wind_down()
    _orch.exiting()


atexit.register(_at_exit)

__all__ = [
    "Agent",
    "BusyError",
    "Call",
    "ConflictError",
    "Engine",
    "Event",
    "Follower",
    "HookDecorator",
    "InternalError",
    "NotFoundError",
    "OrchError",
    "Outcome",
    "ProviderError",
    "RunFailedError",
    "RunInterrupted",
    "SyncEngine",
    "SyncWorkflows",
    "ToolDecorator",
    "UnavailableError",
    "UsageError",
    "WorkflowRun",
    "Workflows",
    "__version__",
    "events",
    "hooks",
    "open",
    "open_async",
    "workflow",
]
