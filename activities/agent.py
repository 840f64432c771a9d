"""The agent loop every model-driven phase runs.

The model gets a system prompt, the stable project context, the task, and a
toolset. It works through tool calls until it calls ``finish`` or ``escalate``.
Both tools are derived from pydantic models (the phase's ``Finish`` and
``Escalation``); a call that does not validate, or that the phase's own check
rejects, goes back to the model as a tool error. Every response goes through
the run store first, so a retried attempt replays what was already paid for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import prompts
from activities.models import (
    CallOrigin,
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    RecordingModel,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from activities.models.structured import model_tool, parse_arguments
from activities.tools import Toolbox
from contract import AgentBudget, HumanOption, HumanQuestion, Usage
from telemetry.spans import tool_span

__all__ = [
    "FINISH",
    "ESCALATE",
    "Finish",
    "Question",
    "Review",
    "FinishCheck",
    "AgentRun",
    "run_agent",
    "transcript_digest",
]

log = logging.getLogger(__name__)

FINISH = "finish"
ESCALATE = "escalate"

F = TypeVar("F", bound="Finish")
E = TypeVar("E", bound=BaseModel)


class Finish(BaseModel):
    """Call once the work is complete, with a one-paragraph summary of what you did."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="One paragraph: what you did and why.")


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="A, B, C ...")
    answer: str
    implications: str = ""


class Question(BaseModel):
    """A question for a person, with options and a recommendation."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Q1, Q2, ...")
    text: str
    options: list[Option] = Field(min_length=2, max_length=5)
    recommended: str = Field(description="Key of the option you recommend.")

    def human(self) -> HumanQuestion:
        """The question as the workflow asks it."""
        return HumanQuestion(
            id=self.id,
            text=self.text,
            options=[HumanOption(**o.model_dump()) for o in self.options],
            recommended=self.recommended,
        )

    def problem(self) -> str | None:
        keys = [o.key for o in self.options]
        if self.recommended not in keys:
            return f"question {self.id}: recommended must be one of {keys}"
        return None


@dataclass
class AgentRun(Generic[F]):
    """What a finished conversation leaves behind."""

    finish: F | None = None
    escalation: BaseModel | None = None
    usage: Usage = field(default_factory=Usage)
    turns: int = 0
    changed: set[str] = field(default_factory=set)
    transcript: list[Message] = field(default_factory=list)
    live_calls: int = 0
    replayed_calls: int = 0
    #: What the accepted finish was checked against (tests run, files changed), if anything.
    evidence: str = ""

    @property
    def summary(self) -> str:
        if self.finish is not None:
            return self.finish.summary
        return str(getattr(self.escalation, "problem", ""))


@dataclass(frozen=True)
class Review:
    """A phase's verdict on a validated finish."""

    #: What is missing, for the model (the finish is refused), or None (accepted).
    problem: str | None = None
    #: What the finish was checked against, recorded with an accepted finish.
    evidence: str = ""


#: Checks a validated finish against the workspace (it may run tests).
FinishCheck = Callable[[F], Awaitable[Review]]


def _stop(
    kind: Literal["turns", "tokens", "seconds"], run_key: str, detail: str
) -> ApplicationError:
    names = {"turns": "AgentTurnLimit", "tokens": "AgentTokenLimit", "seconds": "AgentTimeLimit"}
    return ApplicationError(f"{run_key}: {detail}", type=names[kind], non_retryable=True)


