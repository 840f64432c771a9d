"""Blocking policy, the compact summary, validation.md and the confidence statement."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from activities.validation import (
    CheckRun,
    Evidence,
    Finding,
    LoadResult,
    Severity,
    SlaTarget,
    Strength,
    ValidationReport,
    ValidationSettings,
    ValidationTarget,
    apply_policy,
    confidence_level,
    confidence_statement,
    parse_spec_text,
    render_markdown,
    validate_service_async,
)

SPEC = parse_spec_text(
    """
- **FR-001** [HARD]: Must.
- **FR-002** [SOFT]: Should.
- **FR-003** [INFERRED]: Assumed.
"""
)
ALL_CHECKS = [
    CheckRun(category=c, ran=True, operations=["GET /x"])  # type: ignore[arg-type]
    for c in (
        "static",
        "stateful",
        "authentication",
        "authorization",
        "injection",
        "robustness",
        "contract",
        "performance",
        "traceability",
    )
]


def _finding(
    check: str, severity: Severity, refs: list[str] | None = None, **extra: object
) -> Finding:
    category = check.split(".")[0]
    return Finding(
        check=check,
        category=category,
        severity=severity,
        title=check,
        requirements=refs or [],
        **extra,
    )  # type: ignore[arg-type]


def _report(findings: list[Finding], **extra: object) -> ValidationReport:
    base: dict[str, object] = {
        "base_url": "http://127.0.0.1:1",
        "contract_path": "c.yaml",
        "started_at": datetime(2026, 1, 1, tzinfo=UTC),
        "duration_s": 1.0,
        "run_label": "ab12",
        "operations_total": 1,
        "operations_checked": ["GET /x"],
        "requests_sent": 10,
        "checks": ALL_CHECKS,
        "findings": apply_policy(findings, SPEC),
        "requirements": SPEC.requirements,
    }
    base.update(extra)
    report = ValidationReport.model_validate(base)
    report.confidence = confidence_statement(report)
    return report


def test_blocking_follows_severity_and_strength() -> None:
    findings = apply_policy(
        [
            _finding("contract.status_code", Severity.HIGH, ["FR-001"]),
            _finding("contract.status_code", Severity.HIGH, ["FR-002"]),
            _finding("contract.response_schema", Severity.HIGH, ["FR-003"]),
            _finding("contract.response_schema", Severity.HIGH, ["FR-002", "FR-001"]),
            _finding("contract.content_type", Severity.MEDIUM, ["FR-001"]),
            _finding("stateful.update_not_applied", Severity.HIGH),
            _finding("authorization.idor_read", Severity.CRITICAL, ["FR-002"]),
            _finding("static.test_tampering", Severity.CRITICAL),
        ],
        SPEC,
    )
    verdict = {(f.check, tuple(f.requirements)): (f.strength, f.blocking) for f in findings}
    assert verdict == {
        ("contract.status_code", ("FR-001",)): (Strength.HARD, True),
        ("contract.status_code", ("FR-002",)): (Strength.SOFT, False),
        ("contract.response_schema", ("FR-003",)): (Strength.INFERRED, False),
        ("contract.response_schema", ("FR-002", "FR-001")): (Strength.HARD, True),
        ("contract.content_type", ("FR-001",)): (Strength.HARD, False),
        ("stateful.update_not_applied", ()): (Strength.HARD, True),
        # Ownership and test integrity are HARD whatever the linked requirement says.
        ("authorization.idor_read", ("FR-002",)): (Strength.HARD, True),
        ("static.test_tampering", ()): (Strength.HARD, True),
    }
    assert [f.id for f in findings] == [f"F-{i:03d}" for i in range(1, 9)]
    assert all(f.blocking for f in findings[:5]) and not any(f.blocking for f in findings[5:])


def test_summary_stays_small_whatever_the_findings() -> None:
    many = [
        _finding(
            "contract.server_error",
            Severity.CRITICAL,
            endpoint=f"POST /things/{i}/" + "x" * 300,
            evidence=[Evidence(curl="curl " + "y" * 2000)],
        )
        for i in range(300)
    ]
    report = _report(many)
    summary = report.summary(report_path="specs/001-x/validation.json")
    assert summary.blocking == 300 and summary.by_severity == {"critical": 300}
    assert len(summary.top) == 3 and all(len(t) <= 100 for t in summary.top)
    assert len(summary.model_dump_json()) < 800
    assert summary.inferred == ["FR-003"]


def test_markdown_has_table_reproductions_and_limits() -> None:
    finding = _finding(
        "authorization.idor_read",
        Severity.CRITICAL,
        ["FR-001"],
        endpoint="GET /notes/{note_id}",
        evidence=[
            Evidence(
                curl="curl -X GET -H 'Authorization: Bearer b' http://127.0.0.1:1/notes/1",
                status=200,
                body_excerpt='{"id": 1, "title": "a|b"}',
                note="user B reads user A's record",
            )
        ],
    )
    static = _finding(
        "static.sql_string_format",
        Severity.HIGH,
        location="app/store.py:12",
        evidence=[Evidence(location="app/store.py:12", snippet='db.execute(f"...")')],
    )
    report = _report(
        [finding, static],
        checks=[
            *ALL_CHECKS[:-2],
            CheckRun(category="performance", ran=False, note="no read operation to load"),
        ],
    )
    text = render_markdown(report)
    assert "**Verdict**: BLOCKED — 2 blocking of 2 findings" in text
    assert (
        "| F-001 | critical | **yes** | `authorization.idor_read` | GET /notes/{note_id} | FR-001 |"
        in text
    )
    assert "curl -X GET -H 'Authorization: Bearer b' http://127.0.0.1:1/notes/1" in text
    assert '{"id": 1, "title": "a|b"}' in text and "→ 200" in text
    assert "`app/store.py:12`" in text
    assert (
        "- **performance**: no read operation to load" in text.split("## What was not verified")[1]
    )
    assert "| FR-003 | INFERRED |" in text and "- **FR-003**: Assumed." in text


def test_confidence_never_claims_more_than_the_evidence() -> None:
    clean = _report([])
    assert confidence_level(clean) == "high"
    assert "not that none exists" in clean.confidence
    assert "no defect" in clean.confidence and "proves" not in clean.confidence
    partial = _report([], operations_total=4)
    assert confidence_level(partial) == "moderate"
    assert "1 of 4 contract operations" in partial.confidence
    skipped = _report(
        [],
        checks=[*ALL_CHECKS[:2], CheckRun(category="authorization", ran=False, note="no identity")],
    )
    assert (
        confidence_level(skipped) == "moderate"
        and "authorization (no identity)" in skipped.confidence
    )
    blocked = _report([_finding("contract.server_error", Severity.CRITICAL)])
    assert confidence_level(blocked) == "low" and "1 blocking finding" in blocked.confidence
    unmeasured = _report([], slas=[SlaTarget(text="p95 under 1 ms", latency_ms=1, percentile=95)])
    assert confidence_level(unmeasured) == "moderate"
    volume = SlaTarget(
        text="with 1 million rows, p95 under 9 ms",
        latency_ms=9,
        percentile=95,
        precondition="1 million rows",
    )
    assert confidence_level(_report([], slas=[volume])) == "moderate"


def test_confidence_mentions_the_load_against_its_target() -> None:
    load = LoadResult(
        endpoints=["GET /x"],
        requests=50,
        concurrency=4,
        rate_per_s=None,
        duration_s=0.5,
        achieved_rate_per_s=100,
        errors=0,
        error_rate=0.0,
        p50_ms=2,
        p95_ms=3.5,
        p99_ms=4,
        max_ms=5,
        slas=[SlaTarget(text="p95 under 100 ms", latency_ms=100, percentile=95)],
        met=True,
    )
    report = _report([], load=load, slas=load.slas)
    assert "50 requests at concurrency 4" in report.confidence and "p95 3.5 ms" in report.confidence
    assert "meeting the spec's performance target" in report.confidence
    assert "says little about production" in report.confidence


def test_report_round_trips_through_json() -> None:
    report = _report(
        [_finding("contract.status_code", Severity.HIGH, ["FR-001"], endpoint="POST /x")]
    )
    again = ValidationReport.model_validate_json(report.model_dump_json())
    assert again == report and not again.passed and again.blocking[0].id == "F-001"


async def test_async_api_reports_an_unreachable_service(tmp_path: Path) -> None:
    contract = tmp_path / "openapi.yaml"
    contract.write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      responses: {'200': {description: ok}}\n"
    )
    target = ValidationTarget(
        base_url="http://127.0.0.1:9",
        contract_path=contract,
        settings=ValidationSettings(wait_for_service_s=0),
    )
    report = await validate_service_async(target)
    assert [f.check for f in report.blocking] == ["setup.service_unreachable"]
    assert report.blocking[0].evidence[0].curl == "curl -sS -i http://127.0.0.1:9/"
    assert report.summary().top == ["setup.service_unreachable: "]
