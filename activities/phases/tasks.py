"""Phase 4: tasks.md, parsed into the task list the workflow schedules."""

from __future__ import annotations

from temporalio import activity

from activities.agent import AgentRun, Finish
from activities.model_phase import ModelPhase, layout_of
from activities.speckit import FeatureLayout, parse_tasks
from activities.workspace import Checkout
from contract import PhaseInput, PhaseOutcome

__all__ = ["TasksPhase"]


class TasksPhase(ModelPhase[Finish]):
    phase = "tasks"
    prompt = "tasks"
    reads = ("spec", "plan", "data-model", "codebase")
    outlines = ("constitution", "contract", "research", "quickstart")
    finish = Finish

    def writes(self, layout: FeatureLayout) -> list[str]:
        return [layout.path("tasks")]

    def check(self, ws: Checkout, layout: FeatureLayout, finish: Finish) -> str | None:
        path = layout.path("tasks")
        ids = [t.id for t in parse_tasks(ws.read(path))]
        if not ids:
            return (
                f"{path} has no task lines; use `- [ ] T001 [P] [US1] Description with file path`"
            )
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            return f"{path} repeats task ids {duplicates}; give every task its own id"
        return None

    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[Finish]) -> PhaseOutcome:
        path = layout_of(inp).path("tasks")
        tasks = parse_tasks(ws.read(path))
        return await self.commit(
            ws,
            inp,
            f"tasks: {len(tasks)} tasks",
            summary=run.summary,
            artifacts=[path],
            usage=run.usage,
            tasks=tasks,
        )

    @activity.defn(name="run_phase_tasks")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        return await self.execute(inp)
