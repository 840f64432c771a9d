"""Running generated code and its tests in a sandbox.

``run_sandboxed`` runs one command with the workspace as its working directory and
returns a ``CommandResult``; a failing or hostile command is reported, never raised.
``ensure_project_env`` keeps a per-project virtual environment in
``<workspace>/.git/backforge/venv`` (outside the work tree's contents) with the
project's declared dependencies installed.

How a command runs: the worker starts a small launcher (``python -I -S -c``, stdlib
only, see ``_launcher``) in a new session. The launcher joins a pids cgroup, enters new
network and mount namespaces, sets rlimits, drops to a per-run uid and ``exec``s the
command; before the ``exec`` it reports over a pipe what it actually applied. When the
command ends (or the deadline passes) the worker kills the process group, the cgroup
and every process of the run's uid, then gives the workspace back to its owner.

Isolation per setting, and what happens where the machine does not allow it (every
fallback is logged once and listed in ``CommandResult.warnings``; ``isolation`` lists
what was applied):

==============  ===========================================  =====================================
Setting         Mechanism                                    When unavailable
==============  ===========================================  =====================================
timeout_s       New session; at the deadline SIGKILL to the  The process group is always killed;
                process group, the pids cgroup and (as       escaped processes only via cgroup or
                root) every process of the run's uid, which  uid: warning if neither.
                also catches processes that escaped into
                their own session.
cpu_s           RLIMIT_CPU (SIGXCPU, SIGKILL 5 s later).     Always available.
memory_mb       RLIMIT_AS (address space, not RSS).          Always available.
file_size_mb    RLIMIT_FSIZE (writes fail with EFBIG).       Always available.
max_processes   pids cgroup (pids.max; cgroup v2, else v1)   No cgroup: RLIMIT_NPROC only, which
                and RLIMIT_NPROC for the per-run uid.        root ignores; warning.
output_limit_   stdout+stderr on one pipe; the first and     Always available.
bytes           last halves are kept, the middle replaced
                by a marker line.
network=False   New network namespace with only loopback     Warning "network isolation
                (up): the host's 127.0.0.1 and the internet  unavailable"; runs with network.
                are unreachable.
environment     Allow-list (PATH, LANG, LC_ALL, TZ,          Always available.
                PYTHONDONTWRITEBYTECODE, PYTHONHASHSEED)
                plus the caller's env; HOME and TMPDIR
                point to a private temp dir, removed
                afterwards. Credential-like names in env
                are refused.
writable dirs   As root: a fresh uid per run (SANDBOX_UIDS,  Not root: runs as the worker's user,
                no passwd entry). The workspace (except      nothing confined; warning. No mount
                .git) is chowned to it for the run and back  namespace: world-writable dirs stay
                afterwards; the private temp dir is its      writable, warning; if the interpreter
                own. A mount namespace hides world-writable  or workspace is then unreachable for
                /tmp, /var/tmp, /run/lock and directories    the uid, runs as root, warning.
                the uid cannot traverse (e.g. a 0700 /root
                holding pyenv) behind empty root-owned
                tmpfs mounts, gives the command a private
                64 MB /dev/shm, then binds back the
                workspace and temp dir (rw) and the
                interpreter's directories (read-only).
privileges      no_new_privs (setuid binaries gain           Always available.
                nothing), no supplementary groups, parent-
                death signal.
==============  ===========================================  =====================================

Why a fresh uid per run rather than ``nobody``: RLIMIT_NPROC counts processes per uid,
killing "every process of the uid" must not hit a concurrent run, and concurrent runs
must not be able to write each other's workspaces.

Not covered: there is no PID namespace (the command sees other processes in /proc, but
not their environment), and files readable by "other" stay readable: keep secrets in
the environment or in 0600 files. Linux only. Zombies of killed orphans are reaped by
PID 1; run the worker under an init that reaps (e.g. ``docker run --init``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import inspect
import json
import logging
import os
import re
import secrets
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

__all__ = [
    "SANDBOX_UIDS",
    "SandboxLimits",
    "CommandResult",
    "EnvResult",
    "run_sandboxed",
    "project_python",
    "project_env_dir",
    "ensure_project_env",
]

logger = logging.getLogger(__name__)

SANDBOX_UIDS = range(1_900_000_000, 2_000_000_000)
"""Uids (and gids) handed out to sandboxed runs, one per run; none has a passwd entry."""

_ALLOWED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED")
_DENIED_ENV = re.compile(
    r"^(ANTHROPIC|OPENAI|TEMPORAL|AWS|GOOGLE|AZURE)_|KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.I
)
_WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# Mask mounts are empty and read-only for the uid, except /dev/shm: a private, capped
# tmpfs there keeps multiprocessing (POSIX semaphores) working without touching the host's.
_MASK_OPTIONS = {"/dev/shm": "mode=1777,size=64m"}
_MASK_DEFAULT = "mode=0755,size=1m"
_DRAIN_TIMEOUT_S = 5.0
_KILL_ROUNDS = 50


class SandboxLimits(BaseModel):
    """Resource limits and network policy for one sandboxed command."""

    timeout_s: float = Field(default=300.0, gt=0)
    cpu_s: int = Field(default=300, gt=0)
    memory_mb: int = Field(default=2048, gt=0)
    file_size_mb: int = Field(default=64, gt=0)
    max_processes: int = Field(default=256, gt=1)
    output_limit_bytes: int = Field(default=64_000, ge=1024)
    network: bool = False


class CommandResult(BaseModel):
    """What a sandboxed command did, and under which isolation."""

    argv: list[str]
    exit_code: int = Field(description="-N when killed by signal N (-9 at the timeout).")
    timed_out: bool
    duration_s: float
    output: str = Field(description="stdout+stderr interleaved; head and tail if truncated.")
    output_bytes: int = Field(description="Size of the whole output before truncation.")
    truncated: bool
    isolation: list[str] = Field(description='What was applied, e.g. "netns", "uid:N".')
    warnings: list[str] = Field(description="Isolation that could not be applied, and why.")


class EnvResult(BaseModel):
    """The per-project environment after ``ensure_project_env``."""

    python: Path
    ok: bool
    reused: bool = Field(description="Nothing ran: the declared requirements were unchanged.")
    network_used: bool = Field(description="pip needed the package index.")
    requirements: list[str]
    message: str = Field(description="One line for reports.")
    log: str = Field(description="pip output (head and tail), empty when nothing ran.")
    duration_s: float


# --------------------------------------------------------------------------------------
# run_sandboxed
# --------------------------------------------------------------------------------------


async def run_sandboxed(
    argv: list[str],
    *,
    workspace: Path,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    python: Path | None = None,
) -> CommandResult:
    """Run ``argv`` in the sandbox with ``workspace`` as its working directory.

    Args:
        argv: The command; ``argv[0]`` is looked up on the sandbox's PATH if it has no
            slash, relative to ``workspace`` if it is a relative path.
        workspace: The generated project; the only writable directory besides a
            private TMPDIR/HOME.
        limits: Resource limits; defaults to ``SandboxLimits()``.
        env: Extra environment variables. Names that look like credentials are refused.
        python: The project interpreter: its ``bin`` goes first on PATH, VIRTUAL_ENV is
            set and its directories are made readable in the sandbox.

    Returns:
        The result, including what isolation was applied and any fallback warnings.

    Raises:
        ValueError: For bad arguments (empty argv, missing workspace, refused env name).
    """
    return await _run(argv, workspace=workspace, limits=limits, env=env, python=python)


async def _run(
    argv: list[str],
    *,
    workspace: Path,
    limits: SandboxLimits | None,
    env: dict[str, str] | None,
    python: Path | None,
    extra_writable: Iterable[Path] = (),
    extra_readable: Iterable[Path] = (),
) -> CommandResult:
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    workspace = Path(workspace)
    if not workspace.is_dir():
        raise ValueError(f"workspace {workspace} does not exist or is not a directory")
    limits = limits or SandboxLimits()
    _check_env_names(env or {})
    sandbox = await asyncio.to_thread(
        _Sandbox.prepare,
        workspace.resolve(),
        limits,
        argv,
        env or {},
        Path(python) if python is not None else None,
        [Path(p).resolve() for p in extra_writable],
        [Path(p) for p in extra_readable],
    )
    loop = asyncio.get_running_loop()
    collector = _Collector(_HeadTail(limits.output_limit_bytes), loop)
    transport: asyncio.SubprocessTransport | None = None
    timed_out = False
    report_r, report_w = os.pipe()
    try:
        started = time.monotonic()
        transport, _ = await loop.subprocess_exec(
            lambda: collector,
            sys.executable,
            "-I",
            "-S",
            "-c",
            _launcher_code(),
            json.dumps({**sandbox.launcher_config(), "report_fd": report_w}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(report_w,),
            cwd=sandbox.workspace,
            env=sandbox.env,
        )
        os.close(report_w)
        report_w = -1
        report = asyncio.ensure_future(asyncio.to_thread(_read_until_eof, report_r))
        report_r = -1
        try:
            await asyncio.wait_for(asyncio.shield(collector.exited), timeout=limits.timeout_s)
        except TimeoutError:
            timed_out = True
        duration = time.monotonic() - started
    except BaseException:
        if transport is not None:
            transport.close()
        raise
    finally:
        for fd in (report_r, report_w):
            if fd >= 0:
                os.close(fd)
        # Shielded: a cancelled activity must still kill the command and restore ownership.
        pid = transport.get_pid() if transport else None
        await asyncio.shield(asyncio.to_thread(sandbox.close, pid))
    try:
        await asyncio.wait_for(asyncio.shield(collector.exited), _DRAIN_TIMEOUT_S)
        await asyncio.wait_for(asyncio.shield(collector.drained), _DRAIN_TIMEOUT_S)
    except TimeoutError:
        sandbox.warn("output pipe still held open by a process outside the sandbox's reach")
    exit_code = transport.get_returncode()
    transport.close()
    applied = _parse_report(await report, sandbox)
    text, truncated = collector.output.render()
    return CommandResult(
        argv=list(argv),
        exit_code=exit_code if exit_code is not None else -signal.SIGKILL,
        timed_out=timed_out,
        duration_s=round(duration, 3),
        output=text,
        output_bytes=collector.output.total,
        truncated=truncated,
        isolation=sandbox.isolation + applied,
        warnings=sandbox.warnings,
    )


class _Collector(asyncio.SubprocessProtocol):
    """Collects the launcher's output and tells when it exits and when output ends.

    (``asyncio.subprocess.Process.wait`` would also wait for the pipe to close, which a
    leftover grandchild can hold open.)
    """

    def __init__(self, output: _HeadTail, loop: asyncio.AbstractEventLoop) -> None:
        self.output = output
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.output.feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


class _Sandbox:
    """Host-side state of one run: uid, private temp dir, cgroup, ownership changes."""

    def __init__(self, workspace: Path, limits: SandboxLimits) -> None:
        self.workspace = workspace
        self.limits = limits
        self.uid: int | None = None
        self.owner = (os.geteuid(), os.getegid())
        self.tmp = Path(tempfile.mkdtemp(prefix="backforge-sandbox-"))
        self.writable: list[Path] = []
        self.cgroup: _PidsCgroup | None = None
        self.env: dict[str, str] = {}
        self.exe = ""
        self.argv: list[str] = []
        self.isolation = ["process-group", "env-scrubbed", "private-tmp"]
        self.warnings: list[str] = []
        self.masks: list[str] = []
        self.exposures: list[tuple[str, bool]] = []
        self.needs_mount = False

    @classmethod
    def prepare(
        cls,
        workspace: Path,
        limits: SandboxLimits,
        argv: list[str],
        env: dict[str, str],
        python: Path | None,
        writable: list[Path],
        readable: list[Path],
    ) -> _Sandbox:
        """Set up everything on the host side (blocking); undone by ``close``."""
        self = cls(workspace, limits)
        try:
            self.env = self._environment(env, python)
            self.exe = _resolve_executable(argv[0], workspace, self.env["PATH"])
            # Python finds its venv from argv[0]: pass the resolved path, not a bare name.
            self.argv = [argv[0] if "/" in argv[0] else self.exe, *argv[1:]]
            self._prepare_host(python, writable, readable)
        except BaseException:
            self.close(None)
            raise
        return self

    def _environment(self, extra: dict[str, str], python: Path | None) -> dict[str, str]:
        env = {k: os.environ[k] for k in _ALLOWED_ENV if k in os.environ}
        env.setdefault("PATH", os.defpath)
        env.setdefault("LANG", "C.UTF-8")
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        if python is not None:
            env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
            if (python.parent.parent / "pyvenv.cfg").exists():
                env["VIRTUAL_ENV"] = str(python.parent.parent)
        env.update(extra)
        env["HOME"] = env["TMPDIR"] = str(self.tmp)
        return env

    def _prepare_host(
        self, python: Path | None, writable: list[Path], readable: list[Path]
    ) -> None:
        ws_stat = self.workspace.stat()
        if ws_stat.st_uid not in SANDBOX_UIDS:
            self.owner = (ws_stat.st_uid, ws_stat.st_gid)
        self.cgroup, reason = _PidsCgroup.create(self.limits.max_processes)
        if self.cgroup is None:
            self.warn(f"pids cgroup unavailable ({reason}); process limit is RLIMIT_NPROC only")
        if os.geteuid() != 0:
            self.warn(
                "not running as root: the command runs as the worker's user, so the "
                "workspace is not the only writable directory"
            )
            return
        self.uid = _pick_uid()
        self.writable = writable
        os.chown(self.tmp, self.uid, self.uid)
        self._chown_trees(to_sandbox=True)
        ro = [Path(sys.base_prefix), Path(sys.prefix), *_worker_site_dirs(), *readable]
        for program in (Path(self.exe), python):
            if program is not None and program.is_absolute():
                ro += _program_dirs(program)
        self.masks, self.exposures, self.needs_mount = _plan_mounts(
            rw=[self.workspace, self.tmp, *writable], ro=ro
        )

    def launcher_config(self) -> dict[str, object]:
        lim = self.limits
        mib = 1024 * 1024
        return {
            "exe": self.exe,
            "argv": self.argv,
            "env": self.env,
            "cwd": str(self.workspace),
            "uid": self.uid,
            "parent": os.getpid(),
            "network": lim.network,
            "cgroup_procs": str(self.cgroup.procs) if self.cgroup else None,
            "cgroup_label": self.cgroup.label if self.cgroup else None,
            "masks": [[m, _MASK_OPTIONS.get(m, _MASK_DEFAULT)] for m in self.masks],
            "world_writable": [m for m in self.masks if m in _world_writable_dirs()],
            "exposures": self.exposures,
            "needs_mount": self.needs_mount,
            "rlimits": {
                "RLIMIT_CPU": [lim.cpu_s, lim.cpu_s + 5],
                "RLIMIT_AS": [lim.memory_mb * mib] * 2,
                "RLIMIT_FSIZE": [lim.file_size_mb * mib] * 2,
                "RLIMIT_NPROC": [lim.max_processes] * 2,
                "RLIMIT_CORE": [0, 0],
            },
        }

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        _log_once(message)

    def close(self, pid: int | None) -> None:
        """Kill everything the run started, then undo the run's changes (blocking)."""
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        left = self.cgroup.kill() if self.cgroup else 0
        if self.uid is not None:
            left = max(left, _kill_uid(self.uid))
        elif self.cgroup is None and pid is not None:
            self.warn("processes that left the process group cannot be found (no uid, no cgroup)")
        if left:
            self.warn(f"{left} sandboxed process(es) survived the kill")
        if self.cgroup and not self.cgroup.remove():
            self.warn(f"could not remove cgroup {self.cgroup.path}")
        if self.uid is not None:
            self._chown_trees(to_sandbox=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _chown_trees(self, *, to_sandbox: bool) -> None:
        """Give the workspace (minus .git) and extra writable dirs to the uid, or back.

        ``os.fwalk`` with ``follow_symlinks=False`` is safe against symlink swaps, only
        entries owned by the previous owner change hands, and hard-linked files are never
        handed over: nothing the command plants redirects a chown outside the tree.
        """
        assert self.uid is not None
        if to_sandbox:
            match, target = {self.owner[0]}, (self.uid, self.uid)
        else:
            match, target = {self.uid}, self.owner
        for root in (self.workspace, *self.writable):
            _chown_tree(
                root, match, target, sandbox_uids=to_sandbox, skip_git=root == self.workspace
            )


def _chown_tree(
    root: Path, match: set[int], target: tuple[int, int], *, sandbox_uids: bool, skip_git: bool
) -> None:
    def owned(st: os.stat_result) -> bool:
        if sandbox_uids and st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            return False  # a hard link may be a file outside the tree: never hand it over
        # Leftovers of a crashed run (another sandbox uid) are taken over too.
        return st.st_uid in match or (sandbox_uids and st.st_uid in SANDBOX_UIDS)

    with contextlib.suppress(FileNotFoundError):
        if owned(root.lstat()):
            os.chown(root, *target, follow_symlinks=False)
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        if skip_git and dirpath == str(root) and ".git" in dirnames:
            dirnames.remove(".git")
        for name in (*dirnames, *filenames):
            with contextlib.suppress(FileNotFoundError):
                if owned(os.stat(name, dir_fd=dirfd, follow_symlinks=False)):
                    os.chown(name, *target, dir_fd=dirfd, follow_symlinks=False)


def _pick_uid() -> int:
    busy = {st_uid for _, st_uid in _processes()}
    for _ in range(20):
        uid = SANDBOX_UIDS.start + secrets.randbelow(len(SANDBOX_UIDS))
        if uid not in busy:
            return uid
    raise RuntimeError("no free sandbox uid found")  # 20 collisions in 10^8: not reachable


def _processes() -> Iterable[tuple[int, int]]:
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


def _kill_uid(uid: int) -> int:
    """SIGKILL every process of ``uid``; returns how many are still alive afterwards.

    ``kill(-1)`` run as that uid signals all its processes in one kernel pass, so a
    fork bomb cannot outrun it; a /proc sweep mops up and verifies.
    """
    kill = shutil.which("kill", path="/usr/bin:/bin")
    if kill:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [kill, "-s", "KILL", "--", "-1"],
                user=uid,
                group=uid,
                extra_groups=[],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
            )
    left: list[int] = []
    for _ in range(_KILL_ROUNDS):
        left = [pid for pid, owner in _processes() if owner == uid]
        if not left:
            return 0
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return len(left)


