"""Workspaces: what phase activities use to check out, commit and publish their work.

Every phase attempt works in a fresh worktree of the worker's own cache, at the
phase's base commit, in the worker's scratch directory (never the user's checkout).
It commits there and publishes before the activity completes:

- a phase's commit goes to the feature branch with a lease on the base commit, so
  an attempt that Temporal has given up on cannot move the branch once a newer
  attempt (or the next phase) has: its push is rejected;
- a parallel task's commit goes to its own write-once ref under
  ``refs/backforge/tasks/``, where the merge step (on any worker) finds it.

A retried attempt that finds the branch moved by an *earlier* attempt of the same
phase invocation (trailers ``Backforge-Run`` and ``Backforge-Attempt``) replaces
that commit; anything else moving the branch is refused with ``BranchMoved``.

A step with nothing to change in the tree (``publish_empty``) commits in the cache
without a checkout. Reading the tree at a commit (``tracked_files``) needs none either.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import IO

from activities.models.run_store import RunStore
from activities.workspace.cache import RepoCache, head_commit
from activities.workspace.features import FeatureRecord, prepare_feature, read_feature
from activities.workspace.files import Workspace, WorkspaceError
from activities.workspace.git import GitError, git
from activities.workspace.records import NAMESPACE, RemoteRecords, ref_component
from activities.workspace.remote import PushRejected, RefUpdate, Remote, ls_remote, push
from contract import FeatureRequest, PhaseInput, WorkspaceInfo

__all__ = ["Checkout", "Workspaces", "BranchMoved", "default_scratch", "commit_trailers"]


class BranchMoved(WorkspaceError):
    """The feature branch is not where this attempt expected it (someone else moved it)."""


def default_scratch() -> Path:
    """``$BACKFORGE_SCRATCH``, else ``.backforge/scratch`` in the current directory."""
    return Path(os.environ.get("BACKFORGE_SCRATCH", ".backforge/scratch"))


class Checkout(Workspace):
    """One attempt's working tree, with the cache it came from."""

    def __init__(self, root: Path, *, cache: RepoCache, base: str) -> None:
        super().__init__(root)
        self.cache = cache
        self.base = base


def commit_trailers(inp: PhaseInput, attempt: int) -> list[str]:
    trailers = [f"Backforge-Workflow: {inp.workflow_id}", f"Backforge-Phase: {inp.phase}"]
    if inp.task_id:
        trailers.append(f"Backforge-Task: {inp.task_id}")
    trailers += [f"Backforge-Run: {inp.run_key}", f"Backforge-Attempt: {attempt}"]
    return trailers


