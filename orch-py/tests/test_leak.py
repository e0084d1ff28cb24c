"""The callables the engine holds and calls do not leak: 10,000 calls of a Python tool leave the
process's resident memory flat (a generous bound: what a leak of even a few kilobytes a call passes)
and no Python objects behind (counted by the interpreter's allocator)."""

from __future__ import annotations

import gc
import os
import pathlib
import sys
from typing import Any, Callable

import pytest

import orch

CALLS_PER_REPLY = 100
CALLS_PER_RUN = 1000
RUNS = 10  # 10 × 1,000 = 10,000 calls after the warm-up run


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident size from /proc")
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_ten_thousand_tool_calls_leave_memory_flat(kind: str, project: pathlib.Path, script: Callable[..., str]) -> None:
    # Each reply calls the tool 100 times; the tool answers DONE every 1,000th call, which ends the run.
    counter: dict[str, Any] = {
        "steps": [
            {"when": "^DONE$", "repeat": True, "reply": [{"type": "text", "text": "finished"}]},
            {
                "repeat": True,
                "reply": [{"type": "tool_use", "name": "count", "input": {"n": i}} for i in range(CALLS_PER_REPLY)],
            },
        ]
    }
    engine = orch.open(project, model=script(counter))
    calls = [0]

    def answer(n: int) -> str:
        calls[0] += 1
        return "DONE" if calls[0] % CALLS_PER_RUN == 0 else f"call {calls[0]}: {n}"

    if kind == "sync":
        engine.add_tool(lambda n: answer(n), name="count")
    else:

        async def count(n: int) -> str:
            return answer(n)

        engine.add_tool(count)

    def run(i: int) -> None:
        # A fresh agent each run, so no conversation grows across the runs.
        engine.sync.create_agent(f"counter-{i}", system_prompt="You count.")
        assert engine.sync.command(f"counter-{i}", "count").final_text == "finished"

    run(0)  # warm-up: threads, the callback loop, caches
    gc.collect()
    rss_before, blocks_before = resident_mb(), sys.getallocatedblocks()
    for i in range(1, RUNS + 1):
        run(i)
    gc.collect()
    rss_after, blocks_after = resident_mb(), sys.getallocatedblocks()

    assert calls[0] == CALLS_PER_RUN * (RUNS + 1)
    print(f"{kind}: {rss_after - rss_before:+.1f} MB, {blocks_after - blocks_before:+d} blocks")
    assert rss_after - rss_before < 50, f"resident memory grew {rss_after - rss_before:.1f} MB over 10,000 calls"
    # Every Python object the calls made is freed: a leak of one object a call would be 10,000 blocks.
    assert blocks_after - blocks_before < 2000, f"{blocks_after - blocks_before} more memory blocks held by Python"