def _program_dirs(program: Path) -> list[Path]:
    """What a program needs to read: its real directory and, for a venv's python, the venv
    and the base installation named in ``pyvenv.cfg``."""
    dirs = [Path(os.path.realpath(program)).parent]
    cfg = program.parent.parent / "pyvenv.cfg"
    if cfg.is_file():
        dirs.append(program.parent.parent)
        for line in _read(cfg).splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home" and value.strip():
                dirs.append(Path(value.strip()).parent)
    return dirs


def _worker_site_dirs() -> list[Path]:
    return [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]


def _plan_mounts(rw: list[Path], ro: list[Path]) -> tuple[list[str], list[tuple[str, bool]], bool]:
    """Which directories to hide behind tmpfs and which to bind back, for the run's uid.

    Returns:
        (masks, exposures as (path, writable), whether any needed path is unreachable
        for an unprivileged uid without the mount namespace).
    """
    needed = [(Path(os.path.realpath(p)), True) for p in rw]
    needed += [(Path(os.path.realpath(p)), False) for p in ro]
    blockers = {b for p, _ in needed if (b := _blocking_dir(p)) is not None}
    masks = blockers | {Path(d) for d in _world_writable_dirs()}
    masks = {m for m in masks if not any(o != m and m.is_relative_to(o) for o in masks)}
    exposures: list[tuple[Path, bool]] = []
    for path, writable in needed:
        if not any(path.is_relative_to(m) for m in masks):
            continue
        if any(path.is_relative_to(p) and (w or not writable) for p, w in exposures):
            continue
        exposures = [
            (p, w) for p, w in exposures if not (p.is_relative_to(path) and (writable or not w))
        ]
        exposures.append((path, writable))
    exposures.sort(key=lambda e: len(e[0].parts))
    return (
        sorted(str(m) for m in masks),
        [(str(p), w) for p, w in exposures],
        bool(blockers),
    )


