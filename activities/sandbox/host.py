"""Host-side orchestration of one sandboxed run: plan it, start the launcher, end it.

The worker decides everything here (which mounts, which uid, which limits) and hands
the plan to ``launcher.py`` as JSON. What the worker does afterwards touches nothing the
command could have written: in contained mode the command's files live on a tmpfs that
exists only in the run's mount namespace, and nothing is copied back. The only host
state a run creates is its pids cgroup (removed here, or by ``reaper.sweep`` after a
worker was killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import os
import re
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from activities.sandbox import interpreter, reaper
from activities.sandbox.models import (
    SANDBOX_HOME,
    SANDBOX_TMP,
    TOOLS,
    VENV,
    WHEELHOUSE,
    WORKSPACE,
    CommandResult,
    ProjectEnv,
    SandboxLimits,
)
from activities.sandbox.output import Collector, HeadTail

__all__ = [
    "run_sandboxed",
    "run_with_channel",
    "capabilities",
    "check_env_names",
    "ChannelStream",
    "Running",
    "plan_run",
    "RECORDER",
    "ENV_BUILDER",
]

logger = logging.getLogger("activities.sandbox")

T = TypeVar("T")

LAUNCHER = Path(__file__).with_name("launcher.py")
RECORDER = f"{TOOLS}/pytest_recorder.py"
"""Backforge's pytest runner and recorder plugin, inside the sandbox."""
ENV_BUILDER = f"{TOOLS}/env_builder.py"
"""The environment builder (runs pip, streams the result back), inside the sandbox."""
_TOOL_FILES = ("pytest_recorder.py", "env_builder.py")

_ALLOWED_ENV = ("LANG", "LC_ALL", "TZ", "PYTHONHASHSEED")
_DENIED_ENV = re.compile(
    r"^(ANTHROPIC|OPENAI|TEMPORAL|AWS|GOOGLE|AZURE)_|KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.I
)
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_DRAIN_TIMEOUT_S = 5.0
_ETC_FILES = {
    "/etc/group": "root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n",
    "/etc/passwd": (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "sandbox:x:{uid}:{uid}:sandbox:" + SANDBOX_HOME + ":/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    ),
    "/etc/hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
    "/etc/hostname": "sandbox\n",
    "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    "/etc/resolv.conf": "",
}


def check_env_names(env: dict[str, str]) -> None:
    """Refuse malformed names and anything that looks like a credential.

    Raises:
        ValueError: Naming the refused variable.
    """
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"env entries must be str to str, got {name!r}: {value!r}")
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise ValueError(f"invalid environment variable name or value: {name!r}")
        if _DENIED_ENV.search(name):
            raise ValueError(
                f"refusing to pass {name} into the sandbox: it looks like a credential"
            )


@functools.cache
def capabilities() -> dict[str, Any]:
    """What this machine allows: ``{"root": bool, "contained": bool, "reason": str}``.

    Asked once per process, from the launcher itself (so exactly what it will meet).
    """
    if sys.platform != "linux":
        return {"root": False, "contained": False, "reason": "the sandbox is Linux-only"}
    r, w = os.pipe()
    try:
        subprocess.run(
            [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps({"mode": "probe", "report_fd": w})],
            pass_fds=(w,), stdin=subprocess.DEVNULL, capture_output=True, timeout=30, env={},
        )  # fmt: skip
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        raw = f.read()
    try:
        found: dict[str, Any] = json.loads(raw)
    except ValueError:
        found = {"root": os.geteuid() == 0, "contained": False, "reason": "probe failed"}
    found["contained"] = bool(found.get("contained")) and bool(found.get("root"))
    return found


@functools.cache
def _swept() -> bool:
    reaper.sweep()
    return True


_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        logger.warning("sandbox: %s", message)


# --- planning ----------------------------------------------------------------------------


