#!/usr/bin/env python3
"""Plan, build, review and fix: a seed-shaped ADW script.

Written from the seed contract's description of ``adws/adw_workflows/adw_plan_build_review_fix.py``
(seed-contract.md §6.2-6.3, seed-systems.md §7.1-7.2). It is the seed's script with only its imports
changed: ``adw_modules.X`` became ``orch.adw.X``, and the block types come from
``orch.adw.adw_agent_sdk`` instead of ``claude_agent_sdk.types``. Everything else is as the seed has it.

Usage: python adw_plan_build_review_fix.py --adw-id <uuid>
"""

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

from orch.adw.adw_agent_sdk import (
    AdhocPrompt,
    HookMatcher,
    HookResponse,
    HooksConfig,
    MessageHandlers,
    ModelName,
    QueryInput,
    QueryOptions,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    query_to_completion,
    quick_prompt,
)
from orch.adw.adw_database import create_agent, get_adw, update_agent, update_log_summary
from orch.adw.adw_logging import (
    close_logging,
    init_logging,
    log_adw_event,
    log_step_end,
    log_step_start,
    log_system_event,
    update_adw_status,
)
from orch.adw.adw_summarizer import summarize_event
from orch.adw.adw_websockets import broadcast_adw_event_summary_update

STEP_PLAN = "plan"
STEP_BUILD = "build"
STEP_REVIEW = "review"
STEP_FIX = "fix"
TOTAL_STEPS = 4

PLAN_TOOLS = ["Read", "Glob", "Grep", "Bash", "Write", "Edit", "Task", "TodoWrite", "WebFetch", "WebSearch", "Skill"]
REVIEW_TOOLS = ["Read", "Glob", "Grep", "Bash", "Write", "Skill"]
FIX_TOOLS = ["Read", "Glob", "Grep", "Bash", "Write", "Edit", "Task", "TodoWrite", "Skill"]


def _get_tool_summary(tool_name: str, tool_input: dict) -> str:
    if tool_name in ("Read", "Write", "Edit"):
        return f"{tool_name}: {tool_input.get('file_path', '')}"
    if tool_name == "Bash":
        return f"Bash: {str(tool_input.get('command', ''))[:40]}..."
    if tool_name in ("Glob", "Grep"):
        return f"{tool_name}: {tool_input.get('pattern', '')}"
    if tool_name == "Skill":
        return f"Skill: /{tool_input.get('skill', '')}"
    if tool_name == "Task":
        return f"Task: {str(tool_input.get('description', ''))[:30]}..."
    return f"Tool: {tool_name}"


def create_logging_hooks(adw_id: str, adw_step: str, agent_id: str) -> HooksConfig:
    async def pre_tool_hook(hook_input: Any, tool_use_id: Optional[str], context: Any) -> HookResponse:
        tool_name = hook_input.tool_name
        tool_input = hook_input.tool_input
        log_adw_event(
            adw_id,
            adw_step,
            "hook",
            "PreToolUse",
            f"Using tool: {tool_name}",
            agent_id,
            {"tool_name": tool_name, "tool_input": tool_input, "tool_use_id": tool_use_id},
            _get_tool_summary(tool_name, tool_input),
        )
        return HookResponse.allow()

    async def post_tool_hook(hook_input: Any, tool_use_id: Optional[str], context: Any) -> HookResponse:
        tool_name = hook_input.tool_name
        log_adw_event(
            adw_id,
            adw_step,
            "hook",
            "PostToolUse",
            f"PostToolUse: {tool_name}",
            agent_id,
            {
                "tool_name": tool_name,
                "tool_input": hook_input.tool_input,
                "tool_use_id": tool_use_id,
                "tool_response": str(hook_input.tool_response),
            },
            _get_tool_summary(tool_name, hook_input.tool_input) + " ✓",
        )
        return HookResponse.allow()

    async def stop_hook(hook_input: Any, tool_use_id: Optional[str], context: Any) -> HookResponse:
        reason = getattr(hook_input, "reason", "unknown")
        log_adw_event(adw_id, adw_step, "hook", "Stop", f"Stop: {reason}", agent_id, {"reason": reason}, f"Stop: {reason}")
        return HookResponse.allow()

    return HooksConfig(
        pre_tool_use=[HookMatcher(matcher=None, hooks=[pre_tool_hook], timeout=30)],
        post_tool_use=[HookMatcher(matcher=None, hooks=[post_tool_hook], timeout=30)],
        stop=[HookMatcher(matcher=None, hooks=[stop_hook], timeout=30)],
    )


