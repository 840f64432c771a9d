"""The validation's data: what to check, how hard, and what was found.

Every model here is plain pydantic so a report can be written as JSON by the
checker process and read back by the worker, the CLI or a test. The
``ValidationSummary`` is the only one meant for Temporal history; it stays a few
hundred bytes whatever the size of the report.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from contract import ValidationSummary

__all__ = [
    "Severity",
    "Strength",
    "Category",
    "LoadSettings",
    "ValidationSettings",
    "ValidationTarget",
    "Evidence",
    "Finding",
    "Requirement",
    "SlaTarget",
    "LoadResult",
    "CheckRun",
    "ToolInfo",
    "ValidationReport",
    "ValidationSummary",
    "SEVERITY_ORDER",
    "BODY_EXCERPT_CHARS",
]

#: The longest response body excerpt kept as evidence.
BODY_EXCERPT_CHARS = 400


class Severity(StrEnum):
    """How bad a finding is, independent of whether it blocks."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


SEVERITY_ORDER: dict[Severity, int] = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MEDIUM: 2,
    Severity.LOW: 3,
    Severity.INFO: 4,
}


class Strength(StrEnum):
    """How strongly spec.md states a requirement.

    ``HARD`` must hold and blocks delivery, ``SOFT`` should hold and is reported,
    ``INFERRED`` was assumed by the model and is listed for a person to confirm.
    """

    HARD = "HARD"
    SOFT = "SOFT"
    INFERRED = "INFERRED"


Category = Literal[
    "setup",
    "contract",
    "stateful",
    "authentication",
    "authorization",
    "injection",
    "robustness",
    "static",
    "performance",
    "traceability",
]


class LoadSettings(BaseModel):
    """A bounded load: a fixed number of requests, never a soak."""

    requests: int = Field(default=200, ge=1, le=20_000)
    concurrency: int = Field(default=4, ge=1, le=64)
    #: Requests per second to pace at; ``None`` uses the spec's stated rate, else closed loop.
    rate_per_s: float | None = Field(default=None, gt=0, le=2000)
    #: Hard cap on the load's wall time, whatever the rate.
    max_seconds: float = Field(default=30.0, gt=0, le=300)


class ValidationSettings(BaseModel):
    """Budgets and switches for one validation run."""

    #: Examples per operation and generation mode for the schemathesis conformance run.
    max_examples: int = Field(default=25, ge=1, le=1000)
    #: Steps and scenarios for the link-driven state machine (only when the contract has links).
    stateful_scenarios: int = Field(default=15, ge=1, le=500)
    request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: How long to wait for the service to answer at all before giving up.
    wait_for_service_s: float = Field(default=10.0, ge=0, le=300)
    #: Size of the oversized-string probe, in characters.
    oversized_chars: int = Field(default=200_000, ge=1000, le=10_000_000)
    load: LoadSettings = Field(default_factory=LoadSettings)
    #: Checks to skip by category (e.g. ``["performance"]``); skipped ones are reported as not run.
    skip: list[Category] = Field(default_factory=list)
    #: Suffix for users and records the checker creates, so repeated runs never collide.
    run_label: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,12}$")
    #: A ``semgrep`` executable to run with Backforge's local rules (``None``: look on PATH).
    semgrep: str | None = None


class ValidationTarget(BaseModel):
    """What to validate: a running service, its contract and the feature's documents."""

    base_url: str
    contract_path: Path
    spec_path: Path | None = None
    quickstart_path: Path | None = None
    #: Root of the generated project, for static review and test traceability.
    source_dir: Path | None = None
    settings: ValidationSettings = Field(default_factory=ValidationSettings)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value


class Evidence(BaseModel):
    """One reproducible observation: a request and what came back, or a place in the code."""

    #: A curl line that replays the request against the same service.
    curl: str | None = None
    method: str | None = None
    url: str | None = None
    status: int | None = None
    body_excerpt: str | None = None
    #: ``path:line`` for static findings.
    location: str | None = None
    snippet: str | None = None
    note: str | None = None


