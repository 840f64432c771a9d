"""Phase 3: the plan: research, data model, API contract, quickstart."""

from __future__ import annotations

from temporalio import activity

from activities.phases._common import commit_phase, model_phase
from workflows.types import PhaseInput, PhaseOutcome

PLAN_FILES = ("plan.md", "research.md", "data-model.md", "contracts/openapi.yaml", "quickstart.md")


@activity.defn
async def run_phase_plan(inp: PhaseInput) -> PhaseOutcome:
    files = [f"{inp.workspace.feature_dir}/{name}" for name in PLAN_FILES]
    ws, run = await model_phase(
        inp,
        prompt="plan",
        context_docs=("constitution", "spec"),
        required=files,
    )
    return await commit_phase(
        ws,
        inp,
        "plan: research, data model, contract",
        artifacts=files,
        summary=(run.finish or {}).get("summary", ""),
        run=run,
    )
