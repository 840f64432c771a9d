"""Building responses: --yes defaults (and giving up), typed keys, the right command per kind."""

from __future__ import annotations

import pytest

from cli.errors import CliError
from cli.responding import (
    answer_response,
    auto_response,
    check_kind,
    describe_choice,
    find_request,
    match_option,
)
from cli.settings import Settings
from contract import HumanQuestion, HumanRequest
from tests.support.cli_driver import named_program  # noqa: F401 (fixture)
from tests.support.cli_requests import approval, clarification, escalation, status

pytestmark = pytest.mark.usefixtures("named_program")

SETTINGS = Settings(address="localhost:7233", namespace="default", task_queue="backforge")


def test_yes_takes_the_default_answers_and_approves() -> None:
    assert auto_response(clarification(), "ci").answers == {"Q1": "B"}
    approved = auto_response(approval(), "ci")
    assert approved.approved is True and approved.comment == "approved automatically (--yes)"
    free = HumanRequest(
        id="clarify-7",
        kind="clarification",
        phase="specify",
        title="?",
        questions=[HumanQuestion(id="Q1", text="Anything else?")],
    )
    assert auto_response(free, "ci").answers == {
        "Q1": "Use your best judgement and note the assumption."
    }


def test_yes_gives_up_on_repeated_escalations() -> None:
    assert auto_response(escalation(), "ci").answers == {"Q1": "retry"}
    # After several automatic retries an unattended run stops instead of looping.
    assert auto_response(escalation(), "ci", give_up=True).answers == {"Q1": "abort"}
    # Giving up only concerns escalations.
    assert auto_response(clarification(), "ci", give_up=True).answers == {"Q1": "B"}


def test_typed_option_keys_are_matched_case_insensitively() -> None:
    question = clarification().questions[0]
    assert match_option(question, " b ") == "B"
    assert match_option(question, "z") is None
    response = answer_response("clarify-1", {"Q1": "b"}, comment="fine", request=clarification())
    assert response.answers == {"Q1": "B"} and response.comment == "fine"
    unknown = answer_response("clarify-1", {"Q1": "b"}, comment=None, request=None)
    assert unknown.answers == {"Q1": "b"}  # not open (or status unknown): sent as typed


def test_describe_choice() -> None:
    response = auto_response(clarification(), "ci")
    assert describe_choice(clarification(), response) == "Q1 → B (Shareable by link)"
    assert describe_choice(approval(), auto_response(approval(), "ci")) == "approved"


def test_wrong_command_for_the_kind_points_at_the_right_one() -> None:
    current = status(open_requests=[clarification(), approval()])
    request = find_request(current, "clarify-1")
    assert request is not None and find_request(current, "nope") is None
    with pytest.raises(CliError) as info:
        check_kind(request, approval=True, workflow_id="feature-x", settings=SETTINGS)
    assert info.value.code == 2
    assert info.value.message == (
        "clarify-1 is a clarification request. "
        "Answer it with: python starter.py answer feature-x clarify-1 Q1=B"
    )
    with pytest.raises(CliError, match="is an approval request.*approve feature-x approve-spec-2"):
        check_kind(approval(), approval=False, workflow_id="feature-x", settings=SETTINGS)
    check_kind(None, approval=True, workflow_id="feature-x", settings=SETTINGS)  # unknown: send
