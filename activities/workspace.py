"""The git-backed workspace: the target repo, its feature branch, confined file access.

Every path the pipeline (or a model) touches goes through ``Workspace.resolve``,
which refuses absolute paths, ``..`` and symlinks that leave the repo, and
Backforge's private areas (``.git``). Phases commit with trailers naming the
workflow id and phase, so ``git log`` tells which phase wrote what.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from contract import FeatureRequest, PhaseInput, WorkspaceInfo

__all__ = [
    "WorkspaceError",
    "PathRefused",
    "Workspace",
    "check_repo_path",
    "short_name",
    "prepare",
    "private_dir",
    "task_worktree",
    "remove_worktree",
    "feature_text",
    "init_repo",
    "Workspaces",
]

_GIT_IDENTITY = [
    "-c", "user.name=Backforge", "-c", "user.email=backforge@localhost", "-c", "commit.gpgsign=false",
]  # fmt: skip
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
    try:
        proc = subprocess.run(
            ["git", *_GIT_IDENTITY, *args],
            cwd=repo,
            capture_output=True,
            text=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError as err:
        raise WorkspaceError("git is not installed (or not on PATH); install git") from err
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
        if not p.parent.is_dir():
            raise ValueError(
                f"repo path {path!r}: its parent {str(p.parent)!r} is a file, not a directory"
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
    """Confined access to one repo's work tree (the main one, or a task's worktree)."""

    def __init__(self, root: str | Path, *, gitfile: str | None = None) -> None:
        self.root = Path(root).resolve()
        #: For a linked worktree: the expected content of its ``.git`` file. Generated
        #: code can write the work tree, so it is restored before every git command
        #: (a forged gitdir would let it choose the config and hooks git runs).
        self.gitfile = gitfile

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
        if "\x00" in rel:
            raise PathRefused(f"{rel!r}: NUL bytes are not allowed in paths")
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
        with open(path, encoding="utf-8", newline="") as f:  # keep CRLF files as they are
            return f.read()

    def write(self, rel: str, content: str) -> Path:
        if not isinstance(content, str):
            raise TypeError(f"{rel}: content must be text, not {type(content).__name__}")
        path = self.resolve(rel)
        if path.is_dir():
            raise IsADirectoryError(f"{rel}: is a directory")
        for parent in path.relative_to(self.root).parents:
            if (self.root / parent).is_file():
                raise NotADirectoryError(f"{rel}: {parent} is a file, not a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(content)
        return path

    def exists(self, rel: str) -> bool:
        try:
            return self.resolve(rel).exists()
        except PathRefused:
            return False

    # ---- git -------------------------------------------------------------
    def git(self, *args: str, check: bool = True) -> str:
        if self.gitfile is not None:
            dotgit = self.root / ".git"
            if dotgit.is_symlink() or dotgit.is_dir():
                raise WorkspaceError(f"{dotgit} was replaced; refusing to run git there")
            if not dotgit.exists() or dotgit.read_text() != self.gitfile:
                dotgit.write_text(self.gitfile)
            os.chown(dotgit, os.getuid(), os.getgid())
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
        first = (subject.strip().splitlines() or [f"{phase} {task_id or ''}".strip()])[0]
        message = first if len(first) <= 72 else first[:71].rsplit(" ", 1)[0] + "…"
        if body.strip():
            message += "\n\n" + body.strip()
        message += "\n\n" + "\n".join(trailers)
        self.git("commit", "-q", "--allow-empty", "--no-verify", "-m", message)
        return self.head()


def task_worktree(repo: str | Path, branch: str, task_id: str, commit: str) -> Workspace:
    """A fresh detached worktree at ``commit`` for one parallel task.

    Lives in the repo's private area; recreated on every attempt so a retry
    starts clean. Commits made there land in the shared object store.
    """
    repo = Path(repo).resolve()
    path = private_dir(repo) / "worktrees" / f"{branch}-{task_id}"
    if path.exists():
        git(repo, "worktree", "remove", "--force", str(path), check=False)
        if path.exists():
            shutil.rmtree(path)
    git(repo, "worktree", "prune")
    path.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "add", "--detach", "-q", str(path), commit)
    return Workspace(path, gitfile=(path / ".git").read_text())


def remove_worktree(repo: str | Path, path: str | Path) -> None:
    git(Path(repo), "worktree", "remove", "--force", str(path), check=False)


def init_repo(
    repo: Path, *, files: dict[str, str] | None = None, message: str = "Initial commit"
) -> str:
    """Make ``repo`` a git repository on ``main`` with a first commit; return its SHA.

    ``files`` (repo-relative path -> text) are written first; without them a
    README.md is written unless one exists. An existing repository with commits
    is left as it is.

    Raises:
        WorkspaceError: git is missing or the directory is not writable.
    """
    repo.mkdir(parents=True, exist_ok=True)
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    head = git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False)
    if head:
        return head
    if not files and not (repo / "README.md").exists():
        files = {"README.md": f"# {repo.name}\n\nService repository managed with Backforge.\n"}
    for rel, text in (files or {}).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _feature_base(repo: Path) -> str:
    """Start a feature from the checked-out branch, unless that is another feature's branch.

    After a feature, the repo is left on its branch; the next feature starts
    from the branch that feature started from (main), not on top of it.
    """
    current = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    if re.match(r"^\d{3}-", current):
        for name in ("main", "master"):
            if git(repo, "rev-parse", "--verify", "-q", name, check=False):
                return git(repo, "rev-parse", name)
    return git(repo, "rev-parse", "HEAD")


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
    init_repo(repo)
    record = private_dir(repo) / "features" / f"{_safe(workflow_id)}.json"
    if record.exists():
        return WorkspaceInfo.model_validate_json(record.read_text())
    if git(repo, "status", "--porcelain"):
        raise WorkspaceError(
            f"{repo} has uncommitted changes; commit or stash them before starting a feature"
        )
    base = _feature_base(repo)
    number = _next_number(repo)
    branch = f"{number:03d}-{short_name(request.feature)}"
    git(repo, "checkout", "-q", "-b", branch, base)
    info = WorkspaceInfo(
        repo_path=str(repo),
        branch=branch,
        feature_dir=f"specs/{branch}",
        base_commit=base,
    )
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(info.model_dump_json(indent=2))
    # The request text stays here, not in every phase's input (history carries references).
    record.with_suffix(".feature.txt").write_text(request.feature, encoding="utf-8")
    return info


def feature_text(repo: str | Path, workflow_id: str) -> str:
    """The feature request recorded by ``prepare`` for ``workflow_id``."""
    path = private_dir(Path(repo)) / "features" / f"{_safe(workflow_id)}.feature.txt"
    if not path.is_file():
        raise WorkspaceError(f"{path} is missing; the feature branch was not prepared by Backforge")
    return path.read_text(encoding="utf-8")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class Workspaces:
    """Working trees for phase attempts: each attempt starts at its base commit."""

    @contextlib.asynccontextmanager
    async def checkout(self, inp: PhaseInput) -> AsyncIterator[Workspace]:
        """The feature's tree at ``inp.base_commit``: the branch reset, or a task worktree."""
        repo = inp.workspace.repo_path
        if inp.worktree and inp.task_id:
            ws = await asyncio.to_thread(
                task_worktree, repo, inp.workspace.branch, inp.task_id, inp.base_commit
            )
            try:
                yield ws
            finally:
                await asyncio.to_thread(remove_worktree, repo, ws.root)
            return
        ws = Workspace(repo)
        await asyncio.to_thread(ws.reset_to, inp.workspace.branch, inp.base_commit)
        yield ws

    async def commit(self, ws: Workspace, inp: PhaseInput, subject: str, *, body: str = "") -> str:
        """Commit the attempt's tree with the phase's trailers; return the SHA."""
        return await asyncio.to_thread(
            ws.commit,
            subject,
            workflow_id=inp.workflow_id,
            phase=inp.phase,
            task_id=inp.task_id,
            body=body,
        )

    def feature_text(self, inp: PhaseInput) -> str:
        """The feature request as the user wrote it."""
        return feature_text(inp.workspace.repo_path, inp.workflow_id)

    async def show(self, inp: PhaseInput, rel: str) -> str | None:
        """``rel`` as it is at ``inp.base_commit`` (None if absent)."""
        ws = Workspace(inp.workspace.repo_path)
        text = await asyncio.to_thread(ws.git, "show", f"{inp.base_commit}:{rel}", check=False)
        return text or None
