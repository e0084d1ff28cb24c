"""Property-based run of `orch serve`'s `/api` against its own OpenAPI document (schemathesis).

For every operation of `/api/openapi.json`, schemathesis generates requests from the document (bodies,
query strings, path parameters) and checks each answer: no 5xx, a status the document lists, the content
type it names, and a body that fits the response schema. The server runs the scripted demo orchestrator
in a temporary working dir, with no rate limit.

Run by scripts/test.sh with the orch virtualenv (schemathesis from PyPI); `ORCH_BIN` names the binary
(default: `$CARGO_TARGET_DIR/debug/orch`).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def orch_bin() -> str:
    if os.environ.get("ORCH_BIN"):
        return os.environ["ORCH_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(pathlib.Path(target) / "debug" / "orch")


def st_bin() -> str:
    """The schemathesis command of this interpreter's environment."""
    here = pathlib.Path(sys.executable).parent / "st"
    found = str(here) if here.exists() else shutil.which("st")
    if not found:
        pytest.fail("schemathesis is not installed (pip install schemathesis)")
    return found


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    binary = orch_bin()
    if not os.path.exists(binary):
        pytest.fail(f"the orch binary is not built: {binary} (cargo build -p orch-web)")
    script = ROOT / "examples" / "scripts" / "orchestrator.json"
    with tempfile.TemporaryDirectory() as cwd:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "ANTHROPIC_", "OPENAI_"))}
        env["ORCH_RATE_LIMIT"] = "0"
        proc = subprocess.Popen(
            [binary, "--cwd", cwd, "--model", f"scripted:{script}", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            prefix = "orch serve: listening on "
            assert line.startswith(prefix), f"orch serve did not start: {line!r}"
            yield line[len(prefix):]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_every_operation_answers_as_the_document_says(server: str) -> None:
    """All of schemathesis's phases (coverage, fuzzing, stateful) over every operation."""
    # In a directory of its own: schemathesis keeps a cache (.schemathesis/) where it runs.
    with tempfile.TemporaryDirectory() as scratch:
        run = subprocess.run(
            [st_bin(), "run", f"{server}/api/openapi.json", "--checks", CHECKS, "--max-examples", "40",
             "--no-color", "--request-timeout", "30"],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=scratch,
        )
    out = run.stdout + run.stderr
    assert run.returncode == 0, f"schemathesis found problems:\n{out}"
    assert "Tested: " in out and " passed" in out, out


def test_the_document_lists_what_clients_use(server: str) -> None:
    """The document is served, is OpenAPI 3.1, and lists the operations clients rely on."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server}/api/openapi.json", timeout=30) as r:
        assert r.headers["content-type"].startswith("application/json")
        doc = json.load(r)
    assert doc["openapi"].startswith("3.1")
    for path, method in [
        ("/api/agents", "post"), ("/api/events", "get"), ("/api/orchestrator/chat", "post"),
        ("/api/adws", "post"), ("/api/plans", "post"), ("/api/graphs/{id}", "get"),
        ("/api/tasks/claim", "post"), ("/api/tasks/{task}/complete", "post"), ("/api/costs", "get"),
        ("/api/budgets", "put"), ("/api/attention", "get"),
    ]:
        assert method in doc["paths"].get(path, {}), f"{method.upper()} {path} is not documented"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "4XX" in op["responses"], f"{method.upper()} {path} documents no error answer"
