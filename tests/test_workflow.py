"""Workflow logic on the time-skipping server, with fake phase activities.

The fakes are registered under the real activity names and record every
``PhaseInput`` they receive, so the tests can assert what the workflow asked
for (guidance, clarifications, base commits) as well as what it reports.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.conftest import eventually, unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.types import (
    DeliveryFacts,
    FeatureRequest,
    FeatureResult,
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
    WorkspaceInfo,
)

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
    ) -> None:
        self.clarify = clarify
        self.test_results = list(test_results or [True])
        self.fail_phase = dict(fail_phase or {})  # phase -> invocations that fail
        self.cost = cost
        self.escalate_task = escalate_task
        self.block_phase = block_phase
        self.calls: list[PhaseInput] = []
        self.resets: list[ResetInput] = []
        self.blocked = asyncio.Event()
        self.commits = 0

    def _outcome(self, inp: PhaseInput, **extra: object) -> PhaseOutcome:
        self.commits += 1
        return PhaseOutcome(
            phase=inp.phase,
            commit=f"{self.commits:040x}",
            summary=f"{inp.run_key} done",
            usage=Usage(input_tokens=100, output_tokens=10, model_calls=1, cost_usd=self.cost),
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
        return self._outcome(inp)

    def activities(self) -> list:
        def make(name: str):  # type: ignore[no-untyped-def]
            async def fake(inp: PhaseInput) -> PhaseOutcome:
                return await self._phase(inp)

            return activity.defn(name=name)(fake)

        phases = ("constitution", "specify", "plan", "tasks", "implement", "test", "fix", "analyze")
        acts = [make(f"run_phase_{phase}") for phase in phases]

        @activity.defn(name="run_phase_deliver")
        async def deliver(inp: PhaseInput, facts: DeliveryFacts) -> PhaseOutcome:
            self.calls.append(inp)
            return self._outcome(inp)

        @activity.defn(name="prepare_workspace")
        async def prepare(request: FeatureRequest) -> WorkspaceInfo:
            return WorkspaceInfo(
                repo_path=request.repo_path,
                branch="001-bookmarks",
                feature_dir="specs/001-bookmarks",
                base_commit="b" * 40,
                head_commit="b" * 40,
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


@pytest.fixture
def queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


async def test_happy_path_with_clarification(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        req = await open_request(handle, "clarification")
        assert req.id == "clarify-1" and [q.id for q in req.questions] == ["Q1", "Q2"]
        status = await handle.query(BackendFeatureWorkflow.status)
        assert status.state == "waiting" and status.phase == "specify"
        await respond(
            handle, request_id=req.id, answers={"Q1": "B", "Q2": "free text: keep them all"}
        )
        result: FeatureResult = await handle.result()
        final = await handle.query(BackendFeatureWorkflow.status)
    assert result.state == "completed"
    assert fakes.phases() == [
        "constitution#1",
        "specify#1",
        "specify#2",
        "plan#1",
        "tasks#1",
        "implement/T001#1",
        "implement/T002#1",
        "test#1",
        "analyze#1",
        "deliver#1",
    ]
    second_specify = fakes.calls[2]
    assert second_specify.clarifications == [
        ("Duplicate URLs per user?", "Allow"),
        ("Deleting a collection deletes its bookmarks?", "free text: keep them all"),
    ]
    # Each phase starts from the commit the previous one made.
    assert [c.base_commit for c in fakes.calls[1:]] == [
        f"{n:040x}" for n in range(1, len(fakes.calls))
    ]
    assert result.report_path == "specs/001-bookmarks/report.md"
    assert result.usage.model_calls == len(fakes.calls)
    assert final.state == "completed" and final.answered_requests == ["clarify-1"]
    assert all(t.done for t in final.tasks)


async def test_validator_rejections_leave_state_unchanged(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        req = await open_request(handle, "clarification")
        before = await handle.query(BackendFeatureWorkflow.status)
        bad = [
            (
                {"request_id": "nope-9", "answers": {"Q1": "A", "Q2": "A"}},
                "no open request 'nope-9'",
            ),
            ({"request_id": req.id, "answers": {"Q1": "A"}}, "missing answer(s) for Q2"),
            ({"request_id": req.id, "answers": {"Q1": "Z", "Q2": "A"}}, "unknown option 'Z'"),
            (
                {"request_id": req.id, "answers": {"Q1": "A", "Q2": "A", "Q9": "A"}},
                "no question(s) Q9",
            ),
        ]
        for payload, message in bad:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await respond(handle, **payload)
            assert message in str(err.value.cause)
        # An invalid signal is logged and ignored, not applied.
        await handle.signal(
            BackendFeatureWorkflow.respond_signal,
            HumanResponse(request_id=req.id, answers={"Q1": "Z"}),
        )
        after = await handle.query(BackendFeatureWorkflow.status)
        assert after.open_requests == before.open_requests and after.phase == before.phase
        assert len(fakes.calls) == 2
        # A valid signal is applied; answering twice is then refused.
        await handle.signal(
            BackendFeatureWorkflow.respond_signal,
            HumanResponse(request_id=req.id, answers={"Q1": "A", "Q2": "A"}),
        )
        await handle.result()
        with pytest.raises(Exception):  # noqa: B017 - the workflow has closed; any rejection will do
            await respond(handle, request_id=req.id, answers={"Q1": "A", "Q2": "A"})
    assert fakes.calls[2].clarifications[0] == ("Duplicate URLs per user?", "Reject with 409")


async def test_already_answered_is_rejected_while_running(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(gates=["spec"]), queue)
        req = await open_request(handle, "clarification")
        await respond(handle, request_id=req.id, answers={"Q1": "A", "Q2": "A"})
        await open_request(handle, "approval")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await respond(handle, request_id=req.id, answers={"Q1": "A", "Q2": "A"})
        assert "already answered" in str(err.value.cause)
        await handle.cancel()
        # Let the cancellation finish while the worker runs: an open workflow would
        # hold back time skipping for the tests after this one.
        with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError(cause=CancelledError)
            await handle.result()


@pytest.mark.parametrize("gate,phase", [("spec", "specify"), ("plan", "plan"), ("delivery", "fix")])
async def test_gate_approve_and_reject_with_comment(
    ts_env: WorkflowEnvironment, queue: str, gate: str, phase: str
) -> None:
    fakes = Fakes(clarify=False)
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(gates=[gate]), queue)
        approval = await open_request(handle, "approval")
        assert approval.id == f"approve-{gate}-1"
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await respond(handle, request_id=approval.id, approved=False)
        assert "needs a comment" in str(err.value.cause)
        await respond(handle, request_id=approval.id, approved=False, comment="Add pagination")
        second = await open_request(handle, "approval")
        assert second.id == f"approve-{gate}-2"
        await respond(handle, request_id=second.id, approved=True)
        result = await handle.result()
    assert result.state == "completed"
    reruns = [c for c in fakes.calls if c.phase == phase and c.guidance == "Add pagination"]
    assert len(reruns) == 1, fakes.phases()


async def test_fix_loop_repairs_failing_tests(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes(clarify=False, test_results=[False, True])
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        result = await handle.result()
    assert result.state == "completed" and result.test_report and result.test_report.ok
    assert fakes.phases()[-5:] == ["test#1", "fix#1", "test#2", "analyze#1", "deliver#1"]
    assert fakes.calls[-4].context_paths == ["specs/x/test-results.md"]


async def test_fix_loop_escalates_after_bound(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes(clarify=False, test_results=[False])
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(max_fix_rounds=2), queue)
        esc = await open_request(handle, "escalation")
        assert "still fail after 2 fix round" in esc.title
        assert [o.key for o in esc.questions[0].options] == ["more", "accept", "abort"]
        assert [c.phase for c in fakes.calls].count("fix") == 2
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await respond(handle, request_id=esc.id, answers={"Q1": "keep going please"})
        assert "choose one of more, accept, abort" in str(err.value.cause)
        await respond(handle, request_id=esc.id, answers={"Q1": "abort"})
        result = await handle.result()
    assert result.state == "aborted"
    assert "abort" in result.message.lower()
    assert fakes.resets and fakes.resets[-1].commit == result.head_commit


async def test_phase_failure_escalates_then_retries_with_guidance(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes(clarify=False, fail_phase={"plan": 1})
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        esc = await open_request(handle, "escalation")
        assert "plan failed" in esc.title and "plan exploded" in esc.body
        await respond(handle, request_id=esc.id, answers={"Q1": "retry"}, comment="Use SQLite")
        result = await handle.result()
    assert result.state == "completed"
    plans = [c for c in fakes.calls if c.phase == "plan"]
    assert [p.invocation for p in plans] == [1, 2] and plans[1].guidance == "Use SQLite"


async def test_implement_escalation_round_trip(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes(clarify=False, escalate_task="T002")
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        esc = await open_request(handle, "escalation")
        status = await handle.query(BackendFeatureWorkflow.status)
        assert (
            status.phase == "implement T002"
            and status.open_requests[0].title == "Which status code?"
        )
        await respond(handle, request_id=esc.id, answers={"Q1": "A"})
        result = await handle.result()
    assert result.state == "completed"
    resumed = [c for c in fakes.calls if c.task_id == "T002"]
    assert resumed[1].clarifications == [("Duplicate URLs per user?", "Reject with 409")]


async def test_budget_gate_asks_before_overspending(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes(clarify=False, cost=0.6)
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(budget_usd=1.0), queue)
        budget = await open_request(handle, "budget")
        assert budget.phase == "plan"  # constitution + specify spent $1.20 of $1.00
        assert len(fakes.calls) == 2
        await respond(handle, request_id=budget.id, answers={"Q1": "stop"})
        result = await handle.result()
    assert result.state == "aborted" and len(fakes.calls) == 2


async def test_clarification_timeout_takes_recommended(
    ts_env_own: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    ts_env = ts_env_own  # time must skip: no workflows of other tests on this server
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(
            ts_env, fakes, request(clarification_timeout_s=3600, remind_every_s=600), queue
        )
        await open_request(handle, "clarification")
        result = await handle.result()  # time skips past reminders to the deadline
    assert result.state == "completed"
    assert fakes.calls[2].clarifications == [
        ("Duplicate URLs per user?", "Reject with 409"),
        ("Deleting a collection deletes its bookmarks?", "Keep bookmarks"),
    ]


async def test_cancel_resets_to_last_good_commit(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes(clarify=False, block_phase="plan")
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        await asyncio.wait_for(fakes.blocked.wait(), timeout=20)
        await handle.cancel()
        with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError(cause=CancelledError)
            await handle.result()
        status = await handle.query(BackendFeatureWorkflow.status)
    last_good = f"{2:040x}"  # specify's commit
    assert fakes.resets == [
        ResetInput(repo_path="/tmp/not-used", branch="001-bookmarks", commit=last_good)
    ]
    assert status.state == "cancelled" and last_good[:10] in status.message


def test_feature_request_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        FeatureRequest(feature="  ", repo_path="/tmp")
    with pytest.raises(ValueError, match="characters"):
        FeatureRequest(feature="x" * 5000, repo_path="/tmp")
    with pytest.raises(ValueError, match="unknown model id"):
        FeatureRequest(feature="x", repo_path="/tmp", model="gpt-5")
    with pytest.raises(ValueError, match="unknown phase"):
        FeatureRequest(feature="x", repo_path="/tmp", phase_models={"deploy": "openai:gpt-5"})
