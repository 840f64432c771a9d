"""The agent loop every model-driven phase runs.

The model gets a system prompt, the stable project context, the task, and a
toolset. It works through tool calls until it calls ``finish`` (validated by
the phase; a rejected finish goes back as a tool error) or ``escalate``.
Every response goes through the run store first, so a retried attempt
replays what was already paid for.
"""

from __future__ import annotations

import logging
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.models import (
    Message,
    ModelError,
    ModelRequest,
    ModelSettings,
    RecordingModel,
    RunStore,
    TextPart,
    ToolResultPart,
    ToolSpec,
    resolve_model,
)
from activities.tools import ESCALATE, FINISH, Toolbox
from activities.workspace import Workspace
from workflows.types import PhaseInput, Usage

__all__ = ["AgentRun", "run_agent", "render_prompt", "call_marker"]

log = logging.getLogger(__name__)

#: Checks a finish call's arguments; returns an error message for the model, or None.
FinishCheck = Callable[[dict[str, Any]], str | None]


@dataclass
class AgentRun:
    """What a finished conversation leaves behind."""

    finish: dict[str, Any] | None = None
    escalation: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    changed: set[str] = field(default_factory=set)
    transcript: list[Message] = field(default_factory=list)
    live_calls: int = 0
    replayed_calls: int = 0


def call_marker(inp: PhaseInput) -> str:
    """``backforge-call: implement/T003#1``: names the conversation in the prompt."""
    task = f"/{inp.task_id}" if inp.task_id else ""
    return f"backforge-call: {inp.phase}{task}#{inp.invocation}"


def render_prompt(name: str, **values: Any) -> str:
    """Fill ``activities/prompts/<name>.md`` (``$name`` placeholders)."""
    text = resources.files("activities.prompts").joinpath(f"{name}.md").read_text("utf-8")
    return string.Template(text).safe_substitute({k: str(v) for k, v in values.items()})


def _tags(inp: PhaseInput) -> dict[str, str]:
    tags = {
        "phase": inp.phase,
        "invocation": str(inp.invocation),
        "feature_dir": inp.workspace.feature_dir,
        "branch": inp.workspace.branch,
    }
    if inp.task_id:
        tags["task"] = inp.task_id
    return tags


async def run_agent(
    inp: PhaseInput,
    ws: Workspace,
    *,
    system: str,
    context: str,
    task: str,
    toolbox: Toolbox,
    finish_tool: ToolSpec,
    check_finish: FinishCheck | None = None,
    escalate_tool: ToolSpec | None = None,
    max_output_tokens: int = 8192,
) -> AgentRun:
    """Run one conversation to ``finish`` or ``escalate``.

    Raises:
        ApplicationError: non-retryable when the script/config is wrong or a
            limit is hit (the workflow turns it into an escalation).
    """
    limits = inp.limits
    started = time.monotonic()
    try:
        inner = resolve_model(inp.model)
    except (ValueError, ModelError) as err:
        raise ApplicationError(str(err), type="ModelConfigError", non_retryable=True) from err
    # The run store lives in the main repo even when the phase works in a task worktree.
    model = RecordingModel(inner, RunStore(inp.workspace.repo_path, inp.workflow_id, inp.run_key))
    tools = [*toolbox.specs(), finish_tool, *([escalate_tool] if escalate_tool else [])]
    # The call marker goes after the task, not in the system prompt, so the
    # system prompt and context stay a byte-identical, cacheable prefix.
    messages: list[Message] = [Message.user(f"{task.rstrip()}\n\n{call_marker(inp)}\n")]
    run = AgentRun()

    try:
        for turn in range(1, limits.max_turns + 1):
            if activity.in_activity():
                activity.heartbeat(f"{inp.run_key} turn {turn}")
            request = ModelRequest(
                system=system,
                context=context,
                messages=messages,
                tools=tools,
                settings=ModelSettings(max_tokens=max_output_tokens),
                tags=_tags(inp),
            )
            try:
                response = await model.request(request)
            except ModelError as err:
                raise ApplicationError(
                    str(err), type="ModelScriptError", non_retryable=True
                ) from err
            run.usage = run.usage + response.usage
            run.turns = turn
            messages.append(Message(role="assistant", parts=list(response.parts)))
            u = run.usage
            spent = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens + u.output_tokens
            if spent > limits.max_tokens:
                raise ApplicationError(
                    f"{inp.run_key}: spent {spent} tokens, over the limit of {limits.max_tokens}; "
                    "raise agent_limits.max_tokens or split the task",
                    type="AgentTokenLimit",
                    non_retryable=True,
                )
            elapsed = time.monotonic() - started
            if elapsed > limits.max_seconds:
                raise ApplicationError(
                    f"{inp.run_key}: ran {elapsed:.0f}s, over the limit of {limits.max_seconds}s; "
                    "raise agent_limits.max_seconds or split the task",
                    type="AgentTimeLimit",
                    non_retryable=True,
                )
            calls = response.tool_calls
            if not calls:
                messages.append(
                    Message.user(
                        "Continue with tool calls. Call `finish` when the work is complete."
                    )
                )
                continue
            results: list[ToolResultPart] = []
            for call in calls:
                if call.name == FINISH:
                    problem = check_finish(call.arguments) if check_finish else None
                    if problem is None:
                        run.finish = call.arguments
                        results.append(
                            ToolResultPart(tool_call_id=call.id, name=FINISH, content="ok")
                        )
                    else:
                        results.append(
                            ToolResultPart(
                                tool_call_id=call.id, name=FINISH, content=problem, is_error=True
                            )
                        )
                elif call.name == ESCALATE and escalate_tool is not None:
                    run.escalation = call.arguments
                    results.append(
                        ToolResultPart(tool_call_id=call.id, name=ESCALATE, content="escalated")
                    )
                else:
                    results.append(await toolbox.execute(call))
            messages.append(Message(role="user", parts=list(results)))
            if run.finish is not None or run.escalation is not None:
                break
        else:
            raise ApplicationError(
                f"{inp.run_key}: the model did not call finish within {limits.max_turns} turns; "
                "raise agent_limits.max_turns or give guidance",
                type="AgentTurnLimit",
                non_retryable=True,
            )
    finally:
        await model.aclose()
    run.changed = set(toolbox.changed)
    run.transcript = messages
    run.live_calls = model.live_calls
    run.replayed_calls = model.replayed_calls
    return run


def transcript_digest(messages: list[Message], limit: int = 4000) -> str:
    """A short readable record of a conversation for prompt history files."""
    out: list[str] = []
    for message in messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                out.append(f"**{message.role}**: {part.text.strip()[:400]}")
            elif part.kind == "tool_call":
                args = {
                    k: (v if len(str(v)) < 80 else f"<{len(str(v))} chars>")
                    for k, v in part.arguments.items()
                }
                out.append(f"- call `{part.name}` {args}")
            elif part.kind == "tool_result" and part.is_error:
                out.append(f"  - error: {part.content[:200]}")
    text = "\n".join(out)
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"