def create_message_handlers(adw_id: str, adw_step: str, agent_id: str) -> MessageHandlers:
    async def summarize_later(log_id: str, data: dict, event_type: str) -> None:
        summary = summarize_event(data, event_type)
        if summary and log_id:
            update_log_summary(log_id, summary)
            broadcast_adw_event_summary_update(adw_id, log_id, summary)

    async def on_block(block: Any) -> None:
        if isinstance(block, TextBlock):
            data = {"text": block.text}
            log_id = log_adw_event(adw_id, adw_step, "response", "TextBlock", block.text, agent_id, data, f"Response: {block.text[:150]}")
            await summarize_later(log_id, data, "TextBlock")
        elif isinstance(block, ThinkingBlock):
            data = {"thinking": block.thinking}
            log_id = log_adw_event(
                adw_id, adw_step, "response", "ThinkingBlock", block.thinking, agent_id, data, f"Thinking: {block.thinking[:100]}"
            )
            await summarize_later(log_id, data, "ThinkingBlock")
        elif isinstance(block, ToolUseBlock):
            data = {"tool_name": block.name, "tool_input": block.input, "tool_use_id": block.id}
            log_id = log_adw_event(
                adw_id, adw_step, "response", "ToolUseBlock", f"[Tool] {block.name}", agent_id, data, f"Using tool: {block.name}"
            )
            await summarize_later(log_id, data, "ToolUseBlock")

    async def on_result(msg: Any) -> None:
        log_adw_event(
            adw_id,
            adw_step,
            "response",
            "result",
            msg.result or "",
            agent_id,
            {"subtype": msg.subtype.value, "usage": msg.usage.model_dump(), "session_id": msg.session_id},
            f"Step completed: {msg.subtype.value}",
        )

    return MessageHandlers(on_assistant_block=on_block, on_result=on_result)


async def run_step(
    adw_id: str,
    orchestrator_agent_id: str,
    step: str,
    completed_steps: Optional[int],
    prompt: str,
    tools: list,
    model: str,
    working_dir: str,
    start_payload: dict,
) -> tuple:
    step_start = time.time()
    agent_id = create_agent(
        orchestrator_agent_id=orchestrator_agent_id,
        name=f"{step}-{adw_id[:8]}",
        model=model,
        working_dir=working_dir,
        adw_id=adw_id,
        adw_step=step,
    )
    log_system_event(adw_id, step, "INFO", f"Created {step} agent: {agent_id[:8]}", metadata={"agent_id": agent_id, "model": model})
    update_agent(agent_id, status="executing", old_status="idle")
    log_step_start(adw_id, step, agent_id, payload={**start_payload, "model": model}, summary=f"Starting {step} step")
    if completed_steps is None:
        update_adw_status(adw_id, "in_progress", current_step=step)
    else:
        update_adw_status(adw_id, "in_progress", current_step=step, completed_steps=completed_steps)
    log_system_event(adw_id, step, "INFO", f"Executing {prompt[:80]}", metadata={"prompt": prompt})
    try:
        result = await query_to_completion(
            QueryInput(
                prompt=prompt,
                options=QueryOptions(
                    model=model,
                    cwd=working_dir,
                    allowed_tools=tools,
                    hooks=create_logging_hooks(adw_id, step, agent_id),
                    bypass_permissions=True,
                ),
                handlers=create_message_handlers(adw_id, step, agent_id),
            )
        )
        duration_ms = int((time.time() - step_start) * 1000)
        update_agent(
            agent_id,
            session_id=result.session_id,
            status="complete" if result.success else "blocked",
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            total_cost=result.usage.total_cost_usd,
        )
        verdict = None
        if step == STEP_REVIEW and result.success and result.result:
            upper = result.result.upper()
            if "PASS" in upper and "FAIL" not in upper:
                verdict = "PASS"
            elif "FAIL" in upper:
                verdict = "FAIL"
        payload: dict = {"session_id": result.session_id} if result.success else {"error": result.error}
        summary = f"{step.capitalize()} completed" if result.success else f"{step.capitalize()} failed"
        if step == STEP_REVIEW:
            payload["verdict"] = verdict
            summary = f"Review completed: {verdict}"
        log_step_end(
            adw_id, step, agent_id, payload=payload, summary=summary,
            status="success" if result.success else "failed", duration_ms=duration_ms,
        )
        return result.success, result.session_id, agent_id, verdict
    except Exception as e:
        update_agent(agent_id, status="blocked", old_status="executing")
        log_step_end(adw_id, step, agent_id, payload={"exception": str(e)}, status="failed")
        raise


async def extract_plan_path(working_dir: str, model: str) -> Optional[str]:
    reply = await quick_prompt(
        AdhocPrompt(
            prompt="What is the path of the plan file you created? Reply with ONLY the absolute file path.",
            model=model,
            cwd=working_dir,
        )
    )
    first = reply.replace("`", "").replace('"', "").replace("'", "").strip().split("\n")[0].strip()
    if first.startswith("/") or first.startswith("./"):
        return first
    match = re.search(r"(/[^\s]+\.md)", reply)
    if match:
        return match.group(1)
    specs = sorted(Path(working_dir, "specs").glob("*.md"), key=lambda p: p.stat().st_mtime, reverse=True)
    return str(specs[0]) if specs else None


