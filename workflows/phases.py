"""The workflow's side of every activity, declared once: name, timeouts, visibility.

The workflow calls activities by these names (it imports no activity code), and
the worker registers implementations under the same names; a test checks the two
agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from contract import PHASE_NAMES, PhaseName

__all__ = ["PhaseDecl", "StepDecl", "PHASES", "PIPELINE", "PREPARE", "RESET", "MERGE"]


@dataclass(frozen=True)
class PhaseDecl:
    """One phase activity as the workflow schedules it."""

    name: PhaseName
    activity: str
    start_to_close: timedelta
    #: Listed as a step of the pipeline in ``status`` (``fix`` is a step inside others).
    shown: bool = True


@dataclass(frozen=True)
class StepDecl:
    """An activity around the phases (prepare, reset, merge)."""

    activity: str
    start_to_close: timedelta


def _phase(name: PhaseName, minutes: int, *, shown: bool = True) -> PhaseDecl:
    return PhaseDecl(name, f"run_phase_{name}", timedelta(minutes=minutes), shown)


PHASES: dict[PhaseName, PhaseDecl] = {
    p.name: p
    for p in (
        _phase("constitution", 15),
        _phase("specify", 20),
        _phase("plan", 30),
        _phase("tasks", 20),
        _phase("implement", 45),  # per task
        _phase("test", 20),
        _phase("fix", 45, shown=False),
        _phase("validate", 20),
        _phase("analyze", 20),
        _phase("deliver", 5),
    )
}
assert tuple(PHASES) == PHASE_NAMES, "declare every phase of contract.PhaseName, in order"

#: The phases ``status`` lists as the pipeline, in order.
PIPELINE: tuple[PhaseName, ...] = tuple(name for name, p in PHASES.items() if p.shown)

PREPARE = StepDecl("prepare_workspace", timedelta(minutes=2))
RESET = StepDecl("reset_workspace", timedelta(minutes=2))
MERGE = StepDecl("merge_task_commits", timedelta(minutes=2))
