"""Scriptable stand-ins for every phase activity, for workflow tests.

The fakes are registered under the real activity names and record every
``PhaseInput`` they receive, so tests can assert what the workflow asked for
(guidance, clarifications, base commits) as well as what it reports.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from contract import (
    DeliveryFacts,
    FeatureRequest,
    HumanOption,
    HumanQuestion,
    HumanRequest,
    HumanResponse,
    PhaseInput,
    PhaseOutcome,
    ResetInput,
    TaskItem,
    TestReport,
    Usage,
    ValidationSummary,
    WorkspaceInfo,
)
from tests.support.temporal import eventually, unique
from workflows.backend_feature import BackendFeatureWorkflow

__all__ = ["QUESTIONS", "Fakes", "request", "start", "open_request", "respond"]

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


class Fakes:
    """Scriptable stand-ins for every phase activity."""

    def __init__(
        self,
        *,
        clarify: bool = True,
        test_results: list[bool] | None = None,
        fail_phase: dict[str, int] | None = None,
        cost: float = 0.0,
        escalate_task: str | None = None,
        block_phase: str | None = None,
        validation_results: list[int] | None = None,
    ) -> None:
        self.clarify = clarify
        self.test_results = list(test_results or [True])
        self.fail_phase = dict(fail_phase or {})  # phase -> invocations that fail
        self.cost = cost
        self.escalate_task = escalate_task
        self.block_phase = block_phase
        #: Blocking findings of each validate run (the last one repeats).
        self.validation_results = list(validation_results or [0])
        self.calls: list[PhaseInput] = []
        self.deliveries: list[DeliveryFacts] = []
        self.resets: list[ResetInput] = []
        self.blocked = asyncio.Event()
        self.commits = 0

    @property
    def model_calls(self) -> int:
        """Calls that report a model call (every one but summarize's)."""
        return sum(1 for c in self.calls if c.phase != "summarize")

    def _outcome(self, inp: PhaseInput, **extra: object) -> PhaseOutcome:
        self.commits += 1
        # Like the real summarize on a repository with no code yet: a commit, no model.
        usage = (
            Usage()
            if inp.phase == "summarize"
            else Usage(input_tokens=100, output_tokens=10, model_calls=1, cost_usd=self.cost)
        )
        return PhaseOutcome(
            phase=inp.phase,
            commit=f"{self.commits:040x}",
            summary=f"{inp.run_key} done",
            usage=usage,
            **extra,  # type: ignore[arg-type]
        )

    async def _phase(self, inp: PhaseInput) -> PhaseOutcome:
        self.calls.append(inp)
        if self.fail_phase.get(inp.phase, 0) >= inp.invocation:
            raise ApplicationError(f"{inp.phase} exploded", type="BadInput", non_retryable=True)
        if inp.phase == self.block_phase:
            self.blocked.set()
            while True:  # until cancelled
                activity.heartbeat()
                await asyncio.sleep(0.05)
        if inp.phase == "specify" and self.clarify and not inp.clarifications:
            request = HumanRequest(
                id="",
                kind="clarification",
                phase="specify",
                title="2 questions",
                questions=QUESTIONS,
            )
            return self._outcome(inp, human_requests=[request])
        if inp.phase == "tasks":
            tasks = [TaskItem(id="T001", title="models"), TaskItem(id="T002", title="routes")]
            return self._outcome(inp, tasks=tasks)
        if (
            inp.phase == "implement"
            and inp.task_id == self.escalate_task
            and not inp.clarifications
        ):
            request = HumanRequest(
                id="",
                kind="escalation",
                phase="implement",
                title="Which status code?",
                questions=[QUESTIONS[0]],
            )
            return self._outcome(inp, human_requests=[request])
        if inp.phase == "test":
            ok = self.test_results.pop(0) if len(self.test_results) > 1 else self.test_results[0]
            report = TestReport(
                passed=5,
                failed=0 if ok else 1,
                exit_code=0 if ok else 1,
                output_path="specs/x/test-results.md",
            )
            return self._outcome(inp, test_report=report)
        if inp.phase == "validate":
            blocking = (
                self.validation_results.pop(0)
                if len(self.validation_results) > 1
                else self.validation_results[0]
            )
            summary = ValidationSummary(
                passed=blocking == 0,
                blocking=blocking,
                findings=blocking + 1,
                inferred=["FR-009"],
                report_path="specs/x/validation.md",
            )
            return self._outcome(inp, validation=summary, artifacts=["specs/x/validation.md"])
        return self._outcome(inp)

    def activities(self) -> list:
        def make(name: str):  # type: ignore[no-untyped-def]
            async def fake(inp: PhaseInput) -> PhaseOutcome:
                return await self._phase(inp)

            return activity.defn(name=name)(fake)

        phases = (
            "summarize", "constitution", "specify", "plan", "tasks", "implement", "test", "fix",
            "validate", "analyze",
        )  # fmt: skip
        acts = [make(f"run_phase_{phase}") for phase in phases]

        @activity.defn(name="run_phase_deliver")
        async def deliver(inp: PhaseInput, facts: DeliveryFacts) -> PhaseOutcome:
            self.calls.append(inp)
            self.deliveries.append(facts)
            return self._outcome(inp, artifacts=[f"{inp.workspace.feature_dir}/report.md"])

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
            self.resets.append(inp)
            return inp.commit

        return [*acts, deliver, prepare, reset]

    def phases(self) -> list[str]:
        return [
            f"{c.phase}{'/' + c.task_id if c.task_id else ''}#{c.invocation}" for c in self.calls
        ]


def request(**kw: object) -> FeatureRequest:
    return FeatureRequest(feature="Build a bookmarks API", repo_path="/tmp/not-used", **kw)  # type: ignore[arg-type]


async def start(
    env: WorkflowEnvironment, fakes: Fakes, req: FeatureRequest, queue: str
) -> WorkflowHandle:
    return await env.client.start_workflow(
        BackendFeatureWorkflow.run, req, id=unique("wf"), task_queue=queue
    )


async def open_request(handle: WorkflowHandle, kind: str | None = None) -> HumanRequest:
    async def check() -> HumanRequest | None:
        status = await handle.query(BackendFeatureWorkflow.status)
        for r in status.open_requests:
            if kind is None or r.kind == kind:
                return r
        return None

    return await eventually(check)


async def respond(handle: WorkflowHandle, **kw: object) -> None:
    await handle.execute_update(BackendFeatureWorkflow.respond_update, HumanResponse(**kw))  # type: ignore[arg-type]
