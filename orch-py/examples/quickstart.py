"""An agent writes a greeting, from Python: open an engine on a project, create an agent, command it,
read its events. Runs offline with a scripted model (written next to the project).

    python orch-py/examples/quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import tempfile

import orch

# The model's part, scripted: write the file, then answer.
SCRIPT = {
    "steps": [
        {
            "when": "greeting for (\\w+)",
            "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "hello.txt", "content": "Hello, $1!\n"}}],
        },
        {"when": "^Wrote ", "reply": [{"type": "text", "text": "Wrote hello.txt."}]},
    ]
}


async def main(project: pathlib.Path) -> None:
    script = project / "model.json"
    script.write_text(json.dumps(SCRIPT))
    engine = orch.open(project, model=f"scripted:{script}")
    await engine.create_agent("ada", system_prompt="You write greetings.", model="haiku")
    out = await engine.command("ada", "write a greeting for Ada")
    print(f"{out.status}: {out.final_text} ({out.num_turns} model calls, ${out.cost_usd:.4f})")
    print((project / "hello.txt").read_text(), end="")
    for ev in await engine.events(agent="ada"):
        print(ev.seq, ev.type, ev.summary)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(tmp)))
