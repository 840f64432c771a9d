"""Which findings block delivery.

A finding blocks when it is serious (critical or high) and HARD:

* Security and integrity failures are HARD whatever the spec says (a server error,
  a documented operation that is not served, a credential or ownership bypass, an
  injection, a plaintext password, a literal secret, code execution on data,
  tampered tests, a check that could not run at all).
* Any other finding takes the strongest strength among the requirements it is
  linked to (HARD > SOFT > INFERRED); with no linked requirement that spec.md
  defines, it is HARD.

SOFT findings are reported; INFERRED ones are listed for a person to confirm at
the delivery gate. Medium, low and informational findings never block.
"""

from __future__ import annotations

from activities.validation.models import SEVERITY_ORDER, Finding, Severity, Strength
from activities.validation.spec import SpecDocument

__all__ = ["INTRINSICALLY_HARD", "apply_policy", "is_intrinsically_hard"]

#: Check names (or prefixes ending in ``.``) that are HARD regardless of the spec.
INTRINSICALLY_HARD: tuple[str, ...] = (
    "setup.",
    "contract.server_error",
    "contract.operation_missing",
    "authentication.missing_credential_accepted",
    "authentication.malformed_credential_accepted",
    "authentication.login_accepts_bad_password",
    "authorization.",
    "injection.",
    "robustness.server_error",
    "robustness.duplicate_server_error",
    "robustness.timeout",
    "static.sql_string_format",
    "static.plaintext_password",
    "static.plaintext_secret_compare",
    "static.hardcoded_secret",
    "static.unsafe_eval",
    "static.test_tampering",
    "static.bandit.",
    "static.semgrep.",
)


def is_intrinsically_hard(check: str) -> bool:
    """Whether ``check`` is HARD whatever spec.md says."""
    return any(
        check == name or (name.endswith(".") and check.startswith(name))
        for name in INTRINSICALLY_HARD
    )


def apply_policy(findings: list[Finding], spec: SpecDocument) -> list[Finding]:
    """Set strength and blocking on every finding, sort them, and number them ``F-001``..."""
    for finding in findings:
        if is_intrinsically_hard(finding.check):
            finding.strength = Strength.HARD
        else:
            finding.strength = spec.strength_of(finding.requirements) or Strength.HARD
        serious = finding.severity in (Severity.CRITICAL, Severity.HIGH)
        finding.blocking = serious and finding.strength is Strength.HARD
    findings.sort(
        key=lambda f: (
            not f.blocking,
            SEVERITY_ORDER[f.severity],
            f.category,
            f.check,
            f.endpoint or f.location or "",
        )
    )
    for index, finding in enumerate(findings, start=1):
        finding.id = f"F-{index:03d}"
    return findings
