"""A Python class per event type (orch.events), generated from the Rust wire type: events read back as
their classes with every payload field as a typed attribute; a type this package does not know passes
through as a generic event; the generated module is current."""

from __future__ import annotations

import json
import pathlib
import re
import sqlite3
import subprocess
import sys
from typing import Any, Callable

import orch
from conftest import TEAM
from orch import events

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
WIRE = PACKAGE.parent / "orch-core" / "src" / "wire" / "event.rs"


def test_the_generated_module_is_current_and_has_a_class_per_type() -> None:
    done = subprocess.run(
        [sys.executable, str(PACKAGE / "scripts" / "gen_events.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    kinds_block = re.search(r"pub const KINDS: &'static \[&'static str\] = &\[(.*?)\];", WIRE.read_text(), re.S)
    assert kinds_block, "Event::KINDS is in event.rs"
    kinds = re.findall(r'"(\w+)"', kinds_block.group(1))
    assert sorted(events.CLASSES) == sorted(kinds), "a class for every type the engine writes"


def check_typed(ev: orch.Event) -> events.TypedEvent:
    """The event's class, checked against its record: every payload field is an attribute holding it."""
    t = ev.typed()
    cls = events.CLASSES[ev.type]
    assert type(t) is cls, (ev.type, type(t))
    assert (t.seq, t.type, t.agent_id, t.workflow_id, t.ts, t.summary) == (
        ev.seq,
        ev.type,
        ev.agent_id,
        ev.workflow_id,
        ev.ts,
        ev.summary,
    )
    declared = set(cls.FIELDS.values())
    assert set(ev.payload) <= declared, f"{ev.type}: payload fields {set(ev.payload) - declared} have no attribute"
    for attr, key in cls.FIELDS.items():
        if key in ev.payload:
            assert getattr(t, attr) == ev.payload[key], (ev.type, attr)
    return t


def test_a_runs_events_read_back_as_their_classes(engine: orch.Engine) -> None:
    engine.add_hook("PreToolUse", lambda event: None, name="watcher")
    engine.sync.create_agent("ada", system_prompt="x")
    engine.sync.command("ada", "write a greeting for Ada")
    typed = [check_typed(ev) for ev in engine.sync.events()]

    uses = [t for t in typed if isinstance(t, events.ToolUse)]
    assert [(u.tool_name, u.tool_input.get("file_path")) for u in uses] == [("Write", "hello.txt"), ("Read", "hello.txt")]
    [result] = [t for t in typed if isinstance(t, events.Result)]
    assert result.stop_reason == "end_turn" and result.num_turns == 3 and result.usage["input_tokens"] == 3500
    assert [h.hook_name for h in typed if isinstance(h, events.HookInvoked)] == ["watcher", "watcher"]
    created = typed[0]
    assert isinstance(created, events.AgentCreated) and created.agent["name"] == "ada"


def test_workflow_events_too(project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> None:
    engine = orch.open(project, model=script(TEAM))
    run = engine.sync.workflows.start("plan_build", "Add a parser")
    typed = [check_typed(ev) for ev in engine.sync.events(workflow=run.id)]
    ends = [t for t in typed if isinstance(t, events.StepEnd)]
    assert [(e.step_name, e.status) for e in ends] == [("plan", "success"), ("build", "success")]
    assert isinstance(ends[0].payload_, dict), "the type's own `payload` field is `payload_`"
    assert any(isinstance(t, events.StepStart) and t.step_name == "build" for t in typed)
    assert any(isinstance(t, events.WorkflowUpdated) and t.workflow["status"] == "completed" for t in typed)


def test_a_type_this_package_does_not_know_passes_through_as_a_generic_event(
    engine: orch.Engine, project: pathlib.Path
) -> None:
    engine.sync.create_agent("ada", system_prompt="x")
    seq = engine.sync.last_seq() + 1
    # A newer orch writes an event of a type this one has never heard of.
    with sqlite3.connect(project / ".orch" / "orch.db") as db:
        db.execute(
            "INSERT INTO events (seq, ts, category, type, payload) VALUES (?, ?, 'system', 'FromTheFuture', ?)",
            (seq, "2026-12-03T09:00:00.000000Z", json.dumps({"type": "FromTheFuture", "warp": 9})),
        )
    [ev] = engine.sync.events(since=seq - 1)
    assert ev.type == "FromTheFuture"
    t = ev.typed()
    assert type(t) is events.UnknownEvent
    assert (t.seq, t.type, t.payload) == (seq, "FromTheFuture", {"warp": 9})
