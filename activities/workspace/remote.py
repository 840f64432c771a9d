"""The user's repository, as a git remote: addressing, pre-flight, and fenced pushes.

Backforge never works in the user's checkout. The repository (a local path or any
git URL) is a remote: workers fetch from it into their own caches and push new
refs to it, each update guarded by a lease on the value the pusher expects.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from activities.workspace.files import WorkspaceError
from activities.workspace.git import GitError, git, git_sync, run_git
from telemetry.spans import push_span

__all__ = [
    "Remote",
    "RefUpdate",
    "PushRejected",
    "RemoteUnreachable",
    "FEATURE_BRANCH",
    "check_repo_path",
    "preflight",
    "ls_remote",
    "push",
    "default_branch",
]

_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|[\w.-]+@[\w.-]+:)")
#: Branches Backforge names ``NNN-short-name``.
FEATURE_BRANCH = re.compile(r"^(\d{3})-")
_LS_TIMEOUT_S = 30


class RemoteUnreachable(WorkspaceError):
    """The remote cannot be read (wrong URL, no credentials, network)."""


class PushRejected(WorkspaceError):
    """A push whose lease did not hold: someone else moved the ref."""

    def __init__(self, ref: str, message: str) -> None:
        self.ref = ref
        super().__init__(message)


@dataclass(frozen=True)
class Remote:
    """Where a feature's repository lives."""

    #: What git is given: an absolute path for a repository on this machine, else the URL.
    url: str
    #: The repository's directory, when it is on this machine.
    local_path: Path | None = None

    @classmethod
    def parse(cls, repo: str) -> Remote:
        """A remote from what the user passed as ``--repo`` (a path or a git URL)."""
        repo = repo.strip()
        if repo.startswith("file://"):
            path = Path(repo.removeprefix("file://")).resolve()
            return cls(url=str(path), local_path=path)
        if _URL.match(repo):
            return cls(url=repo)
        path = Path(repo).expanduser().resolve()
        return cls(url=str(path), local_path=path)

    @property
    def cache_name(self) -> str:
        """A directory name for this remote's cache: readable tail plus a digest."""
        tail = re.sub(r"[^A-Za-z0-9_.-]", "_", self.url.rstrip("/").rsplit("/", 1)[-1])[:40]
        return f"{tail}-{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class RefUpdate:
    """One ref to set on the remote, and what the pusher believes it holds now.

    ``expected`` is the lease: a SHA the ref must still point at, ``""`` for "must
    not exist", or None for no lease (force).
    """

    ref: str
    sha: str
    expected: str | None = ""


def check_repo_path(path: str) -> None:
    """Raise ``ValueError`` if a local ``path`` cannot be a feature's repository."""
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
    if not any(p.iterdir()):
        return  # empty: initialised by the prepare step
    if not (p / ".git").exists() and not (p / "HEAD").is_file():
        raise ValueError(
            f"repo path {path!r} exists and is not a git repository; run `git init` there "
            "or pass an empty or new directory"
        )


def preflight(repo: str, base_ref: str | None = None) -> None:
    """Check, before anything starts, that ``repo`` is usable and ``base_ref`` exists.

    A local path that does not exist yet (or is empty) is fine: the prepare step
    creates it. Runs ``git ls-remote`` (no credentials prompt, bounded time).

    Raises:
        ValueError: One line saying what is wrong and what to do.
    """
    remote = Remote.parse(repo)
    if remote.local_path is not None:
        check_repo_path(str(remote.local_path))
        p = remote.local_path
        if not p.exists() or not any(p.iterdir()):
            if base_ref:
                raise ValueError(
                    f"--base {base_ref!r}: the repository {repo!r} is new or empty and has no refs"
                )
            return
    try:
        refs = _ls_sync(remote)
    except RemoteUnreachable as err:
        raise ValueError(str(err)) from None
    if base_ref and _find_ref(refs, base_ref) is None:
        branches = sorted(
            r.removeprefix("refs/heads/") for r in refs if r.startswith("refs/heads/")
        )
        raise ValueError(
            f"--base {base_ref!r} is not a branch or tag of {repo}; "
            f"its branches are {', '.join(branches[:10]) or 'none'}"
        )