@dataclass
class Plan:
    """Everything decided on the host for one run (the launcher's JSON is ``config``)."""

    contained: bool
    config: dict[str, Any]
    limits: SandboxLimits
    argv: list[str]
    uid: int | None = None
    cgroup: reaper.PidsCgroup | None = None
    run_dir: Path | None = None
    #: Real path -> fixed name, to make degraded-mode output read like contained output.
    renames: dict[str, str] = field(default_factory=dict)
    isolation: list[str] = field(default_factory=lambda: ["process-group", "env-scrubbed"])
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        _log_once(message)

    def close(self, launcher_pid: int | None) -> None:
        """Kill everything the run started and remove its host state (blocking)."""
        if launcher_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(launcher_pid, signal.SIGKILL)
        left = self.cgroup.kill() if self.cgroup else 0
        if self.uid is not None and (self.cgroup is None or not self.contained):
            left = max(left, reaper.kill_uid(self.uid))
        elif self.cgroup is None and not self.contained and launcher_pid is not None:
            self.warn("processes that left the process group cannot be found (no uid, no cgroup)")
        if left:
            self.warn(f"{left} sandboxed process(es) survived the kill")
        if self.cgroup and not self.cgroup.remove():
            self.warn(f"could not remove cgroup {self.cgroup.path}")
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _traversable(path: Path) -> bool:
    """Whether a uid without any group can reach ``path`` (x for "other" on every parent)."""
    current = Path("/")
    for part in path.parts[1:]:
        try:
            if not os.stat(current).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        current = current / part
    return True


def _rlimits(limits: SandboxLimits) -> dict[str, list[int]]:
    mib = 1024 * 1024
    return {
        "RLIMIT_CPU": [limits.cpu_s, limits.cpu_s + 5],
        "RLIMIT_AS": [limits.memory_mb * mib] * 2,
        "RLIMIT_FSIZE": [limits.file_size_mb * mib] * 2,
        "RLIMIT_NPROC": [limits.max_processes] * 2,
        "RLIMIT_CORE": [0, 0],
    }


def plan_run(
    argv: list[str],
    *,
    source: Path,
    limits: SandboxLimits,
    env: dict[str, str],
    project_env: ProjectEnv,
    writable_env: Path | None = None,
    wheelhouses: Sequence[Path] = (),
) -> Plan:
    """Decide how to run ``argv`` (blocking); undone by ``Plan.close``.

    ``writable_env``: copy this environment to ``/venv`` writable (an environment build)
    instead of mounting ``project_env`` read-only.
    """
    caps = capabilities()
    plan = Plan(contained=caps["contained"], config={}, limits=limits, argv=list(argv))
    try:
        plan.cgroup, reason = reaper.PidsCgroup.create(limits.max_processes)
        if plan.cgroup is None:
            plan.warn(f"pids cgroup unavailable ({reason}); process limit is RLIMIT_NPROC only")
        if caps["root"]:
            plan.uid = reaper.pick_uid()
        else:
            plan.warn(
                "not running as root: the command runs as the worker's user with the "
                "worker's view of the file system"
            )
        base = {
            "mode": "run",
            "contained": plan.contained,
            "network": limits.network,
            "cgroup_procs": str(plan.cgroup.procs) if plan.cgroup else None,
            "cgroup_label": plan.cgroup.label if plan.cgroup else None,
            "rlimits": _rlimits(limits),
        }
        if plan.contained:
            plan.config = {
                **base,
                **_contained(plan, source, env, project_env, writable_env, wheelhouses),
            }
        else:
            if caps["root"]:
                plan.warn(
                    f"mount and pid namespaces unavailable ({caps['reason']}): the command "
                    "sees the host's world-readable files, world-writable directories stay "
                    "writable, there is no disk quota and processes are found by uid"
                )
            plan.config = {
                **base,
                **_degraded(plan, source, env, project_env, writable_env, wheelhouses),
            }
    except BaseException:
        plan.close(None)
        raise
    return plan


