"""The specify phase: answers and a reviewer's guidance are recorded in spec.md by
Backforge, not left to the model, and a rework keeps every earlier answer."""

from __future__ import annotations

from pathlib import Path

from activities.phases.constitution import ConstitutionPhase
from activities.phases.specify import SpecifyPhase
from activities.services import Services
from activities.workspace import Workspaces
from contract import DEFAULT_MODEL
from tests.support.git import git
from tests.support.repos import phase_input, request, user_repo

ANSWERS = [("Duplicate URLs per user?", "Reject with 409"), ("Tags case sensitive?", "No")]


async def test_a_spec_sent_back_records_the_comment_and_keeps_the_answers(tmp_path: Path) -> None:
    repo = user_repo(tmp_path / "repo")
    services = Services(workspaces=Workspaces(tmp_path / "scratch"))
    info = await services.workspaces.prepare(request(repo), "wf-specify")
    head = info.base_commit

    def inp(phase: str, invocation: int, **kw: object):  # type: ignore[no-untyped-def]
        return phase_input(
            info, head, phase=phase, invocation=invocation, model=DEFAULT_MODEL,
            workflow_id="wf-specify", today="2026-11-30", **kw,
        )  # fmt: skip

    head = (await ConstitutionPhase(services).run(inp("constitution", 1))).commit
    head = (await SpecifyPhase(services).run(inp("specify", 1))).commit
    head = (await SpecifyPhase(services).run(inp("specify", 2, clarifications=ANSWERS))).commit
    comment = "Also say what happens\nwhen a tag is deleted."
    rework = await SpecifyPhase(services).run(
        inp("specify", 3, clarifications=ANSWERS, guidance=comment)
    )
    spec = git(repo, "show", f"{rework.commit}:{info.feature_dir}/spec.md")
    section = spec[spec.index("## Clarifications") :]
    assert "- Q: Duplicate URLs per user? → A: Reject with 409" in section
    assert "- Q: Tags case sensitive? → A: No" in section
    assert "- Reviewer guidance: Also say what happens when a tag is deleted." in section
    assert spec.count("Duplicate URLs per user? → A:") == 1  # recorded once, not per rework
