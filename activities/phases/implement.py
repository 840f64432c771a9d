"""Phase 5: implement one task of tasks.md with the coding agent.

The workflow calls this once per task, in tasks.md order (``[P]`` tasks side by
side, each in its own worktree). The model reads the whole task line and the parts of
the documents it cites (``activities.task_brief``); the context is the same for every
task (the plan's source tree, where files go, and outlines with line numbers of the
documents it reads through the tools, the plan's Technical Context among them), so
providers serve it from cache. ``finish`` is accepted only with
evidence (``activities.evidence``): the files the task names changed and the tests it
concerns ran. The activity (not the model) checks the task off, so tasks.md always
tells the truth. If the agent escalates, the work so far is committed and a
``HumanRequest`` of kind escalation, in the fixed escalation shape, goes back to the
workflow; the task runs again with the answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import prompts
from activities.agent import AgentRun, Question, Review
from activities.documents import headings, section
from activities.evidence import ImplementFinish, TaskScope, review_task, task_scope
from activities.heartbeat import keep_alive
from activities.model_phase import ModelPhase, layout_of
from activities.project_tests import TestRun, run_project_tests
from activities.speckit import FeatureLayout, check_off, find_task, record_clarifications
from activities.task_brief import task_brief
from activities.workspace import Checkout
from activities.workspace.git import GitError, run_git
from contract import HumanRequest, PhaseInput, PhaseOutcome

__all__ = ["ImplementPhase", "Escalation", "changed_files"]

#: Every task gets the plan's source tree, where files go (the same for all tasks: part
#: of the cached context); its reasons for the layout are left out.
_PLAN_TREE = "Project Structure"
_PLAN_TREE_CHARS = 3_000
_STRUCTURE_DECISION = re.compile(r"^\*\*Structure Decision\*\*:.*?(?=\n\s*\n|\Z)", re.M | re.S)
#: Sections of plan.md named with their lines, read through the tools: the Technical
#: Context summarises what the environment block (Python, installed packages, tests),
#: the source tree, the data model and research.md state in full.
_PLAN_POINTERS = ("Technical Context",)


async def changed_files(root: Path, paths: list[str]) -> set[str]:
    """Those of ``paths`` (files or folders) that differ from the checkout's commit: changed
    or deleted tracked files and new files that are not ignored (one ``git status``)."""
    args = ("status", "--porcelain", "-z", "--untracked-files=all", "--no-renames")
    done = await run_git(root, *args, "--", *paths)
    if done.returncode != 0:
        raise GitError(args, done.returncode, done.stderr)
    # "XY path" entries, NUL-terminated; not stripped, as X may be a space.
    return {entry[3:] for entry in done.stdout.split("\0") if len(entry) > 3}


class Escalation(BaseModel):
    """Ask a person to decide what the documents leave open; work so far is kept."""

    model_config = ConfigDict(extra="forbid")

    blocker_type: Literal["ambiguity", "missing_detail", "contradiction", "undefined_behaviour"]
    context: str = Field(description="What you were doing.")
    spec_says: str = Field(description="What the documents say on it.")
    problem: str = Field(description="Why you cannot proceed (one or two sentences).")
    questions: list[Question] = Field(min_length=1, max_length=3)
    impact: str = Field(description="What each answer changes.")

    def request(self, task_id: str) -> HumanRequest:
        body = (
            f"**Blocker**: {self.blocker_type}\n\n"
            f"**Context**: {self.context}\n\n"
            f"**What the spec says**: {self.spec_says}\n\n"
            f"**Problem**: {self.problem}\n\n"
            f"**Impact**: {self.impact}"
        )
        problem = " ".join(self.problem.split())
        if len(problem) > 80:
            problem = problem[:79].rsplit(" ", 1)[0] + "…"
        return HumanRequest(
            id="",
            kind="escalation",
            phase="implement",
            title=f"{task_id}: {problem}",
            body=body,
            questions=[q.human() for q in self.questions],
        )


class ImplementPhase(ModelPhase[ImplementFinish]):
    phase = "implement"
    prompt = "implement"
    reads = ()
    outlines = ("codebase", "spec", "data-model")
    # The constitution's path is in the environment block, the plan's on its excerpt,
    # tasks.md's in the role: listed here are the others.
    listed = ("research", "contract", "quickstart")
    finish = ImplementFinish
    escalation = Escalation
    runs_tests = True
    runs_commands = True

    def _scope(self, ws: Checkout, inp: PhaseInput) -> tuple[TaskScope, str]:
        layout = layout_of(inp)
        tasks_path = layout.path("tasks")
        text = ws.read(tasks_path) if ws.exists(tasks_path) else ""
        scope = task_scope(text, inp.task_id or "", feature_dir=layout.feature_dir)
        if scope is None:
            raise ApplicationError(
                f"{inp.task_id} is not in {tasks_path}", type="BadInput", non_retryable=True
            )
        return scope, text

    def context(self, ws: Checkout, inp: PhaseInput, layout: FeatureLayout) -> str:
        plan_path = layout.path("plan")
        plan_block = ""
        if ws.exists(plan_path):
            plan = ws.read(plan_path)
            tree = section(plan, _PLAN_TREE)
            if tree:  # the source tree, not the documentation tree
                tree = _STRUCTURE_DECISION.sub("", section(tree, "Source Code") or tree).strip()
                if len(tree) > _PLAN_TREE_CHARS:
                    tree = tree[:_PLAN_TREE_CHARS].rsplit("\n", 1)[0] + "\n..."
            pointers = ""
            for title in _PLAN_POINTERS:
                at = next((h.line for h in headings(plan) if h.title.startswith(title)), None)
                pointers += f"; {title} at L{at}" if at else ""
            plan_block = prompts.render(
                "document",
                path=f"{plan_path} (excerpt{pointers})",
                content=tree or f"(no {_PLAN_TREE} section; {len(plan.splitlines())} lines)",
            )
        rest = super().context(ws, inp, layout)
        return "\n\n".join(p.strip() for p in (plan_block, rest) if p)

    async def prompt_values(self, ws: Checkout, inp: PhaseInput) -> dict[str, Any]:
        scope, text = self._scope(ws, inp)
        tests = ", ".join(scope.concerned)
        if scope.test_first:
            later = ", ".join(scope.implemented_by) or "a later task"
            kind = prompts.render("implement_test_first", tests=tests, implemented_by=later)
        elif scope.concerned:
            kind = prompts.render("implement_code", tests=tests)
        else:
            kind = prompts.render("implement_no_tests")
        brief = task_brief(ws, layout_of(inp), scope, text, parallel=inp.worktree)
        return {
            "task_id": scope.line.id,
            "task_line": scope.line.text,
            "kind": kind.strip(),
            "brief": brief,
        }

    async def review(self, ws: Checkout, inp: PhaseInput, finish: ImplementFinish) -> Review:
        scope, text = self._scope(ws, inp)

        async def changed(paths: list[str]) -> set[str]:
            return await changed_files(ws.root, paths)

        async def run_tests(selection: list[str]) -> TestRun:
            async with keep_alive(f"{inp.run_key}: evidence"):
                return await run_project_tests(ws.root, selection)

        return await review_task(
            ws, scope, finish, tasks_text=text, changed=changed, run_tests=run_tests
        )

    async def complete(
        self, ws: Checkout, inp: PhaseInput, run: AgentRun[ImplementFinish]
    ) -> PhaseOutcome:
        layout = layout_of(inp)
        task_id = inp.task_id or ""
        if inp.clarifications:
            spec = layout.path("spec")
            text = record_clarifications(ws.read(spec), inp.clarifications, inp.today or "today")
            ws.write(spec, text)
        if isinstance(run.escalation, Escalation):
            request = run.escalation.request(task_id)
            return await self.commit(
                ws,
                inp,
                f"{task_id}: work so far (escalated)",
                summary=request.title,
                usage=run.usage,
                human_requests=[request],
            )
        tasks_path = layout.path("tasks")
        line = find_task(ws.read(tasks_path), task_id)
        if not inp.worktree:  # parallel tasks are checked off as they are merged
            ws.write(tasks_path, check_off(ws.read(tasks_path), task_id))
        return await self.commit(
            ws,
            inp,
            f"{task_id}: {line.description if line else ''}",
            summary=run.summary,
            artifacts=[*sorted(run.changed), tasks_path],
            usage=run.usage,
        )

    @activity.defn(name="run_phase_implement")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        if not inp.task_id:
            raise ApplicationError("implement needs a task_id", type="BadInput", non_retryable=True)
        return await self.execute(inp)
