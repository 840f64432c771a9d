"""A test run is not repeated on the same files: the worker keeps its recent runs by content.

A model typically runs the tests, sees them pass and calls ``finish``; the evidence check
then ran the very same tests on the very same files again. The fix step runs the whole
suite, commits, and the test phase ran it once more on the same tree. Each such run is
seconds of CPU on a machine whose cores are the bottleneck.

A run is identified by what decides its result: a digest of the tree exactly as the
sandbox copies it (every path, permission bits, file content and symlink target, ``.git``
left out: ``launcher.copy_tree``'s view), the project environment's key, the selection
and the limits. A completed run (not timed out, exit code 0 or 1: pytest ran and
reported) is kept in a small per-process LRU; a later run with the same identity gets a
copy of it marked ``reused`` (and logged). The copy is otherwise identical: what the
model reads and what the test phase writes are the same whether the tests ran again or
not, so a prompt, and its record on the branch, does not depend on which worker ran
what before (a retried attempt on another worker sends the same prompt and replays its
recorded calls). Everything else (timeouts, interrupted sessions, environment failures)
runs again. The worker computed the kept result itself, in the sandbox, with its
recorder: reusing it trusts nothing the earlier run did not. Tests whose result depends
on the clock or on chance can pass once and fail the next time; reuse hides that second
chance, exactly as not re-running would.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

__all__ = ["tree_digest", "RunCache"]

Run = TypeVar("Run", bound=BaseModel)

_CHUNK = 1 << 20
_log = logging.getLogger(__name__)


def tree_digest(root: Path) -> str:
    """SHA-256 over ``root`` as the sandbox copies it: paths, modes, contents, links."""
    digest = hashlib.sha256()
    stack = [Path(root)]
    while stack:
        here = stack.pop()
        with os.scandir(here) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name == ".git":
                    continue
                st = entry.stat(follow_symlinks=False)
                rel = os.path.relpath(entry.path, root).encode()
                mode = stat.S_IMODE(st.st_mode) & 0o777
                if stat.S_ISDIR(st.st_mode):
                    digest.update(b"D\0" + rel + b"\0%o\0" % mode)
                    stack.append(Path(entry.path))
                elif stat.S_ISREG(st.st_mode):
                    digest.update(b"F\0" + rel + b"\0%o\0%d\0" % (mode, st.st_size))
                    with open(entry.path, "rb") as fh:
                        while chunk := fh.read(_CHUNK):
                            digest.update(chunk)
                elif stat.S_ISLNK(st.st_mode):
                    digest.update(b"L\0" + rel + b"\0" + os.readlink(entry.path).encode())
    return digest.hexdigest()


class RunCache(Generic[Run]):
    """Recent completed runs of this process, by identity (bounded, least recent out).

    A run is a pydantic model with a ``reused`` field; the caller decides which runs
    completed and may be kept (``project_tests.RUNS`` holds the worker's test runs).
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._runs: OrderedDict[str, tuple[float, Run]] = OrderedDict()

    @staticmethod
    def identity(digest: str, env_key: str, selection: list[str], limits: str) -> str:
        parts = [digest, env_key, limits, *selection]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def get(self, identity: str) -> Run | None:
        """A copy of the kept run, marked ``reused``; None when there is none."""
        kept = self._runs.get(identity)
        if kept is None:
            return None
        self._runs.move_to_end(identity)
        ran_at, run = kept
        _log.info(
            "test run reused: same files, environment and selection as a run %.0f s ago",
            max(0.0, time.monotonic() - ran_at),
        )
        return run.model_copy(deep=True, update={"reused": True})

    def clear(self) -> None:
        """Forget every kept run."""
        self._runs.clear()

    def put(self, identity: str, run: Run) -> None:
        """Keep a copy of ``run`` (a completed one: the caller decides)."""
        self._runs[identity] = (time.monotonic(), run.model_copy(deep=True))
        self._runs.move_to_end(identity)
        while len(self._runs) > self.size:
            self._runs.popitem(last=False)
