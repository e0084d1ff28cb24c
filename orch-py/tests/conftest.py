"""Fixtures: a temporary project (its own SQLite store under .orch/) and scripted models."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Callable, Iterator

import pytest

import orch

# A scripted team for plan → build (→ review): each agent writes its file, then answers; the plan agent
# gives its plan's path when asked; the reviewer passes. (The same team as orch-web's workflow tests.)
TEAM: dict[str, Any] = {
    "steps": [
        {"agent": "^plan-", "when": "ONLY", "repeat": True, "reply": [{"type": "text", "text": "`./specs/parser.md`"}]},
        {"agent": "^plan-", "when": "^Wrote", "repeat": True, "reply": [{"type": "text", "text": "Plan written."}]},
        {
            "agent": "^plan-",
            "repeat": True,
            "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "specs/parser.md", "content": "# Plan\n"}}],
        },
        {"agent": "^build-", "when": "^Wrote", "repeat": True, "reply": [{"type": "text", "text": "Built."}]},
        {
            "agent": "^build-",
            "repeat": True,
            "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "src/parser.rs", "content": "fn parse() {}\n"}}],
        },
        {"agent": "^review-", "when": "^Wrote", "repeat": True, "reply": [{"type": "text", "text": "VERDICT: PASS"}]},
        {
            "agent": "^review-",
            "repeat": True,
            "reply": [
                {"type": "tool_use", "name": "Write", "input": {"file_path": "app_review/review_1.md", "content": "VERDICT: PASS\n"}}
            ],
        },
    ]
}

# An agent that writes a file, reads it back, then answers; with token usage, so runs have a cost.
WRITER: dict[str, Any] = {
    "steps": [
        {
            "when": "greeting for (\\w+)",
            "reply": [
                {"type": "text", "text": "Writing it."},
                {"type": "tool_use", "name": "Write", "input": {"file_path": "hello.txt", "content": "Hello, $1!\n"}},
            ],
            "usage": {"input_tokens": 1000, "output_tokens": 100},
        },
        {
            "when": "^Wrote ",
            "reply": [{"type": "tool_use", "name": "Read", "input": {"file_path": "hello.txt"}}],
            "usage": {"input_tokens": 1200, "output_tokens": 40},
        },
        {
            "when": "Hello, (\\w+)!",
            "reply": [{"type": "text", "text": "Done: greeted $1."}],
            "usage": {"input_tokens": 1300, "output_tokens": 20},
        },
    ]
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' own settings only: none from the environment of whoever runs them."""
    for var in list(os.environ):
        if var.startswith("ORCH_") and var != "ORCH_TEST_PG_URL" or var in ("DATABASE_URL", "ANTHROPIC_API_KEY"):
            monkeypatch.delenv(var, raising=False)


@pytest.fixture
def project(tmp_path: pathlib.Path) -> pathlib.Path:
    """An empty working dir (its store is .orch/orch.db)."""
    d = tmp_path / "project"
    d.mkdir()
    return d


@pytest.fixture
def script(project: pathlib.Path) -> Callable[[dict[str, Any]], str]:
    """Writes a scripted model file into the project and returns its model spec."""

    def write(steps: dict[str, Any], name: str = "script.json") -> str:
        f = project / name
        f.write_text(json.dumps(steps))
        return f"scripted:{f}"

    return write


@pytest.fixture
def engine(project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> Iterator[orch.Engine]:
    """An engine on the project's SQLite store with the WRITER model."""
    yield orch.open(project, model=script(WRITER))
