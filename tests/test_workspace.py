"""The git-backed workspace (confinement, commits, reset, prepare) and the helpers that
read and write the spec-kit artifacts in it (tasks.md, spec.md clarifications, pytest output).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from activities.workspace import (
    PathRefused,
    Workspace,
    WorkspaceError,
    check_repo_path,
    feature_text,
    prepare,
    private_dir,
    short_name,
)
from contract import FeatureRequest

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
FEATURE = "Build a bookmarks API with tags and per-user collections"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repo on ``main`` with one commit (a tracked file and a .gitignore)."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("print('v1')\n")
    (path / ".gitignore").write_text("*.log\n.venv/\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def request(repo_path: Path, feature: str = FEATURE) -> FeatureRequest:
    return FeatureRequest(feature=feature, repo_path=str(repo_path))


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "branch", "--format=%(refname:short)").splitlines())


# ---------------------------------------------------------------------------
# Workspace.resolve


def test_resolve_accepts_paths_inside(repo: Path) -> None:
    ws = Workspace(repo)
    root = repo.resolve()
    assert ws.resolve("app.py") == root / "app.py"
    assert ws.resolve("./app.py") == root / "app.py"
    assert ws.resolve("  app.py  ") == root / "app.py"
    assert ws.resolve("new/dir/file.py") == root / "new" / "dir" / "file.py"
    assert ws.resolve(".gitignore") == root / ".gitignore"
    assert ws.resolve(".github/workflows/ci.yml") == root / ".github" / "workflows" / "ci.yml"
    assert ws.resolve(".") == root


def test_resolve_follows_links_that_stay_inside(repo: Path) -> None:
    os.symlink("app.py", repo / "alias.py")
    (repo / "pkg").mkdir()
    os.symlink(repo / "pkg", repo / "pkglink")
    ws = Workspace(repo)
    assert ws.resolve("alias.py") == repo.resolve() / "app.py"
    assert ws.resolve("pkglink/mod.py") == repo.resolve() / "pkg" / "mod.py"


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("", "path is empty"),
        ("   ", "path is empty"),
        ("/etc/passwd", "absolute paths are refused"),
        ("~/.bashrc", "absolute paths are refused"),
        ("~", "absolute paths are refused"),
        ("C:\\Windows\\x", "absolute paths are refused"),
        ("../x", "'..' is refused"),
        ("sub/../../x", "'..' is refused"),
        ("sub/../app.py", "'..' is refused"),
        (".git", ".git is off limits"),
        (".git/config", ".git is off limits"),
        ("./.git/HEAD", ".git is off limits"),
        (".git/backforge/features/x.json", ".git is off limits"),
    ],
)
def test_resolve_refuses(repo: Path, rel: str, message: str) -> None:
    with pytest.raises(PathRefused, match=message.replace(".", r"\.")):
        Workspace(repo).resolve(rel)


def test_resolve_refuses_links_leaving_the_repo_or_into_git(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("outside\n")
    os.symlink(outside / "f.txt", repo / "leak.txt")
    os.symlink(outside, repo / "outdir")
    os.symlink(tmp_path / "nowhere.txt", repo / "dangling.txt")  # dangling, outside
    os.symlink(".git", repo / "gitlink")
    os.symlink("..", repo / "up")
    ws = Workspace(repo)
    for rel in ("leak.txt", "outdir", "outdir/f.txt", "outdir/new.txt", "dangling.txt", "up/x"):
        with pytest.raises(PathRefused, match="outside the repository"):
            ws.resolve(rel)
    for rel in ("gitlink", "gitlink/config"):
        with pytest.raises(PathRefused, match="resolves into .git"):
            ws.resolve(rel)
    assert not ws.exists("leak.txt")
    assert not ws.exists(".git/HEAD")
    with pytest.raises(PathRefused):
        ws.write("dangling.txt", "x")
    assert not (tmp_path / "nowhere.txt").exists()
    with pytest.raises(PathRefused):
        ws.read("leak.txt")


def test_read_write_and_their_errors(repo: Path) -> None:
    ws = Workspace(repo)
    ws.write("specs/001-x/spec.md", "# Spec\n")
    assert ws.read("specs/001-x/spec.md") == "# Spec\n"
    assert ws.exists("specs/001-x/spec.md")
    assert not ws.exists("specs/001-x/plan.md")
    with pytest.raises(FileNotFoundError, match="specs/001-x/plan.md: no such file"):
        ws.read("specs/001-x/plan.md")
    with pytest.raises(FileNotFoundError):
        ws.read("specs")  # a directory is not a file
    with pytest.raises(IsADirectoryError):
        ws.write("specs", "x")


# ---------------------------------------------------------------------------
# commit and reset_to


def test_commit_carries_trailers(repo: Path) -> None:
    ws = Workspace(repo)
    ws.write("app.py", "print('v2')\n")
    sha = ws.commit(
        "implement: T003 bookmark model\nsecond line is dropped",
        workflow_id="wf-123",
        phase="implement",
        task_id="T003",
        body="Created the model.",
    )
    assert sha == git(repo, "rev-parse", "HEAD")
    assert git(repo, "log", "-1", "--format=%s") == "implement: T003 bookmark model"
    trailers = git(repo, "log", "-1", "--format=%(trailers)").splitlines()
    assert trailers == [
        "Backforge-Workflow: wf-123",
        "Backforge-Phase: implement",
        "Backforge-Task: T003",
    ]
    assert "Created the model." in git(repo, "log", "-1", "--format=%b")
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "show", "HEAD:app.py") == "print('v2')"


def test_commit_without_task_and_empty_commit(repo: Path) -> None:
    ws = Workspace(repo)
    before = ws.head()
    sha = ws.commit("x" * 100, workflow_id="wf-9", phase="plan")
    assert sha != before
    assert git(repo, "rev-parse", f"{sha}^") == before
    assert ws.tree_of(sha) == ws.tree_of(before)  # nothing changed: still a commit
    subject = git(repo, "log", "-1", "--format=%s")
    assert len(subject) <= 72 and subject.endswith("…")
    assert git(repo, "log", "-1", "--format=%(trailers:key=Backforge-Phase,valueonly)") == "plan"
    assert git(repo, "log", "-1", "--format=%(trailers:key=Backforge-Task)") == ""
    assert git(repo, "log", "-1", "--format=%(trailers:key=Backforge-Workflow,valueonly)") == "wf-9"


def test_commit_adds_new_and_deleted_files(repo: Path) -> None:
    ws = Workspace(repo)
    ws.write("new/mod.py", "x = 1\n")
    (repo / "app.py").unlink()
    sha = ws.commit("spec", workflow_id="wf", phase="specify")
    files = git(repo, "ls-tree", "-r", "--name-only", sha).splitlines()
    assert "new/mod.py" in files
    assert "app.py" not in files


def test_reset_to_drops_changes_and_untracked_but_keeps_ignored(repo: Path) -> None:
    ws = Workspace(repo)
    base = ws.head()
    (repo / "app.py").write_text("print('dirty')\n")
    (repo / "untracked.py").write_text("x\n")
    (repo / "newdir" / "deep").mkdir(parents=True)
    (repo / "newdir" / "deep" / "f.py").write_text("x\n")
    (repo / "run.log").write_text("ignored log\n")
    (repo / ".venv").mkdir()
    (repo / ".venv" / "marker").write_text("env\n")
    private = private_dir(repo) / "runs" / "keep.json"
    private.parent.mkdir(parents=True)
    private.write_text("{}")
    ws.reset_to("main", base)
    assert (repo / "app.py").read_text() == "print('v1')\n"
    assert not (repo / "untracked.py").exists()
    assert not (repo / "newdir").exists()
    assert (repo / "run.log").read_text() == "ignored log\n"
    assert (repo / ".venv" / "marker").read_text() == "env\n"
    assert private.read_text() == "{}"
    assert git(repo, "status", "--porcelain") == ""


def test_reset_to_moves_the_branch_back_and_checks_it_out(repo: Path) -> None:
    ws = Workspace(repo)
    base = ws.head()
    git(repo, "checkout", "-q", "-b", "001-x")
    ws.write("later.py", "y\n")
    later = ws.commit("later", workflow_id="wf", phase="plan")
    git(repo, "checkout", "-q", "main")
    ws.write("stray.txt", "z\n")
    ws.reset_to("001-x", base)
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "001-x"
    assert ws.head() == base
    assert not (repo / "later.py").exists()
    assert not (repo / "stray.txt").exists()
    ws.reset_to("001-x", later)  # and forward again (a retry after a later phase)
    assert (repo / "later.py").read_text() == "y\n"


# ---------------------------------------------------------------------------
# check_repo_path


def test_check_repo_path_accepts_new_empty_and_git_dirs(repo: Path, tmp_path: Path) -> None:
    check_repo_path(str(tmp_path / "brand-new"))
    (tmp_path / "empty").mkdir()
    check_repo_path(str(tmp_path / "empty"))
    check_repo_path(str(repo))
    assert not (tmp_path / "brand-new").exists()  # checking creates nothing


def test_check_repo_path_refuses_a_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file; pass a git repository directory") as err:
        check_repo_path(str(f))
    assert str(f) in str(err.value)


def test_check_repo_path_refuses_non_git_non_empty_dir(tmp_path: Path) -> None:
    d = tmp_path / "project"
    d.mkdir()
    (d / "main.py").write_text("x")
    with pytest.raises(ValueError, match="is not a git repository") as err:
        check_repo_path(str(d))
    assert "git init" in str(err.value)
    assert str(d) in str(err.value)


def test_check_repo_path_refuses_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither does its parent"):
        check_repo_path(str(tmp_path / "no" / "such" / "repo"))


def test_check_repo_path_refuses_a_file_as_parent(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("x")
    with pytest.raises(ValueError):
        check_repo_path(str(f / "repo"))


# ---------------------------------------------------------------------------
# prepare


def test_short_name() -> None:
    assert short_name(FEATURE) == "bookmarks-api-tags"
    assert short_name("Add a TODO list endpoint!") == "todo-list-endpoint"
    assert short_name("Build the new") == "feature"


def test_prepare_creates_a_missing_repo(tmp_path: Path) -> None:
    path = tmp_path / "svc"
    info = prepare(request(path), "wf-1")
    assert (path / ".git").is_dir()
    assert info.repo_path == str(path.resolve())
    assert info.branch == "001-bookmarks-api-tags"
    assert info.feature_dir == "specs/001-bookmarks-api-tags"
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == "001-bookmarks-api-tags"
    assert git(path, "log", "--format=%s", "main") == "Initial commit"
    assert info.base_commit == git(path, "rev-parse", "main")
    assert (path / "README.md").exists()
    assert git(path, "status", "--porcelain") == ""
    record = private_dir(path) / "features" / "wf-1.json"
    assert json.loads(record.read_text())["branch"] == "001-bookmarks-api-tags"


def test_prepare_initialises_an_empty_dir(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.mkdir()
    info = prepare(request(path), "wf-1")
    assert info.branch == "001-bookmarks-api-tags"
    assert git(path, "rev-parse", "--verify", "main") == info.base_commit


def test_prepare_second_feature_gets_the_next_number(repo: Path) -> None:
    first = prepare(request(repo), "wf-1")
    second = prepare(request(repo, "Add CSV export of orders"), "wf-2")
    assert first.branch == "001-bookmarks-api-tags"
    assert second.branch == "002-csv-export-orders"
    assert branches(repo) == ["001-bookmarks-api-tags", "002-csv-export-orders", "main"]


def test_prepare_numbers_after_existing_specs_dirs(repo: Path) -> None:
    (repo / "specs" / "007-old-thing").mkdir(parents=True)
    (repo / "specs" / "007-old-thing" / "spec.md").write_text("# old\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old spec")
    assert prepare(request(repo), "wf-1").branch == "008-bookmarks-api-tags"


def test_prepare_is_idempotent_per_workflow_id(repo: Path) -> None:
    first = prepare(request(repo), "wf/1:odd id")
    ws = Workspace(repo)
    ws.write("specs/001-bookmarks-api-tags/spec.md", "# spec\n")
    ws.commit("spec", workflow_id="wf/1:odd id", phase="specify")
    again = prepare(request(repo), "wf/1:odd id")
    assert again.branch == first.branch
    assert again.base_commit == first.base_commit
    assert branches(repo) == ["001-bookmarks-api-tags", "main"]
    records = sorted(p.name for p in (private_dir(repo) / "features").iterdir())
    assert records == ["wf_1_odd_id.feature.txt", "wf_1_odd_id.json"]
    assert feature_text(repo, "wf/1:odd id") == FEATURE


@pytest.mark.parametrize("dirt", ["modified", "untracked"])
def test_prepare_refuses_a_dirty_repo(repo: Path, dirt: str) -> None:
    if dirt == "modified":
        (repo / "app.py").write_text("print('local edit')\n")
    else:
        (repo / "scratch.py").write_text("x\n")
    with pytest.raises(WorkspaceError, match="uncommitted changes; commit or stash them"):
        prepare(request(repo), "wf-1")
    assert branches(repo) == ["main"]
    assert not (private_dir(repo) / "features" / "wf-1.json").exists()


def test_prepare_refuses_a_non_git_dir_with_files(tmp_path: Path) -> None:
    d = tmp_path / "project"
    d.mkdir()
    (d / "main.py").write_text("x")
    with pytest.raises(WorkspaceError, match="not a git repository"):
        prepare(request(d), "wf-1")
    assert not (d / ".git").exists()
