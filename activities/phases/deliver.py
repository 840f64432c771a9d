"""Phase 8: delivery: the implementation report, committed on the feature branch.

No model: the report is assembled from git (each commit's phase and task
trailers), tasks.md and the workflow's figures, so it cannot misreport what
happened.
"""

from __future__ import annotations

from temporalio import activity

from activities.phases._common import commit_phase, open_workspace, parse_tasks
from activities.workspace import Workspace, feature_text
from workflows.types import DeliveryFacts, PhaseInput, PhaseOutcome

_SEP = "\x1f"


def phase_commits(ws: Workspace, base: str) -> list[tuple[str, str, str, str]]:
    """(sha, phase, task, subject) for every commit since ``base``, oldest first."""
    fmt = _SEP.join(
        [
            "%H",
            "%(trailers:key=Backforge-Phase,valueonly)",
            "%(trailers:key=Backforge-Task,valueonly)",
            "%s",
        ]
    )
    out = ws.git("log", "--reverse", f"--format={fmt}%x1e", f"{base}..HEAD")
    rows = []
    for record in out.split("\x1e"):
        if record.strip():
            sha, phase, task, subject = (field.strip() for field in record.strip().split(_SEP))
            rows.append((sha, phase, task, subject))
    return rows


def report_markdown(inp: PhaseInput, facts: DeliveryFacts, tasks_text: str, commits: list) -> str:
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
        f"**Feature**: {feature_text(inp.workspace.repo_path, inp.workflow_id)}  ",
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
        f"- `history/prompts/{inp.workspace.branch}/`: prompt history records",
        "",
    ]
    return "\n".join(lines)


@activity.defn
async def run_phase_deliver(inp: PhaseInput, facts: DeliveryFacts) -> PhaseOutcome:
    ws = await open_workspace(inp)
    fd = inp.workspace.feature_dir
    tasks_text = ws.read(f"{fd}/tasks.md") if ws.exists(f"{fd}/tasks.md") else ""
    path = f"{fd}/report.md"
    commits = phase_commits(ws, inp.workspace.base_commit)
    ws.write(path, report_markdown(inp, facts, tasks_text, commits))
    return await commit_phase(
        ws, inp, "deliver: implementation report", artifacts=[path], summary=f"Report at {path}"
    )
