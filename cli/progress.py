"""The live progress view of a running feature, fed by the ``status`` query.

On a terminal it is a rich live display, one row per pipeline phase with a
spinner on the running one; elsewhere (CI logs, pipes) it prints one line per
change. The row of a stage comes from ``FeatureStatus.phase``; the task being
implemented from ``FeatureStatus.task_id``.
"""

from __future__ import annotations

from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from cli.render import short, stage_label
from contract import PHASE_NAMES, FeatureStatus, PhaseName, Stage

__all__ = [
    "PIPELINE",
    "Mark",
    "row_of",
    "phase_marks",
    "phase_detail",
    "usage_line",
    "ProgressView",
]

#: The rows of the view, in order. ``fix`` runs inside test/analyze and gets an
#: extra row while it runs, like the steps before the first phase.
PIPELINE: tuple[PhaseName, ...] = tuple(phase for phase in PHASE_NAMES if phase != "fix")
Mark = Literal["done", "current", "waiting", "failed", "pending"]
_MARKS = {"done": ("✓", "green"), "waiting": ("?", "yellow"), "failed": ("✗", "red")}


def row_of(stage: Stage) -> PhaseName | None:
    """The pipeline row a stage belongs to (merging parallel tasks is part of implement)."""
    if stage == "merge":
        return "implement"
    return next((phase for phase in PIPELINE if phase == stage), None)


def phase_marks(status: FeatureStatus) -> dict[PhaseName, Mark]:
    """How each pipeline phase stands: done, current, waiting, failed or pending."""
    done = {record.phase for record in status.completed}
    current = row_of(status.phase)
    marks: dict[PhaseName, Mark] = {}
    for phase in PIPELINE:
        if status.state == "completed" or (phase in done and phase != current):
            marks[phase] = "done"
        elif phase == current:
            if status.state == "waiting":
                marks[phase] = "waiting"
            elif status.state in ("failed", "aborted", "cancelled"):
                marks[phase] = "failed"
            else:
                marks[phase] = "current"
        else:
            marks[phase] = "pending"
    return marks


def phase_detail(status: FeatureStatus, phase: PhaseName) -> str:
    """The dim text after a phase's name: last commit and summary, task progress, test counts."""
    records = [r for r in status.completed if r.phase == phase]
    detail = ""
    if records:
        last = records[-1]
        detail = f"{short(last.commit)}  {last.summary}".strip()
        if len(records) > 1:
            detail += f"  ({len(records)} commits)"
    if phase == "implement" and status.tasks:
        done = sum(1 for task in status.tasks if task.done)
        prefix = f"tasks {done}/{len(status.tasks)}"
        if status.phase == "merge":
            prefix += " · merging parallel tasks"
        elif status.phase == "implement":
            current = next((t for t in status.tasks if t.id == status.task_id), None) or next(
                (t for t in status.tasks if not t.done), None
            )
            if current is not None:
                prefix += f" · {current.id} {current.title}"
        detail = f"{prefix}  {detail}".strip()
    if phase == "test" and status.test_report is not None and not records:
        report = status.test_report
        detail = f"{detail}  {report.passed} passed, {report.failed} failed".strip()
    return detail


def usage_line(status: FeatureStatus) -> str:
    """``model calls 12 · tokens 1,234 in / 56 out · $0.0123 of $5.00 budget``."""
    usage = status.usage
    line = (
        f"model calls {usage.model_calls}"
        + (f" ({usage.replayed_calls} replayed)" if usage.replayed_calls else "")
        + f" · tokens {usage.input_tokens:,} in / {usage.output_tokens:,} out"
        + f" · ${usage.cost_usd:.4f}"
    )
    if status.budget_usd is not None:
        line += f" of ${status.budget_usd:.2f} budget"
    return line


