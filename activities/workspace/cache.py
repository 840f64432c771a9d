"""A worker's own cache of one remote: a bare repository its attempts check out from.

Each worker keeps one cache per remote under its scratch directory and reuses it
across features. Phase attempts get a fresh worktree of it at their base commit,
so their commits land in the cache's object store and the next phase on this
worker needs no fetch. Fetches and worktree changes are serialised per cache
(concurrent ones race on git's lock files); everything else runs side by side.

A record's blob is written as a loose object by Python (git's own format), not by
one ``git hash-object`` each, in a thread, never on the event loop.
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

__all__ = ["RepoCache"]

#: The cache's settings, appended to the ``config`` ``git init`` writes (a section may
#: repeat in a git config file), instead of one ``git config`` process per key.
_CONFIG = (
    "[gc]\n\tauto = 0\n"  # objects of live worktrees are never collected under them
    "[core]\n\thooksPath = /dev/null\n"
    "[fetch]\n\twriteCommitGraph = false\n"
    "[receive]\n\tdenyCurrentBranch = ignore\n"
)


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

    async def add_worktree(self, path: Path, commit: str) -> None:
        """A detached worktree of ``commit`` at ``path`` (replacing any left at ``path``)."""
        async with self._lock:
            if path.exists():
                await run_git(self.path, "worktree", "remove", "--force", str(path))
                shutil.rmtree(path, ignore_errors=True)
                await git(self.path, "worktree", "prune")
            path.parent.mkdir(parents=True, exist_ok=True)
            await git(self.path, "worktree", "add", "--quiet", "--detach", str(path), commit)

    async def remove_worktree(self, path: Path) -> None:
        async with self._lock:
            await run_git(self.path, "worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)

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
