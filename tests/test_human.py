"""The human-request desk, without a server: ids, validation, timers, how to answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from contract import HumanOption, HumanQuestion, HumanRequest, HumanResponse
from workflows.human import HumanDesk, default_response, how_to_answer

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _question(qid: str = "Q1", *, free: bool = True) -> HumanQuestion:
    return HumanQuestion(
        id=qid,
        text=f"{qid}?",
        options=[HumanOption(key="A", answer="yes"), HumanOption(key="B", answer="no")],
        recommended="B",
        allow_free_text=free,
    )


def _clarification(desk: HumanDesk) -> HumanRequest:
    request = HumanRequest(
        id="",
        kind="clarification",
        phase="specify",
        title="t",
        questions=[_question("Q1"), _question("Q2")],
    )
    return desk.file(request, NOW)


def test_ids_count_up_and_approvals_name_their_gate() -> None:
    desk = HumanDesk(remind_every_s=60)
    first = _clarification(desk)
    gate = desk.file(HumanRequest(id="", kind="approval", phase="plan", title="ok?"), NOW)
    assert (first.id, gate.id) == ("clarify-1", "approve-plan-2")
    assert first.created_at == NOW and first.remind_every_s == 60
    assert set(desk.open) == {"clarify-1", "approve-plan-2"}


@pytest.mark.parametrize(
    "answers,message",
    [
        ({"Q1": "A"}, "missing answer(s) for Q2"),
        ({"Q1": "A", "Q2": "Z"}, "unknown option 'Z'"),
        ({"Q1": "A", "Q2": "A", "Q9": "A"}, "no question(s) Q9"),
    ],
)
def test_incomplete_or_unknown_answers_are_rejected_and_the_request_stays_open(
    answers: dict[str, str], message: str
) -> None:
    desk = HumanDesk()
    request = _clarification(desk)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        desk.accept(HumanResponse(request_id=request.id, answers=answers))
    assert request.id in desk.open and desk.answered == []


def test_free_text_is_accepted_unless_it_looks_like_a_key() -> None:
    desk = HumanDesk()
    request = _clarification(desk)
    result = desk.accept(
        HumanResponse(request_id=request.id, answers={"Q1": "A", "Q2": "keep them all"})
    )
    assert result.accepted and desk.close(request.id).answers["Q2"] == "keep them all"
    with pytest.raises(ValueError, match="already answered"):
        desk.validate(HumanResponse(request_id=request.id, answers={"Q1": "A", "Q2": "A"}))


def test_a_second_answer_before_the_workflow_wakes_is_already_answered() -> None:
    desk = HumanDesk()
    request = _clarification(desk)
    desk.accept(HumanResponse(request_id=request.id, answers={"Q1": "A", "Q2": "B"}))
    with pytest.raises(ValueError, match="already answered"):
        desk.accept(HumanResponse(request_id=request.id, answers={"Q1": "B", "Q2": "B"}))


def test_unknown_request_names_the_open_ones() -> None:
    desk = HumanDesk()
    _clarification(desk)
    with pytest.raises(ValueError, match="open requests: clarify-1"):
        desk.validate(HumanResponse(request_id="escalate-7"))


def test_approvals_need_a_decision_and_a_rejection_needs_a_comment() -> None:
    desk = HumanDesk()
    gate = desk.file(HumanRequest(id="", kind="approval", phase="spec", title="ok?"), NOW)
    with pytest.raises(ValueError, match="approved=true or approved=false"):
        desk.validate(HumanResponse(request_id=gate.id))
    with pytest.raises(ValueError, match="needs a comment"):
        desk.validate(HumanResponse(request_id=gate.id, approved=False, comment="  "))
    assert desk.validate(HumanResponse(request_id=gate.id, approved=False, comment="more tests"))


def test_budget_answer_must_be_a_limit_above_what_was_spent() -> None:
    desk = HumanDesk()
    desk.spent_usd = 2.5
    options = [HumanOption(key="raise", answer="x2"), HumanOption(key="stop", answer="stop")]
    budget = desk.file(
        HumanRequest(
            id="",
            kind="budget",
            phase="plan",
            title="budget",
            questions=[HumanQuestion(id="Q1", text="?", options=options, recommended="stop")],
        ),
        NOW,
    )
    for bad in ("2", "lots"):
        with pytest.raises(ValueError, match="not a limit above the \\$2.50 spent"):
            desk.validate(HumanResponse(request_id=budget.id, answers={"Q1": bad}))
    assert desk.validate(HumanResponse(request_id=budget.id, answers={"Q1": "7.5"}))


def test_escalation_choices_refuse_free_text() -> None:
    desk = HumanDesk()
    request = desk.file(
        HumanRequest(
            id="", kind="escalation", phase="test", title="t", questions=[_question(free=False)]
        ),
        NOW,
    )
    with pytest.raises(ValueError, match="choose one of A, B$"):
        desk.validate(HumanResponse(request_id=request.id, answers={"Q1": "try harder"}))


def test_timers_remind_then_apply_the_deadline_policy() -> None:
    desk = HumanDesk(remind_every_s=3600)
    request = _clarification(desk)
    request.deadline = NOW + timedelta(minutes=90)
    request.on_timeout = "recommended"
    assert desk.next_wake(request, NOW) == timedelta(hours=1)
    assert desk.on_wake(request, NOW + timedelta(hours=1)) == "remind"
    assert request.reminders_sent == 1
    assert desk.next_wake(request, NOW + timedelta(hours=1)) == timedelta(minutes=30)
    assert desk.on_wake(request, NOW + timedelta(minutes=90)) == "answer-recommended"
    response = desk.close(request.id)
    assert response.answers == {"Q1": "B", "Q2": "B"} and "timeout" in (response.responder or "")


def test_deadline_policies_abort_or_keep_waiting() -> None:
    desk = HumanDesk()
    request = _clarification(desk)
    request.deadline, request.on_timeout = NOW, "abort"
    assert desk.on_wake(request, NOW) == "abort"
    request.on_timeout = "wait"
    assert desk.on_wake(request, NOW) == "keep-waiting" and request.deadline is None
    assert desk.next_wake(request, NOW) is None


def test_how_to_answer_gives_one_command_and_the_signal_payload() -> None:
    desk = HumanDesk()
    request = _clarification(desk)
    help = how_to_answer(request, "wf-1", cli="python starter.py")
    assert help.command == "python starter.py answer wf-1 clarify-1 Q1=B Q2=B"
    assert json.loads(help.payload) == {
        "request_id": "clarify-1",
        "answers": {"Q1": "B", "Q2": "B"},
    }
    gate = desk.file(HumanRequest(id="", kind="approval", phase="spec", title="ok?"), NOW)
    help = how_to_answer(gate, "wf-1")
    assert help.command == "backforge approve wf-1 approve-spec-2"
    assert help.reject_command is not None and "--comment" in help.reject_command
    assert json.loads(help.payload) == {"request_id": "approve-spec-2", "approved": True}


def test_the_default_response_is_what_how_to_answer_shows() -> None:
    desk = HumanDesk()
    request = _clarification(desk)
    response = default_response(request, "me")
    assert json.loads(how_to_answer(request, "wf").payload)["answers"] == response.answers
    assert desk.validate(response) is request
