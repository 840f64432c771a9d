"""The progress view: marks per phase from ``phase`` and ``task_id``, and its printed lines."""

from __future__ import annotations

from rich.console import Console

from cli.progress import PIPELINE, ProgressView, phase_detail, phase_marks, row_of
from contract import TaskItem
from tests.support.cli_requests import record, status


def test_pipeline_rows_leave_fix_to_an_extra_row() -> None:
    assert PIPELINE[0] == "summarize" and PIPELINE[-1] == "deliver"
    assert "fix" not in PIPELINE
    assert row_of("merge") == "implement"
    assert row_of("fix") is None and row_of("starting") is None


def test_phase_marks_follow_the_current_phase() -> None:
    current = status(
        phase="implement",
        task_id="T003",
        completed=[record(p) for p in ("constitution", "specify", "plan", "tasks", "implement")],
    )
    marks = phase_marks(current)
    assert marks["tasks"] == "done"
    assert marks["implement"] == "current"
    assert marks["test"] == "pending"
    assert phase_marks(current.model_copy(update={"state": "waiting"}))["implement"] == "waiting"
    assert phase_marks(current.model_copy(update={"state": "failed"}))["implement"] == "failed"
    assert set(phase_marks(current.model_copy(update={"state": "completed"})).values()) == {"done"}


def test_implement_detail_names_the_task_from_task_id() -> None:
    tasks = [
        TaskItem(id="T001", title="models", done=True),
        TaskItem(id="T002", title="routes"),
        TaskItem(id="T003", title="tests"),
    ]
    current = status(phase="implement", task_id="T003", tasks=tasks)
    assert phase_detail(current, "implement") == "tasks 1/3 · T003 tests"
    merging = status(phase="merge", tasks=tasks)
    assert phase_detail(merging, "implement") == "tasks 1/3 · merging parallel tasks"
    assert phase_marks(merging)["implement"] == "current"


def test_piped_view_prints_records_and_changes_once() -> None:
    out = Console(record=True, width=200, force_terminal=False)
    view = ProgressView(out, "feature-x")
    view.start()  # not a terminal: no live display
    view.update(status(phase="implement", task_id="T002", completed=[record("implement", "T001")]))
    view.update(status(phase="implement", task_id="T002", completed=[record("implement", "T001")]))
    view.update(None, note="no worker is polling task queue 'q'")
    view.stop()
    lines = out.export_text().splitlines()
    assert lines == [
        "✓ implement T001  0000000  implement done",
        "→ implement T002 (running)",
        "→ implement T002 (running) · no worker is polling task queue 'q'",
    ]


def test_live_frame_has_a_row_per_phase_and_the_fix_round() -> None:
    out = Console(record=True, width=120)
    view = ProgressView(out, "feature-x")
    view.update(status(phase="fix", fix_rounds=2, completed=[record("test")]))
    out.print(view.render())
    text = out.export_text()
    for phase in PIPELINE:
        assert phase in text
    assert "fix" in text and "round 2" in text


def test_an_answer_that_could_not_be_applied_is_shown_once() -> None:
    out = Console(record=True, width=60, force_terminal=False)
    view = ProgressView(out, "feature-x")
    ignored = "clarify-1: clarify-1 Q1: unknown option 'Z'; choose one of A, B"
    for _ in range(2):
        view.update(status(state="waiting", last_ignored_answer=ignored))
    text = out.export_text()
    assert text.count(f"answer not applied: {ignored}\n") == 1  # one line, even at 60 columns
    live = Console(record=True, width=200)
    live.print(view.render())
    assert f"answer not applied: {ignored}" in live.export_text()
