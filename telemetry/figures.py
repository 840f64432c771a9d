"""The team's success figures: one feature's, and a namespace's over a period.

Pure data and arithmetic; ``telemetry.history`` fills ``FeatureFigures`` from a
workflow history and ``telemetry.collect`` gathers a namespace's features.
"""

from __future__ import annotations

import statistics
from datetime import datetime

from pydantic import BaseModel, Field, computed_field

__all__ = ["FeatureFigures", "Intervention", "PhaseFigures", "TeamFigures", "rate"]


class PhaseFigures(BaseModel):
    """How long one phase (or step) of a feature took."""

    phase: str
    #: Wall time covered by the phase's activities, from scheduled to closed (retries,
    #: backoff and queueing included; side-by-side tasks counted once).
    seconds: float
    #: Times the workflow scheduled it (tasks, clarification rounds, fix rounds...).
    runs: int
    #: Attempts the workers made (more than ``runs`` when attempts failed and were retried).
    attempts: int


class Intervention(BaseModel):
    """A person's answer to one request."""

    request_id: str
    kind: str
    answered_at: datetime
    #: From the moment the feature started waiting for a person to this answer.
    waited_s: float
    approved: bool | None = None


class FeatureFigures(BaseModel):
    """One feature, read from its history."""

    workflow_id: str
    feature: str = ""
    #: running, completed, aborted, failed, cancelled, terminated, timed_out
    state: str
    started_at: datetime
    closed_at: datetime | None = None
    lead_time_s: float
    #: Time some activity of the feature was scheduled or running.
    active_s: float = 0.0
    #: Time the feature waited for a person (to now, while it still waits).
    human_wait_s: float = 0.0
    waiting_now: bool = False
    phases: list[PhaseFigures] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    #: The first test run was green (None: tests never ran).
    tests_first_pass: bool | None = None
    tests_green: bool | None = None
    #: The spec needed no rework: one specify run beyond clarification rounds, and the
    #: spec gate (if any) not rejected (None: specify never ran).
    spec_first_pass: bool | None = None
    fix_rounds: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    #: Model cost of each implementation task (all its runs).
    task_costs: dict[str, float] = Field(default_factory=dict)

    def phase_seconds(self, phase: str) -> float:
        return sum(p.seconds for p in self.phases if p.phase == phase)


def rate(values: list[bool | None]) -> float | None:
    """The share of True among the values that are known (None if none is)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


class TeamFigures(BaseModel):
    """A namespace's features over a period, and what they add up to."""

    namespace: str
    since_days: float | None = None
    generated_at: datetime
    features: list[FeatureFigures] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def completed(self) -> int:
        return sum(f.state == "completed" for f in self.features)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def median_lead_time_s(self) -> float | None:
        return _median([f.lead_time_s for f in self.features if f.closed_at is not None])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tests_first_pass_rate(self) -> float | None:
        return rate([f.tests_first_pass for f in self.features])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def spec_first_pass_rate(self) -> float | None:
        return rate([f.spec_first_pass for f in self.features])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def interventions_per_feature(self) -> float | None:
        return _mean([float(len(f.interventions)) for f in self.features])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def median_answer_wait_s(self) -> float | None:
        return _median([i.waited_s for f in self.features for i in f.interventions])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def human_wait_share(self) -> float | None:
        """Share of the features' lead time spent waiting for people."""
        lead = sum(f.lead_time_s for f in self.features)
        return sum(f.human_wait_s for f in self.features) / lead if lead > 0 else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_per_feature_usd(self) -> float | None:
        return _mean([f.cost_usd for f in self.features])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_per_task_usd(self) -> float | None:
        return _mean([c for f in self.features for c in f.task_costs.values()])

    @computed_field  # type: ignore[prop-decorator]
    @property
    def phase_median_s(self) -> dict[str, float]:
        """Median time per phase over the features where the phase ran."""
        names = dict.fromkeys(p.phase for f in self.features for p in f.phases)
        return {
            name: statistics.median(
                [f.phase_seconds(name) for f in self.features if f.phase_seconds(name) > 0] or [0.0]
            )
            for name in names
        }
