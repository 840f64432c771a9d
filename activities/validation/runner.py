"""One validation run: from a target to a report.

The order matters. Static review needs no service. Then the checker waits for the
service to answer, becomes its users, and runs the deterministic probes (each
creates the records it needs) before schemathesis fuzzes the API with a separate
user and before the load, so random requests cannot disturb the probes' records.
A check that raises is reported as ``setup.check_error`` (it could not run, so it
blocks) and the others still run.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx

from activities.validation.checks.authentication import run_authentication
from activities.validation.checks.authorization import run_authorization
from activities.validation.checks.conformance import load_schema, run_conformance
from activities.validation.checks.injection import run_injection
from activities.validation.checks.performance import run_performance
from activities.validation.checks.robustness import run_robustness
from activities.validation.checks.stateful import run_lifecycle, run_reachability
from activities.validation.checks.static_review import run_static_review
from activities.validation.checks.traceability import run_traceability
from activities.validation.confidence import confidence_statement
from activities.validation.context import RunContext
from activities.validation.http import Principal, Prober
from activities.validation.identity import IdentityError, establish_principals, plan_identity
from activities.validation.models import (
    Category,
    CheckRun,
    Evidence,
    Finding,
    LoadResult,
    Severity,
    ToolInfo,
    ValidationReport,
    ValidationTarget,
)
from activities.validation.openapi import Contract, ContractError, load_contract
from activities.validation.payloads import PayloadFactory
from activities.validation.policy import apply_policy
from activities.validation.quickstart import parse_quickstart
from activities.validation.spec import SpecDocument, parse_spec

__all__ = ["validate_service", "validate_service_async", "wait_for_service"]

_HTTP_CATEGORIES: tuple[Category, ...] = (
    "stateful",
    "authentication",
    "authorization",
    "injection",
    "robustness",
    "contract",
    "performance",
)


def wait_for_service(base_url: str, seconds: float) -> tuple[bool, str]:
    """Poll ``base_url`` until it answers any HTTP response, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    last = "no attempt"
    while True:
        try:
            response = httpx.get(base_url + "/", timeout=2.0)
            return True, f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(0.1)


def _setup_finding(
    check: str, title: str, detail: str, evidence: list[Evidence] | None = None
) -> Finding:
    return Finding(
        check=check,
        category="setup",
        severity=Severity.CRITICAL,
        title=title,
        detail=detail,
        evidence=evidence or [],
    )


def _guarded(ctx: RunContext, category: Category, action: Callable[[], object]) -> object:
    if category in ctx.settings.skip:
        ctx.checks.append(CheckRun(category=category, ran=False, note="skipped by settings"))
        return None
    begin = time.perf_counter()
    sent = ctx.prober.requests_sent if ctx.prober is not None else 0
    try:
        return action()
    except Exception as exc:  # noqa: BLE001 - a broken check is a finding, never a crash
        record = ctx.run_record(category)
        record.ran = False
        record.note = f"failed: {type(exc).__name__}: {exc}"[:300]
        ctx.add(
            Finding(
                check="setup.check_error",
                category="setup",
                severity=Severity.HIGH,
                title=f"The {category} check could not complete",
                detail=traceback.format_exc(limit=4)[-800:],
                evidence=[Evidence(note=f"{type(exc).__name__}: {exc}"[:300])],
            )
        )
        return None
    finally:
        record = ctx.run_record(category)
        record.seconds = round(record.seconds + time.perf_counter() - begin, 3)
        if ctx.prober is not None:
            record.requests = max(record.requests, ctx.prober.requests_sent - sent)


def _not_run(ctx: RunContext, categories: tuple[Category, ...], why: str) -> None:
    for category in categories:
        if all(r.category != category for r in ctx.checks):
            ctx.checks.append(CheckRun(category=category, ran=False, note=why))


def _stateful(ctx: RunContext) -> None:
    run_lifecycle(ctx)
    run_reachability(ctx)


