"""Workflow runs (ADWs) from Python: a scripted team runs plan_build to its end, awaited or in the
background; runs are listed, read and their events filtered; bad requests are errors of their kind."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any, Callable

import pytest

import orch
from conftest import TEAM


@pytest.fixture
def team(project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> orch.Engine:
    return orch.open(project, model=script(TEAM))


def test_plan_build_runs_to_its_end(team: orch.Engine, project: pathlib.Path) -> None:
    types = {t["type"]: t for t in team.workflows.types()}
    assert types["plan_build"]["steps"] == ["plan", "build"]
    assert "prompt" in types["plan_build"]["inputs"]

    run = asyncio.run(team.workflows.start("plan_build", "Add a parser"))
    assert run.status == "completed", run.error_message
    assert (run.completed_steps, run.total_steps) == (2, 2)
    assert run.type == "plan_build" and run.name.startswith("plan_build-")
    assert run.input["prompt"] == "Add a parser"
    assert run.output["plan_path"].endswith("specs/parser.md")
    assert (project / "specs/parser.md").exists() and (project / "src/parser.rs").exists()

    assert team.sync.workflows.get(run.id).status == "completed"
    assert [r.id for r in team.sync.workflows.list()] == [run.id]
    events = team.sync.events(workflow=run.id)
    steps = [(e.type, e.payload["step_name"]) for e in events if e.type in ("StepStart", "StepEnd")]
    assert steps == [("StepStart", "plan"), ("StepEnd", "plan"), ("StepStart", "build"), ("StepEnd", "build")]
    assert all(e.workflow_id == run.id for e in events)
    # Each step ran a fresh agent named after it.
    names = sorted(a.name for a in team.sync.agents() if a.workflow_id == run.id)
    assert [n.split("-")[0] for n in names] == ["build", "plan"]


def test_a_background_run_is_waited_for(team: orch.Engine) -> None:
    pending = team.sync.workflows.start("plan_build_review", "Add a parser", name="parser", wait=False)
    assert pending.name == "parser" and pending.status == "pending"
    done = team.sync.workflows.wait(pending.id)
    assert done.status == "completed", done.error_message
    assert done.output["verdict"] == "PASS"
    with pytest.raises(orch.ConflictError):
        team.sync.workflows.resume(done.id)  # it has ended


def test_bad_workflow_requests_are_errors_of_their_kind(team: orch.Engine) -> None:
    with pytest.raises(orch.UsageError, match="unknown workflow type 'nope'"):
        team.sync.workflows.start("nope", "x")
    with pytest.raises(orch.UsageError, match="'prompt' is required"):
        team.sync.workflows.start("plan_build")
    with pytest.raises(orch.UsageError, match="not a workflow run id"):
        team.sync.workflows.get("not-an-id")
    with pytest.raises(orch.NotFoundError):
        team.sync.workflows.get("0192d9b4-7c1e-7000-8000-000000000001")
    assert team.sync.workflows.list() == []