def _world_writable_dirs() -> list[str]:
    found = []
    for d in _WORLD_WRITABLE:
        with contextlib.suppress(OSError):
            st = os.stat(d)  # follows /var/lock -> /run/lock style links
            if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
                found.append(os.path.realpath(d))
    return found


def _blocking_dir(path: Path) -> Path | None:
    """The first ancestor of ``path`` that "other" users cannot traverse, if any."""
    current = Path("/")
    for part in path.parts[1:]:
        try:
            if not os.stat(current).st_mode & stat.S_IXOTH:
                return current
        except OSError:
            return None
        current = current / part
    return None


def _resolve_executable(name: str, workspace: Path, path: str) -> str:
    if "/" in name:
        return str(workspace / name) if not name.startswith("/") else name
    return shutil.which(name, path=path) or name


def _check_env_names(env: dict[str, str]) -> None:
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"env entries must be str to str, got {name!r}: {value!r}")
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise ValueError(f"invalid environment variable name or value: {name!r}")
        if _DENIED_ENV.search(name):
            raise ValueError(
                f"refusing to pass {name} into the sandbox: it looks like a credential"
            )


class _PidsCgroup:
    """A pids cgroup (v2 or v1) for one run."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.procs = path / "cgroup.procs"
        self.label = label

    @classmethod
    def create(cls, max_pids: int) -> tuple[_PidsCgroup | None, str]:
        parent, label = _pids_cgroup_parent()
        if parent is None:
            return None, label
        path = parent / f"backforge-sandbox-{secrets.token_hex(6)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_pids))
        except OSError as err:
            with contextlib.suppress(OSError):
                path.rmdir()
            return None, f"cannot create {path}: {err}"
        return cls(path, label), ""

    def _members(self) -> list[int]:
        try:
            return [int(line) for line in self.procs.read_text().split()]
        except OSError:
            return []

    def kill(self) -> int:
        """SIGKILL every member; returns how many are still alive afterwards."""
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")  # cgroup v2, kernel >= 5.14
        members: list[int] = []
        for _ in range(_KILL_ROUNDS):
            members = self._members()
            if not members:
                return 0
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        return len(members)

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


@functools.cache
def _pids_cgroup_parent() -> tuple[Path | None, str]:
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


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class _HeadTail:
    """Keeps the first and last halves of a byte stream, counting the total."""

    def __init__(self, limit: int) -> None:
        self.half = limit // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    def render(self) -> tuple[str, bool]:
        """The kept text, and whether anything was elided."""
        head, tail = bytes(self.head), bytes(self.tail)
        if self.total == len(head) + len(tail):
            return (head + tail).decode(errors="replace"), False
        # Cut at line boundaries so the model sees whole lines on both sides.
        if (nl := head.rfind(b"\n")) > len(head) // 2:
            head = head[: nl + 1]
        if 0 <= (nl := tail.find(b"\n")) < len(tail) // 2:
            tail = tail[nl + 1 :]
        elided = self.total - len(head) - len(tail)
        marker = f"[... backforge sandbox: {elided} bytes of output elided ...]\n"
        if head and not head.endswith(b"\n"):
            marker = "\n" + marker
        return head.decode(errors="replace") + marker + tail.decode(errors="replace"), True


def _read_until_eof(fd: int) -> bytes:
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _parse_report(raw: bytes, sandbox: _Sandbox) -> list[str]:
    """Turn the launcher's report into isolation labels, recording its warnings."""
    try:
        report = json.loads(raw)
    except ValueError:
        sandbox.warn("the sandbox launcher did not report (killed early?); isolation unknown")
        return []
    for message in report.get("warnings", []):
        sandbox.warn(message)
    if error := report.get("error"):
        sandbox.warn(f"sandbox setup failed, command not run: {error}")
    return list(report.get("applied", []))