def _http_checks(
    ctx: RunContext, target: ValidationTarget, contract_path: Path
) -> LoadResult | None:
    ok, detail = wait_for_service(target.base_url, ctx.settings.wait_for_service_s)
    if not ok:
        ctx.add(
            _setup_finding(
                "setup.service_unreachable",
                "The service does not answer",
                f"No HTTP response from {target.base_url} within {ctx.settings.wait_for_service_s:g} s ({detail}).",
                [Evidence(curl=f"curl -sS -i {target.base_url}/", note=detail[:300])],
            )
        )
        _not_run(ctx, _HTTP_CATEGORIES, "the service did not answer")
        return None
    try:
        schema = load_schema(str(contract_path))
    except Exception as exc:  # noqa: BLE001 - schemathesis raises several kinds for a bad schema
        ctx.add(
            _setup_finding(
                "setup.contract_unreadable", "schemathesis cannot load the contract", str(exc)[:800]
            )
        )
        _not_run(ctx, _HTTP_CATEGORIES, "schemathesis could not load the contract")
        return None
    prober = Prober(schema, target.base_url, timeout=ctx.settings.request_timeout_s)
    ctx.prober = prober
    try:
        unknown = httpx.get(
            f"{target.base_url}/bf-no-such-route-{ctx.factory.label}",
            timeout=ctx.settings.request_timeout_s,
        )
        ctx.unknown_route_body = unknown.text if unknown.status_code == 404 else None
        try:
            plan = plan_identity(ctx.contract)
            users = establish_principals(ctx.contract, plan, prober, ctx.factory, ctx.quickstart)
        except IdentityError as exc:
            ctx.add(
                _setup_finding(
                    "setup.identity",
                    "The checker cannot become a user of the service",
                    str(exc),
                    exc.evidence,
                )
            )
            _not_run(ctx, _HTTP_CATEGORIES, f"no user identity: {exc}")
            return None
        ctx.principals = {p.name: p for p in users}
        identity = ctx.run_record("authentication")
        identity.note = f"identity: {plan.description}"
        _guarded(ctx, "stateful", lambda: _stateful(ctx))
        if plan.headers or plan.scheme is not None:
            _guarded(ctx, "authentication", lambda: run_authentication(ctx))
            _guarded(ctx, "authorization", lambda: run_authorization(ctx))
        else:
            _not_run(ctx, ("authentication", "authorization"), "the contract secures no operation")
        _guarded(ctx, "injection", lambda: run_injection(ctx))
        _guarded(ctx, "robustness", lambda: run_robustness(ctx))
        _guarded(ctx, "contract", lambda: run_conformance(ctx, schema))
        load = _guarded(ctx, "performance", lambda: run_performance(ctx))
        return load if isinstance(load, LoadResult) else None
    finally:
        prober.close()


def _principal_names(principals: dict[str, Principal]) -> str:
    return "; ".join(f"{name}: {p.description}" for name, p in principals.items())


def validate_service(target: ValidationTarget) -> ValidationReport:
    """Validate a running service from outside: contract, security, limits, load, code, traceability.

    Args:
        target: The service's base URL, its contract, and the feature's documents.

    Returns:
        The report; ``report.passed`` is False when a finding blocks delivery.
    """
    started = datetime.now(UTC)
    clock = time.perf_counter()
    settings = target.settings
    label = settings.run_label or "".join(
        secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(2)
    ) + secrets.token_hex(2)
    spec = parse_spec(target.spec_path) if target.spec_path else SpecDocument()
    quickstart = parse_quickstart(target.quickstart_path)
    tools: list[ToolInfo] = []
    load: LoadResult | None = None
    contract_error: str | None = None
    try:
        contract = load_contract(target.contract_path)
    except ContractError as exc:
        contract, contract_error = Contract.empty(target.contract_path), str(exc)
    ctx = RunContext(
        settings=settings,
        contract=contract,
        spec=spec,
        quickstart=quickstart,
        factory=PayloadFactory(label),
    )
    source_dir = target.source_dir
    if source_dir is not None and source_dir.is_dir():
        found = _guarded(ctx, "static", lambda: run_static_review(ctx, source_dir))
        tools = found if isinstance(found, list) else []
    else:
        _not_run(ctx, ("static",), "no source tree given")
    if contract_error is not None:
        ctx.add(
            _setup_finding(
                "setup.contract_unreadable", "The contract cannot be read", contract_error
            )
        )
        _not_run(ctx, _HTTP_CATEGORIES, "the contract could not be read")
    else:
        load = _http_checks(ctx, target, target.contract_path)
        if ctx.principals:
            ctx.run_record("authentication").note += f" ({_principal_names(ctx.principals)})"
        if "traceability" not in settings.skip:
            _guarded(
                ctx,
                "traceability",
                lambda: run_traceability(
                    ctx,
                    target.source_dir,
                    load_ran=load is not None,
                    spec_location=str(target.spec_path.name if target.spec_path else "spec.md"),
                ),
            )
    tools.insert(
        0,
        ToolInfo(name="schemathesis", version=version("schemathesis"), used=contract_error is None),
    )
    findings = apply_policy(ctx.findings, spec)
    prober = ctx.prober
    report = ValidationReport(
        base_url=target.base_url,
        contract_path=str(target.contract_path),
        spec_path=str(target.spec_path) if target.spec_path else None,
        started_at=started,
        duration_s=round(time.perf_counter() - clock, 3),
        run_label=label,
        operations_total=len(contract.operations),
        operations_checked=sorted(prober.operations_touched) if prober else [],
        requests_sent=prober.requests_sent if prober else 0,
        checks=ctx.checks,
        findings=findings,
        requirements=spec.requirements,
        slas=spec.slas,
        load=load,
        tools=tools,
    )
    for finding in findings:
        repeats = ctx.repeats(finding)
        if repeats > 1:
            finding.detail = (
                finding.detail + f"\n\nSeen {repeats} times."
                if finding.detail
                else f"Seen {repeats} times."
            )
    report.confidence = confidence_statement(report)
    return report


async def validate_service_async(target: ValidationTarget) -> ValidationReport:
    """``validate_service`` in a worker thread, for callers inside an event loop."""
    return await asyncio.to_thread(validate_service, target)
