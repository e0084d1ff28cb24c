"""Python tools: a sync or async callable the engine's agents call; an exception reaches the model as a
tool error carrying the traceback; an interrupted run stops waiting for the tool."""

from __future__ import annotations

import asyncio
import pathlib
import sys
import threading
import time
from typing import Any, Callable

import pytest

import orch

# Calls `weather` for the city asked about, then repeats the tool's answer; calls `broken` when told
# "boom", then repeats the error's last line.
FORECAST: dict[str, Any] = {
    "steps": [
        {
            "when": "forecast for (\\w+)",
            "repeat": True,
            "reply": [{"type": "tool_use", "name": "weather", "input": {"city": "$1", "days": 2}}],
        },
        {"when": "^(.*sunny.*)$", "repeat": True, "reply": [{"type": "text", "text": "Tool said: $1"}]},
        {"when": "boom", "repeat": True, "reply": [{"type": "tool_use", "name": "broken", "input": {"path": "x.txt"}}]},
        {"when": "wrong arguments", "repeat": True, "reply": [{"type": "tool_use", "name": "weather", "input": {"town": "Rome"}}]},
        {"when": "(\\w+Error: .*)$", "repeat": True, "reply": [{"type": "text", "text": "Model saw: $1"}]},
        {"when": "^(unknown tool '\\w+')", "repeat": True, "reply": [{"type": "text", "text": "Model saw: $1"}]},
    ]
}


@pytest.fixture
def forecast(project: pathlib.Path, script: Callable[..., str]) -> orch.Engine:
    engine = orch.open(project, model=script(FORECAST))
    engine.sync.create_agent("ada", system_prompt="You answer with the tools.")
    return engine


def tool_results(engine: orch.Engine) -> list[dict[str, Any]]:
    return [e.payload for e in engine.sync.events() if e.type == "ToolResult"]


def test_the_agent_gets_a_sync_tools_result(forecast: orch.Engine) -> None:
    calls: list[tuple[str, int]] = []

    @forecast.tool
    def weather(city: str, days: int = 1) -> str:
        """The weather forecast for a city."""
        calls.append((city, days))
        return f"{city}: sunny for {days} days"

    out = forecast.sync.command("ada", "the forecast for Paris")
    assert out.final_text == "Tool said: Paris: sunny for 2 days"
    assert calls == [("Paris", 2)], "the model's input arrives as keyword arguments"
    [result] = tool_results(forecast)
    assert result["tool_name"] == "weather" and result["is_error"] is False


def test_an_async_tool_registered_with_the_decorators_arguments(forecast: orch.Engine) -> None:
    seen: list[str] = []

    @forecast.tool("weather", "The weather forecast.", {"type": "object", "properties": {"city": {"type": "string"}}})
    async def look_up(city: str, days: int) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        seen.append(threading.current_thread().name)
        return {"city": city, "sky": "sunny"}

    async def main() -> orch.Outcome:
        return await forecast.command("ada", "the forecast for Oslo")

    out = asyncio.run(main())
    assert out.final_text == 'Tool said: {"city":"Oslo","sky":"sunny"}', "a dict comes back as JSON"
    assert seen == ["orch-callbacks"], "async tools run on the package's callback loop"


def test_a_raising_tool_gives_the_model_an_error_with_the_traceback(forecast: orch.Engine) -> None:
    def read_forecast(path: str) -> str:
        raise ValueError(f"no such forecast: {path}")

    @forecast.tool
    def broken(path: str) -> str:
        return read_forecast(path)

    out = forecast.sync.command("ada", "boom")
    assert out.final_text == "Model saw: ValueError: no such forecast: x.txt"
    [result] = tool_results(forecast)
    assert result["is_error"] is True
    text = result["content"]
    assert text.startswith("Traceback (most recent call last):"), text
    assert "in broken" in text and "in read_forecast" in text, "the frames of the tool's own code"
    assert 'raise ValueError(f"no such forecast: {path}")' in text
    assert "_callbacks.py" not in text, "no frames of the package's machinery"


