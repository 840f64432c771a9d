"""Worker and client interceptors: Temporal's tracing, and the metrics only a worker sees.

- Activities: the wall time and outcome of every phase attempt, fix rounds by reason,
  the tests' verdict and analysis findings, read from each ``PhaseOutcome``.
- Workflows: human wait time, from a request's ``created_at`` to the ``respond``
  signal or update that answers it (as the workflow sees it: ``workflow.now()``), and
  a feature's state, fix rounds and cost when it ends. Metrics recorded in workflow
  code are dropped by the SDK during replay, so nothing is counted twice. Requests
  answered by a timeout policy are not counted as human answers.

Telemetry must never fail a feature: every recording step here swallows its own errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from contract import WORKFLOW_TYPE, FeatureStatus, HumanResponse, PhaseInput, PhaseOutcome
from telemetry import metrics, tracing

__all__ = ["MetricsInterceptor", "worker_interceptors"]

_log = logging.getLogger(__name__)
RESPOND = "respond"


@contextlib.contextmanager
def _never_fails(what: str) -> Iterator[None]:
    try:
        yield
    except Exception:  # telemetry must not fail the work it watches
        _log.debug("telemetry: recording %s failed", what, exc_info=True)


class _PhaseMetrics(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        first = input.args[0] if input.args else None
        phase = first.phase if isinstance(first, PhaseInput) else activity.info().activity_type
        started = time.monotonic()
        outcome = "error"
        try:
            result = await super().execute_activity(input)
            outcome = "ok"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            with _never_fails("phase duration"):
                metrics.record_phase(phase, outcome, time.monotonic() - started)
        with _never_fails("phase outcome"):
            if isinstance(result, PhaseOutcome) and isinstance(first, PhaseInput):
                _record_outcome(first, result)
        return result


def _record_outcome(inp: PhaseInput, outcome: PhaseOutcome) -> None:
    if inp.phase == "fix" and inp.fix_reason:
        metrics.record_fix_round(inp.fix_reason)
    if outcome.test_report is not None:
        metrics.record_test_run(outcome.test_report)
    if outcome.blocking_findings:
        finding = metrics.Finding(source=inp.phase, severity="blocking", blocking=True)
        metrics.record_findings([finding] * outcome.blocking_findings)


def _status() -> FeatureStatus | None:
    query = getattr(workflow.instance(), "status", None)
    result = query() if callable(query) else None
    return result if isinstance(result, FeatureStatus) else None


def _waited(status: FeatureStatus, response: HumanResponse) -> tuple[str, str, float] | None:
    for request in status.open_requests:
        if request.id == response.request_id and isinstance(request.created_at, datetime):
            seconds = (workflow.now() - request.created_at).total_seconds()
            return request.kind, str(request.phase), seconds
    return None


def _accepted_by_desk(status: FeatureStatus, response: HumanResponse) -> bool:
    """Whether the desk takes ``response`` (the signal path logs and drops what it refuses)."""
    from workflows.human import HumanDesk

    desk = HumanDesk()
    desk.open = {r.id: r for r in status.open_requests}
    desk.answered = list(status.answered_requests)
    desk.spent_usd = status.usage.cost_usd
    try:
        desk.validate(response)
    except ValueError:
        return False
    return True


class _FeatureMetrics(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if workflow.info().workflow_type != WORKFLOW_TYPE:
            return await super().execute_workflow(input)
        state = "failed"
        try:
            result = await super().execute_workflow(input)
            state = str(getattr(result, "state", "completed"))
            return result
        except asyncio.CancelledError:
            state = "cancelled"
            raise
        finally:
            with _never_fails("feature end"):
                status = _status()
                if status is not None and not workflow.unsafe.is_replaying():
                    metrics.record_feature_finished(
                        state, fix_rounds=status.fix_rounds, cost_usd=status.usage.cost_usd
                    )

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        waited = self._wait_of(input.update, input.args, check=False)
        result = await super().handle_update_handler(input)
        self._record(waited)
        return result

    async def handle_signal(self, input: HandleSignalInput) -> None:
        waited = self._wait_of(input.signal, input.args, check=True)
        await super().handle_signal(input)
        self._record(waited)

    @staticmethod
    def _wait_of(name: str, args: Any, *, check: bool) -> tuple[str, str, float] | None:
        if name != RESPOND or not args or not isinstance(args[0], HumanResponse):
            return None
        with _never_fails("human wait"):
            status = _status()
            if status is None or (check and not _accepted_by_desk(status, args[0])):
                return None
            return _waited(status, args[0])
        return None

    @staticmethod
    def _record(waited: tuple[str, str, float] | None) -> None:
        if waited is None:
            return
        with _never_fails("human wait"):
            metrics.record_human_wait(*waited)


class MetricsInterceptor(Interceptor):
    """Records Backforge's worker-side metrics on the worker's metric meter."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _PhaseMetrics(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _FeatureMetrics


def worker_interceptors(client: Client) -> list[Interceptor]:
    """The worker's interceptors: metrics always; tracing when on and not already on ``client``.

    (A client's interceptors that are also worker interceptors apply to its workers, so
    tracing is added here only for a client connected without it.)
    """
    found: list[Interceptor] = [MetricsInterceptor()]
    on_client = any(isinstance(i, TracingInterceptor) for i in client.config()["interceptors"])
    if tracing.enabled() and not on_client:
        found.append(TracingInterceptor(tracing.tracer()))
    return found
