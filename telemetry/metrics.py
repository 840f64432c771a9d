"""Backforge's own metrics, recorded on the Temporal SDK's metric meter.

Why the SDK's meter and not ``prometheus-client``: the worker then has one metrics
endpoint (the one ``PrometheusConfig`` serves) carrying Temporal's runtime metrics and
ours side by side; the metrics recorded inside workflow code are dropped on replay by
the SDK itself (a recovered feature is not counted twice); activity metrics carry the
namespace, task queue and activity type for free; and switching the runtime to OTLP
metrics (``OpenTelemetryConfig``) moves ours with it. The meter has integer counters
only, so money is a float histogram (its ``_sum`` is the total).

Every function takes the meter to record on, or finds the current one: the activity's
or the workflow's when called inside one, else a no-op meter (metrics off).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from temporalio import activity, workflow
from temporalio.common import MetricMeter

from contract import TestReport, Usage

__all__ = [
    "BUCKETS",
    "METRIC_NAMES",
    "Finding",
    "current_meter",
    "record_feature_finished",
    "record_findings",
    "record_fix_round",
    "record_human_wait",
    "record_model_call",
    "record_phase",
    "record_push",
    "record_sandbox_run",
    "record_test_run",
]

PHASE_DURATION = "backforge_phase_duration_seconds"
PHASE_RUNS = "backforge_phase_runs"
MODEL_CALLS = "backforge_model_calls"
MODEL_TOKENS = "backforge_model_tokens"
MODEL_COST = "backforge_model_cost_usd"
MODEL_DURATION = "backforge_model_call_duration_seconds"
HUMAN_WAIT = "backforge_human_wait_seconds"
HUMAN_RESPONSES = "backforge_human_responses"
FIX_ROUNDS = "backforge_fix_rounds"
FEATURES_FINISHED = "backforge_features_finished"
FEATURE_FIX_ROUNDS = "backforge_feature_fix_rounds"
FEATURE_COST = "backforge_feature_cost_usd"
FINDINGS = "backforge_findings"
TEST_RUNS = "backforge_test_runs"
SANDBOX_RUNS = "backforge_sandbox_runs"
SANDBOX_DURATION = "backforge_sandbox_duration_seconds"
GIT_PUSHES = "backforge_git_pushes"

#: Histogram bucket boundaries, by metric (the SDK's defaults suit milliseconds).
BUCKETS: dict[str, list[float]] = {
    PHASE_DURATION: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 2700],
    MODEL_DURATION: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    MODEL_COST: [0.0001, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5],
    HUMAN_WAIT: [10, 60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400],
    FEATURE_FIX_ROUNDS: [0, 1, 2, 3, 5, 10],
    FEATURE_COST: [0.01, 0.1, 0.5, 1, 2, 5, 10, 25, 50, 100],
    SANDBOX_DURATION: [0.5, 1, 2, 5, 10, 30, 60, 120, 300],
}
#: Every metric Backforge records (counters get ``_total`` on the endpoint).
METRIC_NAMES: tuple[str, ...] = (
    PHASE_DURATION, PHASE_RUNS, MODEL_CALLS, MODEL_TOKENS, MODEL_COST, MODEL_DURATION,
    HUMAN_WAIT, HUMAN_RESPONSES, FIX_ROUNDS, FEATURES_FINISHED, FEATURE_FIX_ROUNDS,
    FEATURE_COST, FINDINGS, TEST_RUNS, SANDBOX_RUNS, SANDBOX_DURATION, GIT_PUSHES,
)  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One finding, as metrics count it (validation and analysis alike)."""

    source: str
    severity: str
    blocking: bool


def current_meter() -> MetricMeter:
    """The meter of the running activity or workflow, else a no-op meter."""
    if activity.in_activity():
        return activity.metric_meter()
    if workflow.in_workflow():
        return workflow.metric_meter()
    return MetricMeter.noop


def _labels(**values: object) -> Mapping[str, str | int | float | bool]:
    return {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in values.items()}


def record_phase(
    phase: str, outcome: str, seconds: float, *, meter: MetricMeter | None = None
) -> None:
    """One phase activity attempt ended (``outcome``: ok, error or cancelled)."""
    meter = meter or current_meter()
    labels = _labels(phase=phase, outcome=outcome)
    meter.create_histogram_float(
        PHASE_DURATION, "Wall time of one phase activity attempt", "s"
    ).record(seconds, labels)
    meter.create_counter(PHASE_RUNS, "Phase activity attempts by outcome").add(1, labels)


