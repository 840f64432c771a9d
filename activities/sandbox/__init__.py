"""Running generated code: the sandbox. Generated code is untrusted.

``run_sandboxed(argv, source=checkout)`` runs one command on a private copy of a
checkout and returns a ``CommandResult``; a failing or hostile command is reported,
never raised. The sandbox never receives a git repository, and nothing it writes is
ever copied back: the worker runs git, pip or file copies only on trees it owns.

How a run looks from inside (contained mode: root, mount/pid/net namespaces available)::

    /workspace        copy of the checkout without .git, owned by the run's uid  (rw, quota)
    /tmp, /home/sandbox, /dev/shm                                                  (rw, quota)
    /venv             the project environment (project_env.py)                     (ro)
    /usr, /bin, /lib*, the base Python, the worker's site-packages                 (ro)
    /etc              passwd, group, hosts, nsswitch.conf, resolv.conf (empty),
                      hostname, ld.so.cache, localtime, alternatives               (ro)
    /opt/backforge    pytest_recorder.py, env_builder.py                           (ro)
    /dev              null, zero, full, random, urandom; /proc (own pid namespace)

Isolation per setting, and what happens where the machine does not allow it (every
fallback is logged once and listed in ``CommandResult.warnings``, never silent;
``CommandResult.isolation`` lists what was applied):

=================  ===============================================  ========================================
Setting            Mechanism and what it guarantees                 Where the machine does not allow it
=================  ===============================================  ========================================
file system view   New mount namespace; the launcher (root) builds  No mount/pid namespace (no
                   a root on one tmpfs and ``pivot_root``s into it  CAP_SYS_ADMIN): degraded mode. The copy
                   before dropping privileges: only the paths in    lives in a host temp dir, the command sees
                   the picture above exist. No .git, run store,     the host's world-readable files and
                   other repository, feature text or Backforge      world-writable dirs; the uid is dropped
                   source (its editable finder and dist-info in     only where the interpreter is reachable
                   site-packages are masked).                       for it, else it runs as root. Warning.
disk_mb            The tmpfs is size-limited (default 256 MiB, and  Degraded mode: no quota, warning.
                   a cap on inodes): the copy, /tmp, HOME and
                   /dev/shm together. It vanishes with the run.
fixed paths        /workspace, /tmp, /home/sandbox, /venv: output   Degraded mode: the real paths are
                   is the same across runs and attempts.            rewritten to these names in the output.
processes          New pid namespace; the namespace's init (pid 1)  No pid namespace: the process group, the
                   exits when the command does, and the kernel      pids cgroup and every process of the
                   kills everything left. /proc with hidepid: only  run's uid are killed; warning when
                   the run's own processes are visible.             neither cgroup nor uid can be used.
worker death       Parent-death signal down the chain worker ->     Degraded mode: the command gets the
                   launcher -> init, so a killed worker takes its   parent-death signal, its children rely
                   runs with it: nothing is left but an empty pids  on the uid/cgroup sweep.
                   cgroup, which ``sweep`` removes (run it at
                   worker start; the first run of a process does).
timeout_s          At the deadline SIGKILL to the launcher (and     Always available.
                   with it the namespace), the cgroup, the uid.
cpu_s, memory_mb,  RLIMIT_CPU, RLIMIT_AS (address space),           Always available.
file_size_mb       RLIMIT_FSIZE (writes fail with EFBIG).
max_processes      pids cgroup (v2, else v1) and RLIMIT_NPROC for   No cgroup: RLIMIT_NPROC only, which root
                   the per-run uid.                                 ignores; warning.
network=False      New network namespace with only loopback (up):   No namespace: runs with network, warning.
                   the host's 127.0.0.1 and the internet are        No CAP_NET_ADMIN: loopback stays down,
                   unreachable, also while dependencies install.    warning.
environment        Allow-list (LANG, LC_ALL, TZ, PYTHONHASHSEED)    Always available.
                   plus the caller's env, fixed PATH/HOME/TMPDIR;
                   credential-like names are refused.
privileges         A fresh uid per run (``SANDBOX_UIDS``, no        Not root: runs as the worker's user with
                   supplementary groups), no_new_privs.             nothing confined; warning.
output             One pipe; head and tail kept, middle elided.     Always available.
=================  ===============================================  ========================================

What stays readable inside (contained mode), precisely: the copy of the checkout; the
project environment; ``/usr`` and the ``/bin``, ``/lib*`` links or directories; the
base Python installation (``sys.base_prefix``, including its own site-packages); the
worker's site-packages directories (minus Backforge's own files); the small ``/etc``
above; Backforge's two helper scripts; ``/proc`` of the run's own pid namespace (plus
the kernel's global files there, e.g. ``/proc/cpuinfo``, and ``/proc/self/mountinfo``,
which names the host paths of the read-only mounts). Not mounted: ``/sys``, the rest of
``/etc``, ``/home``, ``/root``, ``/var``, ``/run``, ``/srv``, ``/opt``, ``/work``-like trees.

Not covered: no seccomp filter (the whole syscall surface, including unprivileged user
namespaces if the host allows them, is reachable); memory of the tmpfs counts against
the host's RAM, not ``memory_mb``. Linux only.

Modules: ``host`` (starting, watching, ending a run), ``launcher`` (the script run by
path as root that applies the isolation), ``reaper`` (one kill loop, the start-up
sweep), ``interpreter`` (the base layer), ``project_env`` (building an environment from
the declared requirements), ``env_store`` (built environments on disk, the base one),
``service`` (long-running commands and checks in their network namespace), ``plan``
(what a run looks like: mounts, paths, uid, degraded-mode mapping),
``pytest_recorder`` and ``env_builder`` (scripts that run inside), ``output``, ``models``.
"""

from activities.sandbox.cpu_slots import cpu_slots, set_cpu_slots
from activities.sandbox.env_store import base_env
from activities.sandbox.host import (
    ENV_BUILDER,
    RECORDER,
    ChannelStream,
    capabilities,
    run_sandboxed,
    run_with_channel,
)
from activities.sandbox.models import (
    SANDBOX_HOME,
    SANDBOX_TMP,
    VENV,
    WORKSPACE,
    CommandResult,
    EnvResult,
    ProjectEnv,
    SandboxLimits,
)
from activities.sandbox.project_env import declared_requirements, ensure_project_env
from activities.sandbox.reaper import SANDBOX_UIDS, sweep
from activities.sandbox.service import Service, ServiceError, serve_in_sandbox

__all__ = [
    "SANDBOX_UIDS",
    "WORKSPACE",
    "SANDBOX_HOME",
    "SANDBOX_TMP",
    "VENV",
    "RECORDER",
    "ENV_BUILDER",
    "SandboxLimits",
    "CommandResult",
    "ProjectEnv",
    "EnvResult",
    "ChannelStream",
    "Service",
    "ServiceError",
    "run_sandboxed",
    "run_with_channel",
    "serve_in_sandbox",
    "ensure_project_env",
    "base_env",
    "declared_requirements",
    "capabilities",
    "sweep",
    "cpu_slots",
    "set_cpu_slots",
]
