"""One feature's figures, read from its workflow history (no worker needed).

The history already holds everything: when each activity was scheduled and closed
(phase lead times), its input (``PhaseInput``: phase, task, fix reason, clarification
answers) and result (``PhaseOutcome``: usage, test report), every ``respond`` update
or signal (interventions), and the ``BackforgeAwaitingHuman`` search attribute flipping
on and off (human wait). Activity results are summed for cost, so running and aborted
features are counted as well as completed ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import PayloadConverter

from contract import SA_AWAITING_HUMAN, FeatureRequest, HumanResponse, PhaseInput, PhaseOutcome
from telemetry.figures import FeatureFigures, Intervention, PhaseFigures

__all__ = ["feature_figures", "merge_intervals"]

_CLOSED = {
    "workflow_execution_completed_event_attributes": "completed",
    "workflow_execution_failed_event_attributes": "failed",
    "workflow_execution_canceled_event_attributes": "cancelled",
    "workflow_execution_terminated_event_attributes": "terminated",
    "workflow_execution_timed_out_event_attributes": "timed_out",
    "workflow_execution_continued_as_new_event_attributes": "continued",
}
_ACTIVITY_CLOSED = (
    "activity_task_completed_event_attributes",
    "activity_task_failed_event_attributes",
    "activity_task_timed_out_event_attributes",
    "activity_task_canceled_event_attributes",
)
_KINDS = {"clarify": "clarification", "escalate": "escalation", "approve": "approval"}
_STEPS = {
    "prepare_workspace": "prepare",
    "merge_task_commits": "merge",
    "reset_workspace": "reset",
}


@dataclass
class _Activity:
    name: str
    scheduled: datetime
    inp: PhaseInput | None
    closed: datetime | None = None
    attempts: int = 0
    outcome: PhaseOutcome | None = None


@dataclass
class _Reading:
    activities: dict[int, _Activity] = field(default_factory=dict)
    interventions: list[Intervention] = field(default_factory=list)
    waits: list[tuple[datetime, datetime]] = field(default_factory=list)
    awaiting_since: datetime | None = None
    answered: set[str] = field(default_factory=set)
    spec_rejected: bool = False


def merge_intervals(spans: Iterable[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of ``spans``."""
    total = 0.0
    end: datetime | None = None
    start: datetime | None = None
    for s, e in sorted(spans):
        if end is None or s > end:
            if start is not None and end is not None:
                total += (end - start).total_seconds()
            start, end = s, e
        elif e > end:
            end = e
    if start is not None and end is not None:
        total += (end - start).total_seconds()
    return total


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def _decode(converter: PayloadConverter, payloads: Sequence[Payload], kind: type[Any]) -> Any:
    if not payloads:
        return None
    try:
        return converter.from_payload(payloads[0], kind)
    except Exception:  # not ours (another input shape): skip it
        return None


def _phase_name(activity: _Activity) -> str:
    if activity.inp is not None:
        return activity.inp.phase
    return _STEPS.get(activity.name, activity.name)


def _respond(reading: _Reading, response: HumanResponse | None, at: datetime) -> None:
    if response is None or response.request_id in reading.answered:
        return
    reading.answered.add(response.request_id)
    prefix = response.request_id.split("-", 1)[0]
    since = reading.awaiting_since or at
    reading.interventions.append(
        Intervention(
            request_id=response.request_id,
            kind=_KINDS.get(prefix, prefix),
            answered_at=at,
            waited_s=max((at - since).total_seconds(), 0.0),
            approved=response.approved,
        )
    )
    if response.request_id.startswith("approve-spec") and response.approved is False:
        reading.spec_rejected = True


def _awaiting(converter: PayloadConverter, event: HistoryEvent) -> bool | None:
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    payload = fields.indexed_fields.get(SA_AWAITING_HUMAN.name)
    if payload is None:
        return None
    value = converter.from_payload(payload)
    return bool(value[0] if isinstance(value, list) and value else value)


