"""Merging parallel tasks' commits onto the branch, in task order."""

from __future__ import annotations

import subprocess
from pathlib import Path

from activities.phases.merge import merge
from activities.workspace import Workspace, task_worktree
from contract import MergeInput, WorkspaceInfo
from tests.support.git import git


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