_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        logger.warning("sandbox: %s", message)
    else:
        logger.debug("sandbox: %s", message)


# --------------------------------------------------------------------------------------
# The launcher: runs in its own process between the worker and the command.
# --------------------------------------------------------------------------------------


def _launcher() -> None:
    """Apply the isolation described by ``sys.argv[1]`` (JSON), report it, exec the command.

    This function's source is run with ``python -I -S -c``, so it is self-contained:
    stdlib imports only, no module globals. It runs as the worker's user (root when
    privileges can be dropped), single-threaded, so namespaces and mounts are safe here
    (unlike in a ``preexec_fn`` of the threaded worker). Order matters: cgroup and
    namespaces need root, so the uid is dropped last.
    """
    import ctypes
    import fcntl
    import json
    import os
    import resource
    import signal
    import socket
    import struct
    import sys

    cfg = json.loads(sys.argv[1])
    applied: list[str] = []
    warnings: list[str] = []
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    clone_newns, clone_newnet = 0x00020000, 0x40000000
    ms_rdonly, ms_nosuid, ms_nodev, ms_remount = 1, 2, 4, 32
    ms_bind, ms_rec, ms_private = 4096, 16384, 1 << 18
    pr_set_pdeathsig, pr_set_no_new_privs = 1, 38

    def check(ret: int, what: str) -> None:
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
        enc = [s.encode() if s else None for s in (src, target, fstype, data)]
        check(libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")

    def report(**extra: object) -> None:
        os.write(
            cfg["report_fd"], json.dumps(dict(applied=applied, warnings=warnings, **extra)).encode()
        )
        os.close(cfg["report_fd"])

    def fail(message: str) -> None:
        report(error=message)
        sys.stderr.write(f"backforge sandbox: {message}\n")
        os._exit(125)

    if cfg["cgroup_procs"]:
        try:
            with open(cfg["cgroup_procs"], "w") as f:
                f.write(str(os.getpid()))
            applied.append(cfg["cgroup_label"])
        except OSError as err:
            warnings.append(f"could not join the pids cgroup: {err}")

    if not cfg["network"]:
        try:
            check(libc.unshare(clone_newnet), "unshare(CLONE_NEWNET)")
            applied.append("netns")
        except OSError as err:
            warnings.append(f"network isolation unavailable: {err}; running with network")
        else:
            try:  # loopback up, so the command's own servers on 127.0.0.1 work
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    flags = 0x1 | 0x8 | 0x40  # IFF_UP | IFF_LOOPBACK | IFF_RUNNING
                    fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH22x", b"lo", flags))
            except OSError as err:
                warnings.append(f"loopback left down in the network namespace: {err}")

    reachable = not cfg["needs_mount"]
    if cfg["masks"]:
        try:
            check(libc.unshare(clone_newns), "unshare(CLONE_NEWNS)")
        except OSError as err:
            warnings.append(
                f"mount namespace unavailable ({err}): world-writable "
                f"{', '.join(cfg['world_writable']) or 'directories'} stay writable"
            )
        else:
            try:  # past this point a half-built view is worse than not running at all
                mount(None, "/", None, ms_rec | ms_private)  # nothing propagates to the host
                # Handles on what to bind back, taken in the new namespace before masking.
                fds = [
                    (os.open(p, os.O_PATH | os.O_DIRECTORY), p, rw) for p, rw in cfg["exposures"]
                ]
                ro = ms_remount | ms_bind | ms_rdonly | ms_nosuid | ms_nodev
                for mask, options in cfg["masks"]:
                    mount("tmpfs", mask, "tmpfs", ms_nosuid | ms_nodev, options)
                for fd, path, rw in fds:
                    os.makedirs(path, exist_ok=True)
                    mount(f"/proc/self/fd/{fd}", path, None, ms_bind | ms_rec)
                    if not rw:
                        mount(None, path, None, ro)
                    os.close(fd)
            except OSError as err:
                fail(f"mount namespace setup failed: {err}")
            applied.append("mountns")
            reachable = True

    for name, (soft, hard) in cfg["rlimits"].items():
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (OSError, ValueError) as err:
            warnings.append(f"{name} not set: {err}")
    applied.append("rlimits")

    os.umask(0o022)
    try:
        os.chdir(cfg["cwd"])
    except OSError as err:
        fail(f"cannot enter the workspace: {err}")
    uid = cfg["uid"]
    if uid is not None and not reachable:
        warnings.append(
            f"could not drop to uid {uid}: the interpreter or workspace is not reachable for "
            "it without a mount namespace; running as root"
        )
    elif uid is not None:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        except OSError as err:
            fail(f"could not drop to uid {uid}: {err}")
        applied.append(f"uid:{uid}")
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)  # reset by the uid change
        if os.getppid() != cfg["parent"]:
            fail("the worker exited during sandbox setup")
    try:
        check(libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        applied.append("no-new-privs")
    except OSError as err:
        warnings.append(str(err))

    report()
    try:
        os.execve(cfg["exe"], cfg["argv"], cfg["env"])
    except OSError as err:
        sys.stderr.write(f"backforge sandbox: cannot execute {cfg['argv'][0]}: {err}\n")
        os._exit(127)


@functools.cache
def _launcher_code() -> str:
    return textwrap.dedent(inspect.getsource(_launcher)) + "\n_launcher()\n"


# --------------------------------------------------------------------------------------
# Per-project environment
# --------------------------------------------------------------------------------------

_PIP_LIMITS = SandboxLimits(
    timeout_s=900, cpu_s=900, memory_mb=4096, file_size_mb=1024, output_limit_bytes=24_000
)
_PIP_OPTIONS = (
    "--no-input", "--disable-pip-version-check", "--no-cache-dir", "--no-build-isolation",
    "--progress-bar", "off",
)  # fmt: skip
_env_locks: dict[Path, asyncio.Lock] = {}
# Package-index settings pip gets from the worker. Credentials in these URLs are visible
# to the (sandboxed) build code of the packages being installed.
_PIP_ENV = (
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_FIND_LINKS", "PIP_CERT",
    "PIP_DEFAULT_TIMEOUT",
)  # fmt: skip


def project_env_dir(workspace: Path) -> Path:
    """Backforge's private area of the target repo: ``<git dir>/backforge``.

    Raises:
        ValueError: If ``workspace`` is not a git work tree.
    """
    workspace = Path(workspace).resolve()
    git = workspace / ".git"
    if git.is_dir():
        return git / "backforge"
    if git.is_file():  # a linked worktree: "gitdir: <path>"
        text = git.read_text().strip()
        if text.startswith("gitdir:"):
            return (workspace / text.removeprefix("gitdir:").strip()).resolve() / "backforge"
    raise ValueError(
        f"{workspace} is not a git work tree (no .git); the project environment lives in "
        ".git/backforge/venv"
    )


def project_python(workspace: Path) -> Path:
    """The interpreter of the workspace's project environment, creating it if needed.

    The venv is ``<git dir>/backforge/venv``, made from the worker's interpreter so that
    it sees exactly the worker's packages (fastapi, httpx, pytest need no install): with
    ``--system-site-packages`` when the worker runs on a system interpreter, and with a
    ``.pth`` file naming the worker's site-packages when the worker itself runs in a venv
    (``--system-site-packages`` would then expose the base interpreter's packages and
    pytest plugins instead). Re-use is a stat and a small JSON read. Blocking; safe to
    call from a thread or another process (file lock).

    Raises:
        ValueError: If ``workspace`` is not a git work tree.
    """
    area = project_env_dir(workspace)
    venv = area / "venv"
    python = venv / "bin" / "python"
    stamp = venv / "backforge-venv.json"
    wanted = {
        "base": os.path.realpath(sys.executable),
        "version": sys.version,
        "worker_site": [str(p) for p in _worker_site_dirs()],
    }
    with contextlib.suppress(OSError, ValueError):
        if python.exists() and json.loads(stamp.read_text()) == wanted:
            return python
    area.mkdir(parents=True, exist_ok=True)
    area.chmod(0o755)
    with open(area / "venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(OSError, ValueError):
            if python.exists() and json.loads(stamp.read_text()) == wanted:
                return python  # created by whoever held the lock
        shutil.rmtree(venv, ignore_errors=True)
        (area / "requirements.sha256").unlink(missing_ok=True)
        in_venv = sys.prefix != sys.base_prefix
        cmd = [sys.executable, "-m", "venv"]
        if not in_venv:
            cmd.append("--system-site-packages")
        if _has_module("pip"):
            cmd.append("--without-pip")  # the worker's pip is visible through the site dirs
        subprocess.run([*cmd, str(venv)], check=True, capture_output=True, timeout=300)
        if in_venv:
            site_dir = (
                venv
                / "lib"
                / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                / "site-packages"
            )
            (site_dir / "_backforge_worker_site.pth").write_text(
                "".join(f"{p}\n" for p in wanted["worker_site"])
            )
        _make_world_readable(venv)
        stamp.write_text(json.dumps(wanted))
        stamp.chmod(0o644)
    return python


async def ensure_project_env(workspace: Path) -> EnvResult:
    """Create or reuse the project environment and install its declared dependencies.

    Declared dependencies are the lines of ``requirements.txt`` and ``[project].dependencies``
    of ``pyproject.toml``. pip runs (sandboxed, as the run's uid, the venv writable) only
    when that set changed since the last successful install: first offline
    (``--no-index``, no network) so satisfied requirements never touch the network, then
    with the index only if that failed.

    Returns:
        The interpreter and an ``ok`` flag; on failure ``message`` and ``log`` say why
        (the test phase reports it as a failing test run).

    Raises:
        ValueError: If ``workspace`` is not a git work tree.
    """
    started = time.monotonic()
    area = project_env_dir(workspace)
    lock = _env_locks.setdefault(area, asyncio.Lock())
    async with lock:
        python = await asyncio.to_thread(project_python, workspace)
        try:
            requirements, pip_args = _declared_requirements(Path(workspace))
        except ValueError as err:
            return _env_result(python, started, ok=False, message=str(err))
        digest_file = area / "requirements.sha256"
        digest = hashlib.sha256(json.dumps([requirements, sys.version]).encode()).hexdigest()
        if _read(digest_file).strip() == digest:
            return _env_result(
                python,
                started,
                ok=True,
                reused=True,
                requirements=requirements,
                message="project environment reused; requirements unchanged",
            )
        if not requirements:
            digest_file.write_text(digest)
            return _env_result(python, started, ok=True, message="no declared dependencies")
        base = [str(python), "-m", "pip", "install", *_PIP_OPTIONS]
        pip_env = {k: os.environ[k] for k in _PIP_ENV if k in os.environ}
        pip_paths = [Path(v) for k in ("PIP_FIND_LINKS", "PIP_CERT") if (v := pip_env.get(k, ""))]
        logs = []
        for online in (False, True):
            limits = _PIP_LIMITS.model_copy(update={"network": online})
            extra = ["--retries", "2", "--timeout", "15"] if online else ["--no-index"]
            result = await _run(
                [*base, *extra, *pip_args],
                workspace=Path(workspace),
                limits=limits,
                env=pip_env,
                python=python,
                extra_writable=[area / "venv"],
                extra_readable=[
                    p if p.is_dir() else p.parent for p in pip_paths if p.is_absolute()
                ],
            )
            logs.append(f"$ pip install {'(index)' if online else '--no-index'}\n{result.output}")
            if result.exit_code == 0 and not result.timed_out:
                digest_file.write_text(digest)
                return _env_result(
                    python,
                    started,
                    ok=True,
                    network_used=online,
                    requirements=requirements,
                    log="\n".join(logs),
                    message=f"installed {len(requirements)} declared requirement(s)",
                )
        why = "timed out" if result.timed_out else f"exit {result.exit_code}"
        last = _last_error_line(result.output)
        return _env_result(
            python,
            started,
            ok=False,
            network_used=True,
            requirements=requirements,
            log="\n".join(logs),
            message=f"pip install of the declared dependencies failed ({why}): {last}",
        )


def _env_result(python: Path, started: float, **fields: object) -> EnvResult:
    defaults = {"reused": False, "network_used": False, "requirements": [], "log": ""}
    duration = round(time.monotonic() - started, 3)
    return EnvResult.model_validate(
        {**defaults, **fields, "python": python, "duration_s": duration}
    )


def _declared_requirements(workspace: Path) -> tuple[list[str], list[str]]:
    """(requirement lines for hashing, pip arguments) declared by the project.

    Raises:
        ValueError: If pyproject.toml is not valid TOML.
    """
    requirements: list[str] = []
    args: list[str] = []
    req_file = workspace / "requirements.txt"
    if req_file.is_file():
        lines = [ln.split(" #")[0].strip() for ln in req_file.read_text().splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if lines:
            requirements += lines
            args += ["-r", "requirements.txt"]
    pyproject = workspace / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text()).get("project", {})
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"pyproject.toml is not valid TOML: {err}") from err
        deps = project.get("dependencies", []) if isinstance(project, dict) else []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise ValueError("pyproject.toml: [project].dependencies must be a list of strings")
        if bad := [d for d in deps if d.strip().startswith("-")]:
            raise ValueError(f"pyproject.toml: not a requirement: {bad[0]!r}")
        deps = [d.strip() for d in deps if d.strip()]
        requirements += deps
        args += deps
    return requirements, args


def _last_error_line(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1][:500]


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _make_world_readable(root: Path) -> None:
    """a+rX on the venv, so the sandbox uid can use it whatever the worker's umask."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            extra = 0o555 if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o100 else 0o444
            if st.st_mode & extra != extra:
                os.chmod(path, st.st_mode | extra)
    os.chmod(root, 0o755)
