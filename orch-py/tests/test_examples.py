"""The Python examples (orch-py/examples) run offline and say what they did, and `mypy --strict` passes
on them and on the package with its stub."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = PACKAGE / "examples"


def run_example(name: str, project: pathlib.Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), str(project)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_quickstart_writes_its_greeting(project: pathlib.Path) -> None:
    out = run_example("quickstart.py", project)
    assert out.startswith("completed: Wrote hello.txt. (2 model calls, $")
    assert "Hello, Ada!" in out and " ToolUse Write: hello.txt" in out
    assert (project / "hello.txt").read_text() == "Hello, Ada!\n"


def test_the_tool_and_hook_example_forecasts_and_refuses_to_write(project: pathlib.Path) -> None:
    out = run_example("tools_and_hooks.py", project)
    assert out.splitlines()[0] == "Not saved (forecaster may not change forecast.txt)."
    assert "ToolResult weather → Lisbon: sunny for 3 days" in out
    assert "(PreToolUse): deny" in out
    assert not (project / "forecast.txt").exists()


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (pip install mypy)")
def test_mypy_strict_passes_on_the_examples_the_package_and_its_scripts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", "/dev/null", "examples", "python/orch", "scripts"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
