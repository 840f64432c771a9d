"""Put the commits of parallel tasks on the feature branch, in task order.

Each task ran in its own worktree from the same base and published its commit
under ``refs/backforge/tasks/``. Here each is cherry-picked onto the branch and
the task is checked off in tasks.md in the same commit (so the branch keeps one
commit per task). The first conflict stops the merge: that task and every later
one are reported back, and the workflow runs them one by one on top of what did
merge. Merged commits keep their task commit's dates, so a retried merge makes the
very same commits and its push changes nothing.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.model_phase import PhaseActivity, attempt
from activities.speckit import FeatureLayout, check_off
from activities.workspace import BranchMoved, Checkout
from activities.workspace.cache import head_commit
from activities.workspace.git import git, run_git
from activities.workspace.records import NAMESPACE, ref_component
from contract import MergeInput, MergeResult

__all__ = ["MergeStep"]


async def _merge(co: Checkout, inp: MergeInput) -> MergeResult:
    tasks_path = FeatureLayout(inp.workspace.feature_dir, inp.workspace.branch).path("tasks")
    result = MergeResult(head=inp.base_commit)
    dates = await _commit_dates(co, [commit for _, commit in inp.commits])
    for task_id, commit in inp.commits:
        if result.conflicts:
            result.conflicts.append(task_id)
            continue
        picked = await run_git(co.root, "cherry-pick", "--no-commit", commit)
        if picked.returncode != 0:
            await git(co.root, "reset", "-q", "--hard", "HEAD")
            await git(co.root, "clean", "-q", "-fd")
            result.conflicts.append(task_id)
            continue
        if co.exists(tasks_path):
            co.write(tasks_path, check_off(co.read(tasks_path), task_id))
        # The pick is staged; ``-a`` adds the checked-off tasks.md (a tracked file).
        await git(
            co.root,
            "commit", "-q", "-a", "--no-verify", "--allow-empty", "-C", commit,
            env={"GIT_COMMITTER_DATE": dates[commit]},
        )  # fmt: skip
        result.head = await head_commit(co.root, co.cache.path)
        result.merged.append((task_id, result.head))
    return result


async def _commit_dates(co: Checkout, commits: list[str]) -> dict[str, str]:
    """The committer date of each commit (one ``git log`` for all of them)."""
    if not commits:
        return {}
    out = await git(co.root, "log", "--no-walk=unsorted", "--format=%H %cI", *commits)
    by_sha = dict(line.split(" ", 1) for line in out.splitlines() if line.strip())
    return {commit: by_sha[commit] for commit in commits}


class MergeStep(PhaseActivity):
    """Merges the commits of a batch of parallel tasks onto the branch."""

    @activity.defn(name="merge_task_commits")
    async def run(self, inp: MergeInput) -> MergeResult:
        workspaces = self.services.workspaces
        async with workspaces.worktree(inp.workspace, inp.base_commit, label="merge") as co:
            tasks = f"{NAMESPACE}/tasks/{ref_component(inp.workflow_id)}"
            await co.cache.ensure_commits(
                [commit for _, commit in inp.commits], f"+{tasks}/*:{tasks}/*"
            )
            if activity.in_activity():
                activity.heartbeat("merging")
            result = await _merge(co, inp)
            if result.head != inp.base_commit:
                try:
                    await workspaces.advance(
                        co.cache,
                        inp.workspace.branch,
                        base=inp.base_commit,
                        sha=result.head,
                        run="merge",
                        attempt=attempt(),
                    )
                except BranchMoved as err:
                    raise ApplicationError(
                        str(err), type="BranchMoved", non_retryable=True
                    ) from err
            return result
