"""What every check shares during one run: the service, the users, the records, the findings.

Checks create records through ``RunContext.create`` (so every check starts from
objects it owns), fill path parameters through ``path_values``, and report through
``add`` (which merges repeats of the same problem on the same endpoint into one
finding with a few examples) or ``validate`` (schemathesis's response checks on a
call, mapped to findings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from activities.validation.http import NOT_SET, Call, Principal, Prober
from activities.validation.models import (
    Category,
    CheckRun,
    Finding,
    Severity,
    ValidationSettings,
)
from activities.validation.openapi import Contract, Operation, Resource
from activities.validation.payloads import PayloadFactory
from activities.validation.quickstart import Quickstart
from activities.validation.spec import SpecDocument

__all__ = ["RunContext", "Created", "MAX_EVIDENCE", "SCHEMATHESIS_CHECKS", "failure_check_name"]

#: Examples kept per finding; further repeats only raise the count in the detail.
MAX_EVIDENCE = 3

#: schemathesis check -> (Backforge check, severity on valid input, severity on invalid input)
SCHEMATHESIS_CHECKS: dict[str, tuple[str, Severity, Severity]] = {
    "not_a_server_error": ("contract.server_error", Severity.CRITICAL, Severity.CRITICAL),
    "status_code_conformance": ("contract.status_code", Severity.HIGH, Severity.MEDIUM),
    "response_schema_conformance": ("contract.response_schema", Severity.HIGH, Severity.MEDIUM),
    "content_type_conformance": ("contract.content_type", Severity.MEDIUM, Severity.LOW),
    "response_headers_conformance": ("contract.response_headers", Severity.MEDIUM, Severity.LOW),
    "positive_data_acceptance": (
        "contract.valid_request_rejected",
        Severity.MEDIUM,
        Severity.MEDIUM,
    ),
    "use_after_free": ("stateful.use_after_delete", Severity.HIGH, Severity.HIGH),
    "ensure_resource_availability": (
        "stateful.created_not_available",
        Severity.HIGH,
        Severity.HIGH,
    ),
}

#: schemathesis failure class -> the check that raises it (for failures that do not say).
_FAILURE_CLASSES: dict[str, str] = {
    "ServerError": "not_a_server_error",
    "UndefinedStatusCode": "status_code_conformance",
    "JsonSchemaError": "response_schema_conformance",
    "MalformedJson": "response_schema_conformance",
    "MissingContentType": "content_type_conformance",
    "UndefinedContentType": "content_type_conformance",
    "MissingHeaders": "response_headers_conformance",
    "MissingHeaderNotRejected": "response_headers_conformance",
    "RejectedPositiveData": "positive_data_acceptance",
    "UseAfterFree": "use_after_free",
    "EnsureResourceAvailability": "ensure_resource_availability",
}


def failure_check_name(failure: Exception) -> str | None:
    """The schemathesis check that produced ``failure``."""
    checks = getattr(type(failure), "checks", ()) or ()
    for name in checks:
        if name in SCHEMATHESIS_CHECKS:
            return str(name)
    return _FAILURE_CLASSES.get(type(failure).__name__)


@dataclass
class Created:
    """A record the checker created, and the call that created it."""

    resource: Resource
    owner: str
    id: Any
    body: Any
    call: Call
    parents: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Shared state of one validation run."""

    settings: ValidationSettings
    contract: Contract
    spec: SpecDocument
    quickstart: Quickstart
    factory: PayloadFactory
    prober: Prober | None = None
    principals: dict[str, Principal] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    checks: list[CheckRun] = field(default_factory=list)
    #: Body of the service's answer to an unknown path (to recognise missing routes).
    unknown_route_body: str | None = None
    _repeats: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _templates: dict[str, Any] = field(default_factory=dict)
    _last_failed_create: dict[str, Call] = field(default_factory=dict)

    # -- reporting -----------------------------------------------------------

    def add(self, finding: Finding) -> Finding:
        """Record a finding, merging it into an earlier one of the same check and place."""
        key = (finding.check, finding.endpoint or finding.location or "", finding.title)
        for existing in self.findings:
            if (
                existing.check,
                existing.endpoint or existing.location or "",
                existing.title,
            ) == key:
                self._repeats[key] = self._repeats.get(key, 1) + 1
                if len(existing.evidence) < MAX_EVIDENCE:
                    existing.evidence.extend(
                        finding.evidence[: MAX_EVIDENCE - len(existing.evidence)]
                    )
                for ref in finding.requirements:
                    if ref not in existing.requirements:
                        existing.requirements.append(ref)
                return existing
        self.findings.append(finding)
        return finding

    def repeats(self, finding: Finding) -> int:
        """How many times ``finding`` was observed."""
        key = (finding.check, finding.endpoint or finding.location or "", finding.title)
        return self._repeats.get(key, 1)

    def report_http(
        self,
        check: str,
        category: Category,
        severity: Severity,
        title: str,
        call: Call,
        *,
        detail: str = "",
        note: str | None = None,
        requirements: list[str] | None = None,
    ) -> Finding:
        """Record a finding about one HTTP call."""
        refs = list(call.operation.requirements)
        for ref in requirements or []:
            if ref not in refs:
                refs.append(ref)
        return self.add(
            Finding(
                check=check,
                category=category,
                severity=severity,
                title=title,
                detail=detail,
                endpoint=call.operation.label,
                evidence=[call.evidence(note)],
                requirements=refs,
            )
        )

    def validate(
        self,
        call: Call,
        *,
        positive: bool = True,
        note: str | None = None,
        checks: tuple[str, ...] = (
            "not_a_server_error",
            "status_code_conformance",
            "content_type_conformance",
            "response_schema_conformance",
        ),
    ) -> list[Finding]:
        """Run schemathesis's response checks on ``call`` and record what fails."""
        if call.response is None:
            return []
        from schemathesis.checks import CHECKS, load_all_checks
        from schemathesis.core.failures import FailureGroup

        load_all_checks()
        functions = CHECKS.get_by_names(list(checks))
        found: list[Finding] = []
        try:
            call.case.validate_response(call.response, checks=functions)  # type: ignore[arg-type]
        except FailureGroup as group:
            for failure in group.exceptions:
                found.append(self.from_failure(failure, call, positive=positive, note=note))
        return found

    def from_failure(
        self, failure: Exception, call: Call, *, positive: bool, note: str | None
    ) -> Finding:
        """Map one schemathesis failure on ``call`` to a recorded finding."""
        name = failure_check_name(failure) or "not_a_server_error"
        check, on_valid, on_invalid = SCHEMATHESIS_CHECKS.get(
            name, (f"contract.{name}", Severity.MEDIUM, Severity.LOW)
        )
        if check == "contract.status_code" and not positive:
            check = "contract.status_code_invalid_input"
        title = str(getattr(failure, "title", "") or type(failure).__name__)
        message = str(getattr(failure, "message", "") or "")
        return self.report_http(
            check,
            "contract",
            on_valid if positive else on_invalid,
            title,
            call,
            detail=_first_lines(message, 6),
            note=note or ("schema-valid request" if positive else "schema-invalid request"),
        )

    def run_record(self, category: Category) -> CheckRun:
        """The ``CheckRun`` of a category, created on first use."""
        for run in self.checks:
            if run.category == category:
                return run
        run = CheckRun(category=category, ran=True)
        self.checks.append(run)
        return run

    def category_requirements(self, category: str) -> list[str]:
        """Requirements the x-backforge extension, or the spec's own words, tie to a category."""
        explicit = self.contract.extension.requirements.get(category)
        if explicit:
            return list(explicit)
        patterns = {
            "authentication": r"\b401\b|unauthenticat|authenticat|credential|log ?in\b|sign[- ]?in|bearer|api key",
            "authorization": r"another user|other users?'|other user|owned by|only (?:their|his|her|its) own|not found.*(?:another|other)|isolat",
            "static": r"\bstored\b|\bhash|plaintext|secret|\bdigest",
            "contract": r"error responses?|status code|validation errors?|\b(?:400|404|409|422)\b",
        }
        pattern = patterns.get(category)
        if pattern is None:
            return []
        return [r.id for r in self.spec.requirements if re.search(pattern, r.text, re.IGNORECASE)]

    # -- records -------------------------------------------------------------

    def create_bodies(self, resource: Resource) -> list[Any]:
        """Candidate valid bodies for creating ``resource``, best first."""
        schema = resource.create.body_schema
        bodies: list[Any] = []
        if resource.collection_path in self._templates:
            bodies.append(
                self.factory.body_from_example(self._templates[resource.collection_path], schema)
            )
        if resource.example is not None:
            bodies.append(self.factory.body_from_example(resource.example, schema))
        for example in self.quickstart.bodies_for("POST", resource.collection_path)[:2]:
            bodies.append(self.factory.body_from_example(example, schema))
        if schema is not None:
            bodies.append(self.factory.object(schema))
            bodies.append(self.factory.object(schema, full=True))
        elif not bodies:
            bodies.append(NOT_SET)
        return bodies

    def create(self, resource: Resource, principal: Principal) -> Created | None:
        """Create a ``resource`` as ``principal``; ``None`` when no candidate body is accepted."""
        parents = self.parent_values(resource, principal)
        if parents is None:
            return None
        last: Call | None = None
        for body in self.create_bodies(resource):
            call = self.prober_required.call(
                resource.create, principal=principal, path=parents, body=body
            )
            last = call
            if call.ok:
                record_id = self.extract_id(resource, call)
                if record_id is None:
                    continue
                if body is not NOT_SET:
                    self._templates.setdefault(resource.collection_path, body)
                return Created(resource, principal.name, record_id, body, call, parents)
            if call.status is None or call.status >= 500 or call.status in (404, 405):
                break
        if last is not None:
            self._last_failed_create[resource.collection_path] = last
        return None

    def last_failed_create(self, resource: Resource) -> Call | None:
        """The last rejected attempt to create ``resource``, for evidence."""
        return self._last_failed_create.get(resource.collection_path)

    @property
    def prober_required(self) -> Prober:
        """The prober; checks that send requests only run when there is one."""
        if self.prober is None:
            raise RuntimeError("no service to probe")
        return self.prober

    @staticmethod
    def extract_id(resource: Resource, call: Call) -> Any:
        """The new record's id: from the body, else from the Location header."""
        data = call.json()
        if isinstance(data, dict) and data.get(resource.id_field) is not None:
            return data[resource.id_field]
        headers = call.response.headers if call.response is not None else {}
        locations = headers.get("location") or []
        if locations:
            return locations[0].rstrip("/").rsplit("/", 1)[-1]
        return None

    def parent_values(self, resource: Resource, principal: Principal) -> dict[str, Any] | None:
        """Path values for a nested resource's parents, creating them as ``principal``."""
        values: dict[str, Any] = {}
        for param in resource.parent_params:
            parent = self.contract.resource_for_param(param)
            if parent is None or parent is resource:
                return None
            created = self.create(parent, principal)
            if created is None:
                return None
            values[param] = created.id
        return values

    def path_values(
        self,
        operation: Operation,
        principal: Principal,
        *,
        fixed: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Values for every path parameter of ``operation``: ``fixed`` ones, else fresh records.

        Returns ``None`` when a parameter names no known resource and has no fixed value.
        """
        values = dict(fixed or {})
        for param in operation.params("path"):
            if param.name in values:
                continue
            resource = self.contract.resource_for_param(param.name)
            if resource is None:
                return None
            created = self.create(resource, principal)
            if created is None:
                return None
            values[param.name] = created.id
            values.update({k: v for k, v in created.parents.items() if k not in values})
        return values

    def valid_body(self, operation: Operation) -> Any:
        """A valid request body for ``operation`` (``NOT_SET`` when it takes none)."""
        if operation.body_schema is None:
            return NOT_SET
        for resource in self.contract.resources:
            if operation is resource.create:
                return self.create_bodies(resource)[0]
            if operation is resource.update:
                template = self._templates.get(resource.collection_path)
                if template is not None:
                    return self.factory.body_from_example(template, None)
        for example in self.quickstart.bodies_for(operation.method, operation.path)[:1]:
            return self.factory.body_from_example(example, operation.body_schema)
        return self.factory.object(operation.body_schema)


def _first_lines(text: str, count: int) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[:count])[:800]
