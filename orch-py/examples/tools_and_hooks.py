"""A Python tool and a Python hook: the agent asks `weather` for a forecast, and a `PreToolUse` hook
keeps it from writing files. Runs offline with a scripted model (written next to the project).

    python orch-py/examples/tools_and_hooks.py [PROJECT_DIR]
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import tempfile
from typing import Any, Optional

import orch
from orch.hooks import Deny

# The model's part, scripted: ask for the forecast, try to save it, then answer with what it learnt.
SCRIPT = {
    "steps": [
        {"when": "forecast for (\\w+)", "reply": [{"type": "tool_use", "name": "weather", "input": {"city": "$1", "days": 3}}]},
        {
            "when": "^(\\w+: .*)$",
            "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "forecast.txt", "content": "$1"}}],
        },
        {"when": "hook: (.*)$", "reply": [{"type": "text", "text": "Not saved ($1)."}]},
    ]
}


def open_engine(project: pathlib.Path) -> orch.Engine:
    script = project / "model.json"
    script.write_text(json.dumps(SCRIPT))
    engine = orch.open(project, model=f"scripted:{script}")

    @engine.tool
    async def weather(city: str, days: int = 1) -> str:
        """The weather forecast for a city, `days` days ahead."""
        await asyncio.sleep(0)  # an async tool may await (an HTTP client, a database)
        return f"{city}: sunny for {days} days"

    @engine.hook("PreToolUse", matcher="Write|Edit")
    def read_only(event: dict[str, Any]) -> Optional[Deny]:
        return Deny(f"{event['agent_name']} may not change {event['tool_input'].get('file_path')}")

    return engine


def main(project: pathlib.Path) -> None:
    engine = open_engine(project)
    engine.sync.create_agent("forecaster", system_prompt="You give forecasts.")
    out = engine.sync.command("forecaster", "the forecast for Lisbon")
    print(out.final_text)
    for ev in engine.sync.events(agent="forecaster"):
        if ev.type in ("ToolResult", "HookInvoked"):
            print(ev.type, ev.summary)
    assert not (project / "forecast.txt").exists()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(tmp))
