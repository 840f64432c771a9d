"""Phase 1: the project constitution (``.specify/memory/constitution.md``)."""

from __future__ import annotations

from temporalio import activity

from activities.phases._common import commit_phase, model_phase
from workflows.types import PhaseInput, PhaseOutcome

CONSTITUTION = ".specify/memory/constitution.md"


@activity.defn
async def run_phase_constitution(inp: PhaseInput) -> PhaseOutcome:
    ws, run = await model_phase(
        inp,
        prompt="constitution",
        context_docs=("constitution",),
        required=[CONSTITUTION],
    )
    summary = (run.finish or {}).get("summary", "")
    return await commit_phase(
        ws,
        inp,
        "constitution: project principles",
        artifacts=[CONSTITUTION],
        summary=summary,
        run=run,
    )