class Workspaces:
    """A worker's scratch area: one cache per remote, one worktree per phase attempt.

    Args:
        scratch: The worker's own directory (default ``default_scratch()``). One worker
            process owns it at a time.
    """

    def __init__(self, scratch: Path | None = None) -> None:
        self.scratch = (scratch or default_scratch()).resolve()
        self._caches: dict[str, RepoCache] = {}
        self._features: dict[str, FeatureRecord] = {}
        self._owner: IO[str] | None = None

    def claim(self) -> None:
        """Take the scratch directory for this process (a worker calls this at start).

        Raises:
            WorkspaceError: Another live worker process uses the same directory.
        """
        self.scratch.mkdir(parents=True, exist_ok=True)
        handle = open(self.scratch / ".owner.lock", "w")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WorkspaceError(
                f"{self.scratch} is used by another worker process; give each worker its own "
                "--scratch directory"
            ) from None
        self._owner = handle
        for leftover in (self.scratch / "attempts").glob("*"):  # a killed worker's worktrees
            shutil.rmtree(leftover, ignore_errors=True)

    def release(self) -> None:
        """Give the scratch directory back (a worker calls this when it stops)."""
        if self._owner is not None:
            self._owner.close()  # closing the file drops the lock
            self._owner = None

    def cache(self, repo: str) -> RepoCache:
        remote = Remote.parse(repo)
        found = self._caches.get(remote.url)
        if found is None:
            found = RepoCache(self.scratch / "cache" / f"{remote.cache_name}.git", remote)
            self._caches[remote.url] = found
        return found

    # ---- preparing and reading a feature -------------------------------------
    async def prepare(self, request: FeatureRequest, workflow_id: str) -> WorkspaceInfo:
        record = await prepare_feature(self.cache(request.repo_path), request, workflow_id)
        self._features[workflow_id] = record  # the phases on this worker need not read it
        return record.workspace

    async def feature_text(self, inp: PhaseInput) -> str:
        """The feature request as the user wrote it (from its record on the remote)."""
        return (await self.feature(inp)).feature

    async def feature(self, inp: PhaseInput) -> FeatureRecord:
        """The feature's record on the remote (read once per worker)."""
        record = self._features.get(inp.workflow_id)
        if record is None:
            cache = await self.cache(inp.workspace.repo_path).ready()
            record = await read_feature(cache, inp.workflow_id)
            if record is None:
                raise WorkspaceError(
                    f"the feature record of {inp.workflow_id} is missing from "
                    f"{inp.workspace.repo_path}; the feature was not prepared by Backforge"
                )
            self._features[inp.workflow_id] = record
        return record

    # ---- one attempt ------------------------------------------------------------
    def checkout(
        self, inp: PhaseInput, *, attempt: int = 1
    ) -> contextlib.AbstractAsyncContextManager[Checkout]:
        """A fresh worktree at ``inp.base_commit`` for one attempt of a phase."""
        return self.worktree(inp.workspace, inp.base_commit, label=f"{inp.run_key}-{attempt}")

    @contextlib.asynccontextmanager
    async def worktree(
        self, workspace: WorkspaceInfo, base: str, *, label: str
    ) -> AsyncIterator[Checkout]:
        """A fresh worktree of the feature at ``base`` in this worker's scratch, removed after."""
        cache = await self.cache(workspace.repo_path).ready()
        name = f"{workspace.branch}-{label}-{secrets.token_hex(3)}"
        path = self.scratch / "attempts" / name
        await cache.add_worktree(
            path, base, f"+refs/heads/{workspace.branch}:{_tracking(workspace.branch)}"
        )
        try:
            yield Checkout(path, cache=cache, base=base)
        finally:
            await cache.remove_worktree(path)

    @contextlib.asynccontextmanager
    async def snapshot(self, repo: str, ref: str | None = None) -> AsyncIterator[Checkout]:
        """A worktree of ``repo`` at ``ref`` (a branch, tag or commit; default the remote's
        default branch), for reading only; removed afterwards.

        Raises:
            WorkspaceError: ``ref`` is not on the remote.
        """
        cache = await self.cache(repo).ready()
        refs = await ls_remote(cache.remote, "HEAD", "refs/heads/*", "refs/tags/*")
        target = ref or refs.get("symref:HEAD") or "refs/heads/main"
        name = next(
            (c for c in (target, f"refs/heads/{target}", f"refs/tags/{target}") if c in refs), None
        )
        fetch: tuple[str, ...] = ()
        if name is not None:
            sha = refs[name]
            fetch = (f"+{name}:{NAMESPACE}/snapshots/{ref_component(name)}",)
        elif re.fullmatch(r"[0-9a-f]{7,40}", target):
            heads = f"+refs/heads/*:{NAMESPACE}/snapshots/heads/*"
            await cache.fetch(heads)
            sha = await git(cache.path, "rev-parse", "--verify", f"{target}^{{commit}}")
        else:
            raise WorkspaceError(f"{target!r} is not a branch, tag or commit of {repo}")
        path = self.scratch / "attempts" / f"snapshot-{secrets.token_hex(4)}"
        await cache.add_worktree(path, sha, *fetch)
        try:
            yield Checkout(path, cache=cache, base=sha)
        finally:
            await cache.remove_worktree(path)

    async def publish(
        self,
        co: Checkout,
        inp: PhaseInput,
        subject: str,
        *,
        body: str = "",
        attempt: int = 1,
        date: datetime | None = None,
    ) -> str:
        """Commit the attempt's tree and publish it; return the commit SHA.

        Raises:
            BranchMoved: The branch moved under this attempt (not by an earlier attempt
                of the same phase); nothing was changed.
            RemoteUnreachable: The push could not reach the remote.
        """
        message = _message(subject, commit_trailers(inp, attempt), body)
        sha = await _commit(co, message, date)
        await self._publish(co.cache, inp, co.base, sha, attempt)
        return sha

    async def publish_empty(
        self,
        inp: PhaseInput,
        subject: str,
        *,
        body: str = "",
        attempt: int = 1,
        date: datetime | None = None,
    ) -> str:
        """Publish a commit that changes nothing on top of ``inp.base_commit``, made in
        the cache without a checkout; return its SHA (as ``publish`` does).

        Raises:
            BranchMoved: As for ``publish``.
            RemoteUnreachable: The push could not reach the remote.
        """
        cache = await self.cache(inp.workspace.repo_path).ready()
        base = inp.base_commit
        message = _message(subject, commit_trailers(inp, attempt), body)
        fetch = f"+refs/heads/{inp.workspace.branch}:{_tracking(inp.workspace.branch)}"
        try:
            sha = await _commit_tree(cache.path, base, message, date)
        except GitError:
            await cache.ensure_commit(base, fetch)
            sha = await _commit_tree(cache.path, base, message, date)
        await self._publish(cache, inp, base, sha, attempt)
        return sha

    async def tracked_files(self, workspace: WorkspaceInfo, commit: str) -> list[str]:
        """Every file of the tree at ``commit`` (one ``git ls-tree`` in the cache)."""
        cache = await self.cache(workspace.repo_path).ready()
        args = ("ls-tree", "-r", "-z", "--name-only", f"{commit}^{{tree}}")
        try:
            out = await git(cache.path, *args)
        except GitError:
            fetch = f"+refs/heads/{workspace.branch}:{_tracking(workspace.branch)}"
            await cache.ensure_commit(commit, fetch)
            out = await git(cache.path, *args)
        return [path for path in out.split("\0") if path]

    async def _publish(
        self, cache: RepoCache, inp: PhaseInput, base: str, sha: str, attempt: int
    ) -> None:
        if inp.worktree:
            ref = f"{NAMESPACE}/tasks/{ref_component(inp.workflow_id)}/{inp.run_key}/{attempt:03d}"
            await push(cache.path, cache.remote, [RefUpdate(ref, sha, expected=None)])
            return
        await self.advance(
            cache, inp.workspace.branch, base=base, sha=sha, run=inp.run_key, attempt=attempt
        )

    async def advance(
        self, cache: RepoCache, branch: str, *, base: str, sha: str, run: str, attempt: int
    ) -> None:
        """Move ``branch`` from ``base`` to ``sha``, fenced as the module docstring says."""
        ref = f"refs/heads/{branch}"
        try:
            await push(cache.path, cache.remote, [RefUpdate(ref, sha, expected=base)])
            return
        except PushRejected:
            pass
        head = (await ls_remote(cache.remote, ref)).get(ref)
        if head == sha:
            return
        if head is not None:
            await cache.fetch(f"+{ref}:{_tracking(branch)}")
            parent, their_run, their_attempt = await _identity(cache.path, head)
            if parent == base and their_run == run and their_attempt < attempt:
                await push(cache.path, cache.remote, [RefUpdate(ref, sha, expected=head)])
                return
        raise BranchMoved(
            f"branch {branch} is at {head[:10] if head else '(deleted)'}, not at {base[:10]} where "
            "this step started: someone else moved it. Move it back to "
            f"{base[:10]} (git push --force-with-lease origin {base}:{ref}) and retry, or abort"
        )

    async def reset(self, repo: str, branch: str, commit: str) -> str:
        """Put the feature branch back at ``commit`` (after a cancel or an abort)."""
        cache = await self.cache(repo).ready()
        ref = f"refs/heads/{branch}"
        head = (await ls_remote(cache.remote, ref)).get(ref)
        if head != commit:
            await cache.ensure_commit(commit, f"+{ref}:{_tracking(branch)}")
            await push(cache.path, cache.remote, [RefUpdate(ref, commit, expected=head or "")])
        return commit

    async def run_store(self, inp: PhaseInput, *, attempt: int) -> RunStore:
        """The run store of this phase invocation, with every earlier attempt's records."""
        cache = await self.cache(inp.workspace.repo_path).ready()
        records = RemoteRecords(cache)
        prefix = f"{NAMESPACE}/runs/{ref_component(inp.workflow_id)}/{inp.run_key}"
        earlier: dict[str, bytes] = {}
        if attempt > 1:  # a first attempt has nothing earlier to replay or pay for
            earlier = {
                ref.removeprefix(prefix + "/"): data
                for ref, data in (await records.get(prefix)).items()
                if not ref.removeprefix(prefix + "/").startswith(f"{attempt:03d}/")
            }

        async def write(new: dict[str, bytes]) -> None:
            await records.put({f"{prefix}/{name}": data for name, data in new.items()})

        return RunStore(attempt=attempt, earlier=earlier, write=write)


