"""Backforge sandbox launcher: applies the isolation a worker asks for, then runs the command.

Run by path as ``python -I -S launcher.py '<json>'`` (stdlib only, no module of Backforge
is importable here). The JSON is built by ``activities.sandbox.host``; it is trusted (it
comes from the worker), the command it runs is not. Modes:

``probe``
    Report on the report fd which isolation this machine allows (root, namespaces,
    tmpfs mounts), then exit.
``run`` with ``contained``
    Join the run's pids cgroup, ``unshare`` mount, pid, ipc, uts (and net) namespaces and
    fork the namespace's init (pid 1). Init builds a minimal root on one size-limited
    tmpfs (read-only binds of what the interpreter needs, a copy of the checkout at
    ``/workspace`` owned by the run's uid, a private ``/tmp``, ``/dev`` and ``/proc``),
    ``pivot_root``s into it, forks the command (rlimits, no supplementary groups, the
    run's uid, ``no_new_privs``, ``exec``) and waits for it. When init exits the kernel
    kills everything left in the pid namespace and the mount namespace, tmpfs included,
    disappears. Every process down the chain dies with its parent (``PR_SET_PDEATHSIG``).
``run`` without ``contained``
    The degraded mode: whatever the machine allows (cgroup, network namespace, uid),
    a copy of the checkout in a host directory, then ``exec`` in place.
``join``
    Enter the network namespace of a running sandbox (an fd passed by the worker) and
    ``exec`` a worker-side command there, without any other change.

The report fd gets JSON lines: ``{"init_pid": N}`` from the launcher, ``{"ready": true,
"applied": [...], "warnings": [...]}`` before the command starts, ``{"exit": N}`` when it
ended (``-N`` for signal N), or ``{"error": "..."}`` when setup failed (exit 125).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import platform
import resource
import select
import signal
import socket
import stat
import struct
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SYS_PIVOT_ROOT = {
    "x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203,
    "s390x": 217, "i686": 217, "armv7l": 218,
}  # fmt: skip
RECORDS_FD = 3  # where the command finds the side channel, when there is one
SETUP_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes += [ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class SetupError(Exception):
    """Isolation that was asked for could not be applied: the command must not run."""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    enc = [s.encode() if s else None for s in (src, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def pivot_root(new_root: str, put_old: str) -> None:
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(0, f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(number, new_root.encode(), put_old.encode()), "pivot_root")


class Reporter:
    """JSON lines to the worker; each line is one small write (atomic on a pipe)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.applied: list[str] = []
        self.warnings: list[str] = []

    def send(self, **message: Any) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.fd, (json.dumps(message) + "\n").encode())

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def fail(self, message: str) -> None:
        self.send(error=message)
        sys.stderr.write(f"backforge sandbox: {message}\n")
        sys.stderr.flush()
        os._exit(SETUP_FAILED)


# --- shared steps ----------------------------------------------------------------------


def die_with_parent(parent: int) -> None:
    """SIGKILL when the parent exits; exit now if it already has."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(SETUP_FAILED)


def join_cgroup(cfg: dict[str, Any], rep: Reporter) -> None:
    if cfg.get("cgroup_procs"):
        try:
            with open(cfg["cgroup_procs"], "w") as f:
                f.write(str(os.getpid()))
            rep.applied.append(cfg["cgroup_label"])
        except OSError as err:
            rep.warnings.append(f"could not join the pids cgroup: {err}")


def loopback_up(rep: Reporter) -> None:
    """Loopback up in a fresh network namespace, so servers on 127.0.0.1 work inside."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            flags = 0x1 | 0x8 | 0x40  # IFF_UP | IFF_LOOPBACK | IFF_RUNNING
            ifreq = struct.pack("16sH22x", b"lo", flags)
            fcntl.ioctl(s.fileno(), 0x8914, ifreq)  # SIOCSIFFLAGS
    except OSError as err:
        rep.warnings.append(f"loopback left down in the network namespace: {err}")


