"""Python hooks: a PreToolUse hook that denies `Write` keeps the file unwritten and tells the model why;
what hooks are given; decisions as dicts or classes; sync and async; a raising hook is recorded with
its traceback and the run goes on."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any, Callable, Optional

import pytest

import orch
from orch.hooks import AddContext, Deny

# Writes hello.txt when asked for a greeting; repeats a refusal or an added context; otherwise answers.
GREETER: dict[str, Any] = {
    "steps": [
        {
            "when": "greeting for (\\w+)",
            "repeat": True,
            "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "hello.txt", "content": "Hello, $1!\n"}}],
        },
        {"when": "denied by a PreToolUse hook: (.*)$", "repeat": True, "reply": [{"type": "text", "text": "Refused: $1"}]},
        {"when": "NOTE: (.*)$", "repeat": True, "reply": [{"type": "text", "text": "Noted: $1"}]},
        {"when": "^Wrote ", "repeat": True, "reply": [{"type": "text", "text": "Written."}]},
    ]
}


@pytest.fixture
def greeter(project: pathlib.Path, script: Callable[..., str]) -> orch.Engine:
    engine = orch.open(project, model=script(GREETER))
    engine.sync.create_agent("ada", system_prompt="You write greetings.")
    return engine


def hook_events(engine: orch.Engine) -> list[dict[str, Any]]:
    return [e.payload for e in engine.sync.events() if e.type == "HookInvoked"]


def test_a_hook_that_denies_write_keeps_the_file_unwritten_and_the_model_sees_why(
    greeter: orch.Engine, project: pathlib.Path
) -> None:
    seen: list[dict[str, Any]] = []

    @greeter.hook("PreToolUse", matcher="Write")
    def no_writing(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"decision": "deny", "reason": "no writing today"}

    out = greeter.sync.command("ada", "write a greeting for Ada")
    assert out.final_text == "Refused: no writing today"
    assert not (project / "hello.txt").exists()
    [event] = seen
    assert event["hook_event_name"] == "PreToolUse" and event["tool_name"] == "Write"
    assert event["tool_input"] == {"file_path": "hello.txt", "content": "Hello, Ada!\n"}
    assert event["agent_name"] == "ada" and event["cwd"] == str(project.resolve())
    [invoked] = hook_events(greeter)
    assert invoked["hook_name"] == "test_a_hook_that_denies_write_keeps_the_file_unwritten_and_the_model_sees_why.<locals>.no_writing"
    assert (invoked["decision"], invoked["detail"]) == ("deny", "no writing today")
    [result] = [e.payload for e in greeter.sync.events() if e.type == "ToolResult"]
    assert result["is_error"] is True


def test_an_async_hook_returning_a_decision_class(greeter: orch.Engine, project: pathlib.Path) -> None:
    async def guard(event: dict[str, Any]) -> Optional[Deny]:
        await asyncio.sleep(0.01)
        return Deny(f"{event['tool_input']['file_path']} is read-only")

    greeter.add_hook("PreToolUse", guard, "Write|Edit", name="read-only")
    out = asyncio.run(greeter.command("ada", "write a greeting for Bob"))
    assert out.final_text == "Refused: hello.txt is read-only"
    assert not (project / "hello.txt").exists()
    assert hook_events(greeter)[0]["hook_name"] == "read-only"


def test_hooks_that_continue_or_do_not_match_let_the_tool_run(greeter: orch.Engine, project: pathlib.Path) -> None:
    calls: list[str] = []

    @greeter.hook("PreToolUse", matcher="Read")
    def only_reads(event: dict[str, Any]) -> dict[str, Any]:
        calls.append("only_reads")
        return {"decision": "deny", "reason": "no reading"}

    @greeter.hook("PreToolUse")
    def everything(event: dict[str, Any]) -> None:
        calls.append(event["tool_name"])

    @greeter.hook("PostToolUse", matcher="Write")
    def remark(event: dict[str, Any]) -> AddContext:
        return AddContext(f"NOTE: {event['tool_name']} said {event['tool_response'].split()[0]}")

    out = greeter.sync.command("ada", "write a greeting for Cy")
    assert (project / "hello.txt").read_text() == "Hello, Cy!\n"
    assert calls == ["Write"], "the Read matcher does not match Write"
    assert out.final_text == "Noted: Write said Wrote"
    decisions = [(h["hook_event"], h["decision"]) for h in hook_events(greeter)]
    assert decisions == [("PreToolUse", "continue"), ("PostToolUse", "add_context")]


def test_a_raising_hook_is_recorded_with_its_traceback_and_the_run_goes_on(
    greeter: orch.Engine, project: pathlib.Path
) -> None:
    @greeter.hook("PreToolUse")
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("the policy service is down")

    out = greeter.sync.command("ada", "write a greeting for Di")
    assert out.final_text == "Written."
    assert (project / "hello.txt").read_text() == "Hello, Di!\n"
    [invoked] = hook_events(greeter)
    assert invoked["decision"] == "error"
    assert invoked["detail"].startswith("Traceback (most recent call last):")
    assert "in broken" in invoked["detail"]
    assert invoked["detail"].endswith("RuntimeError: the policy service is down")


def test_a_hook_returning_something_else_is_a_hook_error_naming_the_decisions(greeter: orch.Engine) -> None:
    greeter.add_hook("PreToolUse", lambda event: {"decision": "maybe"})
    greeter.sync.command("ada", "write a greeting for Ed")
    [invoked] = hook_events(greeter)
    assert invoked["decision"] == "error"
    assert "continue, deny, ask" in invoked["detail"]


def test_claude_code_shaped_answers_are_read(greeter: orch.Engine, project: pathlib.Path) -> None:
    greeter.add_hook(
        "PreToolUse",
        lambda event: {"hookSpecificOutput": {"permissionDecision": "deny", "permissionDecisionReason": "policy"}},
    )
    assert greeter.sync.command("ada", "write a greeting for Flo").final_text == "Refused: policy"
    assert not (project / "hello.txt").exists()


def test_bad_events_and_matchers_are_refused_when_added(greeter: orch.Engine) -> None:
    with pytest.raises(orch.UsageError, match='hook event "preToolUse" is not supported'):
        greeter.hook("preToolUse")
    with pytest.raises(orch.UsageError, match="invalid hook matcher"):
        greeter.hook("PreToolUse", matcher="(")
    with pytest.raises(orch.UsageError, match="invalid hook matcher"):
        greeter.sync.add_hook("PreToolUse", lambda event: None, "(")
    with pytest.raises(orch.UsageError, match="callable"):
        greeter.add_hook("PreToolUse", 42)  # type: ignore[arg-type]
