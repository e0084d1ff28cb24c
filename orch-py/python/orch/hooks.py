"""The decisions a Python hook can return (``engine.hook``), one class each.

A hook may return one of these, ``None`` (go on), or the same as a dict (``{"decision": "deny",
"reason": "…"}``)::

    from orch.hooks import Deny

    @engine.hook("PreToolUse", matcher="Write|Edit")
    def read_only(event: dict) -> Deny | None:
        return Deny("this agent only reads") if "secrets" in event["tool_input"].get("file_path", "") else None
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union


@dataclass(frozen=True)
class Continue:
    """Go on unchanged (what returning ``None`` means)."""

    def to_dict(self) -> Dict[str, Any]:
        return {"decision": "continue"}


@dataclass(frozen=True)
class Deny:
    """Do not run the tool (PreToolUse) or the prompt (UserPromptSubmit); the model gets ``reason`` as
    the tool's error."""

    reason: str

    def to_dict(self) -> Dict[str, Any]:
        return {"decision": "deny", "reason": self.reason}


@dataclass(frozen=True)
class Ask:
    """Ask a person before the tool runs (PreToolUse): the run waits, durably, for an approval."""

    question: str

    def to_dict(self) -> Dict[str, Any]:
        return {"decision": "ask", "question": self.question}


@dataclass(frozen=True)
class RewriteInput:
    """Run the tool with this input instead (PreToolUse)."""

    input: Dict[str, Any]

    def to_dict(self) -> Dict[str, Any]:
        return {"decision": "rewrite_input", "input": dict(self.input)}


@dataclass(frozen=True)
class AddContext:
    """Add text for the model: after the prompt or the tool's result."""

    context: str

    def to_dict(self) -> Dict[str, Any]:
        return {"decision": "add_context", "context": self.context}


@dataclass(frozen=True)
class ReplaceOutput:
    """Give the model this output instead of the tool's (PostToolUse)."""

    output: str
    is_error: bool = False

    def to_dict(self) -> Dict[str, Any]:
        return {"decision": "replace_output", "output": self.output, "is_error": self.is_error}


@dataclass(frozen=True)
class Stop:
    """End the turn after this point."""

    reason: str

    def to_dict(self) -> Dict[str, Any]:
        return {"decision": "stop", "reason": self.reason}


Decision = Union[Continue, Deny, Ask, RewriteInput, AddContext, ReplaceOutput, Stop]
"""One of the decision classes."""

HookResult = Optional[Union[Decision, Mapping[str, Any]]]
"""What a hook returns: ``None``, a decision, or a decision as a dict."""

__all__ = [
    "AddContext",
    "Ask",
    "Continue",
    "Decision",
    "Deny",
    "HookResult",
    "ReplaceOutput",
    "RewriteInput",
    "Stop",
]
