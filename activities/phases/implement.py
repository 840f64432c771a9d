"""Phase 5: implement one task of tasks.md with the coding agent.

The workflow calls this once per task, in tasks.md order. The activity (not
the model) checks the task off, so tasks.md always tells the truth. If the
agent escalates, the work so far is committed and a ``HumanRequest`` of kind
escalation goes back to the workflow; the task runs again with the answer.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.phases._common import check_off, commit_phase, model_phase, parse_tasks
from activities.phases.specify import record_clarifications
from activities.phases.testing import run_project_tests
from activities.tools import Toolbox
from activities.workspace import Workspace, remove_worktree
from workflows.types import HumanQuestion, HumanRequest, PhaseInput, PhaseOutcome


def escalation_request(inp: PhaseInput, args: dict) -> HumanRequest:
    """The fixed escalation shape: blocker, context, spec, problem, questions, impact."""
    body = (
        f"**Blocker**: {args.get('blocker_type', 'ambiguity')}\n\n"
        f"**Context**: {args.get('context', '')}\n\n"
        f"**What the spec says**: {args.get('spec_says', '')}\n\n"
        f"**Problem**: {args.get('problem', '')}\n\n"
        f"**Impact**: {args.get('impact', '')}"
    )
    questions = [HumanQuestion.model_validate(q) for q in args.get("questions") or []]
    return HumanRequest(
        id="",
        kind="escalation",
        phase="implement",
        title=f"{inp.task_id}: {str(args.get('problem', 'the agent needs a decision'))[:80]}",
        body=body,
        questions=questions,
    )


def toolbox_with_tests(ws: Workspace) -> Toolbox:
    async def run_tests(selection: list[str]) -> str:
        report, output = await run_project_tests(ws, selection)
        return output[-12_000:]

    return Toolbox(ws, run_tests=run_tests)


@activity.defn
async def run_phase_implement(inp: PhaseInput) -> PhaseOutcome:
    if not inp.task_id:
        raise ApplicationError("implement needs a task_id", type="BadInput", non_retryable=True)
    tasks_path = f"{inp.workspace.feature_dir}/tasks.md"
    ws0 = Workspace(inp.workspace.repo_path)
    line = next(
        (
            t
            for t in parse_tasks(ws0.git("show", f"{inp.base_commit}:{tasks_path}"))
            if t.id == inp.task_id
        ),
        None,
    )
    if line is None:
        raise ApplicationError(
            f"{inp.task_id} is not in {tasks_path}", type="BadInput", non_retryable=True
        )
    ws, run = await model_phase(
        inp,
        prompt="implement",
        context_docs=("constitution", "spec", "plan", "data-model", "tasks"),
        required=[],
        toolbox_factory=toolbox_with_tests,
        escalate=True,
        task_id=inp.task_id,
        task_line=f"{line.id}{' [P]' if line.parallel else ''}{f' [{line.story}]' if line.story else ''} {line.title}",
    )
    if inp.clarifications:
        spec = f"{inp.workspace.feature_dir}/spec.md"
        ws.write(
            spec, record_clarifications(ws.read(spec), inp.clarifications, inp.today or "today")
        )
    if run.escalation is not None:
        request = escalation_request(inp, run.escalation)
        return await commit_phase(
            ws,
            inp,
            f"{inp.task_id}: work so far (escalated)",
            artifacts=[],
            summary=request.title,
            run=run,
            human_requests=[request],
        )
    if not inp.worktree:  # parallel tasks are checked off as they are merged
        ws.write(tasks_path, check_off(ws.read(tasks_path), inp.task_id))
    summary = (run.finish or {}).get("summary", "")
    outcome = await commit_phase(
        ws,
        inp,
        f"{inp.task_id}: {line.title}",
        artifacts=[*sorted(run.changed), tasks_path],
        summary=summary,
        run=run,
    )
    if inp.worktree:  # the commit lives on in the object store; the merge step picks it up
        await asyncio.to_thread(remove_worktree, inp.workspace.repo_path, ws.root)
    return outcome