class Finding(BaseModel):
    """A problem found by a check."""

    id: str = ""
    #: Dotted check name, e.g. ``authorization.idor_read``; stable across runs.
    check: str
    category: Category
    severity: Severity
    title: str
    detail: str = ""
    #: ``METHOD /path/{param}`` for HTTP findings.
    endpoint: str | None = None
    #: ``path:line`` for static findings.
    location: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    strength: Strength = Strength.HARD
    blocking: bool = False


class Requirement(BaseModel):
    """An ``FR-###`` or ``SC-###`` line of spec.md."""

    id: str
    strength: Strength
    #: Whether spec.md said the strength, or it was defaulted (unclassified is HARD).
    classified: bool
    text: str
    #: Project test files or checks that exercise it.
    traced_by: list[str] = Field(default_factory=list)


class SlaTarget(BaseModel):
    """A performance target stated in spec.md."""

    text: str
    requirement: str | None = None
    strength: Strength = Strength.HARD
    #: 50, 95 or 99.
    percentile: int | None = None
    latency_ms: float | None = None
    rate_per_s: float | None = None
    max_error_rate: float | None = None
    #: A data volume or setting the target assumes (``10,000 bookmarks``), which the
    #: bounded load does not reproduce.
    precondition: str | None = None


class LoadResult(BaseModel):
    """What a bounded load measured."""

    endpoints: list[str]
    requests: int
    concurrency: int
    rate_per_s: float | None
    duration_s: float
    achieved_rate_per_s: float
    errors: int
    error_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    slas: list[SlaTarget] = Field(default_factory=list)
    #: ``None`` when the spec states no target.
    met: bool | None = None


class CheckRun(BaseModel):
    """What one check category did, so the report can say what was and was not verified."""

    category: Category
    ran: bool
    #: Why it did not run, or what limited it.
    note: str = ""
    operations: list[str] = Field(default_factory=list)
    requests: int = 0
    probes: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class ToolInfo(BaseModel):
    """A third-party tool the run used, with its version."""

    name: str
    version: str | None = None
    used: bool = True
    note: str = ""


class ValidationReport(BaseModel):
    """The full outcome of one validation."""

    kind: Literal["backforge-validation-report"] = "backforge-validation-report"
    version: int = 1
    base_url: str
    contract_path: str
    spec_path: str | None = None
    started_at: datetime
    duration_s: float
    run_label: str
    operations_total: int = 0
    operations_checked: list[str] = Field(default_factory=list)
    requests_sent: int = 0
    checks: list[CheckRun] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    requirements: list[Requirement] = Field(default_factory=list)
    slas: list[SlaTarget] = Field(default_factory=list)
    load: LoadResult | None = None
    tools: list[ToolInfo] = Field(default_factory=list)
    confidence: str = ""

    @property
    def blocking(self) -> list[Finding]:
        """Findings that block delivery."""
        return [f for f in self.findings if f.blocking]

    @property
    def passed(self) -> bool:
        """True when nothing blocks."""
        return not self.blocking

    def summary(self, *, report_path: str | None = None) -> ValidationSummary:
        """The compact form for workflow history."""
        counts = {s.value: 0 for s in Severity}
        for finding in self.findings:
            counts[finding.severity.value] += 1
        blocking = self.blocking
        return ValidationSummary(
            passed=not blocking,
            blocking=len(blocking),
            findings=len(self.findings),
            by_severity={k: v for k, v in counts.items() if v},
            operations_checked=len(self.operations_checked),
            operations_total=self.operations_total,
            top=[f"{f.check}: {f.endpoint or f.location or ''}"[:100] for f in blocking[:3]],
            inferred=[r.id for r in self.requirements if r.strength is Strength.INFERRED][:20],
            report_path=report_path,
        )
