"""Phase 2: the specification, with clarifying questions for a person.

Markers ``[NEEDS CLARIFICATION: ...]`` in spec.md must match the questions
the model passes to ``finish`` (at most three). When answers come back the
phase runs again; this module, not the model, records them under
``## Clarifications`` so the record never depends on the model.
"""

from __future__ import annotations

import re

from temporalio import activity

from activities.phases._common import commit_phase, model_phase
from activities.tools import QUESTION_SCHEMA
from activities.workspace import Workspace
from workflows.types import HumanQuestion, HumanRequest, PhaseInput, PhaseOutcome

MARKER = re.compile(r"\[NEEDS CLARIFICATION:\s*([^\]]+)\]")
MAX_MARKERS = 3


def _clarifications_text(inp: PhaseInput) -> str:
    if not inp.clarifications:
        return ""
    answers = "\n".join(f"- Q: {q} → A: {a}" for q, a in inp.clarifications)
    return (
        "\n\nThe requester answered these clarifying questions. Update the spec so each "
        "answer is reflected in the requirements and no marker it resolves remains "
        "(the pipeline records the answers under `## Clarifications` itself):\n\n" + answers + "\n"
    )


def record_clarifications(text: str, answers: list[tuple[str, str]], day: str) -> str:
    """Add ``## Clarifications`` / ``### Session <day>`` bullets not already present."""
    existing = set(text.splitlines())
    pairs = dict.fromkeys(f"- Q: {q} → A: {a}" for q, a in answers)
    new = [line for line in pairs if line not in existing]
    if not new:
        return text
    session = f"### Session {day}"
    if "## Clarifications" not in text:
        # Spec Kit puts the section right after the header block, before the scenarios.
        anchor = text.find("\n## ")
        block = f"\n## Clarifications\n\n{session}\n\n" + "\n".join(new) + "\n"
        return text + block if anchor < 0 else text[:anchor] + "\n" + block + text[anchor:]
    start = text.index("## Clarifications")
    end = text.find("\n## ", start + 1)
    end = len(text) if end < 0 else end
    section = text[start:end].rstrip("\n")
    section += ("\n" if session in section else f"\n\n{session}\n\n") + "\n".join(new)
    return text[:start] + section + "\n" + text[end:]


def _check(ws: Workspace, args: dict, spec: str) -> str | None:
    markers = MARKER.findall(ws.read(spec))
    questions = args.get("questions") or []
    if len(markers) > MAX_MARKERS:
        return (
            f"spec.md has {len(markers)} [NEEDS CLARIFICATION] markers; keep at most {MAX_MARKERS}"
        )
    if len(questions) != len(markers):
        return (
            f"spec.md has {len(markers)} markers but finish got {len(questions)} questions; "
            "pass exactly one question per marker"
        )
    for q in questions:
        keys = [o.get("key") for o in q.get("options") or []]
        if len(keys) < 2:
            return f"question {q.get('id')} needs at least two options"
        if q.get("recommended") not in keys:
            return f"question {q.get('id')}: recommended must be one of {keys}"
    return None


@activity.defn
async def run_phase_specify(inp: PhaseInput) -> PhaseOutcome:
    spec = f"{inp.workspace.feature_dir}/spec.md"
    ws, run = await model_phase(
        inp,
        prompt="specify",
        context_docs=("constitution",),
        required=[spec],
        finish_extra={"questions": {"type": "array", "items": QUESTION_SCHEMA}},
        finish_required=["questions"],
        check=lambda w, args: _check(w, args, spec),
        clarifications=_clarifications_text(inp),
    )
    if inp.clarifications:
        ws.write(
            spec, record_clarifications(ws.read(spec), inp.clarifications, inp.today or "today")
        )
    finish = run.finish or {}
    questions = [HumanQuestion.model_validate(q) for q in finish.get("questions") or []]
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
    return await commit_phase(
        ws,
        inp,
        subject,
        artifacts=[spec],
        summary=finish.get("summary", ""),
        run=run,
        human_requests=requests,
    )
