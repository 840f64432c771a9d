"""The fix step: repair failing tests, validation findings, blocking analysis findings,
or what a reviewer asked.

The workflow says why it runs (``fix_reason``) and which committed documents hold the
evidence (``evidence_paths``); each reason has its own prompt (``fix_<reason>.md``).
The evidence goes in the message (head and tail when long); the feature's documents
are in the context as outlines, read through the tools as needed.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities import prompts
from activities.agent import AgentRun, Finish
from activities.model_phase import ModelPhase
from activities.workspace import Checkout
from contract import FixReason, PhaseInput, PhaseOutcome

__all__ = ["FixPhase"]

#: The commit subject of each reason (``invocation`` counts fix runs of every reason, so
#: it is not a round number of one of them and stays out of the subject).
_SUBJECTS: dict[FixReason, str] = {
    "tests": "failing tests",
    "validation": "validation findings",
    "analysis": "analysis findings",
    "review": "review comments",
}

EVIDENCE_CHARS = 12_000
_HEAD_CHARS = 2_000


class FixPhase(ModelPhase[Finish]):
    phase = "fix"
    prompt = "fix"
    reads = ()
    outlines = ("constitution", "codebase", "spec", "plan", "data-model", "contract", "tasks")
    finish = Finish
    runs_tests = True
    runs_commands = True

    async def prompt_values(self, ws: Checkout, inp: PhaseInput) -> dict[str, Any]:
        evidence = []
        for rel in inp.evidence_paths:
            text = ws.read(rel) if ws.exists(rel) else f"({rel} is missing)"
            if len(text) > EVIDENCE_CHARS:
                head, tail = text[:_HEAD_CHARS], text[-(EVIDENCE_CHARS - _HEAD_CHARS) :]
                text = head + "\n...\n" + tail
            evidence.append(prompts.render("document", path=rel, content=text))
        reason = prompts.render(f"fix_{inp.fix_reason or 'tests'}", round=inp.invocation)
        return {"reason": reason.strip(), "evidence": "\n\n".join(evidence)}

    async def complete(self, ws: Checkout, inp: PhaseInput, run: AgentRun[Finish]) -> PhaseOutcome:
        return await self.commit(
            ws,
            inp,
            f"fix: {_SUBJECTS[inp.fix_reason or 'tests']}",
            summary=run.summary,
            artifacts=sorted(run.changed),
            usage=run.usage,
        )

    @activity.defn(name="run_phase_fix")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        return await self.execute(inp)
