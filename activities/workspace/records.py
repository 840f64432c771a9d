"""Small durable records on the remote: blobs under private refs in ``refs/backforge/``.

The feature record, the branch-number claims and the model run store are written
here. A record is written once: its push carries a "must not exist" lease, so two
attempts can never overwrite each other's records, and writing the same content
again is a no-op. Because the remote is the one thing every worker shares, a record
survives the loss of the worker host that wrote it.

Namespace (documented in the README):

- ``refs/backforge/features/<workflow>``: the feature request and its branch
- ``refs/backforge/numbers/<NNN>``: which workflow holds feature number NNN
- ``refs/backforge/runs/<workflow>/<run key>/<attempt>/<seq>[-started]``: model calls
- ``refs/backforge/tasks/<workflow>/<task>-<invocation>/<attempt>``: parallel task commits
"""

from __future__ import annotations

import hashlib
import re

from activities.workspace.cache import RepoCache
from activities.workspace.git import GitError
from activities.workspace.remote import RefUpdate, push

__all__ = ["NAMESPACE", "RemoteRecords", "ref_component"]

NAMESPACE = "refs/backforge"


def ref_component(name: str) -> str:
    """``name`` as one safe ref path component (readable prefix plus a digest)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:60].strip("_") or "x"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


class RemoteRecords:
    """Write-once records under ``refs/backforge/`` of one remote, via a worker's cache."""

    def __init__(self, cache: RepoCache) -> None:
        self.cache = cache

    async def put(self, records: dict[str, bytes]) -> None:
        """Write every record at once (each ref must not exist, or hold the same content).

        Raises:
            PushRejected: A ref already holds something else.
        """
        await self.cache.ready()
        updates = [
            RefUpdate(ref=ref, sha=await self.cache.write_blob(data), expected="")
            for ref, data in records.items()
        ]
        await push(self.cache.path, self.cache.remote, updates)

    async def get(self, prefix: str) -> dict[str, bytes]:
        """Every record under ``prefix`` (``ref -> content``), fetched from the remote."""
        prefix = prefix.rstrip("/")
        await self.cache.ready()
        await self.cache.fetch(f"+{prefix}/*:{prefix}/*")
        refs = await self.cache.refs(prefix)
        blobs = await self.cache.read_blobs(sorted(set(refs.values())))
        return {ref: blobs[sha] for ref, sha in refs.items()}

    async def get_one(self, ref: str) -> bytes | None:
        """The record at ``ref``, or None if the remote has none."""
        await self.cache.ready()
        try:
            await self.cache.fetch(f"+{ref}:{ref}")
        except GitError as err:
            if "couldn't find remote ref" in err.stderr:
                return None
            raise
        return (await self.cache.read_blobs([ref]))[ref]  # cat-file reads the ref itself
