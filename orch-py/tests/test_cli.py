"""The `orch` command the package installs (`[project.scripts]`, orch._cli): it runs orch's own
command-line program, the orch-web binary (bundled in the wheel as orch/_bin/orch; ORCH_BIN names one in
a development install, as scripts/test.sh does). `orch --help` and a real command work from the
virtualenv, on the same store the Python API opens; without a binary it says how to get one."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Dict, Optional

import pytest

import orch
from conftest import WRITER
from orch import _cli

# Read at import: the tests' autouse fixture clears ORCH_* variables.
ORCH_BIN = os.environ.get("ORCH_BIN")
SCRIPT = pathlib.Path(sys.executable).parent / "orch"


def binary() -> Optional[str]:
    if ORCH_BIN and os.access(ORCH_BIN, os.X_OK):
        return ORCH_BIN
    bundled = pathlib.Path(_cli.__file__).parent / "_bin" / "orch"
    return str(bundled) if bundled.is_file() else None


def env(**extra: str) -> Dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_") and k not in ("DATABASE_URL", "ANTHROPIC_API_KEY")}
    e.update(extra)
    return e


needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason=f"the package's orch script is not installed at {SCRIPT}")


@needs_script
@pytest.mark.skipif(binary() is None, reason="no orch binary: set ORCH_BIN, or pip install ./orch-py (which bundles it)")
def test_orch_help_and_a_real_command_from_the_virtualenv(project: pathlib.Path) -> None:
    exe = binary()
    assert exe is not None
    e = env(ORCH_BIN=exe) if exe == ORCH_BIN else env()
    helped = subprocess.run([str(SCRIPT), "--help"], env=e, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "Usage: orch [OPTIONS] <COMMAND>" in helped.stdout and "serve" in helped.stdout

    (project / "writer.json").write_text(json.dumps(WRITER))
    model = f"scripted:{project / 'writer.json'}"
    ran = subprocess.run(
        [str(SCRIPT), "--cwd", str(project), "--model", model, "run", "write a greeting for Ada"],
        env=e,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert "Done: greeted Ada." in ran.stdout
    assert (project / "hello.txt").read_text() == "Hello, Ada!\n"
    # The command wrote to the store the Python API opens.
    kinds = [ev.type for ev in orch.open(project).sync.events()]
    assert "Result" in kinds and "ToolUse" in kinds


@needs_script
def test_without_a_binary_the_command_says_how_to_get_one(tmp_path: pathlib.Path) -> None:
    if (pathlib.Path(_cli.__file__).parent / "_bin" / "orch").is_file():
        pytest.skip("this install bundles the binary")
    done = subprocess.run([str(SCRIPT), "--help"], env=env(), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2
    assert "has no orch binary: install it with `pip install ./orch-py`" in done.stderr
