"""Black-box validation of a running generated service, owned by Backforge.

The checker runs in the worker's environment, outside the service's process and
outside the project's pytest configuration, and exercises the service over HTTP:
contract conformance (schemathesis), authentication, object-level authorization,
injection and robustness, performance against the spec's targets; plus a static
review of the code (bandit, optional semgrep, AST rules) and traceability of
every requirement. Findings block delivery only when they are serious and HARD
(see ``policy``).

Use it as a process::

    python -m activities.validation --base-url http://127.0.0.1:8000 \\
        --contract specs/001-x/contracts/openapi.yaml --spec specs/001-x/spec.md \\
        --quickstart specs/001-x/quickstart.md --source . --output validation.json

or from Python::

    report = validate_service(ValidationTarget(base_url=..., contract_path=...))
    markdown = render_markdown(report)
    summary = report.summary()   # small enough for workflow history
"""

from activities.validation.confidence import confidence_level, confidence_statement
from activities.validation.extension import BackforgeExtension
from activities.validation.models import (
    CheckRun,
    Evidence,
    Finding,
    LoadResult,
    LoadSettings,
    Requirement,
    Severity,
    SlaTarget,
    Strength,
    ToolInfo,
    ValidationReport,
    ValidationSettings,
    ValidationSummary,
    ValidationTarget,
)
from activities.validation.policy import apply_policy
from activities.validation.render import render_markdown
from activities.validation.runner import validate_service, validate_service_async
from activities.validation.spec import SpecDocument, parse_spec, parse_spec_text

__all__ = [
    "BackforgeExtension",
    "CheckRun",
    "Evidence",
    "Finding",
    "LoadResult",
    "LoadSettings",
    "Requirement",
    "Severity",
    "SlaTarget",
    "SpecDocument",
    "Strength",
    "ToolInfo",
    "ValidationReport",
    "ValidationSettings",
    "ValidationSummary",
    "ValidationTarget",
    "apply_policy",
    "confidence_level",
    "confidence_statement",
    "parse_spec",
    "parse_spec_text",
    "render_markdown",
    "validate_service",
    "validate_service_async",
]
