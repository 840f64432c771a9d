"""The current details the Temporal UI shows: phase, progress, and how to answer."""

from __future__ import annotations

import json

from contract import FeatureStatus, HumanOption, HumanQuestion, HumanRequest, TestReport
from workflows.details import current_details


def status(**kw: object) -> FeatureStatus:
    fields: dict[str, object] = {
        "workflow_id": "wf-1",
        "feature": "f",
        "state": "waiting",
        "phase": "implement",
        "task_id": "T003",
        "branch": "001-x",
        "head_commit": "a" * 40,
    }
    fields.update(kw)
    return FeatureStatus.model_validate(fields)


def test_a_question_lists_its_options_and_the_ways_to_answer() -> None:
    request = HumanRequest(
        id="clarify-1",
        kind="clarification",
        phase="specify",
        title="2 questions",
        body="Decide.",
        questions=[
            HumanQuestion(
                id="Q1",
                text="Duplicates?",
                options=[
                    HumanOption(key="A", answer="Reject"),
                    HumanOption(key="B", answer="Allow"),
                ],
                recommended="A",
            )
        ],
    )
    text = current_details(status(open_requests=[request]))
    assert "**Phase**: implement T003 · **State**: waiting" in text
    assert "**Q1**: Duplicates?\n\n- **A**: Reject *(recommended)*\n- **B**: Allow" in text
    assert "    backforge answer wf-1 clarify-1 Q1=A" in text
    payload = text.split("with:\n\n    ")[-1].splitlines()[0]
    assert json.loads(payload) == {"request_id": "clarify-1", "answers": {"Q1": "A"}}


def test_an_approval_shows_how_to_approve_and_how_to_reject() -> None:
    gate = HumanRequest(id="approve-spec-2", kind="approval", phase="spec", title="Approve?")
    text = current_details(status(open_requests=[gate]))
    assert '{"request_id": "approve-spec-2", "approved": true}' in text
    assert '"approved": false, "comment": "what to change"' in text
    assert 'backforge reject wf-1 approve-spec-2 --comment "what to change"' in text


def test_progress_tests_and_the_last_ignored_answer() -> None:
    text = current_details(
        status(
            tasks=[{"id": "T001", "done": True}, {"id": "T002"}],
            test_report=TestReport(passed=3),
            last_ignored_answer="clarify-1: unknown option 'Z'",
        )
    )
    assert "**Tasks**: 1 of 2 done" in text
    assert "**Tests**: 3 passed, 0 failed, 0 errors (green)" in text
    assert "**Last answer not applied**: clarify-1: unknown option 'Z'" in text
