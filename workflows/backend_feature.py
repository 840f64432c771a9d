"""BackendFeatureWorkflow: the whole plan of one feature, deterministic and I/O-free.

constitution → specify ⇄ clarify → [gate spec] → plan → [gate plan] → tasks →
implement (task by task) → test ⇄ fix → analyze ⇄ fix → [gate delivery] → deliver

Every question to a person is a ``HumanRequest`` answered through the
``respond`` update (validated) or signal (same checks, invalid ones logged and
ignored). ``status`` is a query. A phase that still fails after its retries,
and tests still failing after the fix rounds, become escalations instead of
failing the workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities import (
        prepare_workspace,
        reset_workspace,
        run_phase_analyze,
        run_phase_constitution,
        run_phase_deliver,
        run_phase_fix,
        run_phase_implement,
        run_phase_plan,
        run_phase_specify,
        run_phase_tasks,
        run_phase_test,
    )
    from activities.phases.merge import merge_task_commits
    from workflows import policy
    from workflows.scheduling import batches
    from workflows.types import (
        SA_AWAITING_HUMAN,
        SA_PHASE,
        DeliveryFacts,
        FeatureRequest,
        FeatureResult,
        FeatureStatus,
        HumanOption,
        HumanQuestion,
        HumanRequest,
        HumanResponse,
        MergeInput,
        PhaseInput,
        PhaseOutcome,
        PhaseRecord,
        ResetInput,
        RespondResult,
        TaskItem,
        TestReport,
        Usage,
        WorkspaceInfo,
    )

__all__ = ["BackendFeatureWorkflow"]

_ACTIVITIES: dict[str, Callable[..., Awaitable[PhaseOutcome]]] = {
    "constitution": run_phase_constitution,
    "specify": run_phase_specify,
    "plan": run_phase_plan,
    "tasks": run_phase_tasks,
    "implement": run_phase_implement,
    "test": run_phase_test,
    "fix": run_phase_fix,
    "analyze": run_phase_analyze,
    "deliver": run_phase_deliver,
}
_ID_PREFIX = {
    "clarification": "clarify",
    "escalation": "escalate",
    "approval": "approve",
    "budget": "budget",
}


class _Aborted(Exception):
    """A person chose to stop the feature."""


@workflow.defn
class BackendFeatureWorkflow:
    @workflow.init
    def __init__(self, request: FeatureRequest) -> None:
        self._request = request
        self._ws: WorkspaceInfo | None = None
        self._state = "running"
        self._phase = "starting"
        self._head: str | None = None
        self._completed: list[PhaseRecord] = []
        self._tasks: list[TaskItem] = []
        self._open: dict[str, HumanRequest] = {}
        self._responses: dict[str, HumanResponse] = {}
        self._answered: list[str] = []
        self._usage = Usage()
        self._usage_by_phase: dict[str, Usage] = {}
        self._invocations: dict[str, int] = {}
        self._request_seq = 0
        self._test_report: TestReport | None = None
        self._fix_rounds = 0
        self._budget = request.budget_usd
        self._message = ""
        self._search_attrs: tuple[str, bool] | None = None

    # ---- run -------------------------------------------------------------
    @workflow.run
    async def run(self, request: FeatureRequest) -> FeatureResult:
        self._refresh()
        try:
            result = await self._pipeline()
        except _Aborted as stop:
            result = await self._stop("aborted", f"Aborted: {stop}.")
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancelled_exception(err):
                raise
            await self._stop("cancelled", "Cancelled.")
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _stop(self, state: str, why: str) -> FeatureResult:
        """Leave the branch at its last good commit and say so."""
        await self._reset_to_last_good()
        self._state = state
        self._message = f"{why} Branch left at its last good commit {self._short(self._head)}."
        self._refresh()
        return self._result("aborted")

    async def _pipeline(self) -> FeatureResult:
        self._phase = "prepare"
        self._ws = await workflow.execute_activity(
            prepare_workspace,
            self._request,
            start_to_close_timeout=policy.WORKSPACE_TIMEOUT,
            retry_policy=policy.WORKSPACE_RETRY,
            summary="prepare the feature branch",
        )
        self._head = self._ws.head_commit
        self._ws = self._ws.model_copy(update={"head_commit": ""})  # kept in self._head
        await self._phase_run("constitution")
        await self._specify()
        await self._gate("spec", lambda comment: self._specify(guidance=comment))
        await self._phase_run("plan")
        await self._gate("plan", lambda comment: self._phase_run("plan", guidance=comment))
        self._tasks = (await self._phase_run("tasks")).tasks
        if workflow.patched("parallel-tasks") and self._request.parallel_tasks:
            for batch in batches(self._tasks):
                await (
                    self._implement(batch[0])
                    if len(batch) == 1
                    else self._implement_parallel(batch)
                )
        else:
            for task in self._tasks:
                await self._implement(task)
        await self._test_and_fix()
        await self._analyze()
        await self._gate("delivery", self._rework)
        fd = self._ws.feature_dir
        facts = DeliveryFacts(
            usage=self._usage,
            usage_by_phase=self._usage_by_phase,
            fix_rounds=self._fix_rounds,
            answered_requests=self._answered,
            test_report=self._test_report,
            notes=self._message,
        )
        await self._phase_run("deliver", extra_args=[facts])
        self._state = "completed"
        self._phase = "done"
        self._message = f"Delivered on branch {self._ws.branch}; report at {fd}/report.md."
        self._refresh()
        return self._result("completed", report_path=f"{fd}/report.md")

    # ---- pipeline steps --------------------------------------------------
    async def _specify(self, guidance: str | None = None) -> None:
        outcome = await self._phase_run("specify", guidance=guidance)
        rounds = 0
        while outcome.human_requests and rounds < policy.MAX_CLARIFICATION_ROUNDS:
            rounds += 1
            request = outcome.human_requests[0]
            if self._request.clarification_timeout_s:
                request.deadline = workflow.now() + timedelta(
                    seconds=self._request.clarification_timeout_s
                )
                request.on_timeout = "recommended"
            response = await self._ask(request)
            answers = [(q.text, q.answer_text(response.answers[q.id])) for q in request.questions]
            outcome = await self._phase_run("specify", clarifications=answers, guidance=guidance)

    async def _implement(self, task: TaskItem) -> None:
        guidance: str | None = None
        answers: list[tuple[str, str]] = []
        for _ in range(policy.MAX_ESCALATIONS_PER_TASK + 1):
            outcome = await self._phase_run(
                "implement", task=task, guidance=guidance, clarifications=answers
            )
            if not outcome.human_requests:
                task.done = True
                return
            request = outcome.human_requests[0]
            response = await self._ask(request)
            answers = [(q.text, q.answer_text(response.answers[q.id])) for q in request.questions]
            guidance = "\n".join(f"{q} → {a}" for q, a in answers) + (
                f"\n{response.comment}" if response.comment else ""
            )
        raise _Aborted(f"{task.id} escalated {policy.MAX_ESCALATIONS_PER_TASK + 1} times")

    async def _implement_parallel(self, batch: list[TaskItem]) -> None:
        """Run ``[P]`` tasks side by side in worktrees, merge in task order, redo leftovers."""
        assert self._ws is not None and self._head is not None
        outcomes = await asyncio.gather(
            *(self._phase_run("implement", task=task, worktree=True) for task in batch)
        )
        self._phase = "implement merge " + ",".join(t.id for t in batch)
        self._refresh()
        ready = [(t, o) for t, o in zip(batch, outcomes, strict=True) if not o.human_requests]
        merged = await workflow.execute_activity(
            merge_task_commits,
            MergeInput(
                workflow_id=workflow.info().workflow_id,
                workspace=self._ws,
                base_commit=self._head,
                commits=[(t.id, o.commit) for t, o in ready],
            ),
            start_to_close_timeout=policy.WORKSPACE_TIMEOUT,
            retry_policy=policy.WORKSPACE_RETRY,
            summary=f"merge {', '.join(t.id for t, _ in ready)}",
        )
        on_branch = dict(merged.merged)
        for task, outcome in ready:
            if task.id in on_branch:
                self._record(outcome, task, commit=on_branch[task.id], count_usage=False)
                task.done = True
        self._head = merged.head
        for task in batch:  # conflicts and escalations: one by one, on top of what merged
            if not task.done:
                await self._implement(task)

    async def _test_and_fix(self, guidance: str | None = None) -> None:
        allowed = self._request.max_fix_rounds
        rounds = 0
        while True:
            report = (await self._phase_run("test")).test_report
            self._test_report = report
            if report is None or report.ok:
                return
            if rounds >= allowed:
                choice, comment = await self._escalate_choice(
                    phase="test",
                    title=f"Tests still fail after {rounds} fix round(s)",
                    body=(
                        f"{report.passed} passed, {report.failed} failed, {report.errors} errors. "
                        f"Output: `{report.output_path}` on branch `{self._branch()}`.\n\n"
                        f"```\n{report.tail[-800:]}\n```"
                    ),
                    options=[
                        ("more", "Run more fix rounds (your comment guides the fix)"),
                        ("accept", "Continue with failing tests (recorded in the report)"),
                        ("abort", "Stop the feature here"),
                    ],
                )
                if choice == "accept":
                    return
                allowed += max(1, self._request.max_fix_rounds)
                guidance = comment or guidance
            rounds += 1
            self._fix_rounds += 1
            await self._phase_run("fix", context_paths=[report.output_path], guidance=guidance)

    async def _analyze(self) -> None:
        assert self._ws is not None
        for round_ in range(policy.MAX_ANALYZE_FIX_ROUNDS + 1):
            outcome = await self._phase_run("analyze")
            if outcome.blocking_findings == 0:
                return
            if round_ == policy.MAX_ANALYZE_FIX_ROUNDS:
                self._message = (
                    f"{outcome.blocking_findings} blocking finding(s) remain; see analysis.md"
                )
                return
            await self._phase_run("fix", context_paths=[f"{self._ws.feature_dir}/analysis.md"])
            await self._test_and_fix()

    async def _rework(self, comment: str) -> None:
        """A rejected delivery: fix with the reviewer's comment, then test and analyze again."""
        await self._phase_run("fix", guidance=comment)
        await self._test_and_fix(guidance=comment)
        await self._analyze()

    async def _gate(self, gate: str, rework: Callable[[str], Awaitable[object]]) -> None:
        if gate not in self._request.gates:
            return
        while True:
            response = await self._ask(
                HumanRequest(
                    id="",
                    kind="approval",
                    phase=gate,
                    title=f"Approve the {gate} of {self._branch()}?",
                    body=(
                        f"Review the {gate} on branch `{self._branch()}` at "
                        f"`{self._short(self._head)}` (in `{self._ws.feature_dir if self._ws else ''}`). "
                        "Approve to continue, or reject with a comment saying what to change."
                    ),
                )
            )
            if response.approved:
                return
            await rework(response.comment or "")

    # ---- phases ----------------------------------------------------------
    async def _phase_run(
        self,
        phase: str,
        *,
        task: TaskItem | None = None,
        guidance: str | None = None,
        clarifications: list[tuple[str, str]] | None = None,
        context_paths: list[str] | None = None,
        extra_args: list[object] | None = None,
        worktree: bool = False,
    ) -> PhaseOutcome:
        """Run one phase activity; after its retries are spent, ask a person."""
        assert self._ws is not None and self._head is not None
        await self._check_budget(phase)
        while True:
            key = f"{phase}/{task.id}" if task else phase
            self._invocations[key] = invocation = self._invocations.get(key, 0) + 1
            self._phase = f"{phase} {task.id}" if task else phase
            self._refresh()
            inp = PhaseInput(
                workflow_id=workflow.info().workflow_id,
                phase=phase,  # type: ignore[arg-type]
                invocation=invocation,
                workspace=self._ws,
                base_commit=self._head,
                model=self._request.model_for(phase),
                guidance=guidance,
                task_id=task.id if task else None,
                clarifications=clarifications or [],
                context_paths=context_paths or [],
                today=workflow.now().date().isoformat(),
                limits=self._request.agent_limits,
                worktree=worktree,
            )
            label = (
                f"{phase} {task.id}: {task.title[:60]}" if task else f"{phase} (run {invocation})"
            )
            try:
                outcome = await workflow.execute_activity(
                    _ACTIVITIES[phase],
                    args=[inp, *(extra_args or [])],
                    start_to_close_timeout=policy.PHASE_START_TO_CLOSE[phase],
                    heartbeat_timeout=policy.PHASE_HEARTBEAT,
                    retry_policy=policy.PHASE_RETRY,
                    summary=label[:200],
                )
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                cause = (
                    err.cause.message
                    if isinstance(err.cause, ApplicationError)
                    else str(err.cause or err)
                )
                choice, comment = await self._escalate_choice(
                    phase=phase,
                    title=f"{self._phase} failed after its retries",
                    body=f"The {self._phase} step failed:\n\n```\n{cause[:1500]}\n```",
                    options=[
                        ("retry", "Run the step again (your comment is passed to it as guidance)"),
                        ("abort", "Stop the feature here"),
                    ],
                )
                guidance = comment or guidance
                continue
            if worktree:  # recorded when merged onto the branch
                self._add_usage(outcome)
            else:
                self._record(outcome, task)
            return outcome

    def _record(
        self,
        outcome: PhaseOutcome,
        task: TaskItem | None,
        *,
        commit: str | None = None,
        count_usage: bool = True,
    ) -> None:
        self._head = commit or outcome.commit
        self._completed.append(
            PhaseRecord(
                phase=outcome.phase,
                commit=self._head,
                summary=outcome.summary[:120],
                task_id=task.id if task else None,
                finished_at=workflow.now(),
            )
        )
        if count_usage:
            self._add_usage(outcome)

    def _add_usage(self, outcome: PhaseOutcome) -> None:
        self._usage = self._usage + outcome.usage
        self._usage_by_phase[outcome.phase] = (
            self._usage_by_phase.get(outcome.phase, Usage()) + outcome.usage
        )

    async def _check_budget(self, phase: str) -> None:
        while self._budget is not None and self._usage.cost_usd >= self._budget:
            response = await self._ask(
                HumanRequest(
                    id="",
                    kind="budget",
                    phase=phase,
                    title=f"Budget reached before {phase}: ${self._usage.cost_usd:.2f} of ${self._budget:.2f}",
                    body="Raise the limit to continue, or stop the feature here.",
                    questions=[
                        HumanQuestion(
                            id="Q1",
                            text="Raise the budget or stop? (free text: a new limit in USD)",
                            options=[
                                HumanOption(
                                    key="raise",
                                    answer=f"Double the limit to ${self._budget * 2:.2f}",
                                ),
                                HumanOption(key="stop", answer="Stop the feature"),
                            ],
                            recommended="stop",
                        )
                    ],
                )
            )
            answer = response.answers["Q1"]
            if answer == "stop":
                raise _Aborted("stopped at the budget limit")
            self._budget = self._budget * 2 if answer == "raise" else float(answer)

    async def _escalate_choice(
        self, *, phase: str, title: str, body: str, options: list[tuple[str, str]]
    ) -> tuple[str, str | None]:
        response = await self._ask(
            HumanRequest(
                id="",
                kind="escalation",
                phase=phase,
                title=title,
                body=body,
                questions=[
                    HumanQuestion(
                        id="Q1",
                        text="How should the pipeline proceed?",
                        options=[HumanOption(key=k, answer=a) for k, a in options],
                        recommended=options[0][0],
                        allow_free_text=False,
                    )
                ],
            )
        )
        choice = response.answers["Q1"]
        if choice == "abort":
            raise _Aborted(f"stopped by {response.responder or 'a person'} at {phase}")
        return choice, response.comment

    async def _reset_to_last_good(self) -> None:
        if self._ws is None or self._head is None:
            return
        await workflow.execute_activity(
            reset_workspace,
            ResetInput(repo_path=self._ws.repo_path, branch=self._ws.branch, commit=self._head),
            start_to_close_timeout=policy.WORKSPACE_TIMEOUT,
            retry_policy=policy.WORKSPACE_RETRY,
            summary=f"reset {self._ws.branch} to {self._head[:10]}",
        )

    # ---- human requests --------------------------------------------------
    async def _ask(self, request: HumanRequest) -> HumanResponse:
        self._request_seq += 1
        gate = f"-{request.phase}" if request.kind == "approval" else ""
        request.id = f"{_ID_PREFIX[request.kind]}{gate}-{self._request_seq}"
        request.created_at = workflow.now()
        request.remind_every_s = request.remind_every_s or self._request.remind_every_s
        self._open[request.id] = request
        self._refresh()
        while request.id not in self._responses:
            timeout = self._next_wake(request)
            try:
                await workflow.wait_condition(
                    lambda: request.id in self._responses, timeout=timeout
                )
            except TimeoutError:
                if request.deadline is not None and workflow.now() >= request.deadline:
                    self._on_deadline(request)
                else:
                    request.reminders_sent += 1
                    workflow.logger.info(
                        "Reminder %d: %s is waiting for an answer",
                        request.reminders_sent,
                        request.id,
                    )
                    self._refresh()
        del self._open[request.id]
        self._answered.append(request.id)
        self._refresh()
        return self._responses[request.id]

    def _next_wake(self, request: HumanRequest) -> timedelta | None:
        waits = []
        if request.remind_every_s:
            waits.append(timedelta(seconds=request.remind_every_s))
        if request.deadline is not None:
            waits.append(max(request.deadline - workflow.now(), timedelta(seconds=1)))
        return min(waits) if waits else None

    def _on_deadline(self, request: HumanRequest) -> None:
        if request.on_timeout == "recommended":
            answers = {q.id: q.recommended or q.options[0].key for q in request.questions}
            self._responses[request.id] = HumanResponse(
                request_id=request.id,
                answers=answers,
                responder="timeout policy (recommended answers)",
            )
        elif request.on_timeout == "abort":
            raise _Aborted(f"{request.id} was not answered by its deadline")
        else:
            request.deadline = None

    def _validate(self, response: HumanResponse) -> HumanRequest:
        request = self._open.get(response.request_id)
        if request is None:
            if response.request_id in self._answered:
                raise ValueError(f"request {response.request_id!r} was already answered")
            open_ids = ", ".join(self._open) or "none"
            raise ValueError(f"no open request {response.request_id!r}; open requests: {open_ids}")
        if request.kind == "approval":
            if response.approved is None:
                raise ValueError(
                    f"{request.id} is an approval: answer with approved=true or approved=false"
                )
            if not response.approved and not (response.comment or "").strip():
                raise ValueError(f"rejecting {request.id} needs a comment saying what to change")
            return request
        ids = [q.id for q in request.questions]
        unknown = sorted(set(response.answers) - set(ids))
        if unknown:
            raise ValueError(
                f"{request.id} has no question(s) {', '.join(unknown)}; its questions are {', '.join(ids)}"
            )
        missing = [q for q in ids if not response.answers.get(q)]
        if missing:
            raise ValueError(
                f"{request.id}: missing answer(s) for {', '.join(missing)}; answer every question"
            )
        for q in request.questions:
            answer = response.answers[q.id]
            keys = [o.key for o in q.options]
            if answer in keys:
                continue
            if not q.options:
                continue
            # A lone letter is meant as an option key; anything else is free text.
            looks_like_key = len(answer) == 1 and answer.isalpha()
            if not q.allow_free_text or looks_like_key:
                extra = " or give a free-text answer" if q.allow_free_text else ""
                raise ValueError(
                    f"{request.id} {q.id}: unknown option {answer!r}; choose one of {', '.join(keys)}{extra}"
                )
            if request.kind == "budget":
                try:
                    if float(answer) <= self._usage.cost_usd:
                        raise ValueError
                except ValueError:
                    raise ValueError(
                        f"{request.id} Q1: {answer!r} is not a limit above the ${self._usage.cost_usd:.2f} spent; "
                        "answer raise, stop, or a larger number"
                    ) from None
        return request

    @workflow.update(name="respond")
    async def respond_update(self, response: HumanResponse) -> RespondResult:
        request = self._validate(response)
        self._responses[request.id] = response
        return RespondResult(request_id=request.id, accepted=True, message=f"{request.id} answered")

    @respond_update.validator
    def _validate_update(self, response: HumanResponse) -> None:
        self._validate(response)

    @workflow.signal(name="respond")
    def respond_signal(self, response: HumanResponse) -> None:
        try:
            request = self._validate(response)
        except ValueError as err:
            workflow.logger.warning("Ignored respond signal: %s", err)
            return
        self._responses[request.id] = response

    # ---- visibility ------------------------------------------------------
    def _visible_state(self) -> str:
        return "waiting" if self._state == "running" and self._open else self._state

    @workflow.query
    def status(self) -> FeatureStatus:
        state = self._visible_state()
        return FeatureStatus(
            workflow_id=workflow.info().workflow_id,
            feature=self._request.feature,
            state=state,  # type: ignore[arg-type]
            phase=self._phase,
            repo_path=self._ws.repo_path if self._ws else self._request.repo_path,
            branch=self._ws.branch if self._ws else None,
            feature_dir=self._ws.feature_dir if self._ws else None,
            head_commit=self._head,
            last_good_commit=self._head,
            completed=list(self._completed),
            tasks=list(self._tasks),
            open_requests=list(self._open.values()),
            answered_requests=list(self._answered),
            usage=self._usage,
            usage_by_phase=dict(self._usage_by_phase),
            models={p: self._request.model_for(p) for p in _ACTIVITIES},
            budget_usd=self._budget,
            test_report=self._test_report,
            fix_rounds=self._fix_rounds,
            message=self._message,
        )

    def _refresh(self) -> None:
        awaiting = bool(self._open)
        attrs = (self._phase.split(" ")[0], awaiting)  # "implement T003" -> "implement"
        if attrs != self._search_attrs:
            self._search_attrs = attrs
            workflow.upsert_search_attributes(
                [SA_PHASE.value_set(attrs[0]), SA_AWAITING_HUMAN.value_set(awaiting)]
            )
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        done = sum(t.done for t in self._tasks)
        lines = [
            f"**Phase**: {self._phase} · **State**: {self._visible_state()}",
            f"**Branch**: `{self._branch()}` at `{self._short(self._head)}`",
            f"**Tasks**: {done}/{len(self._tasks)} · **Fix rounds**: {self._fix_rounds}",
            f"**Usage**: {self._usage.model_calls} calls, {self._usage.input_tokens}+{self._usage.output_tokens} tokens, ${self._usage.cost_usd:.4f}",
        ]
        if self._message:
            lines.append(f"\n{self._message}")
        wid = workflow.info().workflow_id
        for request in self._open.values():
            lines += [
                "",
                f"### Waiting for you: {request.title}",
                f"`{request.id}` ({request.kind})",
                "",
                request.body,
            ]
            for q in request.questions:
                lines.append(f"\n**{q.id}**: {q.text}")
                for o in q.options:
                    rec = " *(recommended)*" if o.key == q.recommended else ""
                    lines.append(
                        f"- **{o.key}**: {o.answer}{rec}"
                        + (f" — {o.implications}" if o.implications else "")
                    )
            if request.kind == "approval":
                how = f'python starter.py approve {wid} {request.id}   (or reject ... --comment "...")'
                payload = f'{{"request_id": "{request.id}", "approved": true}}'
            else:
                pairs = " ".join(f"{q.id}={q.recommended or 'A'}" for q in request.questions)
                how = f"python starter.py answer {wid} {request.id} {pairs}"
                answers = ", ".join(
                    f'"{q.id}": "{q.recommended or "A"}"' for q in request.questions
                )
                payload = f'{{"request_id": "{request.id}", "answers": {{{answers}}}}}'
            lines += [
                "",
                "Answer with:",
                f"`{how}`",
                "or signal `respond` (Temporal UI or CLI) with:",
                f"`{payload}`",
            ]
        return "\n".join(lines)

    # ---- helpers ---------------------------------------------------------
    def _branch(self) -> str:
        return self._ws.branch if self._ws else "(not yet created)"

    @staticmethod
    def _short(sha: str | None) -> str:
        return sha[:10] if sha else "-"

    def _result(self, state: str, report_path: str | None = None) -> FeatureResult:
        return FeatureResult(
            workflow_id=workflow.info().workflow_id,
            state=state,  # type: ignore[arg-type]
            branch=self._branch(),
            head_commit=self._head or "",
            report_path=report_path,
            # Summaries stay in status; the result keeps the commit list short.
            commits=[r.model_copy(update={"summary": ""}) for r in self._completed],
            test_report=self._test_report,
            usage=self._usage,
            usage_by_phase=dict(self._usage_by_phase),
            message=self._message,
        )
