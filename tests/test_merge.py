"""Merging parallel tasks' commits onto the branch, in task order."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.phases.merge import MergeStep
from activities.services import Services
from activities.workspace import Workspaces
from contract import MergeInput, WorkspaceInfo
from tests.support.git import GitProcesses, git, show
from tests.support.repos import phase_input, request, user_repo

TASKS_MD = "- [ ] T001 [P] a in a.py\n- [ ] T002 [P] b in b.py\n- [ ] T003 [P] a again in a.py\n"


async def feature_with_tasks(tmp_path: Path, ws: Workspaces) -> tuple[Path, WorkspaceInfo, str]:
    repo = user_repo(tmp_path / "repo")
    info = await ws.prepare(request(repo), "wf-1")
    inp = phase_input(info, info.base_commit, phase="tasks")
    async with ws.checkout(inp) as co:
        co.write(f"{info.feature_dir}/tasks.md", TASKS_MD)
        base = await ws.publish(co, inp, "tasks")
    return repo, info, base


async def task_commit(
    ws: Workspaces, info: WorkspaceInfo, base: str, tid: str, path: str, content: str
) -> str:
    inp = phase_input(info, base, phase="implement", task_id=tid, worktree=True)
    async with ws.checkout(inp) as co:
        co.write(path, content)
        return await ws.publish(co, inp, f"{tid}: edit {path}")


async def test_merge_keeps_task_order_checks_off_and_stops_at_a_conflict(tmp_path: Path) -> None:
    tasks_worker = Workspaces(tmp_path / "scratch-tasks")
    repo, info, base = await feature_with_tasks(tmp_path, tasks_worker)
    c1 = await task_commit(tasks_worker, info, base, "T001", "a.py", "a = 1\n")
    c2 = await task_commit(tasks_worker, info, base, "T002", "b.py", "b = 2\n")
    c3 = await task_commit(tasks_worker, info, base, "T003", "a.py", "a = 3\n")  # conflicts
    # The merge runs on another worker: the task commits come from the remote.
    merger = MergeStep(Services(workspaces=Workspaces(tmp_path / "scratch-merge")))
    inp = MergeInput(
        workflow_id="wf-1",
        workspace=info,
        base_commit=base,
        commits=[("T001", c1), ("T002", c2), ("T003", c3)],
    )
    result = await merger.run(inp)
    assert [t for t, _ in result.merged] == ["T001", "T002"] and result.conflicts == ["T003"]
    assert git(repo, "rev-parse", info.branch) == result.head
    log = git(
        repo, "log", "--format=%s|%(trailers:key=Backforge-Task,valueonly)", "-2", info.branch
    ).splitlines()
    assert [x.strip() for x in log if x.strip()] == ["T002: edit b.py|T002", "T001: edit a.py|T001"]
    assert (
        show(repo, info.branch, "a.py") == "a = 1\n"
        and show(repo, info.branch, "b.py") == "b = 2\n"
    )
    tasks_md = show(repo, info.branch, f"{info.feature_dir}/tasks.md")
    assert "- [X] T001" in tasks_md and "- [X] T002" in tasks_md and "- [ ] T003" in tasks_md
    # A retried merge (any worker) makes the very same commits: nothing moves.
    again = await MergeStep(Services(workspaces=Workspaces(tmp_path / "scratch-again"))).run(inp)
    assert again == result


async def test_a_merge_is_one_checkout_one_check_one_log_and_a_pick_and_commit_per_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspaces(tmp_path / "scratch")
    repo, info, base = await feature_with_tasks(tmp_path, ws)
    c1 = await task_commit(ws, info, base, "T001", "a.py", "a = 1\n")
    c2 = await task_commit(ws, info, base, "T002", "b.py", "b = 2\n")
    inp = MergeInput(
        workflow_id="wf-1", workspace=info, base_commit=base, commits=[("T001", c1), ("T002", c2)]
    )
    processes = GitProcesses(tmp_path, monkeypatch)
    result = await MergeStep(Services(workspaces=ws)).run(inp)
    assert processes.commands() == [
        "worktree", "cat-file", "log", "cherry-pick", "commit", "cherry-pick", "commit", "push",
    ]  # fmt: skip
    assert git(repo, "rev-parse", info.branch) == result.head
    first = result.merged[0][1]
    files = git(repo, "show", "--name-only", "--format=", first).splitlines()
    assert sorted(files) == ["a.py", f"{info.feature_dir}/tasks.md"]  # the pick and the check-off
    assert git(repo, "log", "-1", "--format=%cI", first) == git(
        repo, "log", "-1", "--format=%cI", c1
    )
