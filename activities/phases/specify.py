"""Phase 2: the specification, with clarifying questions for a person.

Markers ``[NEEDS CLARIFICATION: ...]`` in spec.md must match the questions
the model passes to ``finish`` (at most three). When answers come back the
phase runs again with a short prompt (``specify_answers.md``: the answers, with the
draft in the context; the practice is already in the system prompt); this module, not
the model, records them under ``## Clarifications`` so the record never depends on
the model. Requirements carry a strength (``[HARD]``, ``[SOFT]``, ``[INFERRED]``)
that the black-box validator reads (``activities.validation.spec``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from temporalio import activity

from activities.agent import AgentRun, Finish, Question
from activities.model_phase import ModelPhase, layout_of
from activities.speckit import (
    MAX_MARKERS,
    DocumentName,
    FeatureLayout,
    clarification_line,
    clarification_markers,
    record_clarifications,
)
from activities.workspace import Checkout
from contract import HumanRequest, PhaseInput, PhaseOutcome

__all__ = ["SpecifyPhase", "SpecifyFinish"]


class SpecifyFinish(Finish):
    """Call once spec.md is written: a summary, and one question per clarification marker."""

    questions: list[Question] = Field(
        max_length=MAX_MARKERS,
        description="One question per [NEEDS CLARIFICATION] marker, in marker order; [] if none.",
    )


class SpecifyPhase(ModelPhase[SpecifyFinish]):
    phase = "specify"
    prompt = "specify"
    reads = ("constitution", "codebase")
    finish = SpecifyFinish

    def prompt_name(self, inp: PhaseInput) -> str:
        return "specify_answers" if inp.clarifications else "specify"

    def documents(
        self, inp: PhaseInput
    ) -> tuple[tuple[DocumentName, ...], tuple[DocumentName, ...]]:
        if inp.clarifications:  # the draft being clarified
            return (*self.reads, "spec"), self.outlines
        return self.reads, self.outlines

    def writes(self, layout: FeatureLayout) -> list[str]:
        return [layout.path("spec")]

    def check(self, ws: Checkout, layout: FeatureLayout, finish: SpecifyFinish) -> str | None:
        markers = clarification_markers(ws.read(layout.path("spec")))
        if len(markers) > MAX_MARKERS:
            return f"spec.md has {len(markers)} [NEEDS CLARIFICATION] markers; keep at most {MAX_MARKERS}"
        if len(finish.questions) != len(markers):
            return (
                f"spec.md has {len(markers)} markers but finish got {len(finish.questions)} "
                "questions; pass exactly one question per marker"
            )
        return next((p for q in finish.questions if (p := q.problem())), None)

    async def prompt_values(self, ws: Checkout, inp: PhaseInput) -> dict[str, Any]:
        if not inp.clarifications:
            return {}
        return {"answers": "\n".join(clarification_line(q, a) for q, a in inp.clarifications)}

    async def complete(
        self, ws: Checkout, inp: PhaseInput, run: AgentRun[SpecifyFinish]
    ) -> PhaseOutcome:
        assert run.finish is not None
        spec = layout_of(inp).path("spec")
        if inp.clarifications or inp.guidance:
            text = record_clarifications(
                ws.read(spec), inp.clarifications, inp.today or "today", guidance=inp.guidance
            )
            ws.write(spec, text)
        questions = [q.human() for q in run.finish.questions]
        requests = []
        if questions:
            requests.append(
                HumanRequest(
                    id="",
                    kind="clarification",
                    phase="specify",
                    title=f"{len(questions)} clarifying question(s) about the specification",
                    body=f"The draft specification `{spec}` needs your decision on these points.",
                    questions=questions,
                )
            )
        subject = (
            "spec: clarified specification" if inp.clarifications else "spec: feature specification"
        )
        return await self.commit(
            ws,
            inp,
            subject,
            summary=run.summary,
            artifacts=[spec],
            usage=run.usage,
            human_requests=requests,
        )

    @activity.defn(name="run_phase_specify")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        return await self.execute(inp)
