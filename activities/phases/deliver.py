"""Phase 8: delivery: the implementation report, committed on the feature branch.

No model: the report is assembled from git (each commit's phase and task
trailers), tasks.md and the workflow's figures, so it cannot misreport what
happened.
"""

from __future__ import annotations

from temporalio import activity

from activities.model_phase import PhaseActivity, layout_of
from activities.speckit import parse_tasks
from activities.workspace import Checkout
from activities.workspace.git import git
from contract import DeliveryFacts, PhaseInput, PhaseOutcome

__all__ = ["DeliverPhase", "report_markdown", "phase_commits"]

_SEP = "\x1f"


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
            ws.write(path, report_markdown(inp, facts, feature, tasks_text, commits))
            return await self.commit(
                ws,
                inp,
                "deliver: implementation report",
                summary=f"Report at {path}",
                artifacts=[path],
            )
