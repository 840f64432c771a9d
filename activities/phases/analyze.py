"""Phase 7: cross-artifact analysis (spec, plan, tasks, code) into analysis.md."""

from __future__ import annotations

from pydantic import Field
from temporalio import activity

from activities.agent import AgentRun, Finish
from activities.model_phase import ModelPhase, layout_of
from activities.speckit import FeatureLayout
from activities.workspace import Checkout
from contract import PhaseInput, PhaseOutcome

__all__ = ["AnalyzePhase", "AnalyzeFinish"]


class AnalyzeFinish(Finish):
    """Call once analysis.md is written, with a summary and the blocking count."""

    blocking_findings: int = Field(
        ge=0, description="CRITICAL and HIGH findings that must be fixed before delivery."
    )


class AnalyzePhase(ModelPhase[AnalyzeFinish]):
    phase = "analyze"
    prompt = "analyze"
    reads = ("constitution", "spec", "plan", "tasks")
    outlines = ("codebase", "data-model", "contract", "research", "quickstart", "test-results")
    runs_tests = True
    runs_commands = True
    finish = AnalyzeFinish

    def writes(self, layout: FeatureLayout) -> list[str]:
        return [layout.path("analysis")]

    async def complete(
        self, ws: Checkout, inp: PhaseInput, run: AgentRun[AnalyzeFinish]
    ) -> PhaseOutcome:
        assert run.finish is not None
        blocking = run.finish.blocking_findings
        return await self.commit(
            ws,
            inp,
            f"analyze: {blocking} blocking finding(s)",
            summary=run.summary,
            artifacts=self.writes(layout_of(inp)),
            usage=run.usage,
            blocking_findings=blocking,
        )

    @activity.defn(name="run_phase_analyze")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        return await self.execute(inp)
