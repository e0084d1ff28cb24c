"""The event log from Python: read with filters, and followed live (every event exactly once)."""

from __future__ import annotations

import asyncio
import datetime
import threading

import orch


def test_events_are_read_as_python_objects(engine: orch.Engine) -> None:
    engine.sync.create_agent("ada", system_prompt="x")
    engine.sync.create_agent("bob", system_prompt="x")
    out = engine.sync.command("ada", "write a greeting for Ada")

    events = engine.sync.events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "gap-free, oldest first"
    assert events[-1].seq == engine.sync.last_seq()
    first = events[0]
    assert first.type == "AgentCreated" and first.category == "agent"
    assert isinstance(first.ts, datetime.datetime) and first.ts.tzinfo is not None
    assert first.payload["agent"]["name"] == "ada"
    assert "type" not in first.payload
    assert first.to_dict()["seq"] == 1 and first.to_dict()["type"] == "AgentCreated"

    ada = engine.sync.agent("ada")
    mine = engine.sync.events(agent="ada")
    assert mine and all(e.agent_id == ada.id for e in mine)
    assert len(engine.sync.events(agent=ada.id)) == len(mine), "by name or by id"
    texts = [e.payload["text"] for e in mine if e.type == "Text"]
    assert texts == ["Writing it.", "Done: greeted Ada."]
    tools = [e.payload["tool_name"] for e in mine if e.type == "ToolUse"]
    assert tools == ["Write", "Read"]
    assert all(e.task_slug == out.task_slug for e in mine if e.type == "ToolUse")

    since = events[3].seq
    assert [e.seq for e in engine.sync.events(since=since, limit=2)] == [since + 1, since + 2]


def test_an_async_follower_sees_every_event_once_while_a_command_runs(engine: orch.Engine) -> None:
    async def main() -> tuple[list[int], int]:
        await engine.create_agent("ada", system_prompt="x")
        seen: list[int] = []

        async def follow() -> None:
            async for ev in engine.follow(since=0):
                seen.append(ev.seq)

        follower = asyncio.ensure_future(follow())
        await asyncio.sleep(0)  # the follower starts before the command
        await engine.command("ada", "write a greeting for Ada")
        last = await engine.last_seq()

        async def caught_up() -> None:
            while not seen or seen[-1] < last:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(caught_up(), 30)
        await asyncio.sleep(0.1)  # nothing more, and nothing twice
        follower.cancel()
        return seen, last

    seen, last = asyncio.run(main())
    assert seen == list(range(1, last + 1)), "each event once, in order, none missed"
    assert last > 5


def test_a_blocking_follower_sees_events_appended_after_it_started(engine: orch.Engine) -> None:
    engine.sync.create_agent("ada", system_prompt="x")
    start = engine.sync.last_seq()
    types: list[str] = []

    def run() -> None:
        engine.sync.command("ada", "write a greeting for Ada")

    worker = threading.Thread(target=run)
    worker.start()
    for ev in engine.sync.follow(since=start, agent="ada"):
        types.append(ev.type)
        if ev.type == "Result":
            break
    worker.join(30)
    assert types[0] == "AgentStatusChanged" and types[-1] == "Result"
    assert types.count("ToolUse") == 2
