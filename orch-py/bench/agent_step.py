#!/usr/bin/env python3
"""The agent-step workload (shared/bench/agent-step.md) driven from Python, against the same run driven
from Rust and against LangGraph, in one run; plus ``import orch`` time and the wheel's size.

    python orch-py/bench/agent_step.py                # everything (builds what it needs)
    N=100 RUNS=20 python orch-py/bench/agent_step.py  # the defaults
    python orch-py/bench/agent_step.py --no-rust --no-langgraph --no-wheel

Run it with the interpreter of a virtualenv where ``orch`` is installed (``maturin develop --release``
gives figures comparable with the Rust run, which is a release build). What it measures:

- orch from Python: one agent, the prompt ``Read hello.txt and tell me what it says.``, a scripted model
  (calls 1..N ask for ``Read {"file_path": "hello.txt"}``, call N+1 answers); the run started with
  ``engine.sync.command`` on the SQLite file store at full durability (WAL, synchronous=FULL, the engine's
  default store) and on an in-memory SQLite store. Per step = wall time of the run / (N+1): the scripted
  model's answer and the Read tool's body are included (microseconds), so this is an upper bound of
  the overhead. Also with the tool written in Python (``engine.tool``), the GIL crossed at every call.
- orch from Rust: ``cargo bench -p orch-tests --bench agent_step`` in the same run (same N and RUNS),
  which subtracts the model's and the tool's own time; its median is read from its output.
- LangGraph: ``create_react_agent`` with a fake chat model giving the same answers and a Python Read
  tool, with no checkpointer and with its in-memory checkpointer; per step = (wall − model answer −
  tool body) / (N+1). langgraph is installed into this interpreter from PyPI when it is missing (never a
  test requirement); ``--no-langgraph`` skips it.
- ``import orch``: a fresh interpreter importing it, minus a bare interpreter's start, median of 15.
- The wheel: ``pip wheel ./orch-py`` (release, with the orch binary) into orch-py/target-wheels (or,
  with ``--no-wheel``, the newest wheel there).

Medians and p90 over RUNS runs after 2 warm-ups. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HELLO = "Hello from the agent-step benchmark! This file is ninety-four bytes of plain ASCII text, okay\n"
PROMPT = "Read hello.txt and tell me what it says."
PACKAGE = pathlib.Path(__file__).resolve().parent.parent
REPO = PACKAGE.parent


def median_p90(xs: List[float]) -> Tuple[float, float]:
    s = sorted(xs)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]


def workload_dir() -> pathlib.Path:
    d = pathlib.Path(tempfile.mkdtemp(prefix="orch-bench-", dir=os.environ.get("BENCH_DIR")))
    assert len(HELLO) == 94
    (d / "hello.txt").write_text(HELLO)
    return d


def scripted(n: int, tool: str, d: pathlib.Path) -> str:
    """The scripted model's file: N tool calls, then the answer."""
    usage = {"input_tokens": 100, "output_tokens": 20}
    call = {"type": "tool_use", "name": tool, "input": {"file_path": "hello.txt"}}
    steps: List[Dict[str, Any]] = [{"reply": [dict(call, id=f"call_{i}")], "usage": usage} for i in range(n)]
    steps.append({"repeat": True, "reply": [{"type": "text", "text": "The file says hello."}], "usage": usage})
    f = d / "model.json"
    f.write_text(json.dumps({"steps": steps}))
    return f"scripted:{f}"


def bench_orch(n: int, runs: int, store: str, python_tool: bool) -> List[float]:
    """µs per step of runs driven from Python."""
    import orch

    per_step: List[float] = []
    for run in range(runs + 2):
        d = workload_dir()
        model = scripted(n, "read_file" if python_tool else "Read", d)
        engine = orch.open(d if store == "file" else "sqlite::memory:", model=model, cwd=d if store != "file" else None)
        if python_tool:

            @engine.tool
            def read_file(file_path: str) -> str:
                """Reads a file of the working dir."""
                return (d / file_path).read_text()

        engine.sync.create_agent(f"bench-{run}", system_prompt="You read files.")
        t = time.perf_counter()
        out = engine.sync.command(f"bench-{run}", PROMPT)
        wall = time.perf_counter() - t
        assert out.num_turns == n + 1 and out.final_text == "The file says hello.", out.to_dict()
        if run >= 2:
            per_step.append(wall / (n + 1) * 1e6)
    return per_step


def bench_rust(n: int, runs: int) -> Optional[Dict[str, float]]:
    """The Rust bench's medians (µs per step) from its output."""
    cmd = ["cargo", "bench", "-p", "orch-tests", "--all-features", "--bench", "agent_step"]
    env = dict(os.environ, N=str(n), RUNS=str(runs))
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  (cargo bench failed: {done.stderr.strip().splitlines()[-1:]})")
        return None
    out: Dict[str, float] = {}
    for line in done.stdout.splitlines():
        m = re.search(r"median\s+([\d.]+)", line)
        if m and "in-memory store" in line:
            out["memory"] = float(m.group(1))
        elif m and "SQLite file" in line:
            out["file"] = float(m.group(1))
    return out or None


def ensure_langgraph() -> bool:
    try:
        import langgraph  # noqa: F401
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: F401

        return True
    except ImportError:
        print("  installing langgraph from PyPI into this interpreter (benchmark only)")
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "langgraph"], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  (pip install langgraph failed: {done.stderr.strip().splitlines()[-1:]})")
            return False
        return True


