"""The implementation report: outcome, evidence, rollout and rollback, confidence.

Everything in it comes from facts (git, tasks.md, the contract, validation.md and
the workflow's figures), never from a model, so it cannot claim more than happened:
the confidence statement names what was verified and what was not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from activities.speckit import parse_tasks
from activities.yaml_text import YAMLError, load_yaml
from contract import DeliveryFacts

__all__ = ["ReportFacts", "report_markdown", "operations", "confidence"]

_METHODS = ("get", "post", "put", "patch", "delete")
_MIGRATIONS = re.compile(r"(^|/)(migrations|alembic)/|\.sql$")


@dataclass(frozen=True)
class ReportFacts:
    """What the report is made of, read from the branch."""

    branch: str
    base_commit: str
    feature_dir: str
    workflow_id: str
    model: str
    feature: str
    tasks_text: str
    #: (sha, phase, task, subject), oldest first.
    commits: list[tuple[str, str, str, str]]
    contract_text: str = ""
    validation_text: str = ""
    #: (git status letter, path) of the files the feature changed.
    changed: list[tuple[str, str]] = field(default_factory=list)
    prompt_history_dir: str = ""


def operations(contract_text: str) -> list[str]:
    """``METHOD /path`` of every operation the contract declares."""
    try:
        raw = load_yaml(contract_text) or {}
    except YAMLError:
        return []
    paths = raw.get("paths") if isinstance(raw, dict) else None
    if not isinstance(paths, dict):
        return []
    return [
        f"{method.upper()} {path}"
        for path, item in paths.items()
        if isinstance(item, dict)
        for method in _METHODS
        if method in item
    ]


def _section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` in ``markdown`` (up to the next ``## ``)."""
    m = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    return m.group(1).strip() if m else ""


def confidence(facts: ReportFacts, delivery: DeliveryFacts) -> list[str]:
    """What was verified and what was not, from the evidence alone."""
    lines: list[str] = []
    t = delivery.test_report
    if t is None:
        lines.append("- Tests: **not run**.")
    else:
        verdict = "green" if t.ok else "NOT green"
        problems = f" Problems: {'; '.join(t.problems)}." if t.problems else ""
        lines.append(
            f"- Tests: {t.passed} passed, {t.failed} failed, {t.errors} errors ({verdict}), "
            f"counted by Backforge from each test's own record, not from the project's "
            f"summary line.{problems} These are the tests the model wrote."
        )
    v = delivery.validation
    if v is None:
        lines.append("- Black-box validation: **not run**.")
    elif v.operations_total == 0:
        lines.append(
            "- Black-box validation: not applicable (the contract declares no operations)."
        )
    else:
        state = "passed" if v.passed else f"**{v.blocking} blocking finding(s) accepted**"
        lines.append(
            f"- Black-box validation: {state}; {v.operations_checked} of {v.operations_total} "
            f"contract operations exercised over HTTP from outside the service; "
            f"{v.findings} finding(s) in all (see `{v.report_path}`)."
        )
        said = _section(facts.validation_text, "Confidence")
        if said:
            lines.append(f"- The validator's own statement: {' '.join(said.split())}")
        not_verified = _section(facts.validation_text, "What was not verified")
        if not_verified:
            lines.append("- Not verified: " + " ".join(not_verified.split()))
        if v.inferred:
            lines.append(
                f"- Requirements the model inferred and no person confirmed: {', '.join(v.inferred)}."
            )
    return lines