async def run_agent(
    model: RecordingModel,
    *,
    run_key: str,
    origin: CallOrigin,
    limits: AgentBudget,
    system: str,
    context: str,
    task: str,
    toolbox: Toolbox,
    finish: type[F],
    check_finish: FinishCheck[F] | None = None,
    escalation: type[BaseModel] | None = None,
    max_output_tokens: int = 8192,
) -> AgentRun[F]:
    """Run one conversation to ``finish`` or ``escalate``.

    Raises:
        ApplicationError: non-retryable when the script/config is wrong or a
            limit is hit (the workflow turns it into an escalation).
    """
    started = time.monotonic()
    tools = [
        *toolbox.specs(),
        _lean(model_tool(finish, name=FINISH)),
        *([_lean(model_tool(escalation, name=ESCALATE))] if escalation else []),
    ]
    # The call marker goes after the task, not in the system prompt, so the
    # system prompt and context stay a byte-identical, cacheable prefix.
    marker = f"backforge-call: {origin.phase}{f'/{origin.task_id}' if origin.task_id else ''}#{origin.invocation}"
    messages: list[Message] = [Message.user(f"{task.rstrip()}\n\n{marker}\n")]
    run: AgentRun[F] = AgentRun()

    for turn in range(1, limits.max_turns + 1):
        if activity.in_activity():
            activity.heartbeat(f"{run_key} turn {turn}")
        request = ModelRequest(
            system=system,
            context=context,
            messages=messages,
            tools=tools,
            settings=ModelSettings(max_tokens=max_output_tokens),
            origin=origin,
        )
        last = turn == limits.max_turns  # no call follows the last turn's
        try:
            response = await model.request(request, goes_on=None if last else _goes_on)
        except ModelError as err:
            raise ApplicationError(str(err), type="ModelScriptError", non_retryable=True) from err
        run.usage = run.usage + response.usage
        run.turns = turn
        messages.append(Message(role="assistant", parts=list(response.parts)))
        u = run.usage
        spent = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens + u.output_tokens
        if spent > limits.max_tokens:
            raise _stop(
                "tokens",
                run_key,
                f"spent {spent} tokens, over the limit of {limits.max_tokens}; "
                "raise agent_limits.max_tokens or split the task",
            )
        elapsed = time.monotonic() - started
        if elapsed > limits.max_seconds:
            raise _stop(
                "seconds",
                run_key,
                f"ran {elapsed:.0f}s, over the limit of {limits.max_seconds}s; "
                "raise agent_limits.max_seconds or split the task",
            )
        calls = response.tool_calls
        if not calls:
            messages.append(Message.user(prompts.render("continue")))
            continue
        results: list[ToolResultPart] = []
        for call in calls:
            if call.name == FINISH:
                results.append(await _finish(call, finish, check_finish, run))
            elif call.name == ESCALATE and escalation is not None:
                results.append(_escalate(call, escalation, run))
            else:
                with tool_span(call.name, call_id=call.id) as span:
                    result = await toolbox.execute(call)
                    span.record(result)
                results.append(result)
        messages.append(Message(role="user", parts=list(results)))
        if run.finish is not None or run.escalation is not None:
            break
    else:
        raise _stop(
            "turns",
            run_key,
            f"the model did not call finish within {limits.max_turns} turns; "
            "raise agent_limits.max_turns or give guidance",
        )
    run.changed = set(toolbox.changed)
    run.transcript = messages
    run.live_calls = model.live_calls
    run.replayed_calls = model.replayed_calls
    return run


def _goes_on(response: ModelResponse) -> bool:
    """Whether the loop calls the model again after ``response`` (unless a limit or an
    error stops it): it neither finishes nor escalates."""
    return not any(call.name in (FINISH, ESCALATE) for call in response.tool_calls)


def _lean(spec: ToolSpec) -> ToolSpec:
    """The spec without what the model does not need (every request carries the tools):
    pydantic's ``title`` keys, the schema's copy of the tool description, nested models'
    docstrings (their fields say what they hold), empty defaults (``required`` says what
    may be left out) and ``additionalProperties: false`` (the arguments are validated
    against the model, which refuses unknown ones with a message)."""

    def strip(node: Any, top: bool) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v, False)
                for k, v in node.items()
                if not (k == "title" and isinstance(v, str))
                and not (
                    k == "description" and isinstance(v, str) and (top or "properties" in node)
                )
                and not (k == "default" and v in ("", [], None))
                and not (k == "additionalProperties" and v is False)
            }
        if isinstance(node, list):
            return [strip(v, False) for v in node]
        return node

    return spec.model_copy(update={"parameters": strip(spec.parameters, True)})


def _result(call: ToolCallPart, content: str, *, error: bool) -> ToolResultPart:
    return ToolResultPart(tool_call_id=call.id, name=call.name, content=content, is_error=error)


async def _finish(
    call: ToolCallPart, finish: type[F], check: FinishCheck[F] | None, run: AgentRun[F]
) -> ToolResultPart:
    value = parse_arguments(finish, call.arguments)
    if isinstance(value, str):
        return _result(call, f"not finished: {value}", error=True)
    review = await check(value) if check else Review()
    if review.problem is not None:
        return _result(call, review.problem, error=True)
    run.finish = value
    run.evidence = review.evidence
    return _result(call, "ok", error=False)


def _escalate(call: ToolCallPart, escalation: type[BaseModel], run: AgentRun[F]) -> ToolResultPart:
    value = parse_arguments(escalation, call.arguments)
    if isinstance(value, str):
        return _result(call, f"not escalated: {value}", error=True)
    run.escalation = value
    return _result(call, "escalated", error=False)


def transcript_digest(messages: list[Message], limit: int = 4000) -> str:
    """A short readable record of a conversation for prompt history files."""
    out: list[str] = []
    for message in messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                out.append(f"**{message.role}**: {part.text.strip()[:400]}")
            elif isinstance(part, ToolCallPart):
                args = {
                    k: (v if len(str(v)) < 80 else f"<{len(str(v))} chars>")
                    for k, v in part.arguments.items()
                }
                out.append(f"- call `{part.name}` {args}")
            elif part.is_error:
                out.append(f"  - error: {part.content[:200]}")
    text = "\n".join(out)
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"