def _ls_sync(remote: Remote) -> dict[str, str]:
    try:
        out = git_sync(None, "ls-remote", "--symref", remote.url)
    except GitError as err:
        raise RemoteUnreachable(_unreachable(remote, err)) from None
    return _parse_ls(out)


def _unreachable(remote: Remote, err: GitError) -> str:
    why = err.stderr.splitlines()[-1] if err.stderr else f"exit {err.returncode}"
    return (
        f"cannot read the repository {remote.url}: {why}. Check the URL, and that the worker "
        "has the remote's credentials (an SSH key or a credential helper)"
    )


def _parse_ls(out: str) -> dict[str, str]:
    refs: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("ref: "):  # --symref: "ref: refs/heads/main\tHEAD"
            target, _, name = line.removeprefix("ref: ").partition("\t")
            refs[f"symref:{name}"] = target
            continue
        sha, _, name = line.partition("\t")
        if name:
            refs[name] = sha
    return refs


def _find_ref(refs: dict[str, str], name: str) -> str | None:
    for candidate in (name, f"refs/heads/{name}", f"refs/tags/{name}"):
        if candidate in refs and candidate.startswith("refs/"):
            return candidate
    return None


async def ls_remote(remote: Remote, *patterns: str) -> dict[str, str]:
    """The remote's refs (``ref -> sha``; ``symref:HEAD`` names the default branch).

    Raises:
        RemoteUnreachable: With what to do.
    """
    try:
        out = await git(None, "ls-remote", "--symref", remote.url, *patterns)
    except GitError as err:
        raise RemoteUnreachable(_unreachable(remote, err)) from None
    return _parse_ls(out)


def default_branch(refs: dict[str, str], base_ref: str | None) -> str:
    """The branch a feature starts from: ``base_ref``, else the remote's default branch.

    A default branch that is itself a Backforge feature branch is skipped in favour of
    ``main`` or ``master``, so features do not stack on each other by accident.

    Raises:
        WorkspaceError: ``base_ref`` is not a branch or tag, or the remote has no branch.
    """
    if base_ref:
        found = _find_ref(refs, base_ref)
        if found is None:
            raise WorkspaceError(f"--base {base_ref!r} is not a branch or tag of the repository")
        return found
    head = refs.get("symref:HEAD")
    if head in refs and not FEATURE_BRANCH.match(head.removeprefix("refs/heads/")):
        return head
    for name in ("refs/heads/main", "refs/heads/master"):
        if name in refs:
            return name
    if head in refs:
        return head
    branches = sorted(r for r in refs if r.startswith("refs/heads/"))
    if not branches:
        raise WorkspaceError("the repository has no branch to start from; push a first commit")
    return branches[0]


async def push(repo_dir: Path, remote: Remote, updates: list[RefUpdate]) -> None:
    """Set every ref in ``updates`` on the remote at once, or none of them.

    Raises:
        PushRejected: A lease did not hold (the message names the ref).
        RemoteUnreachable: The remote could not be written.
    """
    with push_span(remote.url, [u.ref for u in updates]):
        await _push(repo_dir, remote, updates)


async def _push(repo_dir: Path, remote: Remote, updates: list[RefUpdate]) -> None:
    args = ["push", "--quiet", "--porcelain", "--atomic", remote.url]
    for u in updates:
        if u.expected is None:
            args.append(f"+{u.sha}:{u.ref}")
        else:
            args += [f"--force-with-lease={u.ref}:{u.expected}", f"{u.sha}:{u.ref}"]
    done = await run_git(repo_dir, *args)
    if done.returncode == 0:
        return
    # --porcelain: one line per ref on stdout, "!" for a rejected one.
    for line in done.stdout.splitlines():
        flag, _, rest = line.partition("\t")
        if flag == "!":
            ref = rest.split("\t", 1)[0].rsplit(":", 1)[-1]
            reason = rest.split("\t", 1)[-1]
            if "atomic push failed" not in reason:
                raise PushRejected(ref, f"push of {ref} rejected: {reason}")
    if "stale info" in done.stdout or "atomic push failed" in done.stderr:
        raise PushRejected(updates[0].ref, f"push rejected: {done.stdout.strip()}")
    raise RemoteUnreachable(
        f"cannot push to {remote.url}: {(done.stderr or done.stdout).strip()[-500:]}"
    )