def copy_tree(src_fd: int, dst: str, owner: tuple[int, int] | None) -> None:
    """Copy a directory (opened as ``src_fd``) to ``dst``, without ``.git`` or special files.

    Every step is relative to an open directory and never follows a symlink, so nothing
    in the source redirects the copy. Modes keep their permission bits only (no setuid,
    setgid or sticky bits); ``owner`` (uid, gid) gets everything.
    """
    os.makedirs(dst, mode=0o755, exist_ok=True)
    top = os.open(dst, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    stack = [(os.dup(src_fd), top)]
    try:
        while stack:
            sfd, dfd = stack.pop()
            try:
                for entry in os.scandir(sfd):
                    name = entry.name
                    if name == ".git":
                        continue
                    st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
                    mode = stat.S_IMODE(st.st_mode) & 0o777
                    if stat.S_ISDIR(st.st_mode):
                        os.mkdir(name, 0o700, dir_fd=dfd)
                        child_s = os.open(
                            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=sfd
                        )
                        child_d = os.open(
                            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd
                        )
                        os.fchmod(child_d, mode | 0o700)
                        if owner:
                            os.fchown(child_d, *owner)
                        stack.append((child_s, child_d))
                    elif stat.S_ISREG(st.st_mode):
                        _copy_file(name, sfd, dfd, mode, owner, st)
                    elif stat.S_ISLNK(st.st_mode):
                        os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
                        if owner:
                            os.chown(name, *owner, dir_fd=dfd, follow_symlinks=False)
            finally:
                os.close(sfd)
                if dfd != top:
                    os.close(dfd)
    finally:
        for sfd, dfd in stack:
            os.close(sfd)
            os.close(dfd)
        if owner:
            os.fchown(top, *owner)
        os.close(top)


def _copy_file(
    name: str, sfd: int, dfd: int, mode: int, owner: tuple[int, int] | None, st: os.stat_result
) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=sfd)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
        try:
            left = st.st_size
            while left > 0:
                sent = os.sendfile(dst, src, None, min(left, 1 << 24))
                if sent == 0:
                    break
                left -= sent
            os.fchmod(dst, mode)
            if owner:
                os.fchown(dst, *owner)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dst)
    finally:
        os.close(src)


def set_limits(cfg: dict[str, Any], rep: Reporter) -> None:
    for name, (soft, hard) in cfg["rlimits"].items():
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (OSError, ValueError) as err:
            rep.warnings.append(f"{name} not set: {err}")


def exec_command(
    cfg: dict[str, Any], rep: Reporter, records: int | None, parent: int | None = None
) -> None:
    """In the command's own process: drop privileges and ``exec`` (never returns).

    ``parent``: re-arm the parent-death signal after the uid change (which clears it)
    and check that parent is still there; for a command that is not in a pid namespace.
    """
    try:
        os.umask(0o022)
        os.chdir(cfg["cwd"])
        uid = cfg["uid"]
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            if parent is not None:
                prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() != parent:
                    os._exit(SETUP_FAILED)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if records is not None:
            os.dup2(records, RECORDS_FD)  # dup2 leaves the copy inheritable
        keep = RECORDS_FD + 1 if records is not None else RECORDS_FD
        os.closerange(keep, 1 << 16)
    except OSError as err:
        rep.fail(f"could not drop privileges or enter {cfg['cwd']}: {err}")
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # Python ignores it; the command should not
    try:
        os.execvpe(cfg["argv"][0], cfg["argv"], cfg["env"])
    except OSError as err:
        sys.stderr.write(f"backforge sandbox: cannot execute {cfg['argv'][0]}: {err.strerror}\n")
        sys.stderr.flush()
        os._exit(127)


def wait_status_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


# --- contained mode ----------------------------------------------------------------------


