"""The seed's ``adw_modules.adw_logging`` on orch's store: steps, events, system logs and run status.

Each ``log_*`` returns the event's id (its seq, as text). There is no WebSocket to connect: ``orch
serve`` streams the store's events to the dashboard, also those of other processes.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .. import _orch
from . import _deferred, engine


def init_logging(verbose: bool = False) -> None:
    """Opens the engine the module writes through (the seed connected its WebSocket relay here)."""
    engine()


def close_logging() -> None:
    """Nothing to close: every record is committed when it is logged."""


def log_step_start(
    adw_id: str,
    adw_step: str,
    agent_id: Optional[str] = None,
    payload: Optional[Dict[str, Any]] = None,
    summary: Optional[str] = None,
) -> str:
    """Step ``adw_step`` starts (``StepStart``; its prompt and model from ``payload``)."""
    return _orch.adw_log_step(engine(), adw_id, adw_step, False, agent_id, payload)


def log_step_end(
    adw_id: str,
    adw_step: str,
    agent_id: Optional[str] = None,
    payload: Optional[Dict[str, Any]] = None,
    summary: Optional[str] = None,
    status: str = "success",
    duration_ms: Optional[int] = None,
) -> str:
    """Step ``adw_step`` ends (``StepEnd`` with ``status`` ``success`` or ``failed``)."""
    return _orch.adw_log_step(engine(), adw_id, adw_step, True, agent_id, payload, status, duration_ms)


def log_adw_event(
    adw_id: Optional[str],
    adw_step: Optional[str],
    event_category: str,
    event_type: str,
    content: Optional[str],
    agent_id: Optional[str] = None,
    payload: Optional[Dict[str, Any]] = None,
    summary: Optional[str] = None,
) -> str:
    """An event of an ADW's agent: orch's event of that type when ``payload`` has its fields
    (``PreToolUse``, ``TextBlock`` as ``Text``, ``ToolUseBlock`` as ``ToolUse``, …), else an event of the
    seed's type keeping ``content`` and the payload. What the engine records itself of an agent's run
    (its tool calls, hooks, blocks, stop and result) is not written twice: the engine's event's id is
    returned. Logged from a hook while the agent's query runs (``PreToolUse``, ``PostToolUse``,
    ``Stop``), it is matched once the query ends and ``""`` is returned."""
    eng = engine()

    def log() -> str:
        return _orch.adw_log_event(eng, adw_id, adw_step, event_category, event_type, content, agent_id, payload, summary)

    pending = _deferred.get(agent_id) if agent_id is not None else None
    if pending is not None and event_type in ("PreToolUse", "PostToolUse", "Stop"):
        pending.append(log)
        return ""
    return log()


def log_system_event(
    adw_id: Optional[str],
    adw_step: Optional[str],
    level: str,
    message: str,
    file_path: Optional[str] = None,
    metadata: Optional[Dict[str, Any]] = None,
) -> str:
    """A system log line of the run (``SystemLog``; ``level`` ``DEBUG``, ``INFO``, ``WARNING`` or
    ``ERROR``)."""
    return _orch.adw_log_system(engine(), adw_id, adw_step, level, message, file_path, metadata)


def update_adw_status(
    adw_id: str,
    status: str,
    current_step: Optional[str] = None,
    completed_steps: Optional[int] = None,
    error_message: Optional[str] = None,
    error_step: Optional[str] = None,
) -> bool:
    """Sets the run's status and the given fields (``in_progress`` sets its start once; ``completed``,
    ``failed`` and ``cancelled`` its end and duration). False when there is no such run."""
    return _orch.adw_update_status(engine(), adw_id, status, current_step, completed_steps, error_message, error_step)


__all__ = [
    "close_logging",
    "init_logging",
    "log_adw_event",
    "log_step_end",
    "log_step_start",
    "log_system_event",
    "update_adw_status",
]
