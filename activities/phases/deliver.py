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
from activities.speckit import parse_tasks
from activities.workspace import Checkout
from activities.workspace.git import git
from contract import DeliveryFacts, PhaseInput, PhaseOutcome

__all__ = ["DeliverPhase", "report_markdown", "phase_commits"]

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


def report_markdown(
    inp: PhaseInput, facts: DeliveryFacts, feature: str, tasks_text: str, commits: list
) -> str:
    tasks = parse_tasks(tasks_text)
    done = sum(t.done for t in tasks)
    t = facts.test_report
    tests = (
        f"- Tests: {t.passed} passed, {t.failed} failed, {t.errors} errors "
        f"({'green' if t.ok else 'NOT green'}) — see `{t.output_path}`"
        if t
        else "- Tests: not run"
    )
    lines = [
        f"# Implementation report: {inp.workspace.branch}",
        "",
        f"**Feature**: {feature}  ",
        f"**Workflow**: `{inp.workflow_id}`  ",
        f"**Branch**: `{inp.workspace.branch}` (from `{inp.workspace.base_commit[:10]}`)  ",
        f"**Model**: `{inp.model}`",
        "",
        "## Outcome",
        "",
        f"- Tasks: {done}/{len(tasks)} done",
        tests,
        f"- Fix rounds: {facts.fix_rounds}",
        f"- Human requests answered: {len(facts.answered_requests)}",
        *([f"- Notes: {facts.notes}"] if facts.notes else []),
        "",
        "## Phases and commits",
        "",
        "| Phase | Task | Commit | Subject |",
        "|---|---|---|---|",
    ]
    for sha, phase, task, subject in commits:
        lines.append(f"| {phase} | {task} | `{sha[:10]}` | {subject.replace('|', '/')} |")
    u = facts.usage
    lines += [
        "",
        "## Model usage",
        "",
        f"- Calls: {u.model_calls} (+{u.replayed_calls} replayed from the run store)",
        f"- Tokens: {u.input_tokens} in, {u.output_tokens} out, "
        f"{u.cache_read_tokens} cache read, {u.cache_write_tokens} cache write",
        f"- Model time: {u.model_seconds:.1f}s; cost: ${u.cost_usd:.4f}",
        "",
        "| Phase | Calls | Input | Output | Cost |",
        "|---|---|---|---|---|",
    ]
    for phase, pu in facts.usage_by_phase.items():
        lines.append(
            f"| {phase} | {pu.model_calls} | {pu.input_tokens} | {pu.output_tokens} | ${pu.cost_usd:.4f} |"
        )
    lines += [
        "",
        "## Artifacts",
        "",
        f"- `{inp.workspace.feature_dir}/`: spec, plan, research, data model, contract, tasks, analysis",
        f"- `{layout_of(inp).prompt_history_dir}/`: prompt history records",
        "",
    ]
    return "\n".join(lines)


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
            report = report_markdown(inp, facts, feature, tasks_text, commits)
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