def record_model_call(
    *,
    provider: str,
    model: str,
    phase: str,
    outcome: str,
    seconds: float,
    usage: Usage | None,
    meter: MetricMeter | None = None,
) -> None:
    """One model call (``outcome``: the finish reason, or ``error``)."""
    meter = meter or current_meter()
    base = _labels(provider=provider, model=model, phase=phase)
    meter.create_counter(MODEL_CALLS, "Model calls paid for").add(1, {**base, "outcome": outcome})
    meter.create_histogram_float(MODEL_DURATION, "Wall time of one model call", "s").record(
        seconds, base
    )
    if usage is None:
        return
    tokens = meter.create_counter(MODEL_TOKENS, "Model tokens by type")
    for kind, count in (
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_tokens),
        ("cache_write", usage.cache_write_tokens),
    ):
        if count:
            tokens.add(count, {**base, "type": kind})
    meter.create_histogram_float(MODEL_COST, "Cost of one model call (sum: total)", "USD").record(
        usage.cost_usd, base
    )


def record_human_wait(
    kind: str, phase: str, seconds: float, *, meter: MetricMeter | None = None
) -> None:
    """A person answered a request ``seconds`` after it was opened."""
    meter = meter or current_meter()
    labels = _labels(kind=kind, phase=phase)
    meter.create_histogram_float(HUMAN_WAIT, "From a human request to its answer", "s").record(
        max(seconds, 0.0), labels
    )
    meter.create_counter(HUMAN_RESPONSES, "Human requests answered").add(1, labels)


def record_fix_round(reason: str, *, meter: MetricMeter | None = None) -> None:
    """A fix step finished (``reason``: tests, analysis or review)."""
    meter = meter or current_meter()
    meter.create_counter(FIX_ROUNDS, "Fix rounds run").add(1, _labels(reason=reason))


def record_test_run(report: TestReport, *, meter: MetricMeter | None = None) -> None:
    """Backforge's verdict on one run of the generated tests."""
    meter = meter or current_meter()
    meter.create_counter(TEST_RUNS, "Runs of the generated tests by verdict").add(
        1, _labels(green=report.ok)
    )


def record_findings(findings: Iterable[Finding], *, meter: MetricMeter | None = None) -> None:
    """Findings of a validation or analysis, counted by source, severity and blocking."""
    meter = meter or current_meter()
    counter = meter.create_counter(FINDINGS, "Validation and analysis findings")
    for finding in findings:
        counter.add(
            1,
            _labels(source=finding.source, severity=finding.severity, blocking=finding.blocking),
        )


def record_feature_finished(
    state: str, *, fix_rounds: int, cost_usd: float, meter: MetricMeter | None = None
) -> None:
    """A feature workflow ended in ``state``."""
    meter = meter or current_meter()
    labels = _labels(state=state)
    meter.create_counter(FEATURES_FINISHED, "Features finished by state").add(1, labels)
    meter.create_histogram_float(FEATURE_FIX_ROUNDS, "Fix rounds per feature", "1").record(
        float(fix_rounds), labels
    )
    meter.create_histogram_float(FEATURE_COST, "Model cost per feature", "USD").record(
        cost_usd, labels
    )


def record_sandbox_run(outcome: str, seconds: float, *, meter: MetricMeter | None = None) -> None:
    """One sandboxed run ended (``outcome``: ok, failed, timeout or error)."""
    meter = meter or current_meter()
    labels = _labels(outcome=outcome)
    meter.create_counter(SANDBOX_RUNS, "Sandboxed runs by outcome").add(1, labels)
    meter.create_histogram_float(SANDBOX_DURATION, "Wall time of one sandboxed run", "s").record(
        seconds, labels
    )


def record_push(outcome: str, *, meter: MetricMeter | None = None) -> None:
    """One git push ended (``outcome``: ok, rejected or error)."""
    meter = meter or current_meter()
    meter.create_counter(GIT_PUSHES, "Git pushes to the feature's remote").add(
        1, _labels(outcome=outcome)
    )
