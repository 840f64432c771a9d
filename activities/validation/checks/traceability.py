"""Traceability: every requirement of spec.md is exercised by a project test or a check.

A project test traces a requirement when a test file (``tests/``, ``test_*.py``,
``conftest.py``) mentions its id (ranges such as ``FR-001 to FR-010`` count). A
check traces it when it exercised an operation whose contract entry names the
requirement, when a check category the requirement is tied to ran (see
``RunContext.category_requirements``), or when the load measured the SLA it
states. A requirement traced by neither is a finding: medium for HARD, low for
SOFT, informational for INFERRED.
"""

from __future__ import annotations

from pathlib import Path

from activities.validation.checks.static_rules import is_test_file, iter_python_files
from activities.validation.context import RunContext
from activities.validation.models import Evidence, Finding, Severity, Strength
from activities.validation.spec import expand_requirement_refs

__all__ = ["run_traceability", "requirement_mentions"]

_SEVERITY = {
    Strength.HARD: Severity.MEDIUM,
    Strength.SOFT: Severity.LOW,
    Strength.INFERRED: Severity.INFO,
}


def requirement_mentions(source_dir: Path | None) -> dict[str, list[str]]:
    """Requirement id -> project test files that mention it."""
    mentions: dict[str, list[str]] = {}
    if source_dir is None or not source_dir.is_dir():
        return mentions
    for path in iter_python_files(source_dir):
        relative = path.relative_to(source_dir)
        if not is_test_file(relative):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for ref in expand_requirement_refs(text):
            mentions.setdefault(ref, []).append(str(relative))
    return mentions


def run_traceability(
    ctx: RunContext, source_dir: Path | None, *, load_ran: bool, spec_location: str
) -> None:
    """Link each requirement to tests and checks; report the ones nothing exercises."""
    run = ctx.run_record("traceability")
    if not ctx.spec.requirements:
        run.ran = False
        run.note = "spec.md is missing or states no FR-### requirement"
        return
    mentions = requirement_mentions(source_dir)
    exercised = {label for record in ctx.checks for label in record.operations}
    ran = {record.category for record in ctx.checks if record.ran}
    by_check: dict[str, list[str]] = {}
    for operation in ctx.contract.operations:
        if operation.label in exercised:
            for ref in operation.requirements:
                by_check.setdefault(ref, []).append(f"checks on {operation.label}")
    labels = {
        "authentication": "authentication probes",
        "authorization": "authorization probes",
        "contract": "error responses checked against the contract",
        "static": "static review",
    }
    for category, label in labels.items():
        if category in ran:
            for ref in ctx.category_requirements(category):
                by_check.setdefault(ref, []).append(label)
    if load_ran:
        for sla in ctx.spec.slas:
            if sla.requirement:
                by_check.setdefault(sla.requirement, []).append("load measurement")
    for requirement in ctx.spec.requirements:
        traced = [f"test {f}" for f in mentions.get(requirement.id, [])[:3]]
        traced += list(dict.fromkeys(by_check.get(requirement.id, [])))[:3]
        requirement.traced_by = traced
        if traced or not requirement.id.startswith(("FR-", "NFR-")):
            continue
        ctx.add(
            Finding(
                check="traceability.untraced_requirement",
                category="traceability",
                severity=_SEVERITY[requirement.strength],
                title=f"{requirement.id} is exercised by no project test and no check",
                detail=requirement.text[:300],
                location=spec_location,
                evidence=[Evidence(location=spec_location, snippet=requirement.text[:200])],
                requirements=[requirement.id],
            )
        )
    run.probes.append(f"{len(ctx.spec.requirements)} requirements against project tests and checks")
