"""How the engine calls Python tools and hooks (internal to the package).

An ``async def`` tool or hook runs on one asyncio loop of the package's own, on a daemon thread
(``orch-callbacks``) started on first use: the engine calls from its own threads, where no loop of the
program's runs. Sync callables run on the engine's blocking threads and never need it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures._base
import inspect
import threading
import traceback
import typing
from types import TracebackType
from typing import Any, Awaitable, Callable, Dict, List, Optional

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
