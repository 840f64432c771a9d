"""Phase 8: delivery: the implementation report on the feature branch, and a pull request.

No model: the report is assembled from git (each commit's phase and task
trailers), tasks.md and the workflow's figures, so it cannot misreport what
happened. Once the report is pushed, a pull (merge) request is opened with the
report as its body when the remote is on GitHub or GitLab and the worker has a
token; otherwise the outcome says which command opens one.
"""

from __future__ import annotations

import logging
import os

import httpx
from temporalio import activity

from activities.model_phase import PhaseActivity, layout_of
from activities.pull_requests import PullRequestError, forge_for, how_to_open, open_pull_request
from activities.report import ReportFacts, report_markdown
from activities.workspace import Checkout
from activities.workspace.git import git
from contract import DeliveryFacts, PhaseInput, PhaseOutcome

__all__ = ["DeliverPhase", "phase_commits"]

log = logging.getLogger(__name__)

_SEP = "\x1f"


def scrub(text: str, secret: str) -> str:
    return text.replace(secret, "[token]") if secret else text


async def phase_commits(ws: Checkout, base: str) -> list[tuple[str, str, str, str]]:
    """(sha, phase, task, subject) for every commit since ``base``, oldest first."""
    fmt = _SEP.join(
        [
            "%H",
            "%(trailers:key=Backforge-Phase,valueonly)",
            "%(trailers:key=Backforge-Task,valueonly)",
            "%s",
        ]
    )
    out = await git(ws.root, "log", "--reverse", f"--format={fmt}%x1e", f"{base}..HEAD")
    rows = []
    for record in out.split("\x1e"):
        if record.strip():
            sha, phase, task, subject = (field.strip() for field in record.strip().split(_SEP))
            rows.append((sha, phase, task, subject))
    return rows


async def changed_files(ws: Checkout, base: str) -> list[tuple[str, str]]:
    """(status, path) of every file the feature changed since ``base``."""
    out = await git(ws.root, "diff", "--name-status", "--no-renames", base, "HEAD")
    return [(line[0], line[2:].strip()) for line in out.splitlines() if line.strip()]


def _read(ws: Checkout, rel: str) -> str:
    return ws.read(rel) if ws.exists(rel) else ""


class DeliverPhase(PhaseActivity):
    """Writes the implementation report from git and the workflow's figures."""

    @activity.defn(name="run_phase_deliver")
    async def run(self, inp: PhaseInput, facts: DeliveryFacts) -> PhaseOutcome:
        layout = layout_of(inp)
        async with self.checkout(inp) as ws:
            tasks = layout.path("tasks")
            tasks_text = ws.read(tasks) if ws.exists(tasks) else ""
            path = layout.path("report")
            commits = await phase_commits(ws, inp.workspace.base_commit)
            feature = await self.services.workspaces.feature_text(inp)
            report = report_markdown(
                ReportFacts(
                    branch=inp.workspace.branch,
                    base_commit=inp.workspace.base_commit,
                    feature_dir=inp.workspace.feature_dir,
                    workflow_id=inp.workflow_id,
                    model=inp.model,
                    feature=feature,
                    tasks_text=tasks_text,
                    commits=commits,
                    contract_text=_read(ws, layout.path("contract")),
                    validation_text=_read(ws, layout.path("validation")),
                    changed=await changed_files(ws, inp.workspace.base_commit),
                    prompt_history_dir=layout.prompt_history_dir,
                ),
                facts,
            )
            ws.write(path, report)
            outcome = await self.commit(
                ws,
                inp,
                "deliver: implementation report",
                summary=f"Report at {path}",
                artifacts=[path],
            )
        record = await self.services.workspaces.feature(inp)
        summary = " ".join(feature.split())[:100]
        title = f"{inp.workspace.branch}: {summary}"
        outcome.pull_request = await _pull_request(
            inp, base=record.base_branch, title=title, body=report, report_path=path
        )
        return outcome


async def _pull_request(
    inp: PhaseInput, *, base: str, title: str, body: str, report_path: str
) -> str:
    """The pull request's URL, or the command that opens one (and why none was opened)."""
    forge = forge_for(inp.workspace.repo_path)
    head = inp.workspace.branch
    command = how_to_open(forge, head=head, base=base, title=title, body_file=report_path)
    if forge is None:
        return f"open a pull request: {command}"
    token = os.environ.get(forge.token_env)
    if not token:
        return f"set {forge.token_env} on the worker to open it automatically, or run: {command}"
    try:
        return await open_pull_request(
            forge, head=head, base=base, title=title, body=body, token=token
        )
    except (PullRequestError, httpx.HTTPError) as err:
        detail = scrub(str(err), token)
        log.warning("pull request not opened: %s", detail)
        return f"not opened ({detail}); run: {command}"
