"""The wire contract: validation of a request, compact payloads, default answers."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contract import (
    PHASE_NAMES,
    FeatureRequest,
    HumanOption,
    HumanQuestion,
    PhaseOutcome,
    TestReport,
    Usage,
)


def test_feature_request_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        FeatureRequest(feature="  ", repo_path="/tmp")
    with pytest.raises(ValueError, match="characters"):
        FeatureRequest(feature="x" * 5000, repo_path="/tmp")
    with pytest.raises(ValueError, match="unknown model id"):
        FeatureRequest(feature="x", repo_path="/tmp", model="gpt-5")
    with pytest.raises(ValidationError) as err:
        FeatureRequest(feature="x", repo_path="/tmp", phase_models={"deploy": "openai:gpt-5"})  # type: ignore[dict-item]
    assert err.value.errors()[0]["loc"][0] == "phase_models"
    with pytest.raises(ValueError, match="unknown model id"):
        FeatureRequest(feature="x", repo_path="/tmp", phase_models={"tasks": "gpt-5"})
    with pytest.raises(ValidationError):
        FeatureRequest(feature="x", repo_path="/tmp", gates=["deploy"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="--repo"):
        FeatureRequest(feature="x", repo_path="  ")


def test_model_for_uses_the_phase_override() -> None:
    req = FeatureRequest(feature="x", repo_path="/r", phase_models={"tasks": "openai:gpt-5-mini"})
    assert req.model_for("tasks") == "openai:gpt-5-mini"
    assert req.model_for("plan") == req.model


def test_compact_payloads_leave_out_defaults_and_read_back() -> None:
    outcome = PhaseOutcome(phase="plan", commit="c" * 40, usage=Usage(model_calls=2))
    data = json.loads(outcome.model_dump_json())
    assert data == {"phase": "plan", "commit": "c" * 40, "usage": {"model_calls": 2}}
    assert PhaseOutcome.model_validate(data) == outcome


def test_default_answer_is_the_recommendation_then_the_first_option() -> None:
    options = [HumanOption(key="A", answer="a"), HumanOption(key="B", answer="b")]
    assert HumanQuestion(id="Q1", text="?", options=options, recommended="B").default_answer == "B"
    assert HumanQuestion(id="Q1", text="?", options=options).default_answer == "A"
    assert "best judgement" in HumanQuestion(id="Q1", text="?").default_answer


def test_test_report_is_ok_only_with_passes_and_no_failures() -> None:
    assert TestReport(passed=3).ok
    assert not TestReport(passed=0).ok
    assert not TestReport(passed=3, failed=1, exit_code=1).ok
    assert not TestReport(passed=3, exit_code=2).ok
    assert TestReport(passed=3, failed=1).counts == "3 passed, 1 failed, 0 errors"


def test_phase_names_are_the_literal() -> None:
    assert PHASE_NAMES[:2] == ("summarize", "constitution") and {"fix", "validate"} <= set(
        PHASE_NAMES
    )


def test_the_workflow_declares_every_phase_and_the_worker_registers_each() -> None:
    from activities.services import Services
    from activities.workspace import Workspaces
    from worker import _name, activities
    from workflows.phases import MERGE, PHASES, PREPARE, RESET, SANDBOXED_ACTIVITIES

    assert tuple(PHASES) == PHASE_NAMES
    declared = {p.activity for p in PHASES.values()} | {s.activity for s in (PREPARE, RESET, MERGE)}
    registered = {_name(a) for a in activities(Services(workspaces=Workspaces()))}
    assert declared == registered
    assert {"run_phase_test", "run_phase_validate"} == SANDBOXED_ACTIVITIES
