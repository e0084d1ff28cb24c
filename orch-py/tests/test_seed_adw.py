"""The acceptance test of the seed's ADW modules: a seed-shaped plan → build → review → fix script
(tests/seed_adw/adw_plan_build_review_fix.py, the seed's script with only its imports changed) runs as
the seed runs it (`python adw_plan_build_review_fix.py --adw-id <id>`, a process of its own) on the
scripted model, on SQLite and on PostgreSQL, and the store holds what the seed's database would: the
run's status and steps, one agent per step, each agent's tool calls, hooks, blocks and result once,
the summaries, and the system logs."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from typing import Any, Dict, List

import pytest

import orch
import orch.adw

SCRIPT = pathlib.Path(__file__).resolve().parent / "seed_adw" / "adw_plan_build_review_fix.py"


def write_then(agent: str, path: str, content: str, answer: str) -> List[Dict[str, Any]]:
    """Steps of a scripted agent: it writes `path`, then answers `answer`."""
    usage = {"input_tokens": 1000, "output_tokens": 50}
    return [
        {"agent": agent, "when": "^Wrote", "repeat": True, "reply": [{"type": "text", "text": answer}], "usage": usage},
        {
            "agent": agent,
            "repeat": True,
            "reply": [
                {"type": "thinking", "thinking": f"{agent[1:-1]} thinks"},
                {"type": "tool_use", "name": "Write", "input": {"file_path": path, "content": content}},
            ],
            "usage": usage,
        },
    ]


# The seed's team: the plan agent writes its spec, the quick prompt names it, the builder writes code,
# the reviewer writes a failing review, the fixer fixes it.
TEAM: Dict[str, Any] = {
    "steps": [
        {"agent": "^query-", "when": "ONLY", "repeat": True, "reply": [{"type": "text", "text": "`./specs/parser.md`"}]},
        *write_then("^plan-", "specs/parser.md", "# Plan\n", "Plan written."),
        *write_then("^build-", "src/parser.py", "def parse(): ...\n", "Built."),
        *write_then("^review-", "app_review/review_1.md", "VERDICT: FAIL\n", "VERDICT: FAIL (parse is a stub)"),
        *write_then("^fix-", "src/parser.py", "def parse(): return 1\n", "Fixed."),
    ]
}

STEPS = ["plan", "build", "review", "fix"]


def run_seed_script(project: pathlib.Path, env: Dict[str, str], store: str = "") -> str:
    """Records a pending run as the seed's manual trigger does (on `store`, a URL; default the project's
    own), then runs the script on it."""
    engine = orch.open(store, cwd=project) if store else orch.open(project)
    orch.adw.use(engine)
    try:
        adw_id = orch.adw.create_adw("plan_build_review_fix", {"prompt": 'Add a "parser"', "working_dir": str(project)}, "parser")
    finally:
        orch.adw.use(None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--adw-id", adw_id],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return adw_id


def check_records(engine: orch.Engine, adw_id: str, project: pathlib.Path) -> None:
    run = engine.sync.workflows.get(adw_id)
    assert (run.status, run.completed_steps, run.error_message) == ("completed", 4, None)
    assert run.duration_seconds is not None
    assert (project / "src/parser.py").read_text() == "def parse(): return 1\n", "the fix step ran"

    agents = {a.name.split("-")[0]: a for a in engine.sync.agents() if a.workflow_id == adw_id}
    assert sorted(agents) == sorted(STEPS)
    for step, a in agents.items():
        assert a.name == f"{step}-{adw_id[:8]}" and a.status == "complete"
        assert (a.input_tokens, a.output_tokens) == (2000, 100), step
    quick = [a for a in engine.sync.agents() if a.name.startswith("query-")]
    assert len(quick) == 1 and quick[0].workflow_id is None, "the plan path's quick prompt ran a fresh agent"

    events = engine.sync.events(workflow=adw_id)
    steps = [(e.type, e.payload["step_name"]) for e in events if e.type in ("StepStart", "StepEnd")]
    assert steps == [(kind, s) for s in STEPS for kind in ("StepStart", "StepEnd")]
    ends = {e.payload["step_name"]: e.payload for e in events if e.type == "StepEnd"}
    assert ends["review"]["payload"]["verdict"] == "FAIL" and ends["fix"]["status"] == "success"
    assert ends["plan"]["payload"]["session_id"] == agents["plan"].id, "the session is the step's agent"

    everything = engine.sync.events()
    for step, a in agents.items():
        mine = [e for e in everything if e.agent_id == a.id]
        kinds = [e.type for e in mine]
        # The engine's records of the run, each once: the script's hooks and handlers that logged them
        # again got the engine's events back.
        for kind in ["PreToolUse", "PostToolUse", "ToolUse", "ToolResult", "Thinking", "Text", "Stop", "Result"]:
            assert kinds.count(kind) == 1, (step, kind, kinds)
        assert "result" not in kinds and "TextBlock" not in kinds
        assert all(e.workflow_id == adw_id and e.step == step for e in mine if e.type not in ("SummaryUpdated",)), step
        by_seq = {e.seq: e for e in mine}
        summaries = {(by_seq[e.payload["target_seq"]].type, e.payload["summary"]) for e in mine if e.type == "SummaryUpdated"}
        path = mine[kinds.index("PreToolUse")].payload["tool_input"]["file_path"]
        assert ("PreToolUse", f"Write: {path}") in summaries, "the seed's hook summary"
        assert ("Result", "Step completed: success") in summaries
        text = mine[kinds.index("Text")].payload["text"]
        assert ("Text", f"Response: {text[:150]}") in summaries, "the seed's fixed summary (no summary model)"

    logs = [e.payload["message"] for e in everything if e.type == "SystemLog" and e.workflow_id == adw_id]
    assert "Workflow started: parser" in logs
    assert f"Created review agent: {agents['review'].id[:8]}" in logs
    assert any(m.startswith("Workflow completed in ") and m.endswith("s - Review verdict: FAIL") for m in logs), logs
    final = next(e for e in everything if e.type == "SystemLog" and e.payload["message"].startswith("Workflow completed"))
    assert final.payload["metadata"]["fix_executed"] is True
    assert final.payload["metadata"]["plan_path"] == "./specs/parser.md"


def seed_env(project: pathlib.Path, model: str, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_") and k not in ("DATABASE_URL", "ANTHROPIC_API_KEY")}
    env.update(ORCH_MODEL=model, **extra)
    return env


def test_the_seed_script_runs_on_sqlite(project: pathlib.Path) -> None:
    (project / "team.json").write_text(json.dumps(TEAM))
    adw_id = run_seed_script(project, seed_env(project, f"scripted:{project / 'team.json'}"))
    check_records(orch.open(project), adw_id, project)


PG = os.environ.get("ORCH_TEST_PG_URL") or os.environ.get("ORCH_TEST_PG") == "1" or os.environ.get("CI") == "true"


@pytest.mark.skipif(not PG, reason="needs PostgreSQL (set ORCH_TEST_PG_URL, or ORCH_TEST_PG=1 for the local server)")
def test_the_seed_script_runs_on_postgres(project: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    url = os.environ.get("ORCH_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
    schema = f"orch_py_seed_{time.time_ns():x}{os.getpid():x}"
    monkeypatch.setenv("ORCH_PG_SCHEMA", schema)
    (project / "team.json").write_text(json.dumps(TEAM))
    env = seed_env(project, f"scripted:{project / 'team.json'}", ORCH_DATABASE_URL=url, ORCH_PG_SCHEMA=schema)
    try:
        adw_id = run_seed_script(project, env, url)
        check_records(orch.open(url, cwd=project), adw_id, project)
    finally:
        import shutil

        if shutil.which("psql"):
            subprocess.run(["psql", url, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'], capture_output=True)