def rollout(facts: ReportFacts, delivery: DeliveryFacts) -> list[str]:
    """The rollout and rollback plan, from what the branch changes."""
    ops = operations(facts.contract_text)
    migrations = [p for _, p in facts.changed if _MIGRATIONS.search(p)]
    added = [p for s, p in facts.changed if s == "A" and not p.startswith(("specs/", "history/"))]
    lines = [
        "### Rollout",
        "",
        f"1. Review and merge `{facts.branch}` through its pull request (one commit per phase "
        "and task, each with `Backforge-*` trailers naming the step that made it).",
    ]
    if ops:
        shown = ", ".join(f"`{o}`" for o in ops[:12]) + (" …" if len(ops) > 12 else "")
        lines.append(
            f"2. Release behind a route toggle: mount the feature's router only when its flag "
            f"is on, so these operations can be switched off without a deploy: {shown}."
        )
    else:
        lines.append("2. The contract declares no HTTP operations: ship with the next release.")
    lines.append(
        f"3. Deploy to a canary first. {len(added)} new source file(s); "
        + (
            f"schema migrations in this change: {', '.join(f'`{m}`' for m in migrations)} — apply "
            "them before the code and keep them backward compatible."
            if migrations
            else "no schema migrations in this change."
        )
    )
    lines += [
        "",
        "### What to watch",
        "",
        "- 5xx rate and p95 latency of the new operations against the spec's targets "
        f"({'see the performance section of `' + delivery.validation.report_path + '`' if delivery.validation and delivery.validation.report_path else 'no targets were measured'}).",
        "- 401/403/404 rates (authorization changes show up there first).",
        "",
        "### Rollback",
        "",
        "- Switch the route toggle off (no deploy), then revert the merge commit "
        "(`git revert -m 1 <merge commit>`) and redeploy.",
        "- Migrations: "
        + (
            "run their downgrade after the code is rolled back."
            if migrations
            else "none to reverse."
        ),
    ]
    return lines


def report_markdown(facts: ReportFacts, delivery: DeliveryFacts) -> str:
    tasks = parse_tasks(facts.tasks_text)
    done = sum(t.done for t in tasks)
    t = delivery.test_report
    tests = (
        f"- Tests: {t.passed} passed, {t.failed} failed, {t.errors} errors "
        f"({'green' if t.ok else 'NOT green'}) — see `{t.output_path}`"
        if t
        else "- Tests: not run"
    )
    v = delivery.validation
    validation = (
        f"- Validation: {'passed' if v.passed else f'{v.blocking} blocking finding(s)'}, "
        f"{v.findings} finding(s) — see `{v.report_path}`"
        if v
        else "- Validation: not run"
    )
    lines = [
        f"# Implementation report: {facts.branch}",
        "",
        f"**Feature**: {facts.feature}  ",
        f"**Workflow**: `{facts.workflow_id}`  ",
        f"**Branch**: `{facts.branch}` (from `{facts.base_commit[:10]}`)  ",
        f"**Model**: `{facts.model}`",
        "",
        "## Outcome",
        "",
        f"- Tasks: {done} of {len(tasks)} done",
        tests,
        validation,
        f"- Fix rounds: {delivery.fix_rounds}",
        f"- Human requests answered: {len(delivery.answered_requests)}",
        *[f"- Gate: {d}" for d in delivery.gate_decisions],
        *([f"- Notes: {delivery.notes}"] if delivery.notes else []),
        "",
        "## Confidence",
        "",
        *confidence(facts, delivery),
        "",
        "## Rollout and rollback",
        "",
        *rollout(facts, delivery),
        "",
        "## Phases and commits",
        "",
        "| Phase | Task | Commit | Subject |",
        "|---|---|---|---|",
    ]
    for sha, phase, task, subject in facts.commits:
        lines.append(f"| {phase} | {task} | `{sha[:10]}` | {subject.replace('|', '/')} |")
    u = delivery.usage
    lines += [
        "",
        "## Model usage",
        "",
        f"- Calls: {u.model_calls} paid (+{u.replayed_calls} replayed from the run store; "
        f"{u.lost_calls} lost with a worker and counted as paid)",
        f"- Tokens: {u.input_tokens} in, {u.output_tokens} out, "
        f"{u.cache_read_tokens} cache read, {u.cache_write_tokens} cache write",
        f"- Model time: {u.model_seconds:.1f}s; cost: ${u.cost_usd:.4f}",
        "",
        "| Phase | Calls | Input | Output | Cost |",
        "|---|---|---|---|---|",
    ]
    for phase, pu in delivery.usage_by_phase.items():
        lines.append(
            f"| {phase} | {pu.model_calls} | {pu.input_tokens} | {pu.output_tokens} | ${pu.cost_usd:.4f} |"
        )
    lines += [
        "",
        "## Artifacts",
        "",
        f"- `{facts.feature_dir}/`: spec, plan, research, data model, contract, tasks, "
        "test results, validation, analysis",
        f"- `{facts.prompt_history_dir}/`: prompt history records",
        "",
    ]
    return "\n".join(lines)
