"""A program exits cleanly while the engine is still busy for it. An engine thread inside Python when
the interpreter finalizes aborts the process (`Fatal Python error: PyGILState_Release`, or a segfault),
so the engine's threads never run Python callables (a sync tool interrupted mid-call goes on on a daemon
thread of the package's pool), and the package's exit hook shuts them out of Python (calls completing
for asyncio loops on daemon threads: 13 of 20 runs of that program aborted before)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any, Callable, Dict

from test_tools import SLOW_TOOL  # its `wait` calls the tool `slow`

# A program whose run was interrupted while its sync tool ran, and which exits while that tool still
# runs Python code (from the program's first exit hook on, for a few seconds).
EXIT_WHILE_A_TOOL_RUNS = """
import atexit, sys, threading, time
import orch

exiting = threading.Event()
atexit.register(exiting.set)  # runs before the package's own exit hook

def slow() -> str:
    exiting.wait(60)
    until = time.monotonic() + 3
    while time.monotonic() < until:
        time.sleep(0.001)
    return "slept"

engine = orch.open(sys.argv[1], model=sys.argv[2])
engine.sync.create_agent("sleeper", system_prompt="x")
engine.add_tool(slow)

def interrupt_once_the_tool_runs() -> None:
    for ev in engine.sync.follow(agent="sleeper"):
        if ev.type == "ToolUse":
            break
    engine.sync.interrupt("sleeper")

threading.Thread(target=interrupt_once_the_tool_runs, daemon=True).start()
print(engine.sync.command("sleeper", "wait").status, flush=True)
"""

# A program with asyncio loops on four daemon threads, each awaiting 32 engine calls at a time, over
# and over, which exits meanwhile.
EXIT_WHILE_CALLS_COMPLETE = """
import asyncio, sys, threading, time
import orch

engine = orch.open(sys.argv[1], model=sys.argv[2])
engine.sync.create_agent("a", system_prompt="x")

async def calls() -> None:
    while True:
        await asyncio.gather(*(engine.events(limit=1) for _ in range(32)))

for _ in range(4):
    threading.Thread(target=lambda: asyncio.run(calls()), daemon=True).start()
time.sleep(0.3)
print("exiting", flush=True)
"""

DONE: Dict[str, Any] = {"steps": [{"repeat": True, "reply": [{"type": "text", "text": "done"}]}]}


def exits_cleanly(program: str, model: str, tmp_path: pathlib.Path, runs: int, prints: str) -> None:
    """Runs `program` `runs` times, each in a project of its own: it exits 0, printing `prints`."""
    child = tmp_path / "child.py"
    child.write_text(program)
    for i in range(runs):
        work = tmp_path / f"run{i}"
        work.mkdir()
        done = subprocess.run([sys.executable, str(child), str(work), model], capture_output=True, text=True, timeout=120)
        assert "Fatal Python error" not in done.stderr, done.stderr
        assert done.returncode == 0, f"run {i}: exit code {done.returncode}\n{done.stdout}{done.stderr}"
        assert done.stdout.strip() == prints, done.stdout + done.stderr


def test_a_program_exits_cleanly_while_an_interrupted_sync_tool_still_runs(
    script: Callable[..., str], tmp_path: pathlib.Path
) -> None:
    exits_cleanly(EXIT_WHILE_A_TOOL_RUNS, script(SLOW_TOOL), tmp_path, runs=2, prints="interrupted")


def test_a_program_exits_cleanly_while_asyncio_calls_still_complete(
    script: Callable[..., str], tmp_path: pathlib.Path
) -> None:
    exits_cleanly(EXIT_WHILE_CALLS_COMPLETE, script(DONE), tmp_path, runs=6, prints="exiting")


def test_the_exit_hooks_take_any_float_as_their_wait() -> None:
    program = (
        "import math, orch\n"
        "print(orch._orch.wind_down(math.inf, math.nan), orch._orch.wind_down(-1.0, -math.inf), "
        "orch._orch.exiting(math.nan), orch._orch.exiting(math.inf))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["0", "0", "0", "0"], done.stdout + done.stderr
