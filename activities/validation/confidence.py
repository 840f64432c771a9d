"""A one-paragraph confidence statement that never claims more than the evidence.

Every sentence is built from what the report records: which checks ran, how many
operations and requests, what the load measured, what was found, and what did not
run. The level is the weakest that any fact supports:

* ``low`` - a setup failure, a blocking finding, or HTTP checks that did not run;
* ``moderate`` - some check category did not run, some operation got no request,
  a HARD requirement is untraced, or a stated SLA was not measured;
* ``high`` - everything ran on every operation and nothing blocks; even then the
  statement says the checks are bounded samples, not proof.
"""

from __future__ import annotations

from activities.validation.models import Strength, ValidationReport

__all__ = ["confidence_level", "confidence_statement"]

_HTTP = ("contract", "stateful", "authentication", "authorization", "injection", "robustness")


def confidence_level(report: ValidationReport) -> str:
    """``low``, ``moderate`` or ``high`` (see the module docstring)."""
    ran = {c.category for c in report.checks if c.ran}
    if report.blocking or any(f.category == "setup" for f in report.findings):
        return "low"
    if not ran.intersection(_HTTP):
        return "low"
    untraced_hard = any(
        f.check == "traceability.untraced_requirement" and f.strength is Strength.HARD
        for f in report.findings
    )
    missing = [c for c in report.checks if not c.ran]
    unmeasured_sla = bool(report.slas) and report.load is None
    unreproduced = any(s.precondition for s in report.slas)
    partial = len(report.operations_checked) < report.operations_total
    if missing or untraced_hard or unmeasured_sla or unreproduced or partial:
        return "moderate"
    return "high"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def confidence_statement(report: ValidationReport) -> str:
    """One paragraph for validation.md and the implementation report."""
    level = confidence_level(report)
    ran = [c for c in report.checks if c.ran]
    not_ran = [c for c in report.checks if not c.ran]
    sentences: list[str] = []
    if report.operations_checked:
        sentences.append(
            f"Backforge exercised {len(report.operations_checked)} of {report.operations_total} contract "
            f"operations of the running service over HTTP from outside its process, with "
            f"{_plural(report.requests_sent, 'request')}"
        )
    else:
        sentences.append("Backforge sent no request to the running service")
    if ran:
        sentences[-1] += " (checks run: " + ", ".join(c.category for c in ran) + ")."
    else:
        sentences[-1] += "."
    if report.load is not None:
        load = report.load
        verdict = {True: "meeting", False: "missing", None: "with no stated target for"}[load.met]
        preconditions = [s.precondition for s in load.slas if s.precondition]
        sentences.append(
            f"Under a bounded load of {load.requests} requests at concurrency {load.concurrency} on "
            f"loopback it measured p95 {load.p95_ms:g} ms and {load.error_rate:.1%} errors, {verdict} "
            "the spec's performance target"
            + ("s" if len(load.slas) > 1 else "")
            + (f" without the stated {', '.join(preconditions)}" if preconditions else "")
            + "; a loopback measurement on the build host says little about production."
        )
    blocking = len(report.blocking)
    total = len(report.findings)
    if blocking:
        sentences.append(
            f"It found {_plural(blocking, 'blocking finding')} among {total}; delivery should wait "
            "until they are fixed or a person overrides them."
        )
    elif total:
        sentences.append(f"It found {_plural(total, 'finding')}, none of them blocking.")
    else:
        sentences.append("It found nothing to report.")
    if not_ran:
        sentences.append(
            "Not verified: "
            + "; ".join(f"{c.category} ({c.note or 'not run'})" for c in not_ran)[:400]
            + "."
        )
    inferred = [r.id for r in report.requirements if r.strength is Strength.INFERRED]
    if inferred:
        sentences.append(
            f"{_plural(len(inferred), 'requirement')} ({', '.join(inferred[:6])}) "
            "were inferred by the model and need a person to confirm them."
        )
    sentences.append(
        f"Confidence is {level}: these checks are bounded samples, so the absence of a finding "
        "means these probes found no defect, not that none exists."
    )
    return " ".join(sentences)
