"""Preparing a feature: its number, its branch and its record, created once.

Preparation is one atomic push of three refs, each with a "must not exist" lease:
the number claim ``refs/backforge/numbers/NNN``, the feature record
``refs/backforge/features/<workflow>`` and the branch ``NNN-short-name`` at the base
commit. A kill at any instruction leaves either all three or none: a retry finds
the record (and returns the same branch) or claims again. Concurrent features on
one repository race for numbers through the leases; the loser takes the next one.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from pydantic import BaseModel

from activities.workspace.cache import RepoCache
from activities.workspace.files import WorkspaceError
from activities.workspace.git import git, git_sync
from activities.workspace.records import NAMESPACE, RemoteRecords, ref_component
from activities.workspace.remote import (
    FEATURE_BRANCH,
    PushRejected,
    RefUpdate,
    default_branch,
    ls_remote,
    push,
)
from contract import FeatureRequest, WorkspaceInfo

__all__ = ["FeatureRecord", "prepare_feature", "read_feature", "short_name", "init_repo"]

_STOPWORDS = {
    "a", "an", "the", "and", "or", "with", "for", "of", "to", "in", "on", "by", "from",
    "build", "create", "add", "implement", "make", "write", "new", "that", "which", "per",
    "user", "users", "please", "some", "into", "our", "my", "its", "their",
}  # fmt: skip
_MAX_CLAIMS = 50


class FeatureRecord(BaseModel):
    """What ``refs/backforge/features/<workflow>`` holds."""

    workflow_id: str
    feature: str
    workspace: WorkspaceInfo
    #: The branch the feature started from (a pull request's target), e.g. ``main``.
    base_branch: str


def short_name(feature: str, *, words: int = 3) -> str:
    """``Build a bookmarks API with tags...`` -> ``bookmarks-api-tags``."""
    tokens = re.findall(r"[a-z0-9]+", feature.lower())
    kept = [t for t in tokens if t not in _STOPWORDS and len(t) > 1][:words]
    return "-".join(kept) or "feature"


def feature_ref(workflow_id: str) -> str:
    return f"{NAMESPACE}/features/{ref_component(workflow_id)}"


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
    try:
        repo.mkdir(parents=True, exist_ok=True)
        if not (repo / ".git").exists():
            git_sync(repo, "init", "-q", "-b", "main")
        head = git_sync(repo, "rev-parse", "--verify", "-q", "HEAD", check=False)
        if head:
            return head
        if not files and not (repo / "README.md").exists():
            files = {"README.md": f"# {repo.name}\n\nService repository managed with Backforge.\n"}
        for rel, text in (files or {}).items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text, encoding="utf-8")
        git_sync(repo, "add", "-A")
        git_sync(repo, "commit", "-q", "-m", message)
        return git_sync(repo, "rev-parse", "HEAD")
    except FileNotFoundError as err:
        raise WorkspaceError("git is not installed (or not on PATH); install git") from err
    except OSError as err:
        raise WorkspaceError(f"cannot create the repository at {repo}: {err}") from err


async def read_feature(cache: RepoCache, workflow_id: str) -> FeatureRecord | None:
    """The feature record of ``workflow_id`` on the remote, if it was prepared."""
    data = await RemoteRecords(cache).get_one(feature_ref(workflow_id))
    return FeatureRecord.model_validate_json(data) if data is not None else None


async def prepare_feature(
    cache: RepoCache, request: FeatureRequest, workflow_id: str
) -> FeatureRecord:
    """Create the feature's branch and record, or find them again (idempotent).

    Returns:
        The feature's record (its ``workspace`` is what the workflow works on).

    Raises:
        WorkspaceError: The repository cannot hold the feature (the message says why).
        RemoteUnreachable: The remote cannot be read or written.
    """
    remote = cache.remote
    if remote.local_path is not None and (
        not remote.local_path.exists() or not any(remote.local_path.iterdir())
    ):
        # A new or empty directory: start it with a README (git, off the event loop).
        await asyncio.to_thread(init_repo, remote.local_path)
    await cache.ready()
    for _ in range(_MAX_CLAIMS):
        # One listing says whether the feature was prepared already (an earlier attempt)
        # and, if not, which numbers and branches are taken.
        refs = await ls_remote(
            remote,
            "HEAD",
            "refs/heads/*",
            "refs/tags/*",
            f"{NAMESPACE}/numbers/*",
            feature_ref(workflow_id),
        )
        if feature_ref(workflow_id) in refs:
            existing = await read_feature(cache, workflow_id)
            if existing is not None:
                return existing
        base_branch = default_branch(refs, request.base_ref)
        base = refs[base_branch]
        await cache.fetch(f"+{base_branch}:{NAMESPACE}/bases/{ref_component(base_branch)}")
        number = await _next_number(cache, refs, base)
        branch = f"{number:03d}-{short_name(request.feature)}"
        info = WorkspaceInfo(
            repo_path=request.repo_path,
            branch=branch,
            feature_dir=f"specs/{branch}",
            base_commit=base,
        )
        record = FeatureRecord(
            workflow_id=workflow_id,
            feature=request.feature,
            workspace=info,
            base_branch=base_branch.removeprefix("refs/heads/").removeprefix("refs/tags/"),
        )
        updates = [
            RefUpdate(
                f"{NAMESPACE}/numbers/{number:03d}",
                await cache.write_blob(workflow_id.encode()),
            ),
            RefUpdate(
                feature_ref(workflow_id), await cache.write_blob(record.model_dump_json().encode())
            ),
            RefUpdate(f"refs/heads/{branch}", base),
        ]
        try:
            await push(cache.path, remote, updates)
        except PushRejected:
            existing = await read_feature(cache, workflow_id)
            if existing is not None:  # an earlier attempt of this workflow got there first
                return existing
            continue  # the number (or the branch name) was taken: claim the next one
        return record
    raise WorkspaceError(
        f"could not claim a feature number on {remote.url} after {_MAX_CLAIMS} tries"
    )


async def _next_number(cache: RepoCache, refs: dict[str, str], base: str) -> int:
    """One above every number in use: claims, feature branches, and ``specs/NNN-*`` at base."""
    used = set()
    for ref in refs:
        if ref.startswith(f"{NAMESPACE}/numbers/"):
            with_number = ref.rsplit("/", 1)[-1]
        elif ref.startswith("refs/heads/"):
            with_number = ref.removeprefix("refs/heads/")
        else:
            continue
        if m := FEATURE_BRANCH.match(with_number) or re.fullmatch(r"(\d{3})", with_number):
            used.add(int(m.group(1)))
    out = await git(cache.path, "ls-tree", "--name-only", base, "specs/", check=False)
    for name in out.splitlines():
        if m := FEATURE_BRANCH.match(name.removeprefix("specs/")):
            used.add(int(m.group(1)))
    return max(used, default=0) + 1
