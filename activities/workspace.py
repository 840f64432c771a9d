"""The git-backed workspace: the target repo, its feature branch, confined file access.

Every path the pipeline (or a model) touches goes through ``Workspace.resolve``,
which refuses absolute paths, ``..`` and symlinks that leave the repo, and
Backforge's private areas (``.git``). Phases commit with trailers naming the
workflow id and phase, so ``git log`` tells which phase wrote what.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from workflows.types import FeatureRequest, WorkspaceInfo

__all__ = [
    "WorkspaceError",
    "PathRefused",
    "Workspace",
    "check_repo_path",
    "short_name",
    "prepare",
    "private_dir",
]

_GIT_IDENTITY = ["-c", "user.name=Backforge", "-c", "user.email=backforge@localhost"]
_STOPWORDS = {
    "a", "an", "the", "and", "or", "with", "for", "of", "to", "in", "on", "by", "from",
    "build", "create", "add", "implement", "make", "write", "new", "that", "which", "per",
    "user", "users", "please", "some", "into", "our", "my", "its", "their",
}  # fmt: skip


class WorkspaceError(Exception):
    """The repo is not usable as asked (message says what to do)."""


class PathRefused(WorkspaceError):
    """A path that would leave the workspace or touch a private area."""


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in ``repo`` and return stdout (stripped)."""
    proc = subprocess.run(
        ["git", *_GIT_IDENTITY, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
    )
    if check and proc.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def check_repo_path(path: str) -> None:
    """Raise ``ValueError`` if ``path`` cannot hold a feature (before anything starts)."""
    p = Path(path).expanduser()
    if not p.exists():
        if not p.parent.exists():
            raise ValueError(
                f"repo path {path!r} does not exist and neither does its parent; "
                "create the parent directory or pass an existing repo"
            )
        return  # created and initialised by the prepare step
    if not p.is_dir():
        raise ValueError(f"repo path {path!r} is a file; pass a git repository directory")
    if not os.access(p, os.R_OK | os.W_OK | os.X_OK):
        raise ValueError(f"repo path {path!r} is not readable and writable; fix its permissions")
    if not any(p.iterdir()):
        return  # empty: initialised by the prepare step
    if not (p / ".git").exists():
        raise ValueError(
            f"repo path {path!r} exists and is not a git repository; run `git init` there "
            "or pass an empty or new directory"
        )


def short_name(feature: str, *, words: int = 3) -> str:
    """``Build a bookmarks API with tags...`` -> ``bookmarks-api-tags``."""
    tokens = re.findall(r"[a-z0-9]+", feature.lower())
    kept = [t for t in tokens if t not in _STOPWORDS and len(t) > 1][:words]
    return "-".join(kept) or "feature"


def private_dir(repo: Path) -> Path:
    """Backforge's private area in the target repo: never committed, never reset."""
    return repo / ".git" / "backforge"


class Workspace:
    """Confined access to one repo's work tree."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # ---- paths -----------------------------------------------------------
    def resolve(self, rel: str) -> Path:
        """Map a repo-relative path to an absolute one inside the work tree.

        Raises:
            PathRefused: for absolute paths, ``..`` escapes, symlinks leaving the
                repo, and ``.git``.
        """
        if not isinstance(rel, str) or not rel.strip():
            raise PathRefused("path is empty; give a path relative to the repository root")
        rel = rel.strip()
        if rel.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", rel):
            raise PathRefused(
                f"{rel}: absolute paths are refused; use a path relative to the repo root"
            )
        parts = Path(rel).parts
        if ".." in parts:
            raise PathRefused(f"{rel}: '..' is refused; paths must stay inside the repository")
        if parts and parts[0] == ".git":
            raise PathRefused(f"{rel}: .git is off limits")
        target = (self.root / rel).resolve()
        if target != self.root and self.root not in target.parents:
            raise PathRefused(f"{rel}: resolves outside the repository (through a symlink)")
        if target == self.root / ".git" or (self.root / ".git") in target.parents:
            raise PathRefused(f"{rel}: resolves into .git, which is off limits")
        return target

    def read(self, rel: str) -> str:
        path = self.resolve(rel)
        if not path.is_file():
            raise FileNotFoundError(f"{rel}: no such file")
        return path.read_text(encoding="utf-8")

    def write(self, rel: str, content: str) -> Path:
        path = self.resolve(rel)
        if path.is_dir():
            raise IsADirectoryError(f"{rel}: is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        return path

    def exists(self, rel: str) -> bool:
        try:
            return self.resolve(rel).exists()
        except PathRefused:
            return False

    # ---- git -------------------------------------------------------------
    def git(self, *args: str, check: bool = True) -> str:
        return git(self.root, *args, check=check)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def tree_of(self, commit: str) -> str:
        return self.git("rev-parse", f"{commit}^{{tree}}")

    def reset_to(self, branch: str, commit: str) -> None:
        """Put ``branch`` at ``commit`` with a clean work tree (ignored files stay)."""
        self.git("checkout", "-q", "-f", "-B", branch, commit)
        self.git("reset", "-q", "--hard", commit)
        self.git("clean", "-q", "-fd")

    def commit(
        self,
        subject: str,
        *,
        workflow_id: str,
        phase: str,
        task_id: str | None = None,
        body: str = "",
    ) -> str:
        """Commit everything in the work tree (empty commits allowed) and return the SHA."""
        self.git("add", "-A")
        trailers = [f"Backforge-Workflow: {workflow_id}", f"Backforge-Phase: {phase}"]
        if task_id:
            trailers.append(f"Backforge-Task: {task_id}")
        message = subject.strip().splitlines()[0][:72]
        if body.strip():
            message += "\n\n" + body.strip()
        message += "\n\n" + "\n".join(trailers)
        self.git("commit", "-q", "--allow-empty", "--no-verify", "-m", message)
        return self.head()


def _initialise(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    if git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False) == "":
        readme = repo / "README.md"
        if not readme.exists():
            readme.write_text(f"# {repo.name}\n\nService repository managed with Backforge.\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "Initial commit")


def _next_number(repo: Path) -> int:
    used = {
        int(m.group(1)) for p in (repo / "specs").glob("*") if (m := re.match(r"(\d{3})-", p.name))
    }
    for line in git(repo, "branch", "--list", "--format=%(refname:short)").splitlines():
        if m := re.match(r"(\d{3})-", line.strip()):
            used.add(int(m.group(1)))
    return max(used, default=0) + 1


def prepare(request: FeatureRequest, workflow_id: str) -> WorkspaceInfo:
    """Create (or reuse, on retry) the feature branch for ``workflow_id``.

    Idempotent: the choice of number and branch is recorded in the repo's
    private area, so a retried attempt returns the same branch.
    """
    try:
        check_repo_path(request.repo_path)
    except ValueError as err:
        raise WorkspaceError(str(err)) from err
    repo = Path(request.repo_path).expanduser().resolve()
    _initialise(repo)
    record = private_dir(repo) / "features" / f"{_safe(workflow_id)}.json"
    if record.exists():
        info = WorkspaceInfo.model_validate_json(record.read_text())
        info.head_commit = git(repo, "rev-parse", info.branch)
        return info
    if git(repo, "status", "--porcelain"):
        raise WorkspaceError(
            f"{repo} has uncommitted changes; commit or stash them before starting a feature"
        )
    base = git(repo, "rev-parse", "HEAD")
    number = _next_number(repo)
    branch = f"{number:03d}-{short_name(request.feature)}"
    git(repo, "checkout", "-q", "-b", branch, base)
    info = WorkspaceInfo(
        repo_path=str(repo),
        branch=branch,
        feature_dir=f"specs/{branch}",
        base_commit=base,
        head_commit=base,
    )
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(info.model_dump_json(indent=2))
    return info


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
