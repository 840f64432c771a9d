"""The human-request desk: ask a person, check their answer, remind, time out.

Deterministic and free of I/O, so the workflow can own one and tests can drive
it without a server. Everything a person sees about *how* to answer comes from
``how_to_answer`` here (the workflow's UI details and the CLI both use it), and
the default answer to a question is ``HumanQuestion.default_answer``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow

from contract import HumanQuestion, HumanRequest, HumanResponse, RequestKind, RespondResult

__all__ = [
    "Aborted",
    "AnswerHelp",
    "HumanDesk",
    "WakeAction",
    "answer_problem",
    "default_response",
    "how_to_answer",
]

_ID_PREFIX: dict[RequestKind, str] = {
    "clarification": "clarify",
    "escalation": "escalate",
    "approval": "approve",
    "budget": "budget",
}
#: How long one visible wait's timer runs before it is simply started again.
VISIBLE_WAIT = timedelta(days=1)
#: What the desk does when a waiting request's timer fires.
WakeAction = Literal["remind", "answer-recommended", "abort", "keep-waiting"]


class Aborted(Exception):
    """A person (or a timeout policy) chose to stop the feature."""


@dataclass(frozen=True)
class AnswerHelp:
    """How to answer one request: a command line and the ``respond`` JSON payload."""

    command: str
    payload: str
    #: For approvals: the command that rejects (with a comment).
    reject_command: str | None = None


def _quote(value: str) -> str:
    return value if re.fullmatch(r"[\w.:/@+-]+", value) else shlex.quote(value)


def how_to_answer(request: HumanRequest, workflow_id: str, *, cli: str = "backforge") -> AnswerHelp:
    """The command and signal payload that answer ``request`` with its default answers."""
    if request.kind == "approval":
        payload = {"request_id": request.id, "approved": True}
        return AnswerHelp(
            command=f"{cli} approve {workflow_id} {request.id}",
            payload=json.dumps(payload),
            reject_command=(f'{cli} reject {workflow_id} {request.id} --comment "what to change"'),
        )
    answers = {q.id: q.default_answer for q in request.questions}
    pairs = " ".join(f"{qid}={_quote(answer)}" for qid, answer in answers.items())
    command = f"{cli} answer {workflow_id} {request.id} {pairs}".rstrip()
    if request.kind == "escalation":
        command += ' --comment "guidance for the next attempt"'
    return AnswerHelp(
        command=command, payload=json.dumps({"request_id": request.id, "answers": answers})
    )


def default_response(request: HumanRequest, responder: str) -> HumanResponse:
    """The response that takes every default: approval, or each question's default answer."""
    if request.kind == "approval":
        return HumanResponse(request_id=request.id, approved=True, responder=responder)
    return HumanResponse(
        request_id=request.id,
        answers={q.id: q.default_answer for q in request.questions},
        responder=responder,
    )


