"""RPC failures become one line that says what to do; closed features still have a status."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from cli.connect import Session, rpc_error, status_from_description
from cli.errors import CliError
from cli.outcome import Outcome, corrected
from cli.settings import Settings
from contract import SA_FEATURE, SA_PHASE, FeatureResult, TestReport
from tests.support.cli_driver import CLOSED, named_program  # noqa: F401 (fixture)
from tests.support.cli_requests import record

pytestmark = pytest.mark.usefixtures("named_program")

SETTINGS = Settings(address="temporal:7233", namespace="team", task_queue="q")


def error(status: RPCStatusCode, message: str) -> RPCError:
    return RPCError(message, status, b"")


@pytest.mark.parametrize(
    ("status", "message", "code", "expected"),
    [
        (
            RPCStatusCode.NOT_FOUND,
            "Namespace team is not found.",
            1,
            "namespace 'team' does not exist",
        ),
        (
            RPCStatusCode.NOT_FOUND,
            "workflow not found",
            2,
            "no feature workflow with id 'feature-x'",
        ),
        (
            RPCStatusCode.INVALID_ARGUMENT,
            "search attribute BackforgePhase is not defined",
            1,
            "temporal operator search-attribute create",
        ),
        (RPCStatusCode.UNAVAILABLE, "connection refused", 1, "did not answer (connection refused)"),
        (
            RPCStatusCode.PERMISSION_DENIED,
            "no\naccess",
            1,
            "Temporal error PERMISSION_DENIED: no access",
        ),
    ],
)
def test_rpc_errors_map_to_one_clear_line(
    status: RPCStatusCode, message: str, code: int, expected: str
) -> None:
    err = rpc_error(error(status, message), SETTINGS, workflow_id="feature-x")
    assert err.code == code
    assert expected in err.message and "\n" not in err.message


def test_unknown_workflow_points_at_list_on_the_same_server() -> None:
    err = rpc_error(error(RPCStatusCode.NOT_FOUND, "not found"), SETTINGS, workflow_id="feature-x")
    assert "'python starter.py --address temporal:7233 --namespace team list'" in err.message


async def test_session_connects_once_asked_and_reports_unreachable() -> None:
    session = Session(Settings(address=CLOSED, namespace="default", task_queue="q"))
    with pytest.raises(CliError) as info:
        await session.client()
    assert info.value.code == 1 and CLOSED in info.value.message


def test_status_of_a_closed_feature_from_its_result() -> None:
    result = FeatureResult(
        workflow_id="feature-x",
        state="completed",
        branch="001-x",
        head_commit="c" * 40,
        commits=[record("plan")],
        test_report=TestReport(passed=2),
        message="done",
    )
    attrs: Any = {SA_FEATURE: "Build a todo API", SA_PHASE: "deliver"}
    description: Any = SimpleNamespace(id="feature-x", typed_search_attributes=attrs)
    status = status_from_description(description, Outcome("completed", result=result))
    assert status.state == "completed" and status.phase == "done"
    assert status.feature == "Build a todo API" and status.head_commit == "c" * 40
    assert status.completed[0].phase == "plan" and status.test_report == result.test_report


def test_status_of_a_failed_feature_keeps_its_last_phase() -> None:
    attrs: Any = {SA_FEATURE: "Build a todo API", SA_PHASE: "implement"}
    description: Any = SimpleNamespace(id="feature-x", typed_search_attributes=attrs)
    outcome = Outcome("terminated", reason="operator stopped it")
    status = corrected(status_from_description(description, outcome), outcome)
    assert status.phase == "implement" and status.state == "failed"
    assert status.message == "Execution terminated: operator stopped it"
