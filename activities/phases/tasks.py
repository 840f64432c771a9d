"""Phase 4: tasks.md, parsed into the task list the workflow schedules."""

from __future__ import annotations

from temporalio import activity

from activities.phases._common import commit_phase, model_phase, parse_tasks
from activities.workspace import Workspace
from workflows.types import PhaseInput, PhaseOutcome


def _check(ws: Workspace, path: str) -> str | None:
    tasks = parse_tasks(ws.read(path))
    if not tasks:
        return f"{path} has no task lines; use `- [ ] T001 [P] [US1] Description with file path`"
    ids = [t.id for t in tasks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        return f"{path} repeats task ids {duplicates}; give every task its own id"
    return None


@activity.defn
async def run_phase_tasks(inp: PhaseInput) -> PhaseOutcome:
    path = f"{inp.workspace.feature_dir}/tasks.md"
    ws, run = await model_phase(
        inp,
        prompt="tasks",
        context_docs=("constitution", "spec", "plan", "data-model"),
        required=[path],
        check=lambda w, _args: _check(w, path),
    )
    tasks = parse_tasks(ws.read(path))
    return await commit_phase(
        ws,
        inp,
        f"tasks: {len(tasks)} tasks",
        artifacts=[path],
        summary=(run.finish or {}).get("summary", ""),
        run=run,
        tasks=tasks,
    )