def extract_review_path(working_dir: str) -> Optional[str]:
    reviews = sorted(Path(working_dir, "app_review").glob("review_*.md"), key=lambda p: p.stat().st_mtime, reverse=True)
    return str(reviews[0]) if reviews else None


async def run_workflow(adw_id: str) -> bool:
    init_logging()
    adw = get_adw(adw_id)
    if not adw:
        return False
    input_data = adw.get("input_data") or {}
    orchestrator_agent_id = adw.get("orchestrator_agent_id")
    prompt = input_data.get("prompt")
    working_dir = input_data.get("working_dir")
    if not prompt or not working_dir:
        update_adw_status(adw_id, "failed", error_message="Missing prompt or working_dir in input_data")
        return False
    model = input_data.get("model", ModelName.OPUS.value)
    review_model = input_data.get("review_model", ModelName.OPUS.value)
    fix_model = input_data.get("fix_model", ModelName.OPUS.value)
    started = time.time()
    try:
        log_system_event(
            adw_id, None, "INFO", f"Workflow started: {adw['adw_name']}",
            metadata={"prompt": prompt, "working_dir": working_dir, "model": model, "review_model": review_model,
                      "fix_model": fix_model, "total_steps": TOTAL_STEPS},
        )
        ok, plan_session, plan_agent, _ = await run_step(
            adw_id, orchestrator_agent_id, STEP_PLAN, None, f"/plan {prompt}", PLAN_TOOLS, model, working_dir, {"prompt": prompt}
        )
        if not ok:
            update_adw_status(adw_id, "failed", error_message="Plan step failed", error_step=STEP_PLAN)
            return False
        plan_path = await extract_plan_path(working_dir, model)
        if not plan_path:
            update_adw_status(adw_id, "failed", error_message="Could not extract plan file path", error_step=STEP_PLAN)
            return False
        ok, build_session, build_agent, _ = await run_step(
            adw_id, orchestrator_agent_id, STEP_BUILD, 1, f"/build {plan_path}", PLAN_TOOLS, model, working_dir, {"plan_path": plan_path}
        )
        if not ok:
            update_adw_status(adw_id, "failed", error_message="Build step failed", error_step=STEP_BUILD, completed_steps=1)
            return False
        escaped = prompt.replace('"', '\\"')
        ok, review_session, review_agent, verdict = await run_step(
            adw_id, orchestrator_agent_id, STEP_REVIEW, 2, f'/review "{escaped}" {plan_path}', REVIEW_TOOLS, review_model,
            working_dir, {"user_prompt": prompt, "plan_path": plan_path},
        )
        if not ok:
            update_adw_status(adw_id, "failed", error_message="Review step failed", error_step=STEP_REVIEW, completed_steps=2)
            return False
        fix_session = fix_agent = None
        fix_executed = False
        if verdict == "FAIL":
            review_path = extract_review_path(working_dir)
            if not review_path:
                update_adw_status(adw_id, "failed", error_message="Could not find review file", error_step=STEP_FIX, completed_steps=3)
                return False
            ok, fix_session, fix_agent, _ = await run_step(
                adw_id, orchestrator_agent_id, STEP_FIX, 3, f'/fix "{escaped}" {plan_path} {review_path}', FIX_TOOLS, fix_model,
                working_dir, {"user_prompt": prompt, "plan_path": plan_path, "review_path": review_path},
            )
            if not ok:
                update_adw_status(adw_id, "failed", error_message="Fix step failed", error_step=STEP_FIX, completed_steps=3)
                return False
            fix_executed = True
        else:
            log_system_event(adw_id, STEP_FIX, "INFO", "Fix step skipped - review passed with no blockers", metadata={"verdict": verdict})
        duration = int(time.time() - started)
        update_adw_status(adw_id, "completed", completed_steps=TOTAL_STEPS)
        log_system_event(
            adw_id, None, "INFO", f"Workflow completed in {duration}s - Review verdict: {verdict or 'Unknown'}",
            metadata={"plan_path": plan_path, "plan_session_id": plan_session, "plan_agent_id": plan_agent,
                      "build_session_id": build_session, "build_agent_id": build_agent,
                      "review_session_id": review_session, "review_agent_id": review_agent, "review_verdict": verdict,
                      "fix_session_id": fix_session, "fix_agent_id": fix_agent, "fix_executed": fix_executed,
                      "duration_seconds": duration},
        )
        return True
    except Exception as e:
        update_adw_status(adw_id, "failed", error_message=str(e))
        log_system_event(adw_id, None, "ERROR", f"Workflow exception: {e}")
        return False
    finally:
        close_logging()


def main() -> None:
    parser = argparse.ArgumentParser(description="Plan, build, review and fix")
    parser.add_argument("--adw-id", required=True)
    args = parser.parse_args()
    ok = asyncio.run(run_workflow(args.adw_id))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
