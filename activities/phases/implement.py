"""Phase 5: implement one task of tasks.md with the coding agent.

The workflow calls this once per task, in tasks.md order (``[P]`` tasks side by
side, each in its own worktree). The activity (not the model) checks the task
off, so tasks.md always tells the truth. If the agent escalates, the work so far
is committed and a ``HumanRequest`` of kind escalation, in the fixed escalation
shape, goes back to the workflow; the task runs again with the answer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agent import AgentRun, Finish, Question
from activities.model_phase import ModelPhase, layout_of
from activities.speckit import check_off, find_task, record_clarifications
from activities.tools import Toolbox, test_runner_toolbox
from activities.workspace import Checkout
from contract import HumanRequest, PhaseInput, PhaseOutcome

__all__ = ["ImplementPhase", "Escalation"]


class Escalation(BaseModel):
    """Stop and ask a person when you cannot proceed: the spec is missing a detail,
    contradicts itself, or a decision needs a human. Work done so far is kept."""

    model_config = ConfigDict(extra="forbid")

    blocker_type: Literal["ambiguity", "missing_detail", "contradiction", "undefined_behaviour"]
    context: str = Field(description="What you were doing when you got stuck.")
    spec_says: str = Field(description="What the spec (or plan, or contract) says on the point.")
    problem: str = Field(description="Why you cannot proceed, in one or two sentences.")
    questions: list[Question] = Field(min_length=1, max_length=3)
    impact: str = Field(description="What each answer changes in the code or the contract.")

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


class ImplementPhase(ModelPhase[Finish]):
    phase = "implement"
    prompt = "implement"
    reads = ("constitution", "spec", "plan", "data-model", "tasks")
    finish = Finish
    escalation = Escalation

    def toolbox(self, ws: Checkout, inp: PhaseInput) -> Toolbox:
        return test_runner_toolbox(ws)

    async def prompt_values(self, ws: Checkout, inp: PhaseInput) -> dict[str, Any]:
        tasks_path = layout_of(inp).path("tasks")
        line = find_task(ws.read(tasks_path), inp.task_id or "")
        if line is None:
            raise ApplicationError(
                f"{inp.task_id} is not in {tasks_path}", type="BadInput", non_retryable=True
            )
        return {"task_id": line.id, "task_line": line.text}

    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[Finish]) -> PhaseOutcome:
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
