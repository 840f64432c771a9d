"""A feature's real state: the execution's status first, then its result."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from cli.outcome import Outcome, closed_state, corrected
from contract import FeatureResult
from tests.support.cli_requests import clarification, status


@pytest.mark.parametrize(
    ("execution", "state"),
    [
        (WorkflowExecutionStatus.RUNNING, "running"),
        (WorkflowExecutionStatus.COMPLETED, "completed"),
        (WorkflowExecutionStatus.FAILED, "failed"),
        (WorkflowExecutionStatus.TERMINATED, "terminated"),
        (WorkflowExecutionStatus.CANCELED, "cancelled"),
        (WorkflowExecutionStatus.TIMED_OUT, "timed out"),
        (None, "unknown"),
    ],
)
def test_closed_state_names(execution: WorkflowExecutionStatus | None, state: str) -> None:
    assert closed_state(execution) == state


def test_only_running_and_completed_exit_0() -> None:
    assert Outcome("running").exit_code == 0 and not Outcome("running").closed
    assert Outcome("completed").exit_code == 0 and Outcome("completed").closed
    for state in ("aborted", "failed", "terminated", "cancelled", "timed out"):
        assert Outcome(state).exit_code == 1


def test_a_closed_feature_shows_no_open_requests_and_the_real_state() -> None:
    said = status(state="running", phase="implement", open_requests=[clarification()])
    failed = corrected(said, Outcome("failed", reason="boom in the workflow"))
    assert failed.state == "failed" and failed.open_requests == []
    assert failed.message == "Execution failed: boom in the workflow"
    aborted_result = FeatureResult(
        workflow_id="w", state="aborted", branch="b", head_commit="c", message="Aborted: by me."
    )
    aborted = corrected(said, Outcome("aborted", result=aborted_result))
    assert aborted.state == "aborted" and aborted.open_requests == []
    assert aborted.message == "Aborted: by me."
    assert corrected(said, Outcome("running")) is said
