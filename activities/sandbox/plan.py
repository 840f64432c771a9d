"""What a run looks like, decided on the host: mounts, paths, uid, cgroup, environment.

``plan_run`` turns a request into a ``Plan`` whose ``config`` is the launcher's JSON: in
contained mode the whole file system view of the run (binds, masks, copies, the small
``/etc``), in degraded mode a host run directory and a mapping of the fixed paths onto
it. ``Plan.close`` undoes the host side (kills, cgroup, run directory).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activities.sandbox import interpreter, reaper
from activities.sandbox.models import (
    SANDBOX_HOME,
    SANDBOX_TMP,
    TOOLS,
    VENV,
    WHEELHOUSE,
    WORKSPACE,
    ProjectEnv,
    SandboxLimits,
)

__all__ = [
    "LAUNCHER",
    "RECORDER",
    "ENV_BUILDER",
    "Plan",
    "plan_run",
    "capabilities",
    "check_env_names",
]

logger = logging.getLogger("activities.sandbox")

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
