"""Which tasks may run side by side (pure functions the workflow uses)."""

from __future__ import annotations

from contract import TaskItem
from workflows.scheduling import batches


def task(tid: str, *files: str, p: bool = True) -> TaskItem:
    return TaskItem(id=tid, parallel=p, files=list(files), title=tid)


def ids(groups: list[list[TaskItem]]) -> list[list[str]]:
    return [[t.id for t in g] for g in groups]


def test_batches_group_disjoint_parallel_tasks_only() -> None:
    tasks = [
        task("T001", "a.py"),
        task("T002", "b.py"),
        task("T003", "a.py"),  # overlaps T001: starts a new batch
        task("T004", "c.py", p=False),  # not [P]: alone
        task("T005"),  # [P] but names no file: alone
        task("T006", "d.py"),
        task("T007", "e.py"),
    ]
    assert ids(batches(tasks)) == [["T001", "T002"], ["T003"], ["T004"], ["T005"], ["T006", "T007"]]
    assert ids(batches(tasks, parallel=False)) == [[t.id] for t in tasks]
    tasks[0].done = True
    assert ids(batches(tasks))[0] == ["T002", "T003"]
