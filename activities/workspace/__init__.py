"""The feature's repository: a remote the workers fetch from and push to.

Backforge never changes the user's checkout. The repository named by ``--repo``
(a local path or any git URL) is used as a remote; each worker keeps its own cache
of it under a scratch directory, checks out every phase attempt into a fresh
worktree there, and publishes by pushing. What reaches the user's repository is
refs: the feature branch, and records under ``refs/backforge/``.

- ``workspaces.py``: ``Workspaces``, the service phases use (checkout, publish, reset)
- ``files.py``: ``Workspace``, confined file access with size limits
- ``remote.py``: addressing a remote, pre-flight checks, fenced pushes
- ``cache.py``: a worker's cache of one remote and its worktrees
- ``records.py``: write-once records under ``refs/backforge/`` (the run store's home)
- ``features.py``: preparing a feature (number, branch, record), idempotently
- ``git.py``: running git without blocking the event loop
"""

from activities.workspace.features import FeatureRecord, init_repo, short_name
from activities.workspace.files import (
    LimitExceeded,
    PathRefused,
    Workspace,
    WorkspaceError,
)
from activities.workspace.remote import (
    PushRejected,
    Remote,
    RemoteUnreachable,
    check_repo_path,
    preflight,
)
from activities.workspace.workspaces import BranchMoved, Checkout, Workspaces, default_scratch

__all__ = [
    "BranchMoved",
    "Checkout",
    "FeatureRecord",
    "LimitExceeded",
    "PathRefused",
    "PushRejected",
    "Remote",
    "RemoteUnreachable",
    "Workspace",
    "WorkspaceError",
    "Workspaces",
    "check_repo_path",
    "default_scratch",
    "init_repo",
    "preflight",
    "short_name",
]
