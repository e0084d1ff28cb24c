"""Python workflows (orch.workflow): a class with steps runs on the engine's workflow runner, its steps
recorded as the run's StepStart/StepEnd with their outputs; a step that raises fails the run with its
traceback; and a run whose process is killed mid-step resumes in a new process without running again
the steps that completed."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any, Dict

import pytest

import orch
from orch.workflow import StepContext, Workflow, step


class Release(Workflow):
    """Tag and announce a release."""

    inputs = ["version"]

    @step
    def tag(self, ctx: StepContext) -> str:
        return f"v{ctx.input['version']}"

    @step
    async def announce(self, ctx: StepContext) -> Dict[str, Any]:
        return {"tag": ctx.outputs["tag"], "run": ctx.run_id, "attempt": ctx.attempt}


class Broken(Workflow):
    name = "broken"

    @step
    def first(self, ctx: StepContext) -> None:
        raise RuntimeError("the disk is full")

    @step
    def never(self, ctx: StepContext) -> None:
        raise AssertionError("not reached")


def test_a_python_workflow_runs_on_the_engine(project: pathlib.Path) -> None:
    engine = orch.open(project)
    assert engine.workflows.register(Release) == "release"
    types = {t["type"]: t for t in engine.workflows.types()}
    assert types["release"] == {
        "type": "release",
        "description": "Tag and announce a release.",
        "steps": ["tag", "announce"],
        "inputs": ["version"],
        "source": "python",
        "worktree": False,
    }
    run = engine.sync.workflows.start("release", inputs={"version": "1.2"})
    assert (run.status, run.completed_steps, run.total_steps) == ("completed", 2, 2), run.error_message
    assert run.output["tag"] == "v1.2"
    assert run.output["announce"] == {"tag": "v1.2", "run": run.id, "attempt": 1}
    events = engine.sync.events(workflow=run.id)
    steps = [(e.type, e.payload["step_name"]) for e in events if e.type in ("StepStart", "StepEnd")]
    assert steps == [("StepStart", "tag"), ("StepEnd", "tag"), ("StepStart", "announce"), ("StepEnd", "announce")]
    with pytest.raises(orch.UsageError, match="'version' is required by release"):
        engine.sync.workflows.start("release")


def test_a_raising_step_fails_the_run_with_its_traceback(project: pathlib.Path) -> None:
    engine = orch.open(project)
    engine.workflows.register(Broken)
    run = asyncio_run(engine.workflows.start("broken"))
    assert (run.status, run.error_step) == ("failed", "first")
    assert run.error_message is not None
    assert "RuntimeError: the disk is full" in run.error_message and "in first" in run.error_message


def test_bad_classes_are_refused(project: pathlib.Path) -> None:
    engine = orch.open(project)

    class Empty(Workflow):
        pass

    with pytest.raises(TypeError, match="has no steps"):
        engine.workflows.register(Empty)
    with pytest.raises(TypeError, match="subclass of orch.workflow.Workflow"):
        engine.sync.workflows.register(int)  # type: ignore[arg-type]


def asyncio_run(call: Any) -> Any:
    import asyncio

    return asyncio.run(call)


# The workflow of the kill test, in a process of its own: each step appends "<step> started" and, when
# done, "<step> done" to ran.log; step two blocks the first time (until the process is killed).
SCRIPT = textwrap.dedent(
    """
    import pathlib, sys, time
    import orch
    from orch.workflow import StepContext, Workflow, step

    log = pathlib.Path(sys.argv[1]) / "ran.log"

    def note(line: str) -> None:
        with log.open("a") as f:
            f.write(line + "\\n")
            f.flush()

    class Durable(Workflow):
        @step
        def one(self, ctx: StepContext) -> int:
            note("one started"); note("one done"); return 1

        @step
        def two(self, ctx: StepContext) -> int:
            note(f"two started {ctx.attempt}")
            if ctx.attempt == 1:
                time.sleep(600)  # killed here
            note("two done"); return ctx.outputs["one"] + 1

        @step
        async def three(self, ctx: StepContext) -> int:
            note("three started"); note("three done"); return ctx.outputs["two"] + 1

    engine = orch.open(sys.argv[1])
    engine.workflows.register(Durable)
    if sys.argv[2] == "start":
        run = engine.sync.workflows.start("durable", wait=False)
        print(run.id, flush=True)
        engine.sync.workflows.wait(run.id)
    else:
        run = engine.sync.workflows.resume(sys.argv[3])
        print(run.status, run.output["three"], flush=True)
    """
)


def test_a_run_killed_mid_step_resumes_in_a_new_process(project: pathlib.Path, tmp_path: pathlib.Path) -> None:
    script = tmp_path / "durable.py"
    script.write_text(SCRIPT)
    log = project / "ran.log"
    first = subprocess.Popen([sys.executable, str(script), str(project), "start"], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    run_id = first.stdout.readline().strip()
    deadline = time.monotonic() + 120
    while "two started 1" not in (log.read_text() if log.exists() else ""):
        assert first.poll() is None, "the first process ended early"
        assert time.monotonic() < deadline, "step two never started"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL

    run = orch.open(project).sync.workflows.get(run_id)
    assert (run.status, run.current_step, run.completed_steps) == ("in_progress", "two", 1)

    second = subprocess.run(
        [sys.executable, str(script), str(project), "resume", run_id], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["completed", "3"]
    lines = log.read_text().splitlines()
    assert lines == ["one started", "one done", "two started 1", "two started 2", "two done", "three started", "three done"]
    for s in ("one", "two", "three"):
        assert lines.count(f"{s} done") == 1, f"step {s} completed exactly once"
    events = orch.open(project).sync.events(workflow=run_id)
    starts = [(e.payload["step_name"], e.payload["attempt"]) for e in events if e.type == "StepStart"]
    assert starts == [("one", 1), ("two", 1), ("two", 2), ("three", 1)]