class ProgressView:
    """Live phase-by-phase progress of one feature.

    Args:
        out: The console to draw on; live only when it is a terminal.
        workflow_id: Shown until the first status arrives.
    """

    def __init__(self, out: Console, workflow_id: str) -> None:
        self.console = out
        self.workflow_id = workflow_id
        self.status: FeatureStatus | None = None
        self.note = "waiting for the first status..."
        self._live: Live | None = None
        self._spinner = Spinner("dots", style="cyan")
        self._printed_records = 0
        self._last_line = ""
        self._last_ignored: str | None = None

    def start(self) -> None:
        """Start the live display (terminals only; elsewhere changes are printed as lines)."""
        if self.console.is_terminal and self._live is None:
            self._live = Live(
                get_renderable=self.render, console=self.console, refresh_per_second=8
            )
            self._live.start()

    def stop(self) -> None:
        """Stop the live display, leaving its last frame on screen."""
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def update(self, status: FeatureStatus | None, note: str | None = None) -> None:
        """Show a new status and/or note (a note is cleared by the next status)."""
        if note is not None:
            self.note = note
        if status is not None:
            self.status = status
            self.note = ""
        if self._live is None:
            self._print_changes()

    def render(self) -> RenderableType:
        """The live frame: one row per phase, usage, and what the feature waits for."""
        status = self.status
        if status is None:
            waiting = Table.grid(padding=(0, 1))
            waiting.add_row(self._spinner, Text(self.note))
            return Group(Text(self.workflow_id, style="bold"), waiting)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column(no_wrap=True, min_width=12)
        grid.add_column(overflow="ellipsis", no_wrap=True)
        extra_row: tuple[RenderableType, Text, Text] | None = None
        if row_of(status.phase) is None and status.state in ("running", "waiting"):
            symbol: RenderableType = (
                self._spinner if status.state == "running" else Text("?", style="yellow")
            )
            extra = f"round {status.fix_rounds}" if status.phase == "fix" else ""
            extra_row = (symbol, Text(stage_label(status), style="bold"), Text(extra, style="dim"))
        if extra_row is not None and status.phase in ("starting", "prepare"):
            grid.add_row(*extra_row)  # steps before the first phase go on top
            extra_row = None
        for phase, mark in phase_marks(status).items():
            if mark == "current":
                symbol = self._spinner
            elif mark in _MARKS:
                char, style = _MARKS[mark]
                symbol = Text(char, style=style)
            else:
                symbol = Text("·", style="dim")
            name_style = {"current": "bold", "waiting": "bold", "pending": "dim"}.get(mark, "")
            grid.add_row(
                symbol,
                Text(phase, style=name_style),
                Text(phase_detail(status, phase), style="dim"),
            )
        if extra_row is not None:
            grid.add_row(*extra_row)
        lines: list[RenderableType] = [
            Text.assemble((status.workflow_id, "bold"), f"  {status.state}"),
            grid,
            Text(usage_line(status), style="dim"),
        ]
        if status.state == "waiting" and status.open_requests:
            lines.append(
                Text(f"waiting for a person: {status.open_requests[0].title}", style="yellow")
            )
        elif status.message:
            lines.append(Text(status.message, style="italic"))
        if status.last_ignored_answer:
            lines.append(Text(f"answer not applied: {status.last_ignored_answer}", style="red"))
        if self.note:
            lines.append(Text(self.note, style="yellow"))
        return Group(*lines)

    def _print_changes(self) -> None:
        status = self.status
        if status is None:
            if self.note and self.note != self._last_line:
                self._last_line = self.note
                self.console.print(Text(self.note, style="dim"), soft_wrap=True)
            return
        for record in status.completed[self._printed_records :]:
            task = f" {record.task_id}" if record.task_id else ""
            self.console.print(
                Text.assemble(
                    ("✓ ", "green"),
                    f"{record.phase}{task}",
                    (f"  {short(record.commit)}", "dim"),
                    f"  {record.summary}",
                )
            )
        self._printed_records = len(status.completed)
        done = sum(1 for task in status.tasks if task.done)
        tasks = f" · tasks {done}/{len(status.tasks)}" if status.tasks else ""
        line = f"→ {stage_label(status)} ({status.state}){tasks}"
        if status.message:
            line += f" · {status.message}"
        if self.note:
            line += f" · {self.note}"
        if line != self._last_line:
            self._last_line = line
            self.console.print(Text(line, style="dim"), soft_wrap=True)
        ignored = status.last_ignored_answer
        if ignored and ignored != self._last_ignored:
            self.console.print(Text(f"answer not applied: {ignored}", style="red"), soft_wrap=True)
        self._last_ignored = ignored
