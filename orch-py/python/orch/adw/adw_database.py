"""The seed's ``adw_modules.adw_database`` on orch's store: runs, their agents and log summaries."""

from __future__ import annotations

from typing import Any, Dict, Optional

from .. import _orch
from . import _step_agent, engine


def get_adw(adw_id: str) -> Optional[Dict[str, Any]]:
    """Run ``adw_id`` as the seed's row (``adw_name``, ``workflow_type``, ``status``, ``input_data``, …),
    or None."""
    row: Optional[Dict[str, Any]] = _orch.adw_get(engine(), adw_id)
    return row


def create_agent(
    orchestrator_agent_id: Optional[str],
    name: str,
    model: str,
    working_dir: Optional[str] = None,
    adw_id: Optional[str] = None,
    adw_step: Optional[str] = None,
    agent_id: Optional[str] = None,
) -> str:
    """Creates an agent of run ``adw_id``'s step ``adw_step`` (idle); its id. The next
    ``adw_agent_sdk.query_to_completion`` of the calling task runs on it."""
    created = _orch.adw_create_agent(engine(), orchestrator_agent_id, name, model, working_dir, adw_id, adw_step, agent_id)
    _step_agent.set(created)
    return created


def update_agent(
    agent_id: str,
    status: Optional[str] = None,
    session_id: Optional[str] = None,
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    total_cost: Optional[float] = None,
    old_status: Optional[str] = None,
) -> bool:
    """Overwrites the agent's status, session and totals (``old_status`` is read from the store: every
    status change is an event). False when there is no such agent."""
    return _orch.adw_update_agent(engine(), agent_id, status, session_id, input_tokens, output_tokens, total_cost)


def update_log_summary(log_id: str, summary: str) -> bool:
    """Sets the summary of event ``log_id`` (a ``SummaryUpdated`` event)."""
    if not log_id.isdigit():
        return False
    _orch.adw_log_event(engine(), None, None, "system", "SummaryUpdated", None, None, {"target_seq": int(log_id), "summary": summary})
    return True


__all__ = ["create_agent", "get_adw", "update_agent", "update_log_summary"]
