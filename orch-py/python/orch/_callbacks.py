"""How the engine calls Python tools, hooks and workflows (internal to the package).

Every callable runs on a thread Python made, never on one of the engine's: a sync callable interrupted
while it runs goes on until it returns, and when the program exits meanwhile Python stops its own daemon
threads cleanly, while an engine thread caught running Python code then aborts the process. An
``async def`` callable runs on one asyncio loop of the package's own, on a daemon thread
(``orch-callbacks``) started on first use; a sync one on a daemon thread of a small pool (``orch-call``)
that grows to the number of calls running at once and keeps its idle threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures._base
import inspect
import queue
import threading
import traceback
import typing
from types import TracebackType
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

_lock = threading.Lock()
_loop: Optional[asyncio.AbstractEventLoop] = None


def _callback_loop() -> asyncio.AbstractEventLoop:
    """The callbacks' loop, started on first use (again if it was closed)."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="orch-callbacks", daemon=True).start()
            _loop = loop
        return _loop


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def submit(awaitable: Awaitable[Any]) -> "concurrent.futures.Future[Any]":
    """Runs ``awaitable`` on the callbacks' loop; the future of its result."""
    return asyncio.run_coroutine_threadsafe(_await(awaitable), _callback_loop())


class _Call(concurrent.futures.Future):  # type: ignore[type-arg]
    """The future of a sync callable's result. Cancelling it cancels the awaitable the callable
    returned, if any; a callable already running finishes on its thread, its result dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.inner: "Optional[concurrent.futures.Future[Any]]" = None

    def cancel(self) -> bool:
        inner = self.inner
        if inner is not None:
            inner.cancel()
        return super().cancel()

    def settle(self, done: "concurrent.futures.Future[Any]") -> None:
        """Takes the outcome of ``done`` (the awaitable's future), unless cancelled meanwhile."""
        try:
            if done.cancelled():
                self.cancel()
            elif done.exception() is not None:
                self.set_exception(done.exception())
            else:
                self.set_result(done.result())
        except concurrent.futures.InvalidStateError:
            pass


# Sync calls waiting for a pool thread, and how many pool threads wait for one.
_jobs: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
_idle = 0


def _pool_thread() -> None:
    global _idle
    while True:
        _jobs.get()()
        with _lock:
            _idle += 1


def _run_sync(job: Callable[[], None]) -> None:
    global _idle
    with _lock:
        if _idle > 0:
            _idle -= 1
        else:
            threading.Thread(target=_pool_thread, name="orch-call", daemon=True).start()
    _jobs.put(job)


def call(
    func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]]
) -> "concurrent.futures.Future[Any]":
    """Calls ``func(*args, **kwargs)`` on a thread of Python's: an ``async def`` on the callbacks' loop,
    a sync callable on the pool (an awaitable it returns then runs on the loop). The future of its result.
    """
    kwargs = kwargs or {}
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None)):
        return submit(func(*args, **kwargs))
    fut = _Call()

    def job() -> None:
        if fut.cancelled():
            return
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:  # the engine reports it, with its traceback
            try:
                fut.set_exception(exc)
            except concurrent.futures.InvalidStateError:
                pass
            return
        if inspect.isawaitable(result):
            inner = submit(result)
            fut.inner = inner
            if fut.cancelled():
                inner.cancel()
            inner.add_done_callback(fut.settle)
            return
        try:
            fut.set_result(result)
        except concurrent.futures.InvalidStateError:
            pass

    _run_sync(job)
    return fut


# Frames of the machinery between the engine and an async callable, left out of its tracebacks.
_MACHINERY = {concurrent.futures._base.__file__, __file__}


def describe(exc: BaseException, tb: Optional[TracebackType] = None) -> str:
    """The exception as Python prints it, ``Traceback (most recent call last): …`` then ``Type:
    message``, from the callable's own frames on. ``tb`` is its traceback when the exception does not
    hold it (an error fetched by the native module, before Python 3.12)."""
    tb = tb if tb is not None else exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in _MACHINERY:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


def schema_of(func: Callable[..., Any]) -> Dict[str, Any]:
    """The JSON schema of a tool's input from its signature: one property per parameter that can be
    passed by keyword (typed when annotated ``str``, ``int``, ``float``, ``bool``, ``list`` or ``dict``,
    or a generic of those), required when it has no default."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return {"type": "object"}
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: the parameters stay untyped
        hints = {}
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        hint = hints.get(p.name, p.annotation)
        origin = typing.get_origin(hint) or hint
        json_type = _JSON_TYPES.get(origin) if isinstance(origin, type) else None
        properties[p.name] = {"type": json_type} if json_type else {}
        if p.default is p.empty:
            required.append(p.name)
    schema: Dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def resolve(future: "asyncio.Future[Any]", ok: bool, value: Any) -> None:
    """Sets an engine call's outcome on its asyncio future (called on the future's loop), unless the
    future was cancelled meanwhile."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