def _command_env(extra: dict[str, str], venv: str, home: str, tmp: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _ALLOWED_ENV if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env["PATH"] = f"{venv}/bin:/usr/local/bin:/usr/bin:/bin"
    env["VIRTUAL_ENV"] = venv
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    env["HOME"], env["TMPDIR"] = home, tmp
    return env


def _contained(
    plan: Plan,
    source: Path,
    extra_env: dict[str, str],
    project_env: ProjectEnv,
    writable_env: Path | None,
    wheelhouses: Sequence[Path],
) -> dict[str, Any]:
    limits = plan.limits
    binds: list[list[Any]] = []
    bound: list[Path] = []
    symlinks: list[list[str]] = []

    def bind_ro(host: Path, target: str | None = None) -> None:
        real = Path(os.path.realpath(host))
        if target is None and _under(real, bound):
            return
        binds.append([str(real), target or str(real), False])
        if target is None:
            bound.append(real)

    bind_ro(Path("/usr"))
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            symlinks.append([str(top), os.readlink(top)])
        elif top.is_dir():
            bind_ro(top)
    bind_ro(interpreter.base_prefix())
    for d in interpreter.site_dirs():
        bind_ro(d)
    for etc in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.isfile(etc):
            bind_ro(Path(etc), etc)
    if os.path.isdir("/etc/alternatives"):
        bind_ro(Path("/etc/alternatives"), "/etc/alternatives")
    here = Path(__file__).parent
    for name in _TOOL_FILES:
        bind_ro(here / name, f"{TOOLS}/{name}")
    copies = [[str(source), WORKSPACE]]
    if writable_env is not None:
        copies.append([str(writable_env), VENV])
    else:
        bind_ro(project_env.path, VENV)
    for i, wheelhouse in enumerate(wheelhouses):
        bind_ro(wheelhouse, f"{WHEELHOUSE}/{i}")
    for dev in _DEVICES:
        if os.path.exists(dev):
            binds.append([dev, dev, None])
    symlinks += [["/dev/fd", "/proc/self/fd"]]
    symlinks += [
        [f"/dev/{n}", f"/proc/self/fd/{i}"] for i, n in enumerate(("stdin", "stdout", "stderr"))
    ]
    uid = plan.uid if plan.uid is not None else 0
    mountpoint = next(p for p in ("/tmp", "/mnt", "/media", "/srv", "/opt") if os.path.isdir(p))
    disk = limits.disk_mb
    plan.isolation.append("pivot-root")
    return {
        "root": {
            "mountpoint": os.path.realpath(mountpoint),
            "quota_mb": disk,
            "tmpfs_options": f"size={disk}m,nr_inodes={max(8192, disk * 256)},mode=0755",
            "dirs": [
                ["/dev", 0o755, False],
                ["/dev/shm", 0o1777, False],
                ["/proc", 0o555, False],
                ["/etc", 0o755, False],
                [SANDBOX_TMP, 0o1777, True],
                ["/home", 0o755, False],
                [SANDBOX_HOME, 0o700, True],
                [TOOLS, 0o755, False],
            ],  # fmt: skip
            "files": [[p, t.format(uid=uid), 0o644] for p, t in _ETC_FILES.items()],
            "symlinks": symlinks,
            "binds": binds,
            "masks": [str(p) for p in interpreter.backforge_files()],
            "copies": copies,
        },
        "uid": plan.uid,
        "cwd": WORKSPACE,
        "argv": plan.argv,
        "env": _command_env(extra_env, VENV, SANDBOX_HOME, SANDBOX_TMP),
    }


def _degraded(
    plan: Plan,
    source: Path,
    extra_env: dict[str, str],
    project_env: ProjectEnv,
    writable_env: Path | None,
    wheelhouses: Sequence[Path],
) -> dict[str, Any]:
    run_dir = Path(tempfile.gettempdir()) / (
        f"{reaper.RUN_DIR_PREFIX}{reaper.worker_identity()}-{secrets.token_hex(4)}"
    )
    run_dir.mkdir(mode=0o700)
    plan.run_dir = run_dir
    run_dir.chmod(0o711)
    ws, home, tmp = run_dir / "workspace", run_dir / "home", run_dir / "tmp"
    venv = run_dir / "venv" if writable_env is not None else project_env.path
    copies = [[str(source), str(ws)]]
    if writable_env is not None:
        copies.append([str(writable_env), str(venv)])
    tools = Path(__file__).parent
    paths = {WORKSPACE: ws, VENV: venv, SANDBOX_HOME: home, SANDBOX_TMP: tmp, TOOLS: tools}
    paths.update({f"{WHEELHOUSE}/{i}": Path(w) for i, w in enumerate(wheelhouses)})
    needed = [venv, interpreter.base_prefix(), *interpreter.site_dirs(), tools, *wheelhouses]
    if plan.uid is not None and (blocked := [p for p in needed if not _traversable(p)]):
        plan.warn(
            f"could not drop to a sandbox uid: {blocked[0]} is not reachable for it "
            "without a mount namespace; running as root"
        )
        plan.uid = None
    if plan.uid is None and plan.cgroup is not None and capabilities()["root"]:
        plan.warn("the command runs as root: RLIMIT_NPROC does not apply")
    plan.renames = {str(p): name for name, p in paths.items() if name != SANDBOX_TMP}
    plan.renames[str(tmp)] = SANDBOX_TMP

    def mapped(arg: str) -> str:
        for name, real in sorted(paths.items(), key=lambda kv: -len(kv[0])):
            if arg == name or arg.startswith(name + "/"):
                return str(real) + arg[len(name) :]
        return arg

    plan.argv = [mapped(a) for a in plan.argv]
    env = {k: mapped(v) for k, v in extra_env.items()}
    return {
        "root": {"dirs": [[str(home), 0o700, True], [str(tmp), 0o700, True]], "copies": copies},
        "uid": plan.uid,
        "cwd": str(ws),
        "argv": plan.argv,
        "env": _command_env(env, str(venv), str(home), str(tmp)),
    }


# --- running -----------------------------------------------------------------------------


class ChannelStream(io.RawIOBase):
    """The read end of the side channel (fd 3 in the command), readable from a thread.

    Reads wait with ``select`` so that ``stop`` ends them even if some stray process
    (possible only in the degraded mode) still holds the write end.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.stopped = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.stopped.is_set():
            if select.select([self.fd], [], [], 0.2)[0]:
                data = os.read(self.fd, len(buffer))
                buffer[: len(data)] = data
                return len(data)
        return 0

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


class Running:
    """One started launcher: its output, its report, its side channel."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.transport: asyncio.SubprocessTransport | None = None
        self.collector: Collector | None = None
        self.report: dict[str, Any] = {}
        self.ready: asyncio.Future[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.channel_task: asyncio.Future[Any] | None = None
        self.channel_stream: ChannelStream | None = None
        self.started = 0.0
        self.duration = 0.0
        self.timed_out = False
        self.closed = False
        self.result: CommandResult | None = None

    @property
    def pid(self) -> int | None:
        return self.transport.get_pid() if self.transport else None

    async def start(self, channel: Callable[[ChannelStream], Any] | None = None) -> None:
        loop = asyncio.get_running_loop()
        collector = Collector(HeadTail(self.plan.limits.output_limit_bytes), loop)
        self.collector = collector
        self.ready = loop.create_future()
        report_r, report_w = os.pipe()
        chan_r, chan_w = os.pipe() if channel is not None else (-1, -1)
        fds = tuple(fd for fd in (report_w, chan_w) if fd >= 0)
        config = {
            **self.plan.config,
            "report_fd": report_w,
            "records_fd": chan_w if chan_w >= 0 else None,
            "parent": os.getpid(),
        }
        try:
            self.started = time.monotonic()
            self.transport, _ = await loop.subprocess_exec(
                lambda: collector,
                sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=fds, cwd="/", env={},
            )  # fmt: skip
        except BaseException:
            for fd in (report_r, chan_r):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in fds:
                os.close(fd)
        self.reader = asyncio.ensure_future(self._read_report(report_r))
        if channel is not None:
            self.channel_stream = ChannelStream(chan_r)
            self.channel_task = asyncio.ensure_future(
                asyncio.to_thread(channel, self.channel_stream)
            )

    async def _read_report(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0)
        )
        try:
            while line := await reader.readline():
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    self.report.update(message)
                    started = "ready" in message or "error" in message
                    if started and self.ready is not None and not self.ready.done():
                        self.ready.set_result(None)
        finally:
            transport.close()
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Wait for the command to end, at most ``timeout`` seconds (then it is timed out)."""
        assert self.collector is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.collector.exited), timeout=timeout)
        except TimeoutError:
            self.timed_out = True

    async def close(self) -> CommandResult:
        """Kill what is left, remove host state, and return the result (cancel-safe)."""
        if self.result is not None:
            return self.result
        if not self.closed:
            self.closed = True
            self.duration = time.monotonic() - self.started
            await asyncio.shield(asyncio.to_thread(self.plan.close, self.pid))
        assert self.collector is not None and self.transport is not None
        try:
            await asyncio.wait_for(asyncio.shield(self.collector.exited), _DRAIN_TIMEOUT_S)
            await asyncio.wait_for(asyncio.shield(self.collector.drained), _DRAIN_TIMEOUT_S)
            if self.reader is not None:
                await asyncio.wait_for(asyncio.shield(self.reader), _DRAIN_TIMEOUT_S)
        except TimeoutError:
            self.plan.warn("output still held open by a process outside the sandbox's reach")
        if self.channel_task is not None and self.channel_stream is not None:
            with contextlib.suppress(Exception):  # its outcome is read by the caller
                await asyncio.wait_for(asyncio.shield(self.channel_task), _DRAIN_TIMEOUT_S)
            self.channel_stream.stopped.set()
        self.result = self._result()
        return self.result

    def _result(self) -> CommandResult:
        assert self.collector is not None and self.transport is not None
        report = self.report
        for message in report.get("warnings", []):
            self.plan.warn(message)
        if error := report.get("error"):
            self.plan.warn(f"sandbox setup failed, command not run: {error}")
        if "exit" in report:
            exit_code = int(report["exit"])
        elif error or self.plan.contained:
            exit_code = 125 if error else -int(signal.SIGKILL)
        else:
            code = self.transport.get_returncode()
            exit_code = code if code is not None else -int(signal.SIGKILL)
        if self.timed_out:
            exit_code = -int(signal.SIGKILL)
        self.transport.close()
        text, truncated = self.collector.output.render()
        for real, name in sorted(self.plan.renames.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(real, name)
        if not report:
            self.plan.warn("the sandbox launcher did not report (killed early?); isolation unknown")
        return CommandResult(
            argv=list(self.plan.argv),
            exit_code=exit_code,
            timed_out=self.timed_out,
            duration_s=round(self.duration, 3),
            output=text,
            output_bytes=self.collector.output.total,
            truncated=truncated,
            isolation=self.plan.isolation + list(report.get("applied", [])),
            warnings=list(self.plan.warnings),
        )


def _check_args(argv: list[str], source: Path, env: dict[str, str] | None) -> Path:
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"source {source} does not exist or is not a directory")
    check_env_names(env or {})
    return source.resolve()


async def start_run(
    argv: list[str],
    *,
    source: Path,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    project_env: ProjectEnv | None = None,
    channel: Callable[[ChannelStream], Any] | None = None,
    writable_env: Path | None = None,
    wheelhouses: Sequence[Path] = (),
) -> Running:
    """Plan and start a run; the caller must ``close()`` the returned ``Running``."""
    source = _check_args(argv, source, env)
    await asyncio.to_thread(_swept)
    if project_env is None:
        from activities.sandbox.project_env import base_env  # the env module runs sandboxes

        project_env = await asyncio.to_thread(base_env)
    plan = await asyncio.to_thread(
        functools.partial(
            plan_run,
            argv,
            source=source,
            limits=limits or SandboxLimits(),
            env=env or {},
            project_env=project_env,
            writable_env=writable_env,
            wheelhouses=wheelhouses,
        )
    )
    running = Running(plan)
    try:
        await running.start(channel)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(plan.close, None))
        raise
    return running


async def run_with_channel(
    argv: list[str],
    *,
    source: Path,
    channel: Callable[[ChannelStream], T] | None,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    project_env: ProjectEnv | None = None,
    writable_env: Path | None = None,
    wheelhouses: Sequence[Path] = (),
) -> tuple[CommandResult, T | None]:
    """``run_sandboxed`` with a side channel: the command writes to fd 3, the worker
    reads it with ``channel`` (called in a thread, outside the sandbox's reach).

    Returns:
        The result, and what ``channel`` returned (None if it did not finish).
    """
    running = await start_run(
        argv,
        source=source,
        limits=limits,
        env=env,
        project_env=project_env,
        channel=channel,
        writable_env=writable_env,
        wheelhouses=wheelhouses,
    )
    try:
        await running.wait(running.plan.limits.timeout_s)
    finally:
        result = await asyncio.shield(running.close())
    value = None
    if running.channel_task is not None and running.channel_task.done():
        if running.channel_task.exception() is None:
            value = running.channel_task.result()
        else:
            result.warnings.append(f"side channel failed: {running.channel_task.exception()}")
    return result, value


async def run_sandboxed(
    argv: list[str],
    *,
    source: Path,
    limits: SandboxLimits | None = None,
    env: dict[str, str] | None = None,
    project_env: ProjectEnv | None = None,
) -> CommandResult:
    """Run ``argv`` in the sandbox on a private copy of ``source``.

    Args:
        argv: The command, as seen inside the sandbox: ``python`` is the project
            environment's interpreter (``/venv/bin/python``), relative paths are relative
            to ``/workspace``.
        source: A directory the worker owns (a checkout). It is copied, without
            ``.git``, to ``/workspace``; nothing is ever copied back.
        limits: Resource limits; defaults to ``SandboxLimits()``.
        env: Extra environment variables. Names that look like credentials are refused.
        project_env: The environment mounted read-only at ``/venv``; defaults to the
            base environment (the worker's own packages).

    Returns:
        The result, including what isolation was applied and any fallback warnings.

    Raises:
        ValueError: For bad arguments (empty argv, missing source, refused env name).
    """
    result, _ = await run_with_channel(
        argv,
        source=source,
        channel=None,
        limits=limits,
        env=env,
        project_env=project_env,
    )
    return result