def build_root(plan: dict[str, Any], owner: tuple[int, int] | None, rep: Reporter) -> None:
    """The run's whole file system view, on one tmpfs; then ``pivot_root`` into it.

    Sources are opened before anything is mounted over them (the new root's mount point
    may hide them).
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing propagates back to the host
    binds = []
    for source, target, writable in plan["binds"]:
        fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
        binds.append((fd, target, writable, stat.S_ISDIR(os.fstat(fd).st_mode)))
    copies = [
        (os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), dst)
        for src, dst in plan["copies"]
    ]
    root = plan["mountpoint"]
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, plan["tmpfs_options"])
    for path, mode, by_uid in plan["dirs"]:
        full = root + path
        os.makedirs(full, mode=0o755, exist_ok=True)
        os.chmod(full, mode)
        if by_uid and owner:
            os.chown(full, *owner)
    for path, text, mode in plan["files"]:
        with open(root + path, "w") as f:
            f.write(text)
        os.chmod(root + path, mode)
    for path, target in plan["symlinks"]:
        os.symlink(target, root + path)
    for fd, target, writable, is_dir in binds:
        full = root + target
        os.makedirs(full if is_dir else os.path.dirname(full), mode=0o755, exist_ok=True)
        if not is_dir:
            os.close(os.open(full, os.O_WRONLY | os.O_CREAT, 0o444))
        mount(f"/proc/self/fd/{fd}", full, None, MS_BIND)
        if writable is None:  # a device node: keep it usable
            mount(None, full, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC)
        elif not writable:
            mount(None, full, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    empty = root + "/.empty"
    for path in plan["masks"]:
        full = root + path
        if os.path.isdir(full):
            mount("tmpfs", full, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
        elif os.path.lexists(full):
            if not os.path.exists(empty):
                os.close(os.open(empty, os.O_WRONLY | os.O_CREAT, 0o444))
            mount(empty, full, None, MS_BIND)
            mount(None, full, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd, dst in copies:
        try:
            copy_tree(fd, root + dst, owner)
        except OSError as err:
            if err.errno == 28:  # ENOSPC
                raise SetupError(
                    f"{dst} does not fit in the run's disk quota ({plan['quota_mb']} MiB)"
                ) from err
            raise
        finally:
            os.close(fd)
    os.chdir(root)
    os.mkdir(".oldroot")
    pivot_root(".", ".oldroot")
    os.chdir("/")
    _check(_libc.umount2(b"/.oldroot", MNT_DETACH), "umount old root")
    os.rmdir("/.oldroot")
    rep.applied.append("pivot-root")
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
        rep.applied.append("proc:hidepid")
    except OSError:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        rep.warnings.append("/proc without hidepid: the namespace's init (root) is visible")


def run_contained(cfg: dict[str, Any], rep: Reporter) -> None:
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if not cfg["network"]:
        flags |= CLONE_NEWNET
    try:
        unshare(flags)
    except OSError as err:
        rep.fail(f"namespaces unavailable: {err}")
    rep.applied += ["mountns", "pidns", "ipcns", "utsns"]
    if not cfg["network"]:
        rep.applied.append("netns")
    alive_r, alive_w = os.pipe()
    records = cfg.get("records_fd")
    init = os.fork()
    if init == 0:
        os.close(alive_w)
        run_init(cfg, rep, alive_r, records)
    os.close(alive_r)
    rep.send(init_pid=init)
    rep.close()
    if records is not None:
        os.close(records)
    while True:
        try:
            _, status = os.waitpid(init, 0)
            break
        except InterruptedError:
            continue
    os.close(alive_w)
    os._exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else SETUP_FAILED)


def run_init(cfg: dict[str, Any], rep: Reporter, alive: int, records: int | None) -> None:
    """Pid 1 of the run: build the root, start the command, reap, report its status."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([alive], [], [], 0)[0]:  # the launcher is already gone
            os._exit(SETUP_FAILED)
        os.close(alive)
        prctl(PR_SET_DUMPABLE, 0)
        os.umask(0o022)
        owner = (cfg["uid"], cfg["uid"]) if cfg["uid"] is not None else None
        build_root(cfg["root"], owner, rep)
        rep.applied.append(f"disk-quota:{cfg['root']['quota_mb']}MiB")
        if not cfg["network"]:
            loopback_up(rep)
        socket.sethostname("sandbox")
    except SetupError as err:
        rep.fail(str(err))
    except OSError as err:
        rep.fail(f"sandbox root setup failed: {err}")
    set_limits(cfg, rep)
    rep.applied.append("rlimits")
    if cfg["uid"] is not None:
        rep.applied.append(f"uid:{cfg['uid']}")
    rep.applied.append("no-new-privs")
    command = os.fork()
    if command == 0:
        exec_command(cfg, rep, records)
    if records is not None:
        os.close(records)
    rep.send(ready=True, applied=rep.applied, warnings=rep.warnings)
    code = None
    while code is None:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            code = -int(signal.SIGKILL)
            break
        if pid == command:
            code = wait_status_code(status)
    rep.send(exit=code)
    os._exit(0)  # the kernel now kills whatever is left in the namespace


