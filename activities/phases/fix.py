"""The fix step: repair failing tests or blocking analysis findings."""

from __future__ import annotations

from temporalio import activity

from activities.phases._common import commit_phase, model_phase
from activities.phases.implement import toolbox_with_tests
from activities.workspace import Workspace
from workflows.types import PhaseInput, PhaseOutcome

EVIDENCE_CHARS = 12_000


@activity.defn
async def run_phase_fix(inp: PhaseInput) -> PhaseOutcome:
    ws0 = Workspace(inp.workspace.repo_path)
    evidence = []
    for rel in inp.context_paths:
        text = ws0.git("show", f"{inp.base_commit}:{rel}", check=False)
        if len(text) > EVIDENCE_CHARS:
            text = text[:2000] + "\n...\n" + text[-(EVIDENCE_CHARS - 2000) :]
        evidence.append(f'<document path="{rel}">\n{text}\n</document>')
    from_analysis = any(p.endswith("analysis.md") for p in inp.context_paths)
    reason = (
        "The analysis found blocking (CRITICAL/HIGH) findings; resolve them."
        if from_analysis
        else f"The project's tests fail (fix round {inp.invocation})."
    )
    ws, run = await model_phase(
        inp,
        prompt="fix",
        context_docs=("constitution", "spec", "plan", "data-model"),
        required=[],
        toolbox_factory=toolbox_with_tests,
        reason=reason,
        evidence="\n\n".join(evidence),
    )
    summary = (run.finish or {}).get("summary", "")
    return await commit_phase(
        ws,
        inp,
        f"fix: round {inp.invocation}",
        artifacts=sorted(run.changed),
        summary=summary,
        run=run,
    )
