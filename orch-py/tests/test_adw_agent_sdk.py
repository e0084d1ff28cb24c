"""orch.adw.adw_agent_sdk and adw_summarizer on their own: a query's hooks decide on its tool calls, its
handlers get the SDK's blocks and messages while the run goes on, resume continues on the same agent, quick_prompt runs a fresh
agent, and summaries come from the engine's summary model or the seed's fallbacks."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from typing import Any, Callable, Iterator, List

import pytest

import orch
import orch.adw
from orch.adw import adw_summarizer
from orch.adw.adw_agent_sdk import (
    AdhocPrompt,
    AssistantMessage,
    HookMatcher,
    HookResponse,
    HooksConfig,
    MessageHandlers,
    PreToolUseInput,
    QueryInput,
    QueryOptions,
    ResultMessage,
    ResultSubtype,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query_to_completion,
    quick_prompt,
)

# Asked for a greeting, the agent writes it; told it may not, it says so; asked again, it answers.
GREETER = {
    "steps": [
        {"when": "ONLY", "repeat": True, "reply": [{"type": "text", "text": "/tmp/specs/plan.md"}]},
        {"when": "again", "repeat": True, "reply": [{"type": "text", "text": "Still here."}], "usage": {"input_tokens": 10, "output_tokens": 2}},
        {"when": "greeting", "reply": [{"type": "tool_use", "name": "Write", "input": {"file_path": "hello.txt", "content": "Hi\n"}}], "usage": {"input_tokens": 100, "output_tokens": 10}},
        {"when": "not write", "reply": [{"type": "text", "text": "I may not write."}], "usage": {"input_tokens": 120, "output_tokens": 5}},
    ]
}


@pytest.fixture
def adw_engine(project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> Iterator[orch.Engine]:
    engine = orch.open(project, model=script(GREETER))
    orch.adw.use(engine)
    yield engine
    orch.adw.use(None)


def test_a_query_runs_on_the_engine_with_its_hooks_and_handlers(adw_engine: orch.Engine, project: pathlib.Path) -> None:
    seen: List[Any] = []

    async def no_writes(hook_input: Any, tool_use_id: Any, context: Any) -> HookResponse:
        assert isinstance(hook_input, PreToolUseInput) and hook_input.tool_name == "Write"
        return HookResponse.deny("you may not write files")

    def on_block(block: Any) -> None:
        seen.append(block)

    async def main() -> Any:
        options = QueryOptions(cwd=str(project), hooks=HooksConfig(pre_tool_use=[HookMatcher(matcher="Write|Edit", hooks=[no_writes])]))
        first = await query_to_completion(QueryInput("write a greeting", options, MessageHandlers(on_assistant_block=on_block)))
        again = await query_to_completion(QueryInput("say it again", QueryOptions(resume=first.session_id)))
        return first, again

    first, again = asyncio.run(main())
    assert first.success and first.result == "I may not write." and first.error is None
    assert not (project / "hello.txt").exists(), "the hook denied the write"
    assert (first.usage.input_tokens, first.usage.output_tokens) == (220, 15)
    assert first.usage.model_dump()["input_tokens"] == 220
    kinds = [type(m).__name__ for m in first.messages]
    assert kinds == ["SystemMessage", "AssistantMessage", "UserMessage", "AssistantMessage", "ResultMessage"]
    use = first.messages[1]
    assert isinstance(use, AssistantMessage) and isinstance(use.content[0], ToolUseBlock) and use.content[0].name == "Write"
    result_block = first.messages[2]
    assert isinstance(result_block, UserMessage) and isinstance(result_block.content[0], ToolResultBlock)
    assert result_block.content[0].is_error and "you may not write files" in str(result_block.content[0].content)
    done = first.messages[-1]
    assert isinstance(done, ResultMessage) and done.subtype == ResultSubtype.SUCCESS and done.session_id == first.session_id
    assert [type(b).__name__ for b in seen] == ["ToolUseBlock", "TextBlock"]
    assert isinstance(seen[1], TextBlock) and seen[1].text == "I may not write."

    assert again.success and again.result == "Still here." and again.session_id == first.session_id, "resume: the same agent"
    agents = [a for a in adw_engine.sync.agents() if a.name.startswith("query-")]
    assert len(agents) == 1 and agents[0].id == first.session_id
    assert agents[0].input_tokens == 230


def test_handlers_run_while_the_run_goes_on(project: pathlib.Path, script: Callable[[dict[str, Any]], str]) -> None:
    # The agent calls `gate`, which waits for the handler to have seen that call: the run can only
    # finish if the handler got the block while the run was going on.
    engine = orch.open(project, model=script({"steps": [
        {"when": "live", "reply": [{"type": "tool_use", "name": "gate", "input": {}}]},
        {"when": "handler saw", "reply": [{"type": "text", "text": "live"}]},
        {"when": "timed out", "reply": [{"type": "text", "text": "late"}]},
    ]}))
    seen = threading.Event()

    @engine.tool
    def gate() -> str:
        """Waits for the handler."""
        return "handler saw the call" if seen.wait(60) else "timed out"

    def on_block(block: Any) -> None:
        if isinstance(block, ToolUseBlock) and block.name == "gate":
            seen.set()

    orch.adw.use(engine)
    try:
        out = asyncio.run(query_to_completion(QueryInput("go live", QueryOptions(), MessageHandlers(on_assistant_block=on_block))))
    finally:
        orch.adw.use(None)
    assert out.success and out.result == "live"


def test_quick_prompt_and_a_failed_query(adw_engine: orch.Engine, project: pathlib.Path) -> None:
    assert asyncio.run(quick_prompt(AdhocPrompt("Reply with ONLY the path", cwd=str(project)))) == "/tmp/specs/plan.md"
    out = asyncio.run(query_to_completion(QueryInput("nothing the model knows")))
    assert not out.success and out.error and "scripted" in out.error.lower()
    bad = asyncio.run(query_to_completion(QueryInput("/no-such-command x")))
    assert not bad.success and bad.error == "unknown command /no-such-command: add .claude/commands/no-such-command.md"


def test_summaries_by_the_summary_model_or_the_seeds_fallbacks(
    project: pathlib.Path, script: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    orch.adw.use(orch.open(project))
    try:
        assert adw_summarizer.summarize_event({"text": "x" * 200}, "TextBlock") == "Response: " + "x" * 150
        assert adw_summarizer.summarize_event({"tool_name": "Read"}, "ToolUseBlock") == "Using tool: Read"
        assert adw_summarizer.summarize_event({"result": "All done."}, "result") == "All done."
        assert adw_summarizer.summarize_event({"result": ""}, "result") == "Step completed"
    finally:
        orch.adw.use(None)
    summary = script({"steps": [{"repeat": True, "reply": [{"type": "text", "text": "Wrote the plan."}]}]}, "summary.json")
    monkeypatch.setenv("ORCH_SUMMARY_MODEL", summary)
    orch.adw.use(orch.open(project))
    try:
        assert adw_summarizer.summarize_event({"text": "I wrote specs/plan.md"}, "TextBlock") == "Wrote the plan."
    finally:
        orch.adw.use(None)
