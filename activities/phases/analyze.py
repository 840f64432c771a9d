"""Phase 7: cross-artifact analysis (spec, plan, tasks, code) into analysis.md."""

from __future__ import annotations

from temporalio import activity

from activities.phases._common import commit_phase, model_phase
from workflows.types import PhaseInput, PhaseOutcome


@activity.defn
async def run_phase_analyze(inp: PhaseInput) -> PhaseOutcome:
    path = f"{inp.workspace.feature_dir}/analysis.md"
    ws, run = await model_phase(
        inp,
        prompt="analyze",
        context_docs=("constitution", "spec", "plan", "tasks"),
        required=[path],
        finish_extra={"blocking_findings": {"type": "integer", "minimum": 0}},
        finish_required=["blocking_findings"],
    )
    finish = run.finish or {}
    blocking = int(finish.get("blocking_findings") or 0)
    return await commit_phase(
        ws,
        inp,
        f"analyze: {blocking} blocking finding(s)",
        artifacts=[path],
        summary=finish.get("summary", ""),
        run=run,
        blocking_findings=blocking,
    )