def _tracking(branch: str) -> str:
    return f"{NAMESPACE}/remote-heads/{branch}"


def _message(subject: str, trailers: list[str], body: str) -> str:
    first = (subject.strip().splitlines() or ["update"])[0]
    message = first if len(first) <= 72 else first[:71].rsplit(" ", 1)[0] + "…"
    if body.strip():
        message += "\n\n" + body.strip()
    return message + "\n\n" + "\n".join(trailers)


def _dates(date: datetime | None) -> dict[str, str]:
    if date is None:
        return {}
    stamp = date.isoformat()  # the same date on every attempt: same content, same commit
    return {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}


async def _commit(co: Checkout, message: str, date: datetime | None) -> str:
    """Commit everything in the attempt's tree: ``git add -A`` and ``git commit``."""
    await git(co.root, "add", "-A")
    await git(
        co.root, "commit", "-q", "--allow-empty", "--no-verify", "-m", message, env=_dates(date)
    )
    return await head_commit(co.root, co.cache.path)


async def _commit_tree(cache: Path, base: str, message: str, date: datetime | None) -> str:
    """A commit of ``base``'s tree with ``base`` as its parent, made in ``cache`` (with
    the same date, every attempt makes the same commit)."""
    return await git(
        cache,
        "commit-tree",
        f"{base}^{{tree}}",
        "-p",
        base,
        input=(message.strip() + "\n").encode(),
        env=_dates(date),
    )


async def _identity(repo: Path, sha: str) -> tuple[str, str, int]:
    """(first parent, ``Backforge-Run``, ``Backforge-Attempt``) of commit ``sha``."""
    fmt = (
        "%P%x1f%(trailers:key=Backforge-Run,valueonly)"
        "%x1f%(trailers:key=Backforge-Attempt,valueonly)%x1f."  # "." keeps empty fields
    )
    out = await git(repo, "log", "-1", f"--format={fmt}", sha)
    parents, run, attempt, _ = (part.strip() for part in out.split("\x1f"))
    return parents.split()[0] if parents else "", run, int(attempt or 0)
