"""The seed's `adw_database` and `adw_logging` names on orch (orch.adw): a seed-shaped step of an ADW
script (seed-contract §6.3: create the step's agent, start the step, log its hook and response events,
end it, set the run's status) writes real workflow, agent and event records."""

from __future__ import annotations

import pathlib
from typing import Iterator

import pytest

import orch
import orch.adw
from orch.adw import adw_database, adw_logging, adw_websockets


@pytest.fixture
def adw_engine(project: pathlib.Path) -> Iterator[orch.Engine]:
    engine = orch.open(project)
    orch.adw.use(engine)
    yield engine
    orch.adw.use(None)


def test_a_seed_shaped_step_writes_real_records(adw_engine: orch.Engine, project: pathlib.Path) -> None:
    adw_id = orch.adw.create_adw("plan_build", {"prompt": "Add a parser", "working_dir": str(project)}, "parser")
    adw_logging.init_logging()
    adw = adw_database.get_adw(adw_id)
    assert adw is not None
    assert (adw["adw_name"], adw["workflow_type"], adw["status"]) == ("parser", "plan_build", "pending")
    assert adw["input_data"]["prompt"] == "Add a parser"
    assert adw_database.get_adw("not-a-uuid") is None

    adw_logging.log_system_event(None, None, "INFO", "Workflow started: parser", metadata={"total_steps": 1})
    agent_id = adw_database.create_agent(None, f"plan-{adw_id[:8]}", "claude-haiku-4-5", str(project), adw_id, "plan")
    adw_logging.log_system_event(adw_id, "plan", "INFO", f"Created plan agent: {agent_id[:8]}", metadata={"agent_id": agent_id})
    assert adw_database.update_agent(agent_id, status="executing", old_status="idle")
    adw_logging.log_step_start(adw_id, "plan", agent_id, {"prompt": "/plan Add a parser", "model": "claude-haiku-4-5"})
    assert adw_logging.update_adw_status(adw_id, "in_progress", current_step="plan")
    adw_logging.log_adw_event(
        adw_id,
        "plan",
        "hook",
        "PreToolUse",
        "Using tool: Read",
        agent_id,
        {"tool_name": "Read", "tool_input": {"file_path": "a.py"}, "tool_use_id": "t1"},
        "Read: a.py",
    )
    text_id = adw_logging.log_adw_event(adw_id, "plan", "response", "TextBlock", "Planned.", agent_id, {"text": "Planned."})
    adw_logging.log_adw_event(adw_id, "plan", "response", "result", "Planned.", agent_id, {"subtype": "success"})
    assert adw_database.update_log_summary(text_id, "The plan is written")
    assert adw_websockets.broadcast_adw_event_summary_update(adw_id, text_id, "The plan, written")
    assert adw_websockets.broadcast_adw_event_summary_update(adw_id, "not-an-id", "x") is False
    assert adw_database.update_agent(agent_id, status="complete", session_id="s-1", input_tokens=1200, output_tokens=80, total_cost=0.01)
    adw_logging.log_step_end(adw_id, "plan", agent_id, {"session_id": "s-1"}, status="success", duration_ms=1500)
    assert adw_logging.update_adw_status(adw_id, "completed", completed_steps=1)
    adw_logging.close_logging()

    run = adw_engine.sync.workflows.get(adw_id)
    assert (run.status, run.completed_steps, run.current_step) == ("completed", 1, "plan")
    assert run.duration_seconds is not None
    agent = adw_engine.sync.agent(agent_id)
    assert (agent.name, agent.status, agent.workflow_id) == (f"plan-{adw_id[:8]}", "complete", adw_id)
    assert (agent.input_tokens, agent.output_tokens, agent.total_cost_usd) == (1200, 80, pytest.approx(0.01))

    mine = adw_engine.sync.events(workflow=adw_id)
    kinds = [e.type for e in mine]
    for kind in ["AgentCreated", "AgentStatusChanged", "StepStart", "PreToolUse", "Text", "result", "StepEnd", "WorkflowUpdated"]:
        assert kind in kinds, (kind, kinds)
    typed = {e.type: e.typed() for e in mine}
    start = typed["StepStart"]
    assert isinstance(start, orch.events.StepStart)
    assert (start.step_name, start.prompt, start.model, start.step) == ("plan", "/plan Add a parser", "claude-haiku-4-5", "plan")
    end = typed["StepEnd"]
    assert isinstance(end, orch.events.StepEnd) and (end.status, end.duration_ms) == ("success", 1500)
    use = typed["PreToolUse"]
    assert isinstance(use, orch.events.PreToolUse) and use.tool_input == {"file_path": "a.py"}
    assert isinstance(typed["result"], orch.events.UnknownEvent), "a seed type orch does not have passes through"
    assert typed["result"].payload["content"] == "Planned."
    summaries = [e.payload for e in adw_engine.sync.events() if e.type == "SummaryUpdated"]
    assert {"target_seq": int(text_id), "summary": "The plan is written"} in summaries
    assert any(e.payload["summary"] == "The plan, written" for e in mine if e.type == "SummaryUpdated"), "of the run"
    logs = [e.payload["message"] for e in adw_engine.sync.events() if e.type == "SystemLog"]
    assert "Workflow started: parser" in logs and f"Created plan agent: {agent_id[:8]}" in logs


def test_missing_runs_and_agents_and_bad_values(adw_engine: orch.Engine) -> None:
    missing = "01234567-89ab-7def-8123-456789abcdef"
    assert adw_logging.update_adw_status(missing, "failed") is False
    assert adw_database.update_agent(missing, status="blocked") is False
    adw_id = orch.adw.create_adw("plan_build", {"prompt": "x"})
    with pytest.raises(orch.UsageError, match="'done' is not a workflow status"):
        adw_logging.update_adw_status(adw_id, "done")
    with pytest.raises(orch.UsageError, match="'LOUD' is not a log level"):
        adw_logging.log_system_event(adw_id, None, "loud", "x")
    with pytest.raises(orch.UsageError, match="unknown workflow type 'no_such_workflow'; available: "):
        orch.adw.create_adw("no_such_workflow", {"prompt": "x"})