def test_an_async_tools_exception_carries_its_traceback_too(forecast: orch.Engine) -> None:
    @forecast.tool
    async def broken(path: str) -> str:
        await asyncio.sleep(0)
        raise KeyError(path)

    forecast.sync.command("ada", "boom")
    [result] = tool_results(forecast)
    assert result["is_error"] is True
    assert "in broken" in result["content"] and result["content"].endswith("KeyError: 'x.txt'")
    assert "concurrent/futures" not in result["content"] and "_callbacks.py" not in result["content"]


def test_arguments_that_do_not_fit_the_function_are_a_tool_error(forecast: orch.Engine) -> None:
    @forecast.tool
    def weather(city: str) -> str:
        return city

    out = forecast.sync.command("ada", "call it with the wrong arguments")
    assert out.final_text.startswith("Model saw: TypeError: ")
    assert "town" in out.final_text


def test_a_tool_replaces_its_namesake_and_can_be_removed(forecast: orch.Engine) -> None:
    forecast.add_tool(lambda city, days: "cloudy", name="weather")
    forecast.add_tool(lambda city, days: f"{city} is sunny", name="weather", description="the forecast")
    assert forecast.sync.command("ada", "the forecast for Lima").final_text == "Tool said: Lima is sunny"
    assert forecast.remove_tool("weather") is True
    assert forecast.remove_tool("weather") is False
    assert forecast.sync.command("ada", "the forecast for Lima").final_text == "Model saw: unknown tool 'weather'"
    last = tool_results(forecast)[-1]
    assert last["is_error"] is True and last["content"].startswith("unknown tool 'weather'")


def test_bad_tools_are_refused_when_added(forecast: orch.Engine) -> None:
    with pytest.raises(orch.UsageError, match="callable"):
        forecast.add_tool("not a function")  # type: ignore[arg-type]
    with pytest.raises(orch.UsageError, match="tool name 'two words'"):
        forecast.add_tool(lambda: "x", name="two words")
    with pytest.raises(orch.UsageError, match="input_schema must be a dict"):
        forecast.add_tool(lambda: "x", name="x", input_schema=["not", "a", "schema"])  # type: ignore[arg-type]


# The agent runs a tool that takes 30 s.
SLOW_TOOL: dict[str, Any] = {
    "steps": [
        {"when": "^wait$", "reply": [{"type": "tool_use", "name": "slow", "input": {}}]},
        {"repeat": True, "reply": [{"type": "text", "text": "done"}]},
    ]
}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_interrupting_the_run_stops_waiting_for_a_slow_tool(
    kind: str, project: pathlib.Path, script: Callable[..., str]
) -> None:
    engine = orch.open(project, model=script(SLOW_TOOL))
    engine.sync.create_agent("sleeper", system_prompt="x")
    cancelled = threading.Event()
    # The sync tool would take 30 s, but is let go once the test is done: an interrupted sync tool
    # finishes on its own thread, which must not outlive the test (nor be inside Python when the
    # interpreter exits at the end of the session).
    let_go = threading.Event()
    if kind == "sync":
        engine.add_tool(lambda: let_go.wait(30), name="slow")
    else:

        async def slow() -> str:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "slept"

        engine.add_tool(slow)

    def interrupt_once_the_tool_runs() -> None:
        for ev in engine.sync.follow(agent="sleeper"):
            if ev.type == "ToolUse":
                break
        engine.sync.interrupt("sleeper")

    started = time.monotonic()
    interrupter = threading.Thread(target=interrupt_once_the_tool_runs)
    interrupter.start()
    try:
        out = engine.sync.command("sleeper", "wait")
        interrupter.join(10)
        assert out.status == "interrupted"
        assert time.monotonic() - started < 20, "the run did not wait for the 30 s tool"
        if kind == "async":
            assert cancelled.wait(5), "the tool's task was cancelled on the callback loop"
    finally:
        let_go.set()
