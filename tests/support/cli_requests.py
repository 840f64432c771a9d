"""Human requests and statuses as the CLI sees them, for rendering and answering tests."""

from __future__ import annotations

from contract import FeatureStatus, HumanOption, HumanQuestion, HumanRequest, PhaseRecord

__all__ = ["clarification", "two_questions", "approval", "escalation", "record", "status"]


def clarification() -> HumanRequest:
    """A clarification with one question (options A/B, B recommended) and a markdown body."""
    return HumanRequest(
        id="clarify-1",
        kind="clarification",
        phase="specify",
        title="Two questions about the bookmarks API",
        body="See [NEEDS CLARIFICATION] markers in spec.md.",
        questions=[
            HumanQuestion(
                id="Q1",
                text="Are collections private?",
                options=[
                    HumanOption(key="A", answer="Private", implications="no sharing"),
                    HumanOption(key="B", answer="Shareable by link", implications="token table"),
                ],
                recommended="B",
            )
        ],
    )


def two_questions() -> HumanRequest:
    """A clarification with two questions, both recommending A."""
    return HumanRequest(
        id="clarify-4",
        kind="clarification",
        phase="specify",
        title="Two questions",
        questions=[
            HumanQuestion(
                id=qid,
                text=text,
                options=[HumanOption(key="A", answer="Yes"), HumanOption(key="B", answer="No")],
                recommended="A",
            )
            for qid, text in (("Q1", "Reject duplicates?"), ("Q2", "Keep bookmarks?"))
        ],
    )


def approval(request_id: str = "approve-spec-2", gate: str = "spec") -> HumanRequest:
    """An approval gate."""
    return HumanRequest(id=request_id, kind="approval", phase=gate, title=f"Approve the {gate}?")  # type: ignore[arg-type]


def escalation() -> HumanRequest:
    """An implementation escalation offering retry (recommended) or abort, options only."""
    return HumanRequest(
        id="escalate-5",
        kind="escalation",
        phase="implement",
        title="T003 failed after its retries",
        questions=[
            HumanQuestion(
                id="Q1",
                text="How should the pipeline proceed?",
                options=[
                    HumanOption(key="retry", answer="Retry"),
                    HumanOption(key="abort", answer="Stop"),
                ],
                recommended="retry",
                allow_free_text=False,
            )
        ],
    )


def record(phase: str, task_id: str | None = None, commit: str = "0" * 40) -> PhaseRecord:
    """A completed phase (or task) record."""
    return PhaseRecord(phase=phase, commit=commit, task_id=task_id, summary=f"{phase} done")  # type: ignore[arg-type]


def status(**fields: object) -> FeatureStatus:
    """A running status with the given fields."""
    base: dict[str, object] = {
        "workflow_id": "w",
        "feature": "f",
        "state": "running",
        "phase": "specify",
    }
    return FeatureStatus.model_validate({**base, **fields})
