"""Which tasks may run side by side: pure functions, used by the workflow."""

from __future__ import annotations

from contract import TaskItem

__all__ = ["batches"]


def batches(tasks: list[TaskItem], *, parallel: bool = True) -> list[list[TaskItem]]:
    """Split tasks, in order, into batches that may run concurrently.

    A batch of more than one task holds consecutive ``[P]`` tasks that each
    name their files and share none with the others in the batch. Everything
    else runs alone, in tasks.md order.
    """
    out: list[list[TaskItem]] = []
    current: list[TaskItem] = []
    taken: set[str] = set()
    for task in tasks:
        if task.done:
            continue
        eligible = parallel and task.parallel and task.files
        if eligible and not taken.intersection(task.files):
            current.append(task)
            taken.update(task.files)
            continue
        if current:
            out.append(current)
        current, taken = ([task], set(task.files)) if eligible else ([], set())
        if not eligible:
            out.append([task])
    if current:
        out.append(current)
    return out
