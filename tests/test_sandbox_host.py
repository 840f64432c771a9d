"""The sandbox's host side: arguments, environment, limits, output, ending a run."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import activities.sandbox as sandbox
from activities.sandbox import CommandResult, reaper, run_sandboxed
from tests.support.sandbox_support import (
    REPO,
    assert_contained,
    live_processes,
    require,
    require_contained,
    run_py,
    run_uid,
    sandboxed_descendants,
    tree_digest,
)

pytest_plugins = ["tests.support.sandbox_fixtures"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")


def test_front_page_exports_and_table() -> None:
    for name in sandbox.__all__:
        assert hasattr(sandbox, name), name
    doc = sandbox.__doc__ or ""
    for setting in ("file system view", "disk_mb", "network=False", "max_processes", "timeout_s"):
        assert setting in doc
    assert "What stays readable inside" in doc


# --- environment ------------------------------------------------------------------------


async def test_secrets_in_worker_env_are_invisible(
    src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("TEMPORAL_TLS_KEY", "sk-test-secret-123")
    result = await run_py(
        src,
        f"""
        import os, sys
        leaks = [k for k, v in os.environ.items() if "sk-test-secret" in v]
        for pid in (os.getppid(), 1, {os.getpid()}):
            try:
                if b"sk-test-secret" in open(f"/proc/{{pid}}/environ", "rb").read():
                    leaks.append(f"/proc/{{pid}}/environ")
            except OSError as err:
                print("environ of", pid, "unreadable:", err.strerror)
        print(sorted(os.environ))
        print("HOME", os.environ["HOME"], os.access(os.environ["HOME"], os.W_OK))
        if leaks:
            print("PWNED", leaks)
            sys.exit(0)
        sys.exit(1)
        """,
    )
    assert_contained(result)
    assert "sk-test-secret-123" not in result.output
    names = eval(result.output.splitlines()[-2])  # the sorted name list printed above
    assert set(names) <= {
        "PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED", "VIRTUAL_ENV", "PWD",
    }  # fmt: skip
    assert result.output.splitlines()[-1].split()[1:] == ["/home/sandbox", "True"]


async def test_extra_env_passes_and_credentials_are_refused(src: Path) -> None:
    result = await run_sandboxed(
        ["python", "-c", "import os; print(os.environ['APP_MODE'])"],
        source=src,
        env={"APP_MODE": "testing"},
    )
    assert result.exit_code == 0 and result.output.strip() == "testing", result
    for name in ("OPENAI_API_KEY", "TEMPORAL_NAMESPACE", "GITHUB_TOKEN", "DB_PASSWORD"):
        with pytest.raises(ValueError, match=name):
            await run_sandboxed(["true"], source=src, env={name: "x"})


async def test_bad_arguments_raise(src: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        await run_sandboxed(["true"], source=tmp_path / "missing")
    with pytest.raises(ValueError, match="non-empty"):
        await run_sandboxed([], source=src)


async def test_missing_command_is_reported_not_raised(src: Path) -> None:
    result = await run_sandboxed(["./no-such-tool", "--x"], source=src)
    assert result.exit_code == 127 and "cannot execute ./no-such-tool" in result.output


async def test_concurrent_runs_get_their_own_uid(tmp_path: Path, probe: CommandResult) -> None:
    require(probe, "uid")
    code = "import os; print(os.getuid())"
    results = await asyncio.gather(
        *(run_sandboxed(["python", "-c", code], source=tmp_path) for _ in range(3))
    )
    assert all(r.exit_code == 0 for r in results), results
    assert len({run_uid(r) for r in results}) == 3
    assert all(r.output.strip() == str(run_uid(r)) for r in results)


# --- the view from inside -----------------------------------------------------------------


async def test_fixed_paths_and_a_minimal_root(src: Path) -> None:
    require_contained()
    (src / "app.py").write_text("x = 1\n")
    result = await run_py(
        src,
        """
        import os, sys, tempfile
        print(os.getcwd(), os.environ["HOME"], tempfile.gettempdir(), sys.prefix)
        print(sorted(os.listdir("/")))
        print(sorted(os.listdir("/workspace")))
        print(sorted(os.listdir("/etc")))
        print(os.getpid(), os.getppid(), sorted(p for p in os.listdir("/proc") if p.isdigit()))
        """,
    )
    assert result.exit_code == 0, result.output
    first, top, ws, etc, procs = result.output.splitlines()[-5:]
    assert first == "/workspace /home/sandbox /tmp /venv"
    assert set(eval(top)) <= {
        "bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "dev", "proc", "etc", "tmp",
        "home", "opt", "venv", "workspace", "root", "work", ".empty",
    } | {Path(p).parts[1] for p in (sys.base_prefix, *sandbox.interpreter.site_dirs())}  # fmt: skip
    assert eval(ws) == ["README.md", "app.py"]  # no .git
    assert "shadow" not in eval(etc) and "passwd" in eval(etc)
    pid, ppid, pids = procs.split(" ", 2)
    assert ppid == "1" and "1" not in eval(pids)  # init (root) is hidden by hidepid


async def test_private_dev_shm_keeps_multiprocessing_working(src: Path) -> None:
    require_contained()
    name = f"/dev/shm/backforge-test-{uuid.uuid4().hex}"
    result = await run_py(
        src,
        f"""
        import multiprocessing
        with multiprocessing.Lock():
            open({name!r}, "w").write("x")
        print("ok")
        """,
    )
    assert result.exit_code == 0 and result.output.strip() == "ok", result.output
    assert not Path(name).exists()  # the sandbox's /dev/shm is its own


async def test_nothing_is_copied_back(src: Path) -> None:
    before = tree_digest(src)
    result = await run_py(
        src,
        """
        import os, shutil
        open("new.txt", "w").write("x")
        open("README.md", "a").write("changed")
        os.makedirs("pkg/sub")
        shutil.rmtree(".git", ignore_errors=True)
        print("wrote")
        """,
    )
    assert result.exit_code == 0 and "wrote" in result.output, result.output
    assert tree_digest(src) == before


# --- limits -----------------------------------------------------------------------------


async def test_file_size_limit(src: Path) -> None:
    result = await run_py(
        src,
        """
        import sys
        try:
            with open("big.bin", "wb") as f:
                for _ in range(3):
                    f.write(b"x" * 1024 * 1024)
        except OSError as err:
            print("write failed:", err.strerror)
            sys.exit(1)
        print("PWNED")
        """,
        file_size_mb=1,
    )
    assert_contained(result)
    assert "File too large" in result.output


async def test_infinite_loop_ends_at_the_timeout(src: Path) -> None:
    result = await run_py(src, "print('spinning', flush=True)\nwhile True: pass", timeout_s=2)
    assert result.timed_out
    assert result.exit_code == -9
    assert 1.9 <= result.duration_s < 10
    assert "spinning" in result.output


async def test_memory_limit(src: Path) -> None:
    result = await run_py(
        src,
        """
        import sys
        try:
            block = bytearray(1024 * 1024 * 1024)
        except MemoryError:
            print("allocation refused")
            sys.exit(1)
        print("PWNED")
        """,
        memory_mb=256,
    )
    assert_contained(result)
    assert "allocation refused" in result.output


async def test_megabytes_of_output_keep_head_and_tail(src: Path) -> None:
    result = await run_py(
        src,
        """
        import sys
        for i in range(200_000):
            sys.stdout.write(f"line {i:07d} " + "y" * 20 + "\\n")
        sys.stdout.flush()  # one pipe for both streams: stderr lands after stdout
        sys.stderr.write("== 3 failed, 7 passed in 0.12s ==\\n")
        """,
        output_limit_bytes=10_000,
    )
    assert result.exit_code == 0
    assert result.truncated and result.output_bytes > 5_000_000
    assert result.output.startswith("line 0000000 ")
    assert "line 0199999 " in result.output
    assert result.output.rstrip().endswith("== 3 failed, 7 passed in 0.12s ==")
    assert "bytes of output elided" in result.output
    assert len(result.output) < 10_200


# --- processes --------------------------------------------------------------------------

FORK_BOMB = """
    import os, sys, time

    def log(name):
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, b"x")
        os.close(fd)

    def grow(depth):
        # A binary tree 10 deep: at most 2046 processes, so an uncontained bomb
        # fails this test rather than the machine.
        for _ in range(2):
            if depth >= 10:
                return
            try:
                pid = os.fork()
            except OSError:
                log("failed")
                return
            if pid == 0:
                log("started")
                grow(depth + 1)
                os.execv("/bin/sleep", ["sleep", "60"])  # hold the slot

    grow(0)
    deadline = time.monotonic() + 8
    while not os.path.exists("failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    started = os.path.getsize("started") if os.path.exists("started") else 0
    print("started", started, "limited", os.path.exists("failed"))
    sys.exit(1 if os.path.exists("failed") else 0)
"""


async def test_fork_bomb_is_bounded(src: Path, probe: CommandResult) -> None:
    require(probe, "uid")
    result = await run_py(src, FORK_BOMB, max_processes=32, timeout_s=30)
    assert not result.timed_out, result.output
    assert "limited True" in result.output, result.output
    started = int(result.output.split("started ")[1].split()[0])
    assert started < 32
    assert_contained(result)
    assert live_processes(run_uid(result)) == []  # the sleeping bomb was killed with the run


async def test_fork_bomb_without_cgroup_is_bounded_by_the_uid(
    src: Path, probe: CommandResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(probe, "uid")
    monkeypatch.setattr(reaper, "cgroup_parent", lambda: (None, "simulated"))
    result = await run_py(src, FORK_BOMB, max_processes=32, timeout_s=30)
    assert any("pids cgroup unavailable (simulated)" in w for w in result.warnings)
    assert not any(i.startswith("pids-cgroup") for i in result.isolation)
    assert "limited True" in result.output, result.output
    assert live_processes(run_uid(result)) == []


async def test_processes_escaping_the_session_are_killed(src: Path, probe: CommandResult) -> None:
    require(probe, "uid")
    result = await run_py(
        src,
        """
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", "120"])
            os._exit(0)
        time.sleep(0.5)
        print("daemon started")
        """,
    )
    assert "daemon started" in result.output, result.output
    assert live_processes(run_uid(result)) == []


async def test_cancelling_the_run_kills_it(src: Path, probe: CommandResult) -> None:
    require(probe, "uid")
    task = asyncio.create_task(run_py(src, "import time\ntime.sleep(120)"))
    deadline = asyncio.get_running_loop().time() + 20
    while not (run := sandboxed_descendants(os.getpid())):
        assert asyncio.get_running_loop().time() < deadline, "the command never started"
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(live_processes(uid) == [] for uid in set(run.values()))


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_missing_privileges_are_reported_not_silent(src: Path, tmp_path: Path) -> None:
    """Without CAP_SYS_ADMIN (a default container) the fallbacks are all in warnings."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from activities.sandbox import run_sandboxed

        code = "import os; print('ran in', os.getcwd())"
        result = asyncio.run(run_sandboxed(["python", "-c", code], source=Path(sys.argv[1])))
        print(result.model_dump_json())
        """
    )
    argv = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", sys.executable]
    proc = subprocess.run(
        [*argv, "-c", script, str(src)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "BACKFORGE_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = CommandResult.model_validate_json(proc.stdout.splitlines()[-1])
    assert result.exit_code == 0, result
    assert result.output.strip() == "ran in /workspace"  # the real path, renamed
    assert "netns" not in result.isolation and "mountns" not in result.isolation
    warnings = "\n".join(result.warnings)
    assert "network isolation unavailable" in warnings
    assert "mount and pid namespaces unavailable" in warnings
    assert "network isolation unavailable" in proc.stderr  # and logged
    assert not list(Path("/tmp").glob("backforge-run-*-*-*/workspace"))
