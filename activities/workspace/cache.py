"""A worker's own cache of one remote: a bare repository its attempts check out from.

Each worker keeps one cache per remote under its scratch directory and reuses it
across features. Phase attempts get a fresh worktree of it at their base commit,
so their commits land in the cache's object store and the next phase on this
worker needs no fetch. Fetches and worktree changes are serialised per cache
(concurrent ones race on git's lock files); everything else runs side by side.

Git runs only where it buys something: a checkout is one ``git worktree add`` (a
commit not in the cache yet is fetched when that fails), a worktree is removed by
deleting it and its administrative directory, and a record's blob is written as a
loose object by Python (git's own format), not by one ``git hash-object`` each.
File work runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path

from activities.workspace.git import GitError, git, run_git
from activities.workspace.remote import Remote

__all__ = ["RepoCache", "admin_dir", "head_commit"]

#: The cache's settings, appended to the ``config`` ``git init`` writes (a section may
#: repeat in a git config file), instead of one ``git config`` process per key.
_CONFIG = (
    "[gc]\n\tauto = 0\n"  # objects of live worktrees are never collected under them
    "[core]\n\thooksPath = /dev/null\n"
    "[fetch]\n\twriteCommitGraph = false\n"
    "[receive]\n\tdenyCurrentBranch = ignore\n"
)
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def admin_dir(worktree: Path, cache: Path) -> Path | None:
    """The administrative directory of ``worktree`` in ``cache`` (``worktrees/<id>``).

    Read from the worktree's ``.git`` file and accepted only if it is a directory
    directly under the cache's ``worktrees/`` (a tree's ``.git`` file is not trusted to
    name anything else); None otherwise.
    """
    try:
        text = (worktree / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    found = Path(text.removeprefix("gitdir:").strip())
    if not found.is_absolute():
        found = worktree / found
    found = found.resolve()
    if found.parent != (cache / "worktrees").resolve() or not found.is_dir():
        return None
    return found


async def head_commit(worktree: Path, cache: Path) -> str:
    """The commit a detached worktree of ``cache`` has checked out.

    Read from its ``HEAD`` file; ``git rev-parse`` only when that is not a plain SHA
    (a branch was checked out in the tree, or the layout is not the one expected).
    """
    admin = admin_dir(worktree, cache)
    if admin is not None:
        with contextlib.suppress(OSError):
            head = (admin / "HEAD").read_text(encoding="ascii").strip()
            if _SHA.fullmatch(head):
                return head
    return await git(worktree, "rev-parse", "HEAD")


def _write_loose_blob(objects: Path, data: bytes) -> str:
    """Store ``data`` as a loose blob under ``objects`` (SHA-1 repositories); its SHA."""
    raw = b"blob %d\0" % len(data) + data
    sha = hashlib.sha1(raw, usedforsecurity=False).hexdigest()
    target = objects / sha[:2] / sha[2:]
    if target.exists():
        return sha
    target.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix="tmp_obj_")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(zlib.compress(raw))
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)  # an identical object written meanwhile is simply replaced
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return sha


def _object_format(config: Path) -> str:
    """``sha1`` unless the repository's config names another object format."""
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "sha1"
    found = re.search(r"^\s*objectformat\s*=\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
    return found.group(1).lower() if found else "sha1"


class RepoCache:
    """The bare cache of ``remote`` at ``path`` (created on first use)."""

    def __init__(self, path: Path, remote: Remote) -> None:
        self.path = path
        self.remote = remote
        self._lock = asyncio.Lock()
        self._ready = False
        self._sha1: bool | None = None

    async def ready(self) -> RepoCache:
        """Create the cache if needed (idempotent)."""
        if self._ready:
            return self
        async with self._lock:
            if not (self.path / "HEAD").is_file():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.name + ".init")
                await asyncio.to_thread(shutil.rmtree, tmp, ignore_errors=True)
                await git(None, "init", "--quiet", "--bare", str(tmp))
                with open(tmp / "config", "a", encoding="utf-8") as config:
                    config.write(_CONFIG)
                tmp.rename(self.path)
            else:
                await git(self.path, "worktree", "prune")
            self._sha1 = _object_format(self.path / "config") == "sha1"
            self._ready = True
        return self

    async def fetch(self, *refspecs: str) -> None:
        """Fetch ``refspecs`` from the remote into the cache (serialised)."""
        async with self._lock:
            await git(self.path, "fetch", "--quiet", "--no-tags", self.remote.url, *refspecs)

    async def has_commit(self, sha: str) -> bool:
        done = await run_git(self.path, "cat-file", "-e", f"{sha}^{{commit}}")
        return done.returncode == 0

    async def ensure_commit(self, sha: str, *refspecs: str) -> None:
        """Make ``sha`` available, fetching ``refspecs`` if it is not here yet.

        Raises:
            GitError: The commit is not on the remote under those refs either.
        """
        if await self.has_commit(sha):
            return
        await self.fetch(*refspecs)
        if not await self.has_commit(sha):
            raise GitError(
                ("fetch",), 1, f"commit {sha[:12]} is not on {self.remote.url} under {refspecs}"
            )

    async def missing_commits(self, shas: list[str]) -> list[str]:
        """Those of ``shas`` that are not commits in the cache (one ``cat-file`` process)."""
        if not shas:
            return []
        done = await run_git(
            self.path,
            "cat-file",
            "--batch-check=%(objecttype)",
            input="".join(f"{sha}^{{commit}}\n" for sha in shas).encode(),
        )
        if done.returncode != 0:
            raise GitError(("cat-file", "--batch-check"), done.returncode, done.stderr)
        kinds = done.stdout.splitlines()
        return [sha for sha, kind in zip(shas, kinds, strict=True) if kind != "commit"]

    async def ensure_commits(self, shas: list[str], *refspecs: str) -> None:
        """``ensure_commit`` for many commits: one check, one fetch if any is missing.

        Raises:
            GitError: A commit is not on the remote under those refs either.
        """
        if not await self.missing_commits(shas):
            return
        await self.fetch(*refspecs)
        if missing := await self.missing_commits(shas):
            raise GitError(
                ("fetch",),
                1,
                f"commit {missing[0][:12]} is not on {self.remote.url} under {refspecs}",
            )

    async def add_worktree(self, path: Path, commit: str, *refspecs: str) -> None:
        """A detached worktree of ``commit`` at ``path`` (replacing any left at ``path``).

        One ``git worktree add`` when the commit is in the cache; if it is not, it is
        fetched with ``refspecs`` (when given) and the worktree added then.

        Raises:
            GitError: The worktree could not be added (the commit is nowhere to be found).
        """
        try:
            await self._add_worktree(path, commit)
        except GitError:
            if not refspecs or await self.has_commit(commit):
                raise
            await self.ensure_commit(commit, *refspecs)
            await self._add_worktree(path, commit)

    async def _add_worktree(self, path: Path, commit: str) -> None:
        async with self._lock:
            if path.exists():
                await run_git(self.path, "worktree", "remove", "--force", str(path))
                await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
                await git(self.path, "worktree", "prune")
            path.parent.mkdir(parents=True, exist_ok=True)
            await git(self.path, "worktree", "add", "--quiet", "--detach", str(path), commit)

    async def remove_worktree(self, path: Path) -> None:
        """Delete the worktree at ``path`` and git's record of it (what ``git worktree
        remove --force`` does, without a git process)."""
        admin = await asyncio.to_thread(admin_dir, path, self.path)
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
        if admin is not None:
            await asyncio.to_thread(shutil.rmtree, admin, ignore_errors=True)
        else:  # not a worktree as expected: let git forget whatever is gone
            async with self._lock:
                await run_git(self.path, "worktree", "prune")

    async def write_blob(self, data: bytes) -> str:
        """Store ``data`` as a blob in the cache; return its SHA (no git process)."""
        if self._sha1 is None:
            self._sha1 = _object_format(self.path / "config") == "sha1"
        if self._sha1:
            return await asyncio.to_thread(_write_loose_blob, self.path / "objects", data)
        return await git(self.path, "hash-object", "-w", "--stdin", input=data)

    async def refs(self, prefix: str) -> dict[str, str]:
        """Local refs under ``prefix`` (``ref -> sha``)."""
        out = await git(self.path, "for-each-ref", "--format=%(objectname) %(refname)", prefix)
        return {ref: sha for sha, _, ref in (line.partition(" ") for line in out.splitlines())}

    async def read_blobs(self, shas: list[str]) -> dict[str, bytes]:
        """The content of each blob in ``shas`` (one ``cat-file --batch`` process)."""
        if not shas:
            return {}
        proc = await asyncio.create_subprocess_exec(
            "git",
            "cat-file",
            "--batch",
            cwd=self.path,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate("".join(f"{s}\n" for s in shas).encode())
        if proc.returncode != 0:
            raise GitError(("cat-file", "--batch"), proc.returncode or 1, err.decode())
        blobs: dict[str, bytes] = {}
        pos = 0
        for sha in shas:
            end = out.index(b"\n", pos)
            header = out[pos:end].decode().split()
            pos = end + 1
            if len(header) < 3 or header[1] == "missing":
                raise GitError(("cat-file",), 1, f"object {sha} is missing from the cache")
            size = int(header[2])
            blobs[sha] = out[pos : pos + size]
            pos += size + 1
        return blobs