# --- degraded mode -----------------------------------------------------------------------


def run_degraded(cfg: dict[str, Any], rep: Reporter) -> None:
    if not cfg["network"]:
        try:
            unshare(CLONE_NEWNET)
            rep.applied.append("netns")
            loopback_up(rep)
        except OSError as err:
            rep.warnings.append(f"network isolation unavailable: {err}; running with network")
    owner = (cfg["uid"], cfg["uid"]) if cfg["uid"] is not None else None
    try:
        for path, mode, by_uid in cfg["root"]["dirs"]:
            os.makedirs(path, mode=0o755, exist_ok=True)
            os.chmod(path, mode)
            if by_uid and owner:
                os.chown(path, *owner)
        for src, dst in cfg["root"]["copies"]:
            fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
            try:
                copy_tree(fd, dst, owner)
            finally:
                os.close(fd)
    except OSError as err:
        rep.fail(f"could not prepare the run directory: {err}")
    set_limits(cfg, rep)
    rep.applied.append("rlimits")
    if cfg["uid"] is not None:
        rep.applied.append(f"uid:{cfg['uid']}")
    rep.applied.append("no-new-privs")
    rep.send(ready=True, applied=rep.applied, warnings=rep.warnings)
    rep.close()
    exec_command(cfg, rep, cfg.get("records_fd"), parent=cfg["parent"])


# --- probe and join ----------------------------------------------------------------------


def probe(rep: Reporter) -> None:
    found: dict[str, Any] = {"root": os.geteuid() == 0}
    try:
        unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k")
        found["contained"] = platform.machine() in SYS_PIVOT_ROOT
        found["reason"] = "" if found["contained"] else f"no pivot_root on {platform.machine()}"
    except OSError as err:
        found["contained"] = False
        found["reason"] = str(err)
    rep.send(**found)


def join(cfg: dict[str, Any], rep: Reporter) -> None:
    try:
        _check(_libc.setns(cfg["netns_fd"], CLONE_NEWNET), "setns(CLONE_NEWNET)")
        os.close(cfg["netns_fd"])
    except OSError as err:
        rep.fail(f"could not join the service's network namespace: {err}")
    rep.send(ready=True, applied=["joined-netns"], warnings=[])
    rep.close()
    try:
        os.chdir(cfg["cwd"])
        os.execvpe(cfg["argv"][0], cfg["argv"], cfg["env"])
    except OSError as err:
        sys.stderr.write(f"backforge sandbox: cannot execute {cfg['argv'][0]}: {err.strerror}\n")
        os._exit(127)


def main(argv: list[str]) -> None:
    cfg = json.loads(argv[1])
    rep = Reporter(cfg["report_fd"])
    if cfg["mode"] == "probe":
        probe(rep)
        return
    try:
        die_with_parent(cfg["parent"])
    except OSError as err:
        rep.fail(str(err))
    if cfg["mode"] == "join":
        join(cfg, rep)
    join_cgroup(cfg, rep)
    if cfg["contained"]:
        run_contained(cfg, rep)
    else:
        run_degraded(cfg, rep)


if __name__ == "__main__":
    main(sys.argv)
