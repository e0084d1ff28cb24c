"""The seed's ``adw_modules.adw_summarizer`` on orch: one-line summaries of an ADW's events by the
engine's summary model (``ORCH_SUMMARY_MODEL``, or ``[models] summary`` in ``.orch/config.toml``; the
seed used Haiku), with the seed's fixed fallbacks when there is none or it gives nothing."""

from __future__ import annotations

from typing import Any, Dict, Optional

from .. import _orch
from . import engine
from .adw_agent_sdk import AdhocPrompt, ModelName, quick_prompt


def _fallback(event_data: Dict[str, Any], event_type: str) -> str:
    """The seed's fixed summaries."""
    if event_type in ("TextBlock", "text"):
        return f"Response: {str(event_data.get('text', ''))[:150]}"
    if event_type in ("ThinkingBlock", "thinking"):
        return f"Thinking: {str(event_data.get('thinking', ''))[:100]}"
    if event_type in ("ToolUseBlock", "tool_use", "PreToolUse"):
        tool = event_data.get("tool_name") or event_data.get("name") or "unknown"
        return f"Using tool: {tool}"
    if event_type == "PostToolUse":
        return f"Tool done: {event_data.get('tool_name') or 'unknown'}"
    return f"{event_type}"


def summarize_event(event_data: Dict[str, Any], event_type: str) -> str:
    """A one-line summary of an event (``TextBlock``, ``ThinkingBlock``, ``ToolUseBlock``,
    ``PreToolUse``, ``result``, …): the engine's summary model's, else the seed's fallback. A
    ``result`` is its first 200 characters (``Step completed`` when empty), as in the seed."""
    if event_type == "result":
        text = str(event_data.get("result") or event_data.get("content") or "").strip()
        return text[:200] if text else "Step completed"
    summary: Optional[str] = _orch.adw_summarize(engine(), event_data, event_type)
    return summary if summary else _fallback(event_data, event_type)


async def fast_claude_query(prompt: str, model: str = ModelName.HAIKU.value, system_prompt: Optional[str] = None) -> str:
    """A one-shot prompt (the seed's Haiku call), as ``adw_agent_sdk.quick_prompt``."""
    return await quick_prompt(AdhocPrompt(prompt=prompt, model=model, system_prompt=system_prompt))


__all__ = ["fast_claude_query", "summarize_event"]