def _read(
    events: Iterable[HistoryEvent], converter: PayloadConverter, reading: _Reading
) -> dict[str, Any]:
    head: dict[str, Any] = {}
    for event in events:
        kind = event.WhichOneof("attributes")
        at = _time(event)
        if kind == "workflow_execution_started_event_attributes":
            attrs = event.workflow_execution_started_event_attributes
            head["started"] = at
            head["request"] = _decode(converter, attrs.input.payloads, FeatureRequest)
        elif kind == "activity_task_scheduled_event_attributes":
            attrs_s = event.activity_task_scheduled_event_attributes
            reading.activities[event.event_id] = _Activity(
                name=attrs_s.activity_type.name,
                scheduled=at,
                inp=_decode(converter, attrs_s.input.payloads, PhaseInput)
                if attrs_s.activity_type.name.startswith("run_phase_")
                else None,
            )
        elif kind == "activity_task_started_event_attributes":
            started = event.activity_task_started_event_attributes
            if activity := reading.activities.get(started.scheduled_event_id):
                activity.attempts = max(activity.attempts, started.attempt)
        elif kind in _ACTIVITY_CLOSED:
            attrs_c = getattr(event, kind)
            activity = reading.activities.get(attrs_c.scheduled_event_id)
            if activity is None:
                continue
            activity.closed = at
            if kind == "activity_task_completed_event_attributes" and activity.inp is not None:
                activity.outcome = _decode(converter, attrs_c.result.payloads, PhaseOutcome)
        elif kind == "workflow_execution_update_accepted_event_attributes":
            accepted = event.workflow_execution_update_accepted_event_attributes
            update = accepted.accepted_request.input
            if update.name == "respond":
                _respond(reading, _decode(converter, update.args.payloads, HumanResponse), at)
        elif kind == "workflow_execution_signaled_event_attributes":
            signal = event.workflow_execution_signaled_event_attributes
            if signal.signal_name == "respond":
                _respond(reading, _decode(converter, signal.input.payloads, HumanResponse), at)
        elif kind == "upsert_workflow_search_attributes_event_attributes":
            awaiting = _awaiting(converter, event)
            if awaiting and reading.awaiting_since is None:
                reading.awaiting_since = at
            elif awaiting is False and reading.awaiting_since is not None:
                reading.waits.append((reading.awaiting_since, at))
                reading.awaiting_since = None
        elif kind in _CLOSED:
            head["closed"] = at
            head["state"] = _CLOSED[kind]
            if kind == "workflow_execution_completed_event_attributes":
                result = _decode(
                    converter,
                    event.workflow_execution_completed_event_attributes.result.payloads,
                    dict,
                )
                head["state"] = (result or {}).get("state", "completed")
    return head


def feature_figures(
    workflow_id: str,
    events: Iterable[HistoryEvent],
    converter: PayloadConverter,
    *,
    now: datetime | None = None,
    feature: str = "",
) -> FeatureFigures:
    """The figures of one feature from its history ``events``.

    Args:
        converter: The payload converter the workflow's client uses (pydantic).
        now: The end of open intervals for a feature still running (default: now).
        feature: The feature text, if known (else read from the workflow's input).
    """
    now = now or datetime.now(UTC)
    reading = _Reading()
    head = _read(events, converter, reading)
    started: datetime = head.get("started") or now
    closed: datetime | None = head.get("closed")
    end = closed or now
    if reading.awaiting_since is not None:
        reading.waits.append((reading.awaiting_since, end))
    request: FeatureRequest | None = head.get("request")
    acts = list(reading.activities.values())

    by_phase: dict[str, list[_Activity]] = {}
    for activity in acts:
        by_phase.setdefault(_phase_name(activity), []).append(activity)
    phases = [
        PhaseFigures(
            phase=name,
            seconds=round(merge_intervals((a.scheduled, a.closed or end) for a in group), 3),
            runs=len(group),
            attempts=sum(max(a.attempts, 1) for a in group),
        )
        for name, group in by_phase.items()
    ]
    outcomes = [(a.inp, a.outcome) for a in acts if a.inp is not None and a.outcome is not None]
    tests = [o.test_report for _, o in outcomes if o.test_report is not None]
    specify = [a.inp for a in acts if a.inp is not None and a.inp.phase == "specify"]
    fixes: dict[str, int] = {}
    for a in acts:
        if a.inp is not None and a.inp.phase == "fix":
            reason = a.inp.fix_reason or "other"
            fixes[reason] = fixes.get(reason, 0) + 1
    task_costs: dict[str, float] = {}
    for inp, outcome in outcomes:
        if inp.phase == "implement" and inp.task_id:
            task_costs[inp.task_id] = round(
                task_costs.get(inp.task_id, 0.0) + outcome.usage.cost_usd, 6
            )
    return FeatureFigures(
        workflow_id=workflow_id,
        feature=feature or (request.feature if request else ""),
        state=head.get("state", "running"),
        started_at=started,
        closed_at=closed,
        lead_time_s=round((end - started).total_seconds(), 3),
        active_s=round(merge_intervals((a.scheduled, a.closed or end) for a in acts), 3),
        human_wait_s=round(sum((e - s).total_seconds() for s, e in reading.waits), 3),
        waiting_now=closed is None and reading.awaiting_since is not None,
        phases=phases,
        interventions=reading.interventions,
        tests_first_pass=tests[0].ok if tests else None,
        tests_green=tests[-1].ok if tests else None,
        spec_first_pass=(
            None
            if not specify
            else sum(not i.clarifications for i in specify) <= 1 and not reading.spec_rejected
        ),
        fix_rounds=fixes,
        cost_usd=round(sum(o.usage.cost_usd for _, o in outcomes), 6),
        input_tokens=sum(o.usage.input_tokens for _, o in outcomes),
        output_tokens=sum(o.usage.output_tokens for _, o in outcomes),
        model_calls=sum(o.usage.model_calls for _, o in outcomes),
        task_costs=task_costs,
    )
