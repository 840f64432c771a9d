"""Phase 1: the project constitution (``.specify/memory/constitution.md``)."""

from __future__ import annotations

from temporalio import activity

from activities.agent import AgentRun, Finish
from activities.model_phase import ModelPhase, layout_of
from activities.speckit import FeatureLayout
from activities.workspace import Checkout
from contract import PhaseInput, PhaseOutcome

__all__ = ["ConstitutionPhase"]


class ConstitutionPhase(ModelPhase[Finish]):
    phase = "constitution"
    prompt = "constitution"
    reads = ("constitution", "codebase")
    finish = Finish

    def writes(self, layout: FeatureLayout) -> list[str]:
        return [layout.path("constitution")]

    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[Finish]) -> PhaseOutcome:
        return await self.commit(
            ws,
            inp,
            "constitution: project principles",
            summary=run.summary,
            artifacts=self.writes(layout_of(inp)),
            usage=run.usage,
        )

    @activity.defn(name="run_phase_constitution")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        return await self.execute(inp)
