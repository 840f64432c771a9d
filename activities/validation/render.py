"""``validation.md``: the report as a person reads it.

Sections: verdict, confidence, a findings table, each finding with its
reproducible requests, what was verified (operations, probes, load, tools), what
was not, and the requirements with their strength and what traces them.
"""

from __future__ import annotations

from activities.validation.models import Finding, Strength, ValidationReport

__all__ = ["render_markdown"]

_MAX_DETAILED = 40


def _cell(text: str | None, limit: int = 80) -> str:
    value = (text or "").replace("|", "\\|").replace("\n", " ").strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return fence


def _finding_section(finding: Finding) -> list[str]:
    lines = [
        f"### {finding.id} {finding.title}",
        "",
        f"- Check: `{finding.check}` · severity **{finding.severity.value}** · "
        f"strength {finding.strength.value} · blocks: **{'yes' if finding.blocking else 'no'}**",
    ]
    if finding.endpoint:
        lines.append(f"- Endpoint: `{finding.endpoint}`")
    if finding.location:
        lines.append(f"- Location: `{finding.location}`")
    if finding.requirements:
        lines.append(f"- Requirements: {', '.join(finding.requirements)}")
    if finding.detail:
        lines += ["", finding.detail]
    for index, evidence in enumerate(finding.evidence, start=1):
        lines.append("")
        label = f"Evidence {index}" + (f" ({evidence.note})" if evidence.note else "")
        lines.append(f"{label}:")
        if evidence.curl:
            fence = _fence(evidence.curl)
            lines += [f"{fence}bash", evidence.curl, fence]
        if evidence.status is not None or evidence.body_excerpt:
            status = evidence.status if evidence.status is not None else "no response"
            body = evidence.body_excerpt or ""
            fence = _fence(body)
            lines += [f"→ {status}", f"{fence}text", body, fence]
        if evidence.location and not evidence.curl:
            lines.append(f"`{evidence.location}`")
            if evidence.snippet:
                fence = _fence(evidence.snippet)
                lines += [f"{fence}python", evidence.snippet, fence]
    lines.append("")
    return lines


def render_markdown(report: ValidationReport) -> str:
    """Render the report as validation.md."""
    blocking = report.blocking
    verdict = "PASSED" if not blocking else "BLOCKED"
    lines = [
        "# Validation report",
        "",
        f"**Verdict**: {verdict} — {len(blocking)} blocking of {len(report.findings)} findings  ",
        f"**Service**: {report.base_url} · **Contract**: `{report.contract_path}`  ",
        f"**Run**: `{report.run_label}` started {report.started_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"{report.duration_s:.1f} s, {report.requests_sent} requests",
        "",
        "## Confidence",
        "",
        report.confidence,
        "",
        "## Findings",
        "",
    ]
    if report.findings:
        lines += [
            "| ID | Severity | Blocks | Check | Endpoint / location | Requirements | Finding |",
            "|----|----------|--------|-------|---------------------|--------------|---------|",
        ]
        for f in report.findings:
            lines.append(
                f"| {f.id} | {f.severity.value} | {'**yes**' if f.blocking else 'no'} | `{f.check}` | "
                f"{_cell(f.endpoint or f.location, 50)} | {_cell(', '.join(f.requirements[:4]), 30)} | {_cell(f.title)} |"
            )
        lines.append("")
        for finding in report.findings[:_MAX_DETAILED]:
            lines += _finding_section(finding)
        if len(report.findings) > _MAX_DETAILED:
            lines += [
                f"_{len(report.findings) - _MAX_DETAILED} more findings are in the JSON report._",
                "",
            ]
    else:
        lines += ["No findings.", ""]
    lines += [
        "## What was verified",
        "",
        f"- Operations exercised: {len(report.operations_checked)} of {report.operations_total} "
        f"in the contract; {report.requests_sent} requests in all.",
    ]
    for check in report.checks:
        if not check.ran:
            continue
        probes = "; ".join(check.probes) or "ran"
        ops = len(set(check.operations))
        lines.append(
            f"- **{check.category}**: {probes}"
            + (f" ({ops} operations)" if ops else "")
            + (f". {check.note}" if check.note else "")
        )
    if report.load is not None:
        load = report.load
        lines += [
            "",
            "| Load | Requests | Concurrency | Rate | p50 ms | p95 ms | p99 ms | Errors | Target met |",
            "|------|----------|-------------|------|--------|--------|--------|--------|------------|",
            f"| {_cell(', '.join(load.endpoints), 60)} | {load.requests} | {load.concurrency} | "
            f"{load.achieved_rate_per_s:g}/s{' (paced ' + format(load.rate_per_s, 'g') + '/s)' if load.rate_per_s else ''} | "
            f"{load.p50_ms:g} | {load.p95_ms:g} | {load.p99_ms:g} | {load.error_rate:.1%} | "
            f"{ {True: 'yes', False: '**no**', None: 'no target stated'}[load.met] } |",
        ]
        for sla in load.slas:
            lines.append(
                f"- Target ({sla.requirement or 'spec'}, {sla.strength.value}): {sla.text}"
            )
    tools = ", ".join(
        f"{t.name} {t.version or ''}".strip() + ("" if t.used else f" (not used: {t.note})")
        for t in report.tools
    )
    if tools:
        lines += ["", f"- Tools: {tools}"]
    lines += ["", "## What was not verified", ""]
    missing = [c for c in report.checks if not c.ran]
    for check in missing:
        lines.append(f"- **{check.category}**: {check.note or 'not run'}")
    unexercised = report.operations_total - len(report.operations_checked)
    if unexercised > 0:
        lines.append(f"- {unexercised} contract operation(s) received no request.")
    if report.slas:
        lines.append(
            "- Performance targets were measured on loopback with a handful of seeded records; data volumes "
            "and hardware stated in the targets were not reproduced"
            + "".join(f" ({s.precondition})" for s in report.slas if s.precondition)
            + "."
        )
    lines.append(
        "- Everything here is black-box sampling with a fixed budget: business rules the contract does not "
        "express, concurrency races and behaviour under production data are outside it."
    )
    if report.requirements:
        lines += [
            "",
            "## Requirements",
            "",
            "| ID | Strength | Traced by |",
            "|----|----------|-----------|",
        ]
        for requirement in report.requirements:
            strength = requirement.strength.value + ("" if requirement.classified else " (default)")
            lines.append(
                f"| {requirement.id} | {strength} | {_cell('; '.join(requirement.traced_by) or '—', 90)} |"
            )
        inferred = [r for r in report.requirements if r.strength is Strength.INFERRED]
        if inferred:
            lines += ["", "Inferred requirements for a person to confirm at the delivery gate:", ""]
            lines += [f"- **{r.id}**: {r.text}" for r in inferred]
    return "\n".join(lines).rstrip() + "\n"
