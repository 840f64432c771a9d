"""The workflow's side of every activity, declared once: name, timeouts, visibility.

The workflow calls activities by these names (it imports no activity code), and
the worker registers implementations under the same names; a test checks the two
agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from contract import PHASE_NAMES, PhaseName

__all__ = [
    "PhaseDecl",
    "StepDecl",
    "PHASES",
    "PIPELINE",
    "SANDBOXED_ACTIVITIES",
    "PREPARE",
    "RESET",
    "MERGE",
]


@dataclass(frozen=True)
class PhaseDecl:
    """One phase activity as the workflow schedules it."""

    name: PhaseName
    activity: str
    start_to_close: timedelta
    #: Listed as a step of the pipeline in ``status`` (``fix`` is a step inside others).
    shown: bool = True
    #: Runs generated code on the CPU (the sandbox queue) rather than waiting on a model.
    sandboxed: bool = False


@dataclass(frozen=True)
class StepDecl:
    """An activity around the phases (prepare, reset, merge)."""

    activity: str
    start_to_close: timedelta


def _phase(
    name: PhaseName, minutes: int, *, shown: bool = True, sandboxed: bool = False
) -> PhaseDecl:
    return PhaseDecl(name, f"run_phase_{name}", timedelta(minutes=minutes), shown, sandboxed)


PHASES: dict[PhaseName, PhaseDecl] = {
    p.name: p
    for p in (
        _phase("summarize", 20),
        _phase("constitution", 15),
        _phase("specify", 20),
        _phase("plan", 30),
        _phase("tasks", 20),
        _phase("implement", 45),  # per task
        _phase("test", 20, sandboxed=True),
        _phase("fix", 45, shown=False),
        _phase("validate", 20, sandboxed=True),
        _phase("analyze", 20),
        _phase("deliver", 5),
    )
}
assert tuple(PHASES) == PHASE_NAMES, "declare every phase of contract.PhaseName, in order"

#: Activities the sandbox queue's workers run.
SANDBOXED_ACTIVITIES = frozenset(p.activity for p in PHASES.values() if p.sandboxed)

#: The phases ``status`` lists as the pipeline, in order.
PIPELINE: tuple[PhaseName, ...] = tuple(name for name, p in PHASES.items() if p.shown)

PREPARE = StepDecl("prepare_workspace", timedelta(minutes=2))
RESET = StepDecl("reset_workspace", timedelta(minutes=2))
MERGE = StepDecl("merge_task_commits", timedelta(minutes=2))
