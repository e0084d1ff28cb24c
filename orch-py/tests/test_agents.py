"""Agents from Python: create, command (the reply, the cost), list, interrupt, delete, both APIs."""

from __future__ import annotations

import _thread
import asyncio
import pathlib
import threading
from typing import Any, Callable

import pytest

import orch


def test_a_commanded_agent_writes_its_file_and_reports_reply_and_cost(engine: orch.Engine, project: pathlib.Path) -> None:
    agent = engine.sync.create_agent("ada", system_prompt="You write greetings.", model="haiku")
    assert agent.name == "ada" and agent.status == "idle"
    assert agent.model == "claude-haiku-4-5", "an alias resolves; the provider is the default (scripted)"

    out = engine.sync.command("ada", "write a greeting for Ada")
    assert out.status == "completed" and out.stop_reason == "end_turn"
    assert out.final_text == "Done: greeted Ada."
    assert out.num_turns == 3
    assert (out.input_tokens, out.output_tokens) == (3500, 160)
    assert out.cost_usd > 0, "haiku's price applies to the scripted usage"
    assert (project / "hello.txt").read_text() == "Hello, Ada!\n"

    [listed] = engine.sync.agents()
    assert listed.name == "ada" and listed.status == "idle"
    assert listed.total_cost_usd == pytest.approx(out.cost_usd)
    assert listed.input_tokens == 3500


def test_the_awaitable_api_does_the_same(engine: orch.Engine) -> None:
    async def main() -> orch.Outcome:
        await engine.create_agent("bob", system_prompt="You write greetings.")
        out = await engine.command("bob", "write a greeting for Bob")
        agents = await engine.agents()
        assert [a.name for a in agents] == ["bob"]
        return out

    out = asyncio.run(main())
    assert out.final_text == "Done: greeted Bob."
    assert out.agent == "bob"


def test_missing_and_taken_agents_are_errors_of_their_kind(engine: orch.Engine) -> None:
    with pytest.raises(orch.NotFoundError, match="nobody"):
        engine.sync.command("nobody", "hello")
    engine.sync.create_agent("ada", system_prompt="x")
    with pytest.raises(orch.ConflictError, match="ada"):
        engine.sync.create_agent("ada", system_prompt="x")
    with pytest.raises(orch.UsageError):
        engine.sync.create_agent("cyd")  # neither a system prompt nor a template
    with pytest.raises(orch.OrchError) as caught:
        engine.sync.agent("nobody")
    assert caught.value.kind == "not_found"


def test_a_run_the_model_cannot_answer_fails_with_the_reason(engine: orch.Engine) -> None:
    engine.sync.create_agent("ada", system_prompt="x")
    with pytest.raises(orch.RunFailedError, match="no step matches"):
        engine.sync.command("ada", "something the script does not know")
    assert engine.sync.agent("ada").status != "executing", "the failed run left the agent"


def test_interrupt_and_delete(engine: orch.Engine) -> None:
    engine.sync.create_agent("ada", system_prompt="x")
    assert engine.sync.interrupt("ada") == "not_running"
    deleted = engine.sync.delete_agent("ada")
    assert deleted.name == "ada"
    assert engine.sync.agents() == []
    with pytest.raises(orch.NotFoundError):
        engine.sync.command("ada", "hello")
    engine.sync.create_agent("ada", system_prompt="x")  # the name is free again


# An agent whose first call runs a long command.
SLOW: dict[str, Any] = {
    "steps": [
        {"reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 30"}}]},
        {"repeat": True, "reply": [{"type": "text", "text": "done"}]},
    ]
}


def stop_reason(engine: orch.Engine, agent: str) -> str:
    """The reason of the agent's next `Stop` event."""
    for ev in engine.sync.follow(agent=agent):
        if ev.type == "Stop":
            return str(ev.payload["reason"])
    raise AssertionError("the log ended")


def test_a_cancelled_await_interrupts_the_run(project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> None:
    engine = orch.open(project, model=script(SLOW))

    async def main() -> None:
        await engine.create_agent("sleeper", system_prompt="x")
        task = asyncio.ensure_future(engine.command("sleeper", "sleep"))
        async for ev in engine.follow(agent="sleeper"):
            if ev.type == "ToolUse":
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The run records its end as interrupted and leaves the agent idle.
        async for ev in engine.follow(agent="sleeper"):
            if ev.type == "Stop":
                assert ev.payload["reason"] == "interrupted", ev.payload
                break

    asyncio.run(asyncio.wait_for(main(), 60))
    assert engine.sync.agent("sleeper").status == "idle"


def test_ctrl_c_in_a_blocking_command_interrupts_the_run(
    project: pathlib.Path, script: Callable[[dict[str, Any]], str]
) -> None:
    engine = orch.open(project, model=script(SLOW))
    engine.sync.create_agent("sleeper", system_prompt="x")

    def press_ctrl_c_once_the_command_runs() -> None:
        for ev in engine.sync.follow(agent="sleeper"):
            if ev.type == "ToolUse":
                break
        _thread.interrupt_main()  # what Ctrl-C does: SIGINT's handler raises KeyboardInterrupt

    presser = threading.Thread(target=press_ctrl_c_once_the_command_runs)
    presser.start()
    with pytest.raises(KeyboardInterrupt):
        engine.sync.command("sleeper", "sleep")
    presser.join(30)
    assert stop_reason(engine, "sleeper") == "interrupted"
    # The run's end is recorded (the agent left idle) without waiting for the 30 s command.
    for ev in engine.sync.follow(agent="sleeper"):
        if ev.type == "AgentStatusChanged" and ev.payload["new_status"] == "idle":
            break
    assert engine.sync.agent("sleeper").status == "idle"


def test_agents_commanded_at_once_run_concurrently(project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> None:
    # Each agent's command waits until the other's has started, so they finish only if both run at once.
    both = {
        "steps": [
            {
                "when": "^go (\\w+) (\\w+)$",
                "repeat": True,
                "reply": [
                    {
                        "type": "tool_use",
                        "name": "Bash",
                        "input": {"command": "touch $1.started; for i in $$(seq 300); do test -f $2.started && exit 0; sleep 0.1; done; exit 1"},
                    }
                ],
            },
            {"repeat": True, "reply": [{"type": "text", "text": "both ran"}]},
        ]
    }
    engine = orch.open(project, model=script(both))

    async def main() -> list[orch.Outcome]:
        await engine.create_agent("left", system_prompt="x")
        await engine.create_agent("right", system_prompt="x")
        return list(await asyncio.gather(engine.command("left", "go left right"), engine.command("right", "go right left")))

    outs = asyncio.run(asyncio.wait_for(main(), 60))
    assert [o.final_text for o in outs] == ["both ran", "both ran"]
    results = [e.payload["is_error"] for e in engine.sync.events() if e.type == "ToolResult"]
    assert results == [False, False], "each command saw the other one start"
