"""BackendFeatureWorkflow on the time-skipping server, with fake phase activities."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from contract import (
    FeatureResult,
    GatePolicy,
    HumanResponse,
    MergeInput,
    MergeResult,
    PhaseInput,
    PhaseOutcome,
    ResetInput,
    TaskItem,
)
from tests.support.fake_phases import Fakes, open_request, request, respond, start
from tests.support.temporal import eventually, unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow


@pytest.fixture
def queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


async def test_happy_path_with_clarification(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
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
        "summarize#1",
        "constitution#1",
        "specify#1",
        "specify#2",
        "plan#1",
        "tasks#1",
        "implement/T001#1",
        "implement/T002#1",
        "test#1",
        "validate#1",
        "analyze#1",
        "deliver#1",
    ]
    second_specify = fakes.calls[3]
    assert second_specify.clarifications == [
        ("Duplicate URLs per user?", "Allow"),
        ("Deleting a collection deletes its bookmarks?", "free text: keep them all"),
    ]
    # Each phase starts from the commit the previous one made.
    assert [c.base_commit for c in fakes.calls[1:]] == [
        f"{n:040x}" for n in range(1, len(fakes.calls))
    ]
    assert result.report_path == "specs/001-bookmarks/report.md"
    assert result.usage.model_calls == fakes.model_calls == len(fakes.calls) - 1
    assert final.state == "completed" and final.answered_requests == ["clarify-1"]
    assert all(t.done for t in final.tasks)


async def test_validator_rejections_leave_state_unchanged(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
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
        assert len(fakes.calls) == 3  # summarize, constitution, specify
        # A valid signal is applied; answering twice is then refused.
        await handle.signal(
            BackendFeatureWorkflow.respond_signal,
            HumanResponse(request_id=req.id, answers={"Q1": "A", "Q2": "A"}),
        )
        await handle.result()
        with pytest.raises(Exception):  # noqa: B017 - the workflow has closed; any rejection will do
            await respond(handle, request_id=req.id, answers={"Q1": "A", "Q2": "A"})
    assert fakes.calls[3].clarifications[0] == ("Duplicate URLs per user?", "Reject with 409")


async def test_already_answered_is_rejected_while_running(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
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
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
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
    if phase == "fix":  # the reviewer's comment reaches the fix step as a review, not as tests
        assert reruns[0].fix_reason == "review" and reruns[0].evidence_paths == []


async def test_fix_loop_repairs_failing_tests(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes(clarify=False, test_results=[False, True])
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        result = await handle.result()
    assert result.state == "completed" and result.test_report and result.test_report.ok
    assert fakes.phases()[-6:] == [
        "test#1", "fix#1", "test#2", "validate#1", "analyze#1", "deliver#1"
    ]  # fmt: skip
    fix = fakes.calls[-5]
    assert fix.fix_reason == "tests" and fix.evidence_paths == ["specs/x/test-results.md"]


async def test_fix_loop_escalates_after_bound(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes(clarify=False, test_results=[False])
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
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
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
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
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        esc = await open_request(handle, "escalation")
        status = await handle.query(BackendFeatureWorkflow.status)
        assert (
            status.phase == "implement"
            and status.task_id == "T002"
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
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(budget_usd=1.0), queue)
        budget = await open_request(handle, "budget")
        assert budget.phase == "plan"  # constitution + specify spent $1.20 of $1.00
        assert len(fakes.calls) == 3  # summarize (no model), constitution, specify
        await respond(handle, request_id=budget.id, answers={"Q1": "stop"})
        result = await handle.result()
    assert result.state == "aborted" and len(fakes.calls) == 3


async def test_clarification_timeout_takes_recommended(
    ts_env_own: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    ts_env = ts_env_own  # time must skip: no workflows of other tests on this server
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(
            ts_env, fakes, request(clarification_timeout_s=3600, remind_every_s=600), queue
        )
        await open_request(handle, "clarification")
        result = await handle.result()  # time skips past reminders to the deadline
    assert result.state == "completed"
    assert fakes.calls[3].clarifications == [  # specify's second invocation
        ("Duplicate URLs per user?", "Reject with 409"),
        ("Deleting a collection deletes its bookmarks?", "Keep bookmarks"),
    ]


async def test_cancel_resets_to_last_good_commit(ts_env: WorkflowEnvironment, queue: str) -> None:
    fakes = Fakes(clarify=False, block_phase="plan")
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        await asyncio.wait_for(fakes.blocked.wait(), timeout=20)
        await handle.cancel()
        with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError(cause=CancelledError)
            await handle.result()
        status = await handle.query(BackendFeatureWorkflow.status)
    last_good = f"{3:040x}"  # specify's commit (after summarize's and constitution's)
    assert fakes.resets == [
        ResetInput(repo_path="/tmp/not-used", branch="001-bookmarks", commit=last_good)
    ]
    assert status.state == "cancelled" and last_good[:10] in status.message


def task(tid: str, *files: str, p: bool = True) -> TaskItem:
    return TaskItem(id=tid, parallel=p, files=list(files), title=tid)


class ParallelFakes(Fakes):
    """Two disjoint [P] tasks; the fake merge reports a conflict for the second."""

    def __init__(self) -> None:
        super().__init__(clarify=False)
        self.merges: list[MergeInput] = []

    async def _phase(self, inp: PhaseInput) -> PhaseOutcome:
        if inp.phase == "tasks":
            self.calls.append(inp)
            tasks = [task("T001", "app/a.py"), task("T002", "app/b.py")]
            return self._outcome(inp, tasks=tasks)
        return await super()._phase(inp)

    def activities(self) -> list:
        @activity.defn(name="merge_task_commits")
        async def fake_merge(inp: MergeInput) -> MergeResult:
            self.merges.append(inp)
            first_task, first_commit = inp.commits[0]
            return MergeResult(head="f" * 40, merged=[(first_task, "f" * 40)], conflicts=["T002"])

        return [*super().activities(), fake_merge]


async def test_workflow_runs_parallel_tasks_together_and_redoes_conflicts_alone(
    ts_env: WorkflowEnvironment,
) -> None:
    fakes = ParallelFakes()
    queue = unique("par")
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await ts_env.client.start_workflow(
            BackendFeatureWorkflow.run, request(), id=unique("par"), task_queue=queue
        )
        result = await handle.result()
    assert result.state == "completed"
    implements = [c for c in fakes.calls if c.phase == "implement"]
    first_two, redo = implements[:2], implements[2:]
    # Both [P] tasks ran in worktrees from the same base, concurrently (before the merge).
    assert {c.task_id for c in first_two} == {"T001", "T002"} and all(c.worktree for c in first_two)
    assert first_two[0].base_commit == first_two[1].base_commit
    assert [c for t, c in fakes.merges[0].commits] and [t for t, _ in fakes.merges[0].commits] == [
        "T001",
        "T002",
    ]
    # The conflicting task ran again, alone, on top of what merged.
    assert [(c.task_id, c.worktree, c.base_commit) for c in redo] == [("T002", False, "f" * 40)]
    assert [r.task_id for r in result.commits if r.phase == "implement"] == ["T001", "T002"]


async def test_blocking_validation_findings_go_to_a_fix_round_with_their_evidence(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes(clarify=False, validation_results=[2, 0])
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        result = await handle.result()
    assert result.state == "completed" and result.validation and result.validation.passed
    assert fakes.phases()[-7:] == [
        "test#1", "validate#1", "fix#1", "test#2", "validate#2", "analyze#1", "deliver#1"
    ]  # fmt: skip
    fix = next(c for c in fakes.calls if c.phase == "fix")
    assert fix.fix_reason == "validation" and fix.evidence_paths == ["specs/x/validation.md"]


async def test_validation_still_blocking_after_the_rounds_asks_a_person(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes(clarify=False, validation_results=[3])
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(max_fix_rounds=1, gates=["delivery"]), queue)
        esc = await open_request(handle, "escalation")
        assert esc.title == "Validation finds 3 blocking finding(s) after 1 fix round(s)"
        assert "specs/x/validation.md" in esc.body
        await respond(handle, request_id=esc.id, answers={"Q1": "accept"})
        gate = await open_request(handle, "approval")
        assert "INFERRED" in gate.body and "FR-009" in gate.body
        await respond(handle, request_id=gate.id, approved=True)
        result = await handle.result()
    assert result.state == "completed"
    assert result.validation is not None and result.validation.blocking == 3


async def test_an_ignored_signal_says_why_in_status_and_details(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        req = await open_request(handle, "clarification")
        bad = HumanResponse(request_id=req.id, answers={"Q1": "Z", "Q2": "A"})
        await handle.signal(BackendFeatureWorkflow.respond_signal, bad)

        async def noted() -> str | None:
            status = await handle.query(BackendFeatureWorkflow.status)
            return status.last_ignored_answer

        why = await eventually(noted)
        assert (
            why
            == f"{req.id}: {req.id} Q1: unknown option 'Z'; choose one of A, B or give a free-text answer"
        )
        status = await handle.query(BackendFeatureWorkflow.status)
        assert status.open_requests[0].id == req.id  # still waiting, nothing lost
        await respond(handle, request_id=req.id, answers={"Q1": "A", "Q2": "A"})
        await handle.result()


async def test_a_refused_update_carries_no_stack_trace(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        req = await open_request(handle, "clarification")
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await respond(handle, request_id=req.id, answers={"Q1": "Z", "Q2": "A"})
        cause = err.value.cause
        assert "unknown option 'Z'" in str(cause)
        assert cause.failure is not None and cause.failure.stack_trace == ""  # type: ignore[union-attr]
        await respond(handle, request_id=req.id, answers={"Q1": "A", "Q2": "A"})
        await handle.result()


async def test_a_rejected_spec_keeps_every_answer_already_given(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(gates=["spec"]), queue)
        req = await open_request(handle, "clarification")
        await respond(handle, request_id=req.id, answers={"Q1": "B", "Q2": "A"})
        gate = await open_request(handle, "approval")
        await respond(handle, request_id=gate.id, approved=False, comment="Add pagination")
        again = await open_request(handle, "approval")
        await respond(handle, request_id=again.id, approved=True)
        await handle.result()
    specifies = [c for c in fakes.calls if c.phase == "specify"]
    assert len(specifies) == 3
    rework = specifies[2]
    assert rework.guidance == "Add pagination"
    assert rework.clarifications == specifies[1].clarifications != []


async def test_waiting_for_a_person_shows_in_the_timeline(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        req = await open_request(handle, "clarification")

        async def timer_summary() -> str | None:
            events = (await handle.fetch_history()).events
            for e in events:
                if e.HasField("timer_started_event_attributes") and e.user_metadata.HasField(
                    "summary"
                ):
                    return e.user_metadata.summary.data.decode()
            return None

        summary = await eventually(timer_summary)
        assert "Waiting for you" in summary and req.id in summary
        await respond(handle, request_id=req.id, answers={"Q1": "A", "Q2": "A"})
        await handle.result()


class FailingParallelFakes(ParallelFakes):
    """The two [P] tasks of a batch fail for good."""

    async def _phase(self, inp: PhaseInput) -> PhaseOutcome:
        if inp.phase == "implement" and inp.worktree:
            self.calls.append(inp)
            raise ApplicationError(f"{inp.task_id} broke", type="BadInput", non_retryable=True)
        return await super()._phase(inp)


async def test_an_aborted_feature_withdraws_its_open_requests_and_escalations_are_distinct(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = FailingParallelFakes()
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)

        async def two_open() -> list[str] | None:
            status = await handle.query(BackendFeatureWorkflow.status)
            titles = sorted(r.title for r in status.open_requests)
            return titles if len(titles) == 2 else None

        titles = await eventually(two_open)
        assert titles == [
            "implement T001 failed after its retries",
            "implement T002 failed after its retries",
        ]
        status = await handle.query(BackendFeatureWorkflow.status)
        first = status.open_requests[0]
        await respond(handle, request_id=first.id, answers={"Q1": "abort"})
        result = await handle.result()
        final = await handle.query(BackendFeatureWorkflow.status)
    assert result.state == "aborted"
    assert final.state == "aborted" and final.open_requests == [] and final.phase == "done"


async def test_a_gate_policy_approves_unattended_when_its_conditions_hold(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes(clarify=False)
    policy = {"delivery": GatePolicy(max_cost_usd=5)}
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(gates=["delivery"], auto_gates=policy), queue)
        result = await handle.result()
        desc = await handle.describe()
        final = await handle.query(BackendFeatureWorkflow.status)
    assert result.state == "completed"
    assert final.answered_requests == []  # nobody was asked
    memo = await desc.memo_value("backforge_gate_decisions")
    assert memo == [f"delivery gate at {final.completed[-2].commit[:10]}: approved by policy"]
    deliver = fakes.deliveries[-1]
    assert deliver.gate_decisions == memo


async def test_a_gate_policy_asks_a_person_when_a_condition_fails(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = Fakes(clarify=False, validation_results=[2], cost=1.0)
    policy = {"delivery": GatePolicy(max_cost_usd=3)}
    req = request(gates=["delivery"], auto_gates=policy, max_fix_rounds=0)
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, req, queue)
        esc = await open_request(handle, "escalation")
        await respond(handle, request_id=esc.id, answers={"Q1": "accept"})
        gate = await open_request(handle, "approval")
        await respond(handle, request_id=gate.id, approved=True)
        result = await handle.result()
    assert result.state == "completed"
    (decision,) = fakes.deliveries[-1].gate_decisions
    assert "asked a person" in decision
    assert "spent is not under $3.00" in decision and "blocking findings remain" in decision


class MissingKeyFakes(Fakes):
    """The plan phase fails as a provider does when the worker has no key."""

    async def _phase(self, inp: PhaseInput) -> PhaseOutcome:
        if inp.phase == "plan" and inp.invocation == 1:
            self.calls.append(inp)
            raise ApplicationError(
                "ANTHROPIC_API_KEY is not set: export ANTHROPIC_API_KEY in the worker's environment",
                type="ModelConfigError",
                non_retryable=True,
            )
        return await super()._phase(inp)


async def test_a_missing_key_escalation_does_not_recommend_retrying_as_is(
    ts_env: WorkflowEnvironment, queue: str
) -> None:
    fakes = MissingKeyFakes(clarify=False)
    async with build_worker(ts_env.client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(ts_env, fakes, request(), queue)
        esc = await open_request(handle, "escalation")
        assert esc.questions[0].recommended == "abort"
        assert "ANTHROPIC_API_KEY is not set" in esc.body
        assert "restart the worker, then answer retry" in esc.body
        await respond(handle, request_id=esc.id, answers={"Q1": "retry"})  # after fixing it
        result = await handle.result()
    assert result.state == "completed"
