"""Put the commits of parallel tasks on the feature branch, in task order.

Each task ran in its own worktree from the same base. Its commit is
cherry-picked onto the branch and the task is checked off in tasks.md in the
same commit (so the branch keeps one commit per task). The first conflict
stops the merge: that task and every later one are reported back, and the
workflow runs them one by one on top of what did merge.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities.model_phase import PhaseActivity
from activities.speckit import FeatureLayout, check_off
from activities.workspace import Workspace, WorkspaceError
from contract import MergeInput, MergeResult

__all__ = ["MergeStep", "merge"]


def merge(inp: MergeInput) -> MergeResult:
    ws = Workspace(inp.workspace.repo_path)
    ws.reset_to(inp.workspace.branch, inp.base_commit)
    tasks_path = FeatureLayout(inp.workspace.feature_dir, inp.workspace.branch).path("tasks")
    result = MergeResult(head=inp.base_commit)
    for task_id, commit in inp.commits:
        if result.conflicts:
            result.conflicts.append(task_id)
            continue
        try:
            ws.git("cherry-pick", "--no-commit", commit)
        except WorkspaceError:
            ws.git("reset", "-q", "--hard", "HEAD")
            ws.git("clean", "-q", "-fd")
            result.conflicts.append(task_id)
            continue
        if ws.exists(tasks_path):
            ws.write(tasks_path, check_off(ws.read(tasks_path), task_id))
        ws.git("add", "-A")
        ws.git("commit", "-q", "--no-verify", "--allow-empty", "-C", commit)
        result.head = ws.head()
        result.merged.append((task_id, result.head))
    return result


class MergeStep(PhaseActivity):
    """Merges the commits of a batch of parallel tasks onto the branch."""

    @activity.defn(name="merge_task_commits")
    async def run(self, inp: MergeInput) -> MergeResult:
        return await asyncio.to_thread(merge, inp)
