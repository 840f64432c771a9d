"""Responding to a human request: building the ``HumanResponse`` and sending it.

The default answers come from ``HumanQuestion.default_answer`` and
``workflows.human.default_response``; the workflow's ``respond`` update is the
validator, and its reason for a rejection is shown as it is.
"""

from __future__ import annotations

import getpass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cli.errors import EXIT_FAILED, EXIT_QUEUED, CliError
from cli.settings import Settings, worker_command
from contract import FeatureStatus, HumanQuestion, HumanRequest, HumanResponse, RespondResult

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

__all__ = [
    "ACCEPT_TIMEOUT",
    "UPDATE_TIMEOUT",
    "responder",
    "match_option",
    "find_request",
    "check_kind",
    "answer_response",
    "approval_response",
    "auto_response",
    "describe_choice",
    "send_response",
    "queue_response",
]

#: How long a worker may take to validate (accept or reject) an answer.
ACCEPT_TIMEOUT = timedelta(seconds=10)
#: How long an accepted answer may take to be recorded.
UPDATE_TIMEOUT = timedelta(seconds=60)
#: Escalation options that stop the feature, taken by ``--yes`` once it gives up retrying.
_STOP_KEYS = ("abort", "stop")


def responder() -> str:
    """Who is answering: the login name (``cli`` when it cannot be read)."""
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def match_option(question: HumanQuestion, answer: str) -> str | None:
    """The option key ``answer`` names, compared case-insensitively (None: no option)."""
    wanted = answer.strip().lower()
    return next((o.key for o in question.options if o.key.lower() == wanted), None)


def find_request(status: FeatureStatus | None, request_id: str) -> HumanRequest | None:
    """The open request with ``request_id`` (None when the status is unknown or it is not open)."""
    if status is None:
        return None
    return next((r for r in status.open_requests if r.id == request_id), None)


def check_kind(
    request: HumanRequest | None, *, approval: bool, workflow_id: str, settings: Settings
) -> None:
    """Point at the right command when an approval is answered or a question approved.

    Raises:
        CliError: Exit 2, with the command that does answer ``request``.
    """
    if request is None or (request.kind == "approval") == approval:
        return
    from workflows.human import how_to_answer  # lazy: imports the workflow SDK

    command = how_to_answer(request, workflow_id, cli=settings.command_prefix()).command
    article = "an" if request.kind[0] in "aeiou" else "a"
    raise CliError(f"{request.id} is {article} {request.kind} request. Answer it with: {command}")


def answer_response(
    request_id: str,
    answers: dict[str, str],
    *,
    comment: str | None,
    request: HumanRequest | None,
) -> HumanResponse:
    """The response to a question request; option keys typed in any case are matched."""
    normalized = dict(answers)
    for question in request.questions if request is not None else []:
        if question.id in normalized:
            normalized[question.id] = (
                match_option(question, normalized[question.id]) or (normalized[question.id])
            )
    return HumanResponse(
        request_id=request_id, answers=normalized, comment=comment, responder=responder()
    )


def approval_response(request_id: str, *, approved: bool, comment: str | None) -> HumanResponse:
    """The response that approves or rejects a gate."""
    return HumanResponse(
        request_id=request_id, approved=approved, comment=comment, responder=responder()
    )


def auto_response(request: HumanRequest, who: str, *, give_up: bool = False) -> HumanResponse:
    """The response ``--yes`` sends: every default answer, or approval.

    With ``give_up`` an escalation is answered with its abort/stop option where
    it has one, so that an unattended run cannot retry a broken step forever.
    """
    from workflows.human import default_response  # lazy: imports the workflow SDK

    response = default_response(request, who)
    if request.kind == "approval":
        response.comment = "approved automatically (--yes)"
    elif give_up and request.kind == "escalation":
        for question in request.questions:
            stop = next((o.key for o in question.options if o.key in _STOP_KEYS), None)
            if stop is not None:
                response.answers[question.id] = stop
    return response


def describe_choice(request: HumanRequest, response: HumanResponse) -> str:
    """``Q1 → B (Allow); Q2 → A (...)``, or ``approved`` / ``rejected: comment``."""
    if request.kind == "approval" and response.approved is not None and not response.answers:
        return "approved" if response.approved else f"rejected: {response.comment}"
    chosen = []
    for question in request.questions:
        answer = response.answers.get(question.id, "")
        text = question.answer_text(answer)
        chosen.append(f"{question.id} → {answer}" + (f" ({text})" if text != answer else ""))
    return "; ".join(chosen)


async def send_response(handle: WorkflowHandle[Any, Any], response: HumanResponse) -> RespondResult:
    """Send ``response`` through the workflow's validated ``respond`` update.

    A worker validates the update within a workflow task, so a live one accepts
    or rejects it in about a second; ``ACCEPT_TIMEOUT`` bounds the wait for one
    that has just stopped.

    Raises:
        CliError: Exit 1 with the workflow's reason when it rejects the response;
            exit 3 (``queued``) when no worker took it in time: the update waits
            on the server and is applied when a worker takes up the workflow.
    """
    from temporalio.client import (
        WorkflowUpdateFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
        WorkflowUpdateStage,
    )

    try:
        update = await handle.start_update(
            "respond",
            response,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=RespondResult,
            rpc_timeout=ACCEPT_TIMEOUT,
        )
        result = await update.result(rpc_timeout=UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        raise CliError(f"the workflow rejected the response: {reason}", code=EXIT_FAILED) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise CliError(
            f"no worker took the answer to {response.request_id} within "
            f"{ACCEPT_TIMEOUT.seconds}s (the worker that polled last may have stopped). It waits "
            "on the server, unchecked, and is applied when a worker takes up the workflow: start "
            f"one with '{worker_command()}', then see 'status' (answer again if the request is "
            "still open)",
            code=EXIT_QUEUED,
            label="queued",
        ) from None
    if not result.accepted:
        raise CliError(f"the workflow rejected the response: {result.message}", code=EXIT_FAILED)
    return result


async def queue_response(handle: WorkflowHandle[Any, Any], response: HumanResponse) -> None:
    """Send ``response`` as the ``respond`` signal: durable at once, checked when applied.

    For when no worker polls: nothing can validate an update now, but a signal
    is written to the history and applied (or refused, with the reason in
    ``status``) when a worker takes up the workflow.
    """
    await handle.signal("respond", response)
