"""The seed's ADW modules on orch: ``adw_database`` and ``adw_logging`` with the names and signatures the
seed's workflow scripts import (``from adw_modules.adw_logging import …`` becomes
``from orch.adw.adw_logging import …``). What they write are real records and events of orch's store: a
run's status and steps, its agents, their events and system logs, which ``orch serve`` on the same store
shows live.

The functions are module-level, as the seed's are: they use the engine given to ``use(engine)``, else
one opened on first use as ``orch.open()`` opens it (the current directory's ``.env`` and
``.orch/config.toml``: ``ORCH_DATABASE_URL`` or ``DATABASE_URL`` name the store).
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any, Callable, Dict, List, Optional

from .. import _orch
from .._orch import Engine

_lock = threading.Lock()
_engine: Optional[Engine] = None

# The agent the next query of this task runs on (``adw_database.create_agent`` sets it,
# ``adw_agent_sdk.query_to_completion`` takes it).
_step_agent: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("orch_adw_step_agent", default=None)

# Agents running a query, with what their hooks logged of the run while it ran: the engine commits its
# own PreToolUse/PostToolUse/Stop events with the turn's next step, so those logs are matched to them
# (and their summaries attached) once the query has ended.
_deferred: Dict[str, List[Callable[[], Any]]] = {}


def use(engine: Optional[Engine]) -> None:
    """Makes the ADW modules write through ``engine`` (None: open one on next use)."""
    global _engine
    with _lock:
        _engine = engine


def engine() -> Engine:
    """The engine the ADW modules write through, opened on first use."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = _orch.open()
        return _engine


def create_adw(workflow_type: str, input_data: Optional[Dict[str, Any]] = None, adw_name: Optional[str] = None) -> str:
    """Records a pending run of ``workflow_type`` (what the seed's ``start_adw`` and manual trigger do
    before they start a script with ``--adw-id``); its id."""
    return _orch.adw_create(engine(), workflow_type, input_data, adw_name)


__all__ = ["create_adw", "engine", "use"]