class HumanDesk:
    """Open requests, their answers, reminders and deadlines for one feature.

    Args:
        remind_every_s: Default seconds between reminders (None: no reminders).
    """

    def __init__(self, *, remind_every_s: int | None = None) -> None:
        self.remind_every_s = remind_every_s
        self.open: dict[str, HumanRequest] = {}
        self.answered: list[str] = []
        self._responses: dict[str, HumanResponse] = {}
        self._seq = 0
        #: Money spent so far; a budget answer must name a limit above it.
        self.spent_usd = 0.0
        #: The last answer that could not be applied, and why (shown to people).
        self.last_ignored: str | None = None

    # ---- opening and waiting (workflow context) -----------------------------
    def file(self, request: HumanRequest, now: datetime) -> HumanRequest:
        """Give ``request`` its id and creation time, and open it."""
        self._seq += 1
        gate = f"-{request.phase}" if request.kind == "approval" else ""
        request.id = f"{_ID_PREFIX[request.kind]}{gate}-{self._seq}"
        request.created_at = now
        request.remind_every_s = request.remind_every_s or self.remind_every_s
        self.open[request.id] = request
        return request

    async def ask(
        self, request: HumanRequest, *, changed: Callable[[], None], visible: bool = False
    ) -> HumanResponse:
        """Open ``request`` and wait until it is answered (or its deadline policy answers).

        ``changed`` is called whenever what a person sees changes (opened,
        reminded, answered), so the workflow can refresh its visible state. With
        ``visible``, the wait is always a timer whose summary names the request, so
        the Temporal UI's timeline shows that the feature waits for a person.

        Raises:
            Aborted: The deadline passed and the request's policy is ``abort``.
        """
        self.file(request, workflow.now())
        changed()
        summary = f"Waiting for you: {request.title} (answer {request.id})"[:200]
        while request.id not in self._responses:
            timeout = self.next_wake(request, workflow.now())
            if timeout is None and visible:
                timeout = VISIBLE_WAIT
            try:
                await workflow.wait_condition(
                    lambda: request.id in self._responses,
                    timeout=timeout,
                    timeout_summary=summary if visible else None,
                )
            except TimeoutError:
                if request.remind_every_s is None and request.deadline is None:
                    continue  # only the visibility timer: wait on
                action = self.on_wake(request, workflow.now())
                if action == "abort":
                    raise Aborted(f"{request.id} was not answered by its deadline") from None
                if action == "remind":
                    workflow.logger.info(
                        "Reminder %d: %s is waiting for an answer",
                        request.reminders_sent,
                        request.id,
                    )
                changed()
        response = self.close(request.id)
        changed()
        return response

    def next_wake(self, request: HumanRequest, now: datetime) -> timedelta | None:
        """When the timer for ``request`` should fire next (None: only an answer wakes it)."""
        waits = []
        if request.remind_every_s:
            waits.append(timedelta(seconds=request.remind_every_s))
        if request.deadline is not None:
            waits.append(max(request.deadline - now, timedelta(seconds=1)))
        return min(waits) if waits else None

    def on_wake(self, request: HumanRequest, now: datetime) -> WakeAction:
        """Apply the timer's effect to ``request`` and say what it was."""
        if request.deadline is None or now < request.deadline:
            request.reminders_sent += 1
            return "remind"
        if request.on_timeout == "recommended":
            self._responses[request.id] = default_response(
                request, "timeout policy (recommended answers)"
            )
            return "answer-recommended"
        if request.on_timeout == "abort":
            return "abort"
        request.deadline = None
        return "keep-waiting"

    def ignore(self, response: HumanResponse, reason: str) -> None:
        """Note an answer that came by signal and could not be applied (no reply channel)."""
        self.last_ignored = f"{response.request_id}: {reason}"

    def withdraw_all(self) -> None:
        """Close every open request unanswered (the feature stopped)."""
        self.open.clear()

    def close(self, request_id: str) -> HumanResponse:
        del self.open[request_id]
        self.answered.append(request_id)
        return self._responses[request_id]

    # ---- answers (handlers) -------------------------------------------------
    def accept(self, response: HumanResponse) -> RespondResult:
        """Validate and record ``response``; the waiting ``ask`` picks it up.

        Raises:
            ValueError: What is wrong with the answer (the request stays open).
        """
        request = self.validate(response)
        self._responses[request.id] = response
        return RespondResult(request_id=request.id, accepted=True, message=f"{request.id} answered")

    def validate(self, response: HumanResponse) -> HumanRequest:
        """The open request ``response`` answers, if it answers it completely.

        Raises:
            ValueError: An unknown or already answered id, a missing or unknown
                answer, an approval without a decision, a rejection without a
                comment, or a budget below what was spent.
        """
        request = self.open.get(response.request_id)
        if request is None or response.request_id in self._responses:
            if response.request_id in self.answered or response.request_id in self._responses:
                raise ValueError(f"request {response.request_id!r} was already answered")
            open_ids = ", ".join(self.open) or "none"
            raise ValueError(f"no open request {response.request_id!r}; open requests: {open_ids}")
        if request.kind == "approval":
            if response.approved is None:
                raise ValueError(
                    f"{request.id} is an approval: answer with approved=true or approved=false"
                )
            if not response.approved and not (response.comment or "").strip():
                raise ValueError(f"rejecting {request.id} needs a comment saying what to change")
            return request
        ids = [q.id for q in request.questions]
        unknown = sorted(set(response.answers) - set(ids))
        if unknown:
            raise ValueError(
                f"{request.id} has no question(s) {', '.join(unknown)}; "
                f"its questions are {', '.join(ids)}"
            )
        missing = [q for q in ids if not response.answers.get(q)]
        if missing:
            raise ValueError(
                f"{request.id}: missing answer(s) for {', '.join(missing)}; answer every question"
            )
        for q in request.questions:
            problem = answer_problem(request, q, response.answers[q.id], spent_usd=self.spent_usd)
            if problem:
                raise ValueError(problem)
        return request

    def answered_text(
        self, request: HumanRequest, response: HumanResponse
    ) -> list[tuple[str, str]]:
        """(question, answer text) pairs of an answered request, for the record."""
        return [(q.text, q.answer_text(response.answers[q.id])) for q in request.questions]


def answer_problem(
    request: HumanRequest, question: HumanQuestion, answer: str, *, spent_usd: float | None = None
) -> str | None:
    """Why ``answer`` to one ``question`` of ``request`` is refused (None: it is taken).

    A lone letter is meant as an option key; anything else is free text where the
    question allows it. A budget answer must be a limit above ``spent_usd`` (not
    checked when ``spent_usd`` is None, e.g. at a terminal that does not know it).
    """
    keys = [o.key for o in question.options]
    if answer in keys or not question.options:
        return None
    looks_like_key = len(answer) == 1 and answer.isalpha()
    if not question.allow_free_text or looks_like_key:
        extra = " or give a free-text answer" if question.allow_free_text else ""
        return (
            f"{request.id} {question.id}: unknown option {answer!r}; "
            f"choose one of {', '.join(keys)}{extra}"
        )
    if (
        request.kind == "budget"
        and spent_usd is not None
        and not _is_limit_above(answer, spent_usd)
    ):
        return (
            f"{request.id} {question.id}: {answer!r} is not a limit above the "
            f"${spent_usd:.2f} spent; answer raise, stop, or a larger number"
        )
    return None


def _is_limit_above(answer: str, spent: float) -> bool:
    try:
        return float(answer) > spent
    except ValueError:
        return False
