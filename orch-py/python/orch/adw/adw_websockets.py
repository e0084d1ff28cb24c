"""The seed's ``adw_modules.adw_websockets`` name its workflow scripts import. orch needs no relay: every
record an ADW script writes is an event of the store, which ``orch serve`` streams to the dashboard."""

from __future__ import annotations

from .. import _orch
from . import engine


def broadcast_adw_event_summary_update(adw_id: str, event_id: str, summary: str) -> bool:
    """Sets the summary of event ``event_id`` of run ``adw_id`` (a ``SummaryUpdated`` event, which the
    dashboard applies to that event). False when ``event_id`` is not an event's id."""
    if not event_id.isdigit():
        return False
    payload = {"target_seq": int(event_id), "summary": summary}
    _orch.adw_log_event(engine(), adw_id, None, "system", "SummaryUpdated", None, None, payload)
    return True


__all__ = ["broadcast_adw_event_summary_update"]
