"""Parallel [P] tasks: batching, merging in task order, and the sequential fallback."""

from __future__ import annotations

import subprocess
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.phases.merge import merge
from activities.workspace import Workspace, task_worktree
from tests.conftest import git, unique
from tests.test_workflow import Fakes, request
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.scheduling import batches
from workflows.types import (
    MergeInput,
    MergeResult,
    PhaseInput,
    PhaseOutcome,
    TaskItem,
    WorkspaceInfo,
)


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


def _repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    repo.mkdir()

    def run(*a):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *a],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    run("init", "-q", "-b", "001-x")
    (repo / "specs/001-x").mkdir(parents=True)
    (repo / "specs/001-x/tasks.md").write_text(
        "- [ ] T001 [P] a in a.py\n- [ ] T002 [P] b in b.py\n- [ ] T003 [P] a again in a.py\n"
    )
    (repo / "a.py").write_text("a = 0\n")
    run("add", "-A")
    run("commit", "-q", "-m", "base")
    return repo, git(repo, "rev-parse", "HEAD")


def _task_commit(repo: Path, base: str, tid: str, path: str, content: str) -> str:
    ws = task_worktree(repo, "001-x", tid, base)
    ws.write(path, content)
    return ws.commit(f"{tid}: edit {path}", workflow_id="wf", phase="implement", task_id=tid)


def test_merge_keeps_task_order_checks_off_and_stops_at_a_conflict(tmp_path: Path) -> None:
    repo, base = _repo(tmp_path)
    c1 = _task_commit(repo, base, "T001", "a.py", "a = 1\n")
    c2 = _task_commit(repo, base, "T002", "b.py", "b = 2\n")
    c3 = _task_commit(repo, base, "T003", "a.py", "a = 3\n")  # conflicts with T001
    info = WorkspaceInfo(
        repo_path=str(repo),
        branch="001-x",
        feature_dir="specs/001-x",
        base_commit=base,
        head_commit=base,
    )
    result = merge(
        MergeInput(
            workflow_id="wf",
            workspace=info,
            base_commit=base,
            commits=[("T001", c1), ("T002", c2), ("T003", c3)],
        )
    )
    assert [t for t, _ in result.merged] == ["T001", "T002"] and result.conflicts == ["T003"]
    assert git(repo, "rev-parse", "001-x") == result.head
    assert git(repo, "status", "--porcelain") == ""
    log = git(
        repo, "log", "--format=%s|%(trailers:key=Backforge-Task,valueonly)", "-2"
    ).splitlines()
    assert [x.strip() for x in log if x.strip()] == ["T002: edit b.py|T002", "T001: edit a.py|T001"]
    assert (repo / "a.py").read_text() == "a = 1\n" and (repo / "b.py").read_text() == "b = 2\n"
    tasks_md = (repo / "specs/001-x/tasks.md").read_text()
    assert "- [X] T001" in tasks_md and "- [X] T002" in tasks_md and "- [ ] T003" in tasks_md


def test_worktree_restores_a_forged_git_file(tmp_path: Path) -> None:
    repo, base = _repo(tmp_path)
    ws = task_worktree(repo, "001-x", "T009", base)
    genuine = (ws.root / ".git").read_text()
    (ws.root / ".git").write_text("gitdir: /tmp/attacker-controlled\n")  # as generated code could
    assert Workspace(ws.root, gitfile=genuine).git("rev-parse", "HEAD") == base
    assert (ws.root / ".git").read_text() == genuine


class ParallelFakes(Fakes):
    """Two disjoint [P] tasks; the fake merge reports a conflict for the second."""

    def __init__(self) -> None:
        super().__init__(clarify=False)
        self.merges: list[MergeInput] = []

    async def _phase(self, inp: PhaseInput) -> PhaseOutcome:
        if inp.phase == "tasks":
            self.calls.append(inp)
            tasks = [task("T001", "app/a.py"), task("T002", "app/b.py")]
            return self._outcome(inp, tasks=tasks)
        return await super()._phase(inp)

    def activities(self) -> list:
        @activity.defn(name="merge_task_commits")
        async def fake_merge(inp: MergeInput) -> MergeResult:
            self.merges.append(inp)
            first_task, first_commit = inp.commits[0]
            return MergeResult(head="f" * 40, merged=[(first_task, "f" * 40)], conflicts=["T002"])

        return [*super().activities(), fake_merge]


async def test_workflow_runs_parallel_tasks_together_and_redoes_conflicts_alone(
    ts_env: WorkflowEnvironment,
) -> None:
    fakes = ParallelFakes()
    queue = unique("par")
    async with build_worker(ts_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await ts_env.client.start_workflow(
            BackendFeatureWorkflow.run, request(), id=unique("par"), task_queue=queue
        )
        result = await handle.result()
    assert result.state == "completed"
    implements = [c for c in fakes.calls if c.phase == "implement"]
    first_two, redo = implements[:2], implements[2:]
    # Both [P] tasks ran in worktrees from the same base, concurrently (before the merge).
    assert {c.task_id for c in first_two} == {"T001", "T002"} and all(c.worktree for c in first_two)
    assert first_two[0].base_commit == first_two[1].base_commit
    assert [c for t, c in fakes.merges[0].commits] and [t for t, _ in fakes.merges[0].commits] == [
        "T001",
        "T002",
    ]
    # The conflicting task ran again, alone, on top of what merged.
    assert [(c.task_id, c.worktree, c.base_commit) for c in redo] == [("T002", False, "f" * 40)]
    assert [r.task_id for r in result.commits if r.phase == "implement"] == ["T001", "T002"]
