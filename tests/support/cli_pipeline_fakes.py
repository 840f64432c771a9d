"""Fake phase activities for running the real workflow in CLI tests.

Registered under the real activity names; ``specify`` asks two clarification
questions once, everything else succeeds at once. Each call's ``PhaseInput``
is recorded, so a test can check what reached the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from contract import (
    DeliveryFacts,
    FeatureRequest,
    HumanOption,
    HumanQuestion,
    HumanRequest,
    PhaseInput,
    PhaseOutcome,
    ResetInput,
    TaskItem,
    TestReport,
    WorkspaceInfo,
)

__all__ = ["QUESTIONS", "PipelineFakes"]

QUESTIONS = [
    HumanQuestion(
        id="Q1",
        text="Duplicate URLs per user?",
        options=[
            HumanOption(key="A", answer="Reject with 409"),
            HumanOption(key="B", answer="Allow"),
        ],
        recommended="A",
    ),
    HumanQuestion(
        id="Q2",
        text="Deleting a collection deletes its bookmarks?",
        options=[
            HumanOption(key="A", answer="Keep bookmarks"),
            HumanOption(key="B", answer="Delete them"),
        ],
        recommended="A",
    ),
]
_PHASES = ("constitution", "specify", "plan", "tasks", "implement", "test", "fix", "analyze")


class PipelineFakes:
    """Stand-ins for every activity the workflow calls; ``calls`` records their inputs."""

    def __init__(self) -> None:
        self.calls: list[PhaseInput] = []

    def _outcome(self, inp: PhaseInput, **extra: Any) -> PhaseOutcome:
        return PhaseOutcome(
            phase=inp.phase,
            commit=f"{len(self.calls):040x}",
            summary=f"{inp.run_key} done",
            **extra,
        )

    def _phase(self, inp: PhaseInput) -> PhaseOutcome:
        self.calls.append(inp)
        if inp.phase == "specify" and not inp.clarifications:
            request = HumanRequest(
                id="",
                kind="clarification",
                phase="specify",
                title="2 questions",
                questions=QUESTIONS,
            )
            return self._outcome(inp, human_requests=[request])
        if inp.phase == "tasks":
            return self._outcome(inp, tasks=[TaskItem(id="T001", title="models")])
        if inp.phase == "test":
            return self._outcome(inp, test_report=TestReport(passed=1))
        return self._outcome(inp)

    def activities(self) -> list[Callable[..., Any]]:
        """The fakes, each registered under the name of the activity it replaces."""

        def make(name: str) -> Callable[..., Any]:
            async def fake(inp: PhaseInput) -> PhaseOutcome:
                return self._phase(inp)

            return activity.defn(name=name)(fake)

        @activity.defn(name="run_phase_deliver")
        async def deliver(inp: PhaseInput, facts: DeliveryFacts) -> PhaseOutcome:
            return self._phase(inp)

        @activity.defn(name="prepare_workspace")
        async def prepare(request: FeatureRequest) -> WorkspaceInfo:
            return WorkspaceInfo(
                repo_path=request.repo_path,
                branch="001-bookmarks",
                feature_dir="specs/001-bookmarks",
                base_commit="b" * 40,
            )

        @activity.defn(name="reset_workspace")
        async def reset(inp: ResetInput) -> str:
            return inp.commit

        return [*(make(f"run_phase_{phase}") for phase in _PHASES), deliver, prepare, reset]
