"""The same engine on PostgreSQL: agents, events followed from a second engine, a workflow run, a
Python tool and hook, and the seed's ADW modules.

Run when ORCH_TEST_PG_URL is set, ORCH_TEST_PG=1 (scripts/test.sh sets it when a server answers) or
CI=true (where a missing server fails the tests); skipped otherwise. Each test has a schema of its own,
dropped afterwards (with psql, when it is installed)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
import time
from typing import Any, Callable, Iterator

import pytest

import orch
from conftest import TEAM, WRITER

PG_URL = os.environ.get("ORCH_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.skipif(
    not (os.environ.get("ORCH_TEST_PG_URL") or os.environ.get("ORCH_TEST_PG") == "1" or os.environ.get("CI") == "true"),
    reason="needs PostgreSQL (set ORCH_TEST_PG_URL, or ORCH_TEST_PG=1 for the local server)",
)


@pytest.fixture
def pg(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema of this test's own (ORCH_PG_SCHEMA); yields the server's URL."""
    schema = f"orch_py_{time.time_ns():x}{os.getpid():x}"
    monkeypatch.setenv("ORCH_PG_SCHEMA", schema)
    yield PG_URL
    if shutil.which("psql"):
        subprocess.run(["psql", PG_URL, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'], capture_output=True)


def test_agents_and_events_on_postgres(pg: str, project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> None:
    engine = orch.open(pg, cwd=project, model=script(WRITER))
    other = orch.open(pg, cwd=project)  # a second engine on the same database

    async def main() -> tuple[orch.Outcome, list[int], int]:
        await engine.create_agent("ada", system_prompt="x", model="haiku")
        seen: list[int] = []

        async def follow() -> None:
            async for ev in other.follow(since=0):
                seen.append(ev.seq)

        follower = asyncio.ensure_future(follow())
        out = await engine.command("ada", "write a greeting for Ada")
        last = await engine.last_seq()

        async def caught_up() -> None:
            while not seen or seen[-1] < last:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(caught_up(), 30)
        follower.cancel()
        return out, seen, last

    out, seen, last = asyncio.run(main())
    assert out.final_text == "Done: greeted Ada." and out.cost_usd > 0
    assert seen == list(range(1, last + 1)), "the other engine saw each event once"
    assert [a.name for a in other.sync.agents()] == ["ada"]
    assert (project / "hello.txt").exists()


def test_a_workflow_on_postgres(pg: str, project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> None:
    engine = orch.open(pg, cwd=project, model=script(TEAM))
    run = engine.sync.workflows.start("plan_build", "Add a parser")
    assert run.status == "completed", run.error_message
    assert orch.open(pg, cwd=project).sync.workflows.get(run.id).completed_steps == 2


def test_a_python_tool_and_a_denying_hook_on_postgres(
    pg: str, project: pathlib.Path, script: Callable[[dict[str, Any]], str]
) -> None:
    steps = {
        "steps": [
            {"when": "^forecast$", "reply": [{"type": "tool_use", "name": "weather", "input": {"city": "Oslo"}}]},
            {"when": "^Oslo", "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "f.txt", "content": "x"}}]},
            {"when": "hook: (.*)$", "reply": [{"type": "text", "text": "Refused: $1"}]},
        ]
    }
    engine = orch.open(pg, cwd=project, model=script(steps))
    engine.add_tool(lambda city: f"{city}: sunny", name="weather")
    engine.add_hook("PreToolUse", lambda event: {"decision": "deny", "reason": "read-only"}, "Write")
    engine.sync.create_agent("ada", system_prompt="x")
    assert engine.sync.command("ada", "forecast").final_text == "Refused: read-only"
    assert not (project / "f.txt").exists()
    seen = orch.open(pg, cwd=project).sync.events(agent="ada")
    assert [e.payload["content"] for e in seen if e.type == "ToolResult"] == [
        "Oslo: sunny",
        "Tool call denied by a PreToolUse hook: read-only",
    ]


def test_the_seed_adw_modules_on_postgres(pg: str, project: pathlib.Path) -> None:
    import orch.adw
    from orch.adw import adw_database, adw_logging

    orch.adw.use(orch.open(pg, cwd=project))
    try:
        adw_id = orch.adw.create_adw("plan_build", {"prompt": "Add a parser"})
        agent_id = adw_database.create_agent(None, f"plan-{adw_id[:8]}", "claude-haiku-4-5", str(project), adw_id, "plan")
        adw_logging.log_step_start(adw_id, "plan", agent_id, {"prompt": "/plan Add a parser"})
        assert adw_logging.update_adw_status(adw_id, "in_progress", current_step="plan")
    finally:
        orch.adw.use(None)
    other = orch.open(pg, cwd=project)  # what `orch serve` on the same database reads
    run = other.sync.workflows.get(adw_id)
    assert (run.status, run.current_step) == ("in_progress", "plan")
    kinds = [e.type for e in other.sync.events(workflow=adw_id)]
    assert "AgentCreated" in kinds and "StepStart" in kinds and kinds[-1] == "WorkflowUpdated"
