"""Killing what a run started, and sweeping up after a worker that was killed.

One kill loop (``kill_until_gone``) serves both ways of finding a run's processes: the
members of its pids cgroup, and (degraded mode, or without a cgroup) every process of
its uid. With a pid namespace the kernel already kills everything when the namespace's
init exits; the loop is what verifies it.

A killed worker leaves only one kind of host state behind in contained mode: its runs'
empty pids cgroups (run directories too, in degraded mode). Their names carry the
worker's identity (pid and start time), so ``sweep`` tells a dead worker's leftovers from
those of a live worker sharing the machine.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "SANDBOX_UIDS",
    "PidsCgroup",
    "kill_until_gone",
    "kill_uid",
    "processes",
    "pick_uid",
    "worker_identity",
    "sweep",
    "RUN_DIR_PREFIX",
    "owner_alive",
]

logger = logging.getLogger(__name__)

SANDBOX_UIDS = range(1_900_000_000, 2_000_000_000)
"""Uids (and gids) handed out to sandboxed runs, one per run; none has a passwd entry."""

CGROUP_PREFIX = "backforge-sandbox-"
RUN_DIR_PREFIX = "backforge-run-"
_NAME = re.compile(r"^(?P<pid>\d+)-(?P<start>\d+)-[0-9a-f]+$")
_KILL_ROUNDS = 100


def _start_time(pid: int | str) -> str | None:
    """A process's start time (clock ticks since boot): with the pid, a unique identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


@functools.cache
def worker_identity() -> str:
    """``<pid>-<start time>`` of this process, used in the names of what it creates."""
    return f"{os.getpid()}-{_start_time('self') or 0}"


def owner_alive(name: str) -> bool:
    """Whether the worker that created ``<prefix><pid>-<start>-<hex>`` is still running."""
    m = _NAME.match(name)
    if m is None:
        return False
    return _start_time(m["pid"]) == m["start"]


