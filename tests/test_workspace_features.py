"""Preparing a feature: number, branch and record on the remote, once, without touching
the user's checkout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from activities.workspace import WorkspaceError, short_name
from activities.workspace.features import read_feature
from tests.support.git import GitProcesses, git
from tests.support.repos import FEATURE, phase_input, request, snapshot, user_repo, workspaces


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return user_repo(tmp_path / "repo")


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "branch", "--format=%(refname:short)").splitlines())


def test_short_name() -> None:
    assert short_name(FEATURE) == "bookmarks-api-tags"
    assert short_name("Add a TODO list endpoint!") == "todo-list-endpoint"
    assert short_name("Build the new") == "feature"


async def test_prepare_creates_a_missing_repo(tmp_path: Path) -> None:
    path = tmp_path / "svc"
    info = await workspaces(tmp_path).prepare(request(path), "wf-1")
    assert (path / ".git").is_dir()
    assert info.branch == "001-bookmarks-api-tags"
    assert info.feature_dir == "specs/001-bookmarks-api-tags"
    assert info.base_commit == git(path, "rev-parse", "main")
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "main"  # the checkout stays put
    assert git(path, "rev-parse", info.branch) == info.base_commit


async def test_prepare_leaves_a_dirty_checkout_exactly_as_it_was(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "app.py").write_text("print('local edit')\n")
    (repo / "notes.txt").write_text("mine\n")
    git(repo, "add", "notes.txt")
    (repo / "untracked.py").write_text("x\n")
    before = snapshot(repo)
    info = await workspaces(tmp_path).prepare(request(repo), "wf-1")
    assert info.base_commit == git(repo, "rev-parse", "main")  # the committed base, not the edits
    after = snapshot(repo)
    assert after["files"] == before["files"] and after["index"] == before["index"]
    assert after["head"] == before["head"] and after["status"] == before["status"]
    assert branches(repo) == ["001-bookmarks-api-tags", "main"]


async def test_the_next_feature_gets_the_next_number(repo: Path, tmp_path: Path) -> None:
    ws = workspaces(tmp_path)
    first = await ws.prepare(request(repo), "wf-1")
    second = await ws.prepare(request(repo, "Add CSV export of orders"), "wf-2")
    assert (first.branch, second.branch) == ("001-bookmarks-api-tags", "002-csv-export-orders")
    assert first.base_commit == second.base_commit  # both from main, not stacked


async def test_numbers_follow_existing_specs_dirs(repo: Path, tmp_path: Path) -> None:
    (repo / "specs" / "007-old-thing").mkdir(parents=True)
    (repo / "specs" / "007-old-thing" / "spec.md").write_text("# old\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "old spec")
    info = await workspaces(tmp_path).prepare(request(repo), "wf-1")
    assert info.branch == "008-bookmarks-api-tags"


async def test_prepare_is_idempotent_per_workflow_id(repo: Path, tmp_path: Path) -> None:
    first = await workspaces(tmp_path, "a").prepare(request(repo), "wf/1:odd id")
    # Another worker, with its own empty scratch, retries the same preparation.
    again = await workspaces(tmp_path, "b").prepare(request(repo), "wf/1:odd id")
    assert again == first
    assert branches(repo) == ["001-bookmarks-api-tags", "main"]
    numbers = git(repo, "for-each-ref", "--format=%(refname)", "refs/backforge/numbers/")
    assert numbers.splitlines() == ["refs/backforge/numbers/001"]
    record = await read_feature(workspaces(tmp_path, "c").cache(str(repo)), "wf/1:odd id")
    assert record is not None and record.feature == FEATURE and record.base_branch == "main"


async def test_concurrent_features_get_distinct_numbers(repo: Path, tmp_path: Path) -> None:
    infos = await asyncio.gather(
        *(
            workspaces(tmp_path, f"w{i}").prepare(
                request(repo, f"Feature number {i} here"), f"wf-{i}"
            )
            for i in range(4)
        )
    )
    assert sorted(i.branch[:3] for i in infos) == ["001", "002", "003", "004"]
    assert len(branches(repo)) == 5


async def test_a_base_ref_is_used_and_recorded(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "-b", "develop")
    (repo / "dev.py").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "dev")
    ws = workspaces(tmp_path)
    info = await ws.prepare(request(repo, base_ref="develop"), "wf-1")
    assert info.base_commit == git(repo, "rev-parse", "develop")
    record = await read_feature(ws.cache(str(repo)), "wf-1")
    assert record is not None and record.base_branch == "develop"


async def test_the_default_base_skips_a_checked_out_feature_branch(
    repo: Path, tmp_path: Path
) -> None:
    git(repo, "checkout", "-q", "-b", "003-earlier-feature")
    (repo / "x.py").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "x")
    info = await workspaces(tmp_path).prepare(request(repo), "wf-1")
    assert info.base_commit == git(repo, "rev-parse", "main")
    assert info.branch.startswith("004-")


async def test_a_missing_base_ref_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="--base 'nope' is not a branch or tag"):
        await workspaces(tmp_path).prepare(request(repo, base_ref="nope"), "wf-1")
    assert branches(repo) == ["main"]


async def test_preparing_takes_five_git_processes_and_the_record_is_kept(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes = GitProcesses(tmp_path, monkeypatch)
    ws = workspaces(tmp_path)
    info = await ws.prepare(request(repo), "wf-1")
    # The cache, one listing (which also says there is no earlier record), the base, the
    # numbers under specs/, and one push of the claim, the record and the branch.
    assert processes.commands() == ["init", "ls-remote", "fetch", "ls-tree", "push"]
    processes.clear()
    assert await ws.feature_text(phase_input(info, info.base_commit)) == FEATURE
    assert processes.commands() == []  # this worker prepared it: no read from the remote
