"""Ctrl-C in Python interrupts the running agent: a real SIGINT to a Python process blocked in
`engine.sync.command`, or awaiting the seed's `query_to_completion` under `asyncio.run`, ends the process
with KeyboardInterrupt and records the agent's run as interrupted (it does not wait for the tool)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import orch

# The agent runs `sleep 30` in Bash, then would answer.
SLOW = {
    "steps": [
        {"reply": [{"type": "tool_use", "name": "Bash", "input": {"command": "sleep 30"}}]},
        {"repeat": True, "reply": [{"type": "text", "text": "done"}]},
    ]
}

CHILDREN = {
    "blocking": """
        engine.sync.create_agent("sleeper", system_prompt="x")
        engine.sync.command("sleeper", "sleep")
    """,
    "query_to_completion": """
        import asyncio
        import orch.adw
        from orch.adw.adw_agent_sdk import QueryInput, QueryOptions, query_to_completion
        orch.adw.use(engine)
        asyncio.run(query_to_completion(QueryInput("sleep", QueryOptions(cwd=sys.argv[1]))))
    """,
}


@pytest.mark.parametrize("how", sorted(CHILDREN))
def test_sigint_interrupts_the_running_agent(how: str, project: pathlib.Path, tmp_path: pathlib.Path) -> None:
    (project / "slow.json").write_text(json.dumps(SLOW))
    child = tmp_path / "child.py"
    body = textwrap.indent(textwrap.dedent(CHILDREN[how]), "    ")
    child.write_text(
        "import sys\nimport orch\n"
        f"engine = orch.open(sys.argv[1], model='scripted:{project / 'slow.json'}')\n"
        f"if True:\n{body}"
    )
    proc = subprocess.Popen([sys.executable, str(child), str(project)], stderr=subprocess.PIPE, text=True)
    watcher = orch.open(project)
    started = time.monotonic()
    while not any(e.type == "PreToolUse" for e in watcher.sync.events()):
        assert proc.poll() is None, "the child ended before its agent ran its tool"
        assert time.monotonic() - started < 120, "the agent never ran its tool"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, err
    stops = [e.payload["reason"] for e in watcher.sync.events() if e.type == "Stop"]
    assert stops == ["interrupted"], stops
    assert all(a.status != "executing" for a in watcher.sync.agents())