def processes() -> Iterable[tuple[int, int]]:
    """(pid, uid) of every live, non-zombie process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            yield int(entry.name), uid


def kill_until_gone(
    members: Callable[[], Iterable[int]], *, kill_all: Callable[[], None] | None = None
) -> int:
    """SIGKILL ``members()`` until none is left; returns how many survived.

    ``kill_all`` is a one-shot that reaches every member at once (``cgroup.kill``, or
    ``kill(-1)`` as the uid), so a fork bomb cannot outrun the per-pid loop.
    """
    if kill_all is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            kill_all()
    left: list[int] = []
    for _ in range(_KILL_ROUNDS):
        left = list(members())
        if not left:
            return 0
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return len(left)


def kill_uid(uid: int) -> int:
    """Kill every process of ``uid``; returns how many are still alive afterwards."""

    def signal_all() -> None:
        kill = shutil.which("kill", path="/usr/bin:/bin")
        if kill:  # kill(-1) as the uid: every process of it, in one kernel pass
            subprocess.run(
                [kill, "-s", "KILL", "--", "-1"],
                user=uid, group=uid, extra_groups=[], timeout=10,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    return kill_until_gone(lambda: [p for p, u in processes() if u == uid], kill_all=signal_all)


def pick_uid() -> int:
    """A uid from ``SANDBOX_UIDS`` that no live process has."""
    busy = {uid for _, uid in processes()}
    for _ in range(20):
        uid = SANDBOX_UIDS.start + secrets.randbelow(len(SANDBOX_UIDS))
        if uid not in busy:
            return uid
    raise RuntimeError("no free sandbox uid found")  # 20 collisions in 10^8: not reachable


class PidsCgroup:
    """A pids cgroup (v2 or v1) for one run, named after the worker that made it."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.procs = path / "cgroup.procs"
        self.label = label

    @classmethod
    def create(cls, max_pids: int) -> tuple[PidsCgroup | None, str]:
        """A new cgroup limited to ``max_pids`` processes, or (None, why not)."""
        parent, label = cgroup_parent()
        if parent is None:
            return None, label
        path = parent / f"{CGROUP_PREFIX}{worker_identity()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
        except OSError as err:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None, f"cannot create {path}: {err}"
        return cls(path, label), ""

    def members(self) -> list[int]:
        try:
            return [int(line) for line in self.procs.read_text().split()]
        except OSError:
            return []

    def kill(self) -> int:
        """SIGKILL every member; returns how many are still alive afterwards."""

        def kill_all() -> None:
            (self.path / "cgroup.kill").write_text("1")  # cgroup v2, kernel >= 5.14

        return kill_until_gone(self.members, kill_all=kill_all)

    def remove(self) -> bool:
        for _ in range(_KILL_ROUNDS):
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:
                time.sleep(0.02)  # members still exiting
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@functools.cache
def cgroup_parent() -> tuple[Path | None, str]:
    """Where to create pids cgroups: (directory, "pids-cgroup:vN") or (None, reason)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError as err:
        return None, f"cannot read /proc/self/cgroup: {err}"
    own = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            own[c] = path.lstrip("/")
    root = Path("/sys/fs/cgroup")
    if "" in own and "pids" in _read(root / "cgroup.controllers").split():
        parent = root / own[""]
        if "pids" not in _read(parent / "cgroup.subtree_control").split():
            try:  # only allowed where the cgroup has no processes of its own (or is the root)
                (parent / "cgroup.subtree_control").write_text("+pids")
            except OSError as err:
                return None, f"cannot enable the pids controller in {parent}: {err}"
        if os.access(parent, os.W_OK):
            return parent, "pids-cgroup:v2"
        return None, f"{parent} is not writable"
    if "pids" in own and (root / "pids").is_dir():
        parent = root / "pids" / own["pids"]
        if os.access(parent, os.W_OK):
            return parent, "pids-cgroup:v1"
        return None, f"{parent} is not writable"
    return None, "no pids controller mounted under /sys/fs/cgroup"


def _cgroup_of(pid: int) -> str:
    return _read(Path(f"/proc/{pid}/cgroup"))


def sweep(*, run_dirs: Path | None = None) -> list[str]:
    """Remove what killed workers left behind; returns what was cleaned, for the log.

    Only what carries a dead worker's identity is touched: pids cgroups named
    ``backforge-sandbox-<pid>-<start>-<hex>`` (their members killed first), processes of
    sandbox uids inside such cgroups, and degraded-mode run directories under
    ``run_dirs`` (default: the temp dir). Anything else (a live worker's runs, names of
    another version) is left alone, so any worker on the machine may call this at any
    time.
    """
    cleaned: list[str] = []
    parent, _ = cgroup_parent()
    if parent is not None:
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                name = entry.name
                owner = name[len(CGROUP_PREFIX) :]
                if not name.startswith(CGROUP_PREFIX) or not _NAME.match(owner):
                    continue
                if owner_alive(owner):
                    continue
                group = PidsCgroup(entry, "")
                group.kill()
                if group.remove():
                    cleaned.append(f"cgroup {entry}")
        for pid, uid in list(processes()):
            if uid not in SANDBOX_UIDS:
                continue
            owners = re.findall(rf"{CGROUP_PREFIX}(\d+-\d+-[0-9a-f]+)", _cgroup_of(pid))
            if owners and not any(owner_alive(o) for o in owners) and kill_uid(uid) == 0:
                cleaned.append(f"processes of uid {uid}")
    base = run_dirs or Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            name = entry.name
            owner = name[len(RUN_DIR_PREFIX) :]
            if name.startswith(RUN_DIR_PREFIX) and _NAME.match(owner) and not owner_alive(owner):
                shutil.rmtree(entry, ignore_errors=True)
                cleaned.append(f"run directory {entry}")
    for item in cleaned:
        logger.warning("sandbox sweep: removed stale %s", item)
    return cleaned
