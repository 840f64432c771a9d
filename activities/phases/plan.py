"""Phase 3: the plan: research, data model, API contract, quickstart."""

from __future__ import annotations

from temporalio import activity

from activities.agent import AgentRun, Finish
from activities.model_phase import ModelPhase, layout_of
from activities.speckit import FeatureLayout
from activities.workspace import Checkout
from contract import PhaseInput, PhaseOutcome

__all__ = ["PlanPhase"]


class PlanPhase(ModelPhase[Finish]):
    phase = "plan"
    prompt = "plan"
    reads = ("constitution", "codebase", "spec")
    runs_commands = True
    finish = Finish

    def writes(self, layout: FeatureLayout) -> list[str]:
        names = ("plan", "research", "data-model", "contract", "quickstart")
        return [layout.path(name) for name in names]  # type: ignore[arg-type]

    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[Finish]) -> PhaseOutcome:
        return await self.commit(
            ws,
            inp,
            "plan: research, data model, contract",
            summary=run.summary,
            artifacts=self.writes(layout_of(inp)),
            usage=run.usage,
        )

    @activity.defn(name="run_phase_plan")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        return await self.execute(inp)