def bench_langgraph(n: int, runs: int, checkpointer: str) -> Tuple[List[float], str]:
    import warnings

    # create_react_agent is the workload's reference (shared/bench/agent-step.md); its move to
    # langchain.agents in LangGraph 1.x warns on every call.
    warnings.filterwarnings("ignore", message=".*create_react_agent has been moved.*")
    import langgraph
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    version = getattr(langgraph, "__version__", "")
    if not version:
        from importlib.metadata import version as v

        version = v("langgraph")
    per_step: List[float] = []
    for run in range(runs + 2):
        d = workload_dir()
        inside = [0.0]

        def answers() -> Any:
            for i in range(n + 1):
                t = time.perf_counter()
                if i < n:
                    msg = AIMessage(content="", tool_calls=[{"name": "Read", "args": {"file_path": "hello.txt"}, "id": f"call_{i}"}])
                else:
                    msg = AIMessage(content="The file says hello.")
                inside[0] += time.perf_counter() - t
                yield msg

        class Model(GenericFakeChatModel):
            def bind_tools(self, tools: Any, **kwargs: Any) -> "Model":
                return self

        @tool("Read")
        def read(file_path: str) -> str:
            """Reads a file."""
            t = time.perf_counter()
            text = (d / file_path).read_text()
            inside[0] += time.perf_counter() - t
            return text

        saver: Any = None
        if checkpointer == "memory":
            from langgraph.checkpoint.memory import InMemorySaver

            saver = InMemorySaver()
        agent = create_react_agent(Model(messages=answers()), [read], checkpointer=saver)
        config = {"configurable": {"thread_id": f"t{run}"}, "recursion_limit": 4 * n + 10}
        t = time.perf_counter()
        out = agent.invoke({"messages": [("user", PROMPT)]}, config)
        wall = time.perf_counter() - t
        assert out["messages"][-1].content == "The file says hello."
        if run >= 2:
            per_step.append((wall - inside[0]) / (n + 1) * 1e6)
    return per_step, version


def import_time() -> float:
    """ms of `import orch` in a fresh interpreter, above a bare interpreter's start (median of 15)."""

    def run(code: str) -> float:
        xs = []
        for _ in range(15):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            xs.append(time.perf_counter() - t)
        return statistics.median(xs)

    return (run("import orch") - run("pass")) * 1000


def wheel_size(build: bool) -> Optional[Tuple[str, float]]:
    out = PACKAGE / "target-wheels"
    if build:
        # Through the package's build backend, as `pip install ./orch-py` builds it (the orch binary in it).
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(PACKAGE)], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"  (pip wheel failed: {done.stderr.strip().splitlines()[-1:]})")
    wheels = sorted(out.glob("orch-*.whl"), key=lambda p: p.stat().st_mtime) if out.exists() else []
    if not wheels:
        return None
    return wheels[-1].name, wheels[-1].stat().st_size / 1e6


def show(label: str, xs: List[float]) -> float:
    med, p90 = median_p90(xs)
    print(f"  {label:<58} median {med:8.1f}  p90 {p90:8.1f}")
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--no-rust", action="store_true", help="skip the Rust run (cargo bench)")
    ap.add_argument("--no-langgraph", action="store_true", help="skip LangGraph")
    ap.add_argument("--no-wheel", action="store_true", help="do not build the release wheel (report one already built)")
    args = ap.parse_args()
    n = int(os.environ.get("N", "100"))
    runs = int(os.environ.get("RUNS", "20"))
    print(f"agent-step workload: N = {n} Read calls, {runs} runs after 2 warm-ups (µs per step)")
    import orch

    print(f"orch {orch.__version__}, Python {sys.version.split()[0]}")
    py_file = show("orch from Python, SQLite file (WAL, synchronous=FULL)", bench_orch(n, runs, "file", False))
    py_mem = show("orch from Python, SQLite in memory", bench_orch(n, runs, "memory", False))
    py_tool = show("orch from Python, SQLite file, the Read tool in Python", bench_orch(n, runs, "file", True))
    rust = None if args.no_rust else bench_rust(n, runs)
    if rust:
        if "file" in rust:
            print(f"  {'orch from Rust (cargo bench), SQLite file':<58} median {rust['file']:8.1f}")
            print(f"  ratio Python-driven / Rust-driven, SQLite file (same run): {py_file / rust['file']:.2f}x")
            print(f"  ratio Python tool / Rust-driven, SQLite file (same run):   {py_tool / rust['file']:.2f}x")
        if "memory" in rust:
            print(f"  {'orch from Rust (cargo bench), in-memory store':<58} median {rust['memory']:8.1f}")
            print(f"  ratio Python-driven SQLite in memory / Rust in-memory store: {py_mem / rust['memory']:.2f}x")
    if not args.no_langgraph and ensure_langgraph():
        none, version = bench_langgraph(n, runs, "none")
        lg_none = show(f"LangGraph {version} create_react_agent, no checkpointer", none)
        mem, _ = bench_langgraph(n, runs, "memory")
        lg_mem = show(f"LangGraph {version}, in-memory checkpointer", mem)
        print(f"  LangGraph no checkpointer / orch from Python in memory (same run): {lg_none / py_mem:.1f}x")
        print(f"  LangGraph in-memory checkpointer / orch from Python, durable SQLite file: {lg_mem / py_file:.1f}x")
    print(f"import orch: {import_time():.0f} ms above a bare interpreter's start (median of 15)")
    size = wheel_size(not args.no_wheel)
    if size:
        print(f"wheel: {size[0]}: {size[1]:.1f} MB")


if __name__ == "__main__":
    main()
