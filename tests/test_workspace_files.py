"""Confined file access to an attempt's working tree, with size limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from activities.workspace import LimitExceeded, PathRefused, Workspace


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    (path / ".git").mkdir(parents=True)
    (path / "app.py").write_text("print('v1')\n")
    return path


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


def test_a_file_over_the_limit_is_refused_and_nothing_is_written(repo: Path) -> None:
    ws = Workspace(repo, max_file_bytes=100, max_attempt_bytes=1000)
    with pytest.raises(LimitExceeded, match="over the 100-byte limit for one file"):
        ws.write("big.py", "x" * 101)
    assert not (repo / "big.py").exists()


def test_an_attempt_may_write_only_so_much_in_all(repo: Path) -> None:
    ws = Workspace(repo, max_file_bytes=100, max_attempt_bytes=250)
    ws.write("a.py", "a" * 100)
    ws.write("b.py", "b" * 100)
    with pytest.raises(LimitExceeded, match="limit for one step"):
        ws.write("c.py", "c" * 100)
    assert not (repo / "c.py").exists() and ws.written_bytes == 200
