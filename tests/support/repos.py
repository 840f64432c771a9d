"""Repositories for workspace tests: a user's checkout, and bare remotes."""

from __future__ import annotations

from pathlib import Path

from activities.workspace import Workspaces
from contract import FeatureRequest, PhaseInput, WorkspaceInfo
from tests.support.git import git

__all__ = [
    "FEATURE",
    "user_repo",
    "bare_remote",
    "request",
    "phase_input",
    "snapshot",
    "workspaces",
]

FEATURE = "Build a bookmarks API with tags and per-user collections"


def user_repo(path: Path) -> Path:
    """A user's checkout on ``main`` with one commit (a tracked file and a .gitignore)."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("print('v1')\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "initial")
    return path


def bare_remote(path: Path, source: Path) -> Path:
    """A bare clone of ``source`` at ``path`` (a remote that is nobody's checkout)."""
    git(path.parent, "clone", "-q", "--bare", str(source), str(path))
    return path


def request(repo: Path | str, feature: str = FEATURE, **kw: object) -> FeatureRequest:
    return FeatureRequest(feature=feature, repo_path=str(repo), **kw)  # type: ignore[arg-type]


def phase_input(info: WorkspaceInfo, base: str, **kw: object) -> PhaseInput:
    fields: dict[str, object] = {
        "workflow_id": "wf-1",
        "phase": "plan",
        "workspace": info,
        "base_commit": base,
        "model": "scripted:x",
    }
    fields.update(kw)
    return PhaseInput.model_validate(fields)


def snapshot(repo: Path) -> dict[str, object]:
    """Everything a user sees of their checkout: files (bytes), HEAD, index, branches."""
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    return {
        "files": files,
        "head": git(repo, "rev-parse", "--symbolic-full-name", "HEAD"),
        "head_commit": git(repo, "rev-parse", "HEAD"),
        "index": (repo / ".git" / "index").read_bytes(),
        "branches": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
    }


def workspaces(tmp: Path, name: str = "worker") -> Workspaces:
    return Workspaces(tmp / f"scratch-{name}")
