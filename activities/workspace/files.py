"""Confined file access to one attempt's working tree.

Every path the pipeline (or a model) touches goes through ``Workspace.resolve``,
which refuses absolute paths, ``..``, symlinks that leave the tree, and ``.git``.
Writes are capped per file and per attempt, so a runaway model cannot commit
hundreds of megabytes into the branch.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "WorkspaceError",
    "PathRefused",
    "LimitExceeded",
    "Workspace",
    "MAX_FILE_BYTES",
    "MAX_ATTEMPT_BYTES",
]

#: Largest file a phase may write (generated source and documents are far smaller).
MAX_FILE_BYTES = 1024 * 1024
#: Most bytes one phase attempt may write in all (its commit's added content).
MAX_ATTEMPT_BYTES = 16 * 1024 * 1024


class WorkspaceError(Exception):
    """The repository or a path in it is not usable as asked (the message says what to do)."""


class PathRefused(WorkspaceError):
    """A path that would leave the workspace or touch a private area."""


class LimitExceeded(WorkspaceError):
    """A write over the per-file or per-attempt size limit."""


class Workspace:
    """Confined access to one working tree (an attempt's checkout)."""

    def __init__(
        self,
        root: str | Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_attempt_bytes: int = MAX_ATTEMPT_BYTES,
    ) -> None:
        self.root = Path(root).resolve()
        self.max_file_bytes = max_file_bytes
        self.max_attempt_bytes = max_attempt_bytes
        #: Bytes written through this object so far (what the attempt's commit adds).
        self.written_bytes = 0

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
        """Write ``content`` to ``rel`` (parents created).

        Raises:
            PathRefused: The path is not allowed.
            LimitExceeded: The file, or the attempt's writes in all, would be too large.
        """
        if not isinstance(content, str):
            raise TypeError(f"{rel}: content must be text, not {type(content).__name__}")
        path = self.resolve(rel)
        if path.is_dir():
            raise IsADirectoryError(f"{rel}: is a directory")
        for parent in path.relative_to(self.root).parents:
            if (self.root / parent).is_file():
                raise NotADirectoryError(f"{rel}: {parent} is a file, not a directory")
        size = len(content.encode("utf-8"))
        if size > self.max_file_bytes:
            raise LimitExceeded(
                f"{rel}: {size} bytes is over the {self.max_file_bytes}-byte limit for one file; "
                "split it into smaller modules (nothing was written)"
            )
        if self.written_bytes + size > self.max_attempt_bytes:
            raise LimitExceeded(
                f"{rel}: this step has written {self.written_bytes} bytes; {size} more would pass "
                f"the {self.max_attempt_bytes}-byte limit for one step (nothing was written)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(content)
        self.written_bytes += size
        return path

    def exists(self, rel: str) -> bool:
        try:
            return self.resolve(rel).exists()
        except PathRefused:
            return False
