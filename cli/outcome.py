"""Where a feature really stands: its execution's status, and for a closed one its result.

The ``status`` query answers from the workflow's own state, which cannot know
that the execution failed, was terminated or timed out (a replaying worker
still says "running"), and a search attribute cannot tell an aborted feature
from a completed one. So ``status`` and ``list`` take the execution's status
from the server (describe / visibility) and, for a closed feature, its result
or failure, and correct what the query says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cli.errors import EXIT_FAILED, EXIT_OK, one_line
from contract import FeatureResult, FeatureState, FeatureStatus

if TYPE_CHECKING:
    from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

__all__ = ["Outcome", "closed_state", "read_outcome", "corrected", "OK_STATES"]

#: States ``status``, ``watch`` and ``start --wait`` exit 0 on; every other state exits 1.
OK_STATES = frozenset({"running", "waiting", "completed"})
#: ``FeatureStatus.state`` for an execution that ended without a result.
_AS_FEATURE_STATE: dict[str, FeatureState] = {
    "failed": "failed",
    "terminated": "failed",
    "timed out": "failed",
    "cancelled": "cancelled",
}


def closed_state(status: WorkflowExecutionStatus | None) -> str:
    """``completed``, ``failed``, ``terminated``, ``cancelled``, ``timed out`` or ``running``."""
    name = status.name.lower() if status is not None else "unknown"
    return {"canceled": "cancelled", "timed_out": "timed out", "continued_as_new": "running"}.get(
        name, name
    )


@dataclass(frozen=True)
class Outcome:
    """How a feature's execution stands.

    Attributes:
        state: ``running``, ``completed``, ``aborted``, ``failed``, ``terminated``,
            ``cancelled`` or ``timed out`` (``waiting`` is the query's to say).
        reason: Why it ended early: the failure, termination reason, or abort message.
        result: The result of a completed execution.
    """

    state: str
    reason: str = ""
    result: FeatureResult | None = None

    @property
    def closed(self) -> bool:
        """The execution has ended; it takes no more answers."""
        return self.state != "running"

    @property
    def exit_code(self) -> int:
        """0 while running and when completed; 1 for any other end."""
        return EXIT_OK if self.state in OK_STATES else EXIT_FAILED


async def read_outcome(
    handle: WorkflowHandle[Any, FeatureResult], status: WorkflowExecutionStatus | None
) -> Outcome:
    """The outcome of an execution whose server-side ``status`` is known (describe, list).

    A completed execution's result says completed or aborted; a failed,
    terminated, cancelled or timed-out one's failure says why. Both are read
    from the close event of the history (one call, no worker involved).
    """
    from temporalio.client import WorkflowFailureError

    state = closed_state(status)
    if state == "running":
        return Outcome("running")
    try:
        result = await handle.result(follow_runs=False)
    except WorkflowFailureError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        return Outcome(state, reason=one_line(reason, 300))
    if result.state == "aborted":
        return Outcome("aborted", reason=result.message, result=result)
    return Outcome("completed", result=result)


def corrected(status: FeatureStatus, outcome: Outcome) -> FeatureStatus:
    """``status`` as the execution's outcome has it.

    A closed feature has no open requests (nobody can answer them any more) and
    its state is the execution's; why it ended becomes the message when the
    workflow could not say it itself (failed, terminated, timed out).
    """
    if not outcome.closed:
        return status
    update: dict[str, Any] = {"open_requests": []}
    if outcome.state in _AS_FEATURE_STATE:
        update["state"] = _AS_FEATURE_STATE[outcome.state]
        why = f": {outcome.reason}" if outcome.reason else ""
        update["message"] = f"Execution {outcome.state}{why}"
    elif outcome.result is not None:
        update["state"] = outcome.result.state
        update["message"] = outcome.result.message or status.message
    return status.model_copy(update=update)
