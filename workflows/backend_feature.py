"""BackendFeatureWorkflow: the whole plan of one feature, deterministic and I/O-free.

constitution → specify ⇄ clarify → [gate spec] → plan → [gate plan] → tasks →
implement (task by task, ``[P]`` tasks side by side) → test ⇄ fix → validate ⇄ fix
→ analyze ⇄ fix → [gate delivery] → deliver

Every question to a person goes through the human-request desk
(``workflows/human.py``); ``respond`` (update, validated; or signal, same checks)
hands it the answer. ``status`` is a query. A phase that still fails after its
retries, and tests still failing after the fix rounds, become escalations
instead of failing the workflow. Activities are called by the names declared in
``workflows/phases.py``; no activity code is imported here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from contract import (
        REJECTED_ANSWER,
        SA_AWAITING_HUMAN,
        SA_PHASE,
        SANDBOX_QUEUE_SUFFIX,
        DeliveryFacts,
        FeatureRequest,
        FeatureResult,
        FeatureState,
        FeatureStatus,
        FixReason,
        GateName,
        HumanOption,
        HumanQuestion,
        HumanRequest,
        HumanResponse,
        MergeInput,
        MergeResult,
        PhaseInput,
        PhaseName,
        PhaseOutcome,
        PhaseRecord,
        ResetInput,
        RespondResult,
        Stage,
        TaskItem,
        TestReport,
        Usage,
        ValidationSummary,
        WorkspaceInfo,
    )
    from workflows import policy
    from workflows.details import current_details
    from workflows.human import Aborted, HumanDesk
    from workflows.phases import MERGE, PHASES, PIPELINE, PREPARE, RESET
    from workflows.scheduling import batches

__all__ = ["BackendFeatureWorkflow"]


#: Activity failures only the worker's operator can cure (set a key, restart the worker).
_WORKER_CONFIG_ERRORS = frozenset({"ModelConfigError", "ModelAuthError"})


@dataclass
class _Verdict:
    """What a check (tests, validation) found, and how to ask a person if it persists."""

    passed: bool
    evidence: list[str] = field(default_factory=list)
    #: ``{rounds}`` is filled with the fix rounds run so far.
    title: str = ""
    body: str = ""


@workflow.defn
class BackendFeatureWorkflow:
    @workflow.init
    def __init__(self, request: FeatureRequest) -> None:
        self._request = request
        self._desk = HumanDesk(remind_every_s=request.remind_every_s)
        self._ws: WorkspaceInfo | None = None
        self._state: FeatureState = "running"
        self._stage: Stage = "starting"
        self._task_id: str | None = None
        self._head: str | None = None
        self._completed: list[PhaseRecord] = []
        self._tasks: list[TaskItem] = []
        self._usage = Usage()
        self._usage_by_phase: dict[PhaseName, Usage] = {}
        self._invocations: dict[str, int] = {}
        self._test_report: TestReport | None = None
        self._validation: ValidationSummary | None = None
        self._clarified: list[tuple[str, str]] = []
        self._gate_decisions: list[str] = []
        self._analysis_blocking = 0
        self._fix_rounds = 0
        self._budget = request.budget_usd
        self._message = ""
        self._search_attrs: tuple[str, bool] | None = None
        self._heartbeat_timeout = (
            timedelta(seconds=request.heartbeat_timeout_s)
            if request.heartbeat_timeout_s
            else policy.PHASE_HEARTBEAT
        )

    # ---- the pipeline ---------------------------------------------------------
    @workflow.run
    async def run(self, request: FeatureRequest) -> FeatureResult:
        self._refresh()
        try:
            result = await self._pipeline()
        except Aborted as stop:
            result = await self._stop("aborted", f"Aborted: {stop}.")
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancelled_exception(err):
                raise
            await self._stop("cancelled", "Cancelled.")
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _pipeline(self) -> FeatureResult:
        self._stage = "prepare"
        self._ws = await workflow.execute_activity(
            PREPARE.activity,
            self._request,
            start_to_close_timeout=PREPARE.start_to_close,
            heartbeat_timeout=self._heartbeat_timeout,
            retry_policy=policy.WORKSPACE_RETRY,
            result_type=WorkspaceInfo,
            summary="prepare the feature branch",
        )
        self._head = self._ws.base_commit
        if workflow.patched("summarize-phase"):
            await self._phase("summarize")
        await self._phase("constitution")
        await self._specify()
        await self._gate("spec", lambda comment: self._specify(guidance=comment))
        await self._phase("plan")
        await self._gate("plan", lambda comment: self._phase("plan", guidance=comment))
        self._tasks = (await self._phase("tasks")).tasks
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
        await self._verify()
        await self._analyze()
        await self._gate("delivery", self._rework)
        facts = DeliveryFacts(
            usage=self._usage,
            usage_by_phase=self._usage_by_phase,
            fix_rounds=self._fix_rounds,
            answered_requests=self._desk.answered,
            test_report=self._test_report,
            validation=self._validation,
            gate_decisions=self._gate_decisions,
            notes=self._message,
        )
        outcome = await self._phase("deliver", facts=facts)
        self._state = "completed"
        self._stage = "done"
        report = outcome.artifacts[0] if outcome.artifacts else None
        self._message = f"Delivered on branch {self._branch()}; report at {report}."
        if outcome.pull_request:
            self._message += f" Pull request: {outcome.pull_request}"
        self._refresh()
        return self._result("completed", report_path=report, pull_request=outcome.pull_request)

    async def _specify(self, guidance: str | None = None) -> None:
        # Every answer so far goes to every specify run, so a rework keeps them recorded.
        outcome = await self._phase(
            "specify", guidance=guidance, clarifications=list(self._clarified)
        )
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
            self._clarified += self._desk.answered_text(request, response)
            outcome = await self._phase(
                "specify", clarifications=list(self._clarified), guidance=guidance
            )

    async def _implement(self, task: TaskItem) -> None:
        guidance: str | None = None
        answers: list[tuple[str, str]] = []
        for _ in range(policy.MAX_ESCALATIONS_PER_TASK + 1):
            outcome = await self._phase(
                "implement", task=task, guidance=guidance, clarifications=answers
            )
            if not outcome.human_requests:
                task.done = True
                return
            request = outcome.human_requests[0]
            response = await self._ask(request)
            answers = self._desk.answered_text(request, response)
            guidance = "\n".join(f"{q} → {a}" for q, a in answers) + (
                f"\n{response.comment}" if response.comment else ""
            )
        raise Aborted(f"{task.id} escalated {policy.MAX_ESCALATIONS_PER_TASK + 1} times")

    async def _implement_parallel(self, batch: list[TaskItem]) -> None:
        """Run ``[P]`` tasks side by side in worktrees, merge in task order, redo leftovers."""
        assert self._ws is not None and self._head is not None
        outcomes = await asyncio.gather(
            *(self._phase("implement", task=task, worktree=True) for task in batch)
        )
        self._stage, self._task_id = "implement", None
        self._refresh()
        ready = [(t, o) for t, o in zip(batch, outcomes, strict=True) if not o.human_requests]
        merged = await workflow.execute_activity(
            MERGE.activity,
            MergeInput(
                workflow_id=workflow.info().workflow_id,
                workspace=self._ws,
                base_commit=self._head,
                commits=[(t.id, o.commit) for t, o in ready],
            ),
            start_to_close_timeout=MERGE.start_to_close,
            heartbeat_timeout=self._heartbeat_timeout,
            retry_policy=policy.WORKSPACE_RETRY,
            result_type=MergeResult,
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
        async def run_tests() -> _Verdict:
            report = self._test_report = (await self._phase("test")).test_report
            if report is None or report.ok:
                return _Verdict(passed=True)
            return _Verdict(
                passed=False,
                evidence=[report.output_path],
                title="Tests still fail after {rounds} fix round(s)",
                body=(
                    f"{report.counts}. Output: `{report.output_path}` on branch "
                    f"`{self._branch()}`.\n\n```\n{report.tail[-800:]}\n```"
                ),
            )

        await self._repair(
            "test", "tests", run_tests, accepted="Continue with failing tests", guidance=guidance
        )

    async def _verify(self, guidance: str | None = None) -> None:
        """The evidence a feature works: its tests, then black-box validation of the service."""
        await self._test_and_fix(guidance=guidance)
        if workflow.patched("validate-phase"):
            await self._validate_and_fix()

    async def _validate_and_fix(self) -> None:
        async def validate() -> _Verdict:
            outcome = await self._phase("validate")
            found = self._validation = outcome.validation
            if found is None or found.passed:
                return _Verdict(passed=True)
            top = "\n".join(f"- {t}" for t in found.top)
            return _Verdict(
                passed=False,
                evidence=outcome.artifacts,
                title=f"Validation finds {found.blocking} blocking finding(s) after "
                "{rounds} fix round(s)",
                body=(
                    f"{found.blocking} blocking of {found.findings} finding(s); details and "
                    f"reproducible requests in `{found.report_path}` on branch "
                    f"`{self._branch()}`.\n\n{top}"
                ),
            )

        await self._repair(
            "validate",
            "validation",
            validate,
            accepted="Continue with the findings",
            after_fix=self._test_and_fix,
        )

    async def _repair(
        self,
        phase: PhaseName,
        reason: FixReason,
        check: Callable[[], Awaitable[_Verdict]],
        *,
        accepted: str,
        guidance: str | None = None,
        after_fix: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Check, fix what failed with its evidence, check again; ask a person after the
        feature's fix rounds (more rounds, accept, or abort)."""
        allowed = self._request.max_fix_rounds
        rounds = 0
        while True:
            verdict = await check()
            if verdict.passed:
                return
            if rounds >= allowed:
                choice, comment = await self._escalate_choice(
                    phase=phase,
                    title=verdict.title.format(rounds=rounds),
                    body=verdict.body,
                    options=[
                        ("more", "Run more fix rounds (your comment guides the fix)"),
                        ("accept", f"{accepted} (recorded in the report)"),
                        ("abort", "Stop the feature here"),
                    ],
                )
                if choice == "accept":
                    return
                allowed += max(1, self._request.max_fix_rounds)
                guidance = comment or guidance
            rounds += 1
            await self._fix(reason, evidence=verdict.evidence, guidance=guidance)
            if after_fix is not None:
                await after_fix()

    async def _analyze(self) -> None:
        for round_ in range(policy.MAX_ANALYZE_FIX_ROUNDS + 1):
            outcome = await self._phase("analyze")
            self._analysis_blocking = outcome.blocking_findings
            if outcome.blocking_findings == 0:
                return
            if round_ == policy.MAX_ANALYZE_FIX_ROUNDS:
                where = outcome.artifacts[0] if outcome.artifacts else "the analysis"
                self._message = (
                    f"{outcome.blocking_findings} blocking finding(s) remain; see {where}"
                )
                return
            await self._fix("analysis", evidence=outcome.artifacts)
            await self._verify()

    async def _rework(self, comment: str) -> None:
        """A rejected delivery: fix with the reviewer's comment, then test and analyze again."""
        await self._fix("review", guidance=comment)
        await self._verify(guidance=comment)
        await self._analyze()

    async def _fix(
        self, reason: FixReason, *, evidence: list[str] | None = None, guidance: str | None = None
    ) -> None:
        self._fix_rounds += 1
        await self._phase("fix", fix_reason=reason, evidence=evidence, guidance=guidance)

    async def _gate(self, gate: GateName, rework: Callable[[str], Awaitable[object]]) -> None:
        if gate not in self._request.gates:
            return
        while True:
            if self._policy_approves(gate):
                return
            where = f" (in `{self._ws.feature_dir}`)" if self._ws else ""
            body = (
                f"Review the {gate} on branch `{self._branch()}` at "
                f"`{self._short(self._head)}`{where}. "
                "Approve to continue, or reject with a comment saying what to change."
            )
            if gate == "delivery" and self._validation is not None and self._validation.inferred:
                body += (
                    "\n\nRequirements the model INFERRED (not asked for; confirm or reject): "
                    + ", ".join(self._validation.inferred)
                )
            response = await self._ask(
                HumanRequest(
                    id="",
                    kind="approval",
                    phase=gate,
                    title=f"Approve the {gate} of {self._branch()}?",
                    body=body,
                )
            )
            if response.approved:
                return
            await rework(response.comment or "")

    def _policy_approves(self, gate: GateName) -> bool:
        """Whether the gate's policy approves now; the decision is recorded either way."""
        policy_ = self._request.auto_gates.get(gate)
        if policy_ is None:
            return False
        unmet = []
        spent = self._usage.cost_usd
        if policy_.max_cost_usd is not None and spent >= policy_.max_cost_usd:
            unmet.append(f"${spent:.2f} spent is not under ${policy_.max_cost_usd:.2f}")
        if gate == "delivery":
            t, v = self._test_report, self._validation
            if policy_.require_green_tests and not (t is not None and t.ok):
                unmet.append("the tests are not green")
            if policy_.require_no_blocking_findings and (
                (v is not None and not v.passed) or self._analysis_blocking
            ):
                unmet.append("blocking findings remain")
        verdict = "approved by policy" if not unmet else "asked a person: " + "; ".join(unmet)
        self._gate_decisions.append(f"{gate} gate at {self._short(self._head)}: {verdict}")
        # Recorded in history (the memo), visible in the UI's Memo and in the report.
        workflow.upsert_memo({"backforge_gate_decisions": list(self._gate_decisions)})
        return not unmet

    # ---- running one phase ------------------------------------------------------
    async def _phase(
        self,
        phase: PhaseName,
        *,
        task: TaskItem | None = None,
        guidance: str | None = None,
        clarifications: list[tuple[str, str]] | None = None,
        fix_reason: FixReason | None = None,
        evidence: list[str] | None = None,
        facts: DeliveryFacts | None = None,
        worktree: bool = False,
    ) -> PhaseOutcome:
        """Run one phase activity; after its retries are spent, ask a person."""
        assert self._ws is not None and self._head is not None
        decl = PHASES[phase]
        await self._check_budget(phase)
        while True:
            key = f"{phase}/{task.id}" if task else phase
            self._invocations[key] = invocation = self._invocations.get(key, 0) + 1
            self._stage, self._task_id = phase, task.id if task else None
            self._refresh()
            inp = PhaseInput(
                workflow_id=workflow.info().workflow_id,
                phase=phase,
                invocation=invocation,
                workspace=self._ws,
                base_commit=self._head,
                model=self._request.model_for(phase),
                guidance=guidance,
                task_id=task.id if task else None,
                clarifications=clarifications or [],
                fix_reason=fix_reason,
                evidence_paths=evidence or [],
                today=workflow.now().date().isoformat(),
                limits=self._request.agent_limits,
                worktree=worktree,
            )
            label = f"{phase} {task.id}: {task.title}" if task else f"{phase} (run {invocation})"
            try:
                outcome = await workflow.execute_activity(
                    decl.activity,
                    args=[inp, facts] if facts is not None else [inp],
                    task_queue=self._queue(decl.sandboxed),
                    start_to_close_timeout=decl.start_to_close,
                    heartbeat_timeout=self._heartbeat_timeout,
                    retry_policy=policy.PHASE_RETRY,
                    result_type=PhaseOutcome,
                    summary=label[:200],
                )
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise
                failure = err.cause if isinstance(err.cause, ApplicationError) else None
                cause = failure.message if failure else str(err.cause or err)
                what = f"{phase} {task.id}" if task else phase
                body = f"The {what} step failed:\n\n```\n{cause[:1500]}\n```"
                # A worker's missing or wrong key is not cured by running the step again:
                # someone must fix the worker's environment first, so retry is not advised.
                fix_worker = failure is not None and failure.type in _WORKER_CONFIG_ERRORS
                if fix_worker:
                    body += (
                        "\n\nThis is the worker's configuration (a model key, most often): set "
                        "it in the worker's environment and restart the worker, then answer retry."
                    )
                choice, comment = await self._escalate_choice(
                    phase=phase,
                    title=f"{what} failed after its retries",
                    body=body,
                    options=[
                        ("retry", "Run the step again (your comment is passed to it as guidance)"),
                        ("abort", "Stop the feature here"),
                    ],
                    recommended="abort" if fix_worker else "retry",
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
                summary=outcome.summary,
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
        self._desk.spent_usd = self._usage.cost_usd

    # ---- asking a person ----------------------------------------------------------
    async def _ask(self, request: HumanRequest) -> HumanResponse:
        visible = workflow.patched("visible-waiting")
        return await self._desk.ask(request, changed=self._refresh, visible=visible)

    async def _check_budget(self, phase: PhaseName) -> None:
        while self._budget is not None and self._usage.cost_usd >= self._budget:
            spent, limit = self._usage.cost_usd, self._budget
            response = await self._ask(
                HumanRequest(
                    id="",
                    kind="budget",
                    phase=phase,
                    title=f"Budget reached before {phase}: ${spent:.2f} of ${limit:.2f}",
                    body="Raise the limit to continue, or stop the feature here.",
                    questions=[
                        HumanQuestion(
                            id="Q1",
                            text="Raise the budget or stop? (free text: a new limit in USD)",
                            options=[
                                HumanOption(
                                    key="raise", answer=f"Double the limit to ${limit * 2:.2f}"
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
                raise Aborted("stopped at the budget limit")
            self._budget = limit * 2 if answer == "raise" else float(answer)

    async def _escalate_choice(
        self,
        *,
        phase: PhaseName,
        title: str,
        body: str,
        options: list[tuple[str, str]],
        recommended: str | None = None,
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
                        recommended=recommended or options[0][0],
                        allow_free_text=False,
                    )
                ],
            )
        )
        choice = response.answers["Q1"]
        if choice == "abort":
            raise Aborted(f"stopped by {response.responder or 'a person'} at {phase}")
        return choice, response.comment

    @workflow.update(name="respond")
    async def respond_update(self, response: HumanResponse) -> RespondResult:
        return self._desk.accept(response)

    @respond_update.validator
    def _validate_update(self, response: HumanResponse) -> None:
        try:
            self._desk.validate(response)
        except ValueError as err:  # the person reads this; no stack trace (runtime.py)
            raise ApplicationError(str(err), type=REJECTED_ANSWER, non_retryable=True) from None

    @workflow.signal(name="respond")
    def respond_signal(self, response: HumanResponse) -> None:
        try:
            self._desk.accept(response)
        except ValueError as err:
            # A signal has no reply: say why where people look (status, the UI's details).
            workflow.logger.warning("Ignored respond signal: %s", err)
            self._desk.ignore(response, str(err))
            self._refresh()

    # ---- stopping ------------------------------------------------------------------
    async def _stop(self, state: FeatureState, why: str) -> FeatureResult:
        """Leave the branch at its last good commit and say so."""
        if self._ws is not None and self._head is not None:
            await workflow.execute_activity(
                RESET.activity,
                ResetInput(repo_path=self._ws.repo_path, branch=self._ws.branch, commit=self._head),
                start_to_close_timeout=RESET.start_to_close,
                retry_policy=policy.WORKSPACE_RETRY,
                result_type=str,
                summary=f"reset {self._ws.branch} to {self._head[:10]}",
            )
        self._state = state
        self._message = f"{why} Branch left at its last good commit {self._short(self._head)}."
        if workflow.patched("honest-final-state"):
            self._desk.withdraw_all()  # nobody can answer them any more
            self._stage = "done"
        self._refresh()
        return self._result("aborted")

    # ---- what people see -------------------------------------------------------------
    @workflow.query
    def status(self) -> FeatureStatus:
        return FeatureStatus(
            workflow_id=workflow.info().workflow_id,
            feature=self._request.feature,
            state="waiting" if self._state == "running" and self._desk.open else self._state,
            phase=self._stage,
            task_id=self._task_id,
            repo_path=self._ws.repo_path if self._ws else self._request.repo_path,
            branch=self._ws.branch if self._ws else None,
            feature_dir=self._ws.feature_dir if self._ws else None,
            head_commit=self._head,
            completed=list(self._completed),
            tasks=list(self._tasks),
            open_requests=list(self._desk.open.values()),
            answered_requests=list(self._desk.answered),
            last_ignored_answer=self._desk.last_ignored,
            usage=self._usage,
            usage_by_phase=dict(self._usage_by_phase),
            models={p: self._request.model_for(p) for p in PIPELINE},
            budget_usd=self._budget,
            test_report=self._test_report,
            validation=self._validation,
            fix_rounds=self._fix_rounds,
            message=self._message,
        )

    def _refresh(self) -> None:
        status = self.status()
        attrs = (status.phase, bool(status.open_requests))
        if attrs != self._search_attrs:
            self._search_attrs = attrs
            workflow.upsert_search_attributes(
                [SA_PHASE.value_set(attrs[0]), SA_AWAITING_HUMAN.value_set(attrs[1])]
            )
        workflow.set_current_details(current_details(status))

    @staticmethod
    def _queue(sandboxed: bool) -> str | None:
        """Sandboxed runs go to the sandbox queue; the rest to the workflow's own."""
        if sandboxed and workflow.patched("sandbox-queue"):
            return workflow.info().task_queue + SANDBOX_QUEUE_SUFFIX
        return None

    def _branch(self) -> str:
        return self._ws.branch if self._ws else "(not yet created)"

    @staticmethod
    def _short(sha: str | None) -> str:
        return sha[:10] if sha else "-"

    def _result(
        self, state: str, report_path: str | None = None, pull_request: str | None = None
    ) -> FeatureResult:
        return FeatureResult(
            workflow_id=workflow.info().workflow_id,
            state=state,  # type: ignore[arg-type]
            branch=self._branch(),
            head_commit=self._head or "",
            report_path=report_path,
            pull_request=pull_request,
            # Summaries stay in status; the result keeps the commit list short.
            commits=[r.model_copy(update={"summary": ""}) for r in self._completed],
            test_report=self._test_report,
            validation=self._validation,
            usage=self._usage,
            usage_by_phase=dict(self._usage_by_phase),
            message=self._message,
        )
