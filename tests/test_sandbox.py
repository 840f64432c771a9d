"""Hostile generated code in the sandbox: each attempt is contained and reported.

Each hostile script exits 0 and prints PWNED only if its attack worked; the tests also
check the host side (files, processes, listener) rather than trusting the script.
Assertions that need an isolation this machine cannot give are skipped with the reason
the sandbox reported.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from activities import sandbox
from activities.sandbox import (
    CommandResult,
    SandboxLimits,
    ensure_project_env,
    project_python,
    run_sandboxed,
)
from tests.support.temporal import eventually

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    return workspace


@pytest.fixture(scope="session")
async def probe(tmp_path_factory: pytest.TempPathFactory) -> CommandResult:
    """One harmless run: what isolation this machine gives."""
    return await run_sandboxed(["true"], workspace=tmp_path_factory.mktemp("probe"))


def require(result: CommandResult, label: str) -> None:
    if not any(i == label or i.startswith(f"{label}:") for i in result.isolation):
        pytest.skip(f"{label} isolation unavailable here: {result.warnings}")


def run_uid(result: CommandResult) -> int | None:
    return next((int(i[4:]) for i in result.isolation if i.startswith("uid:")), None)


def live_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            state = Path(f"/proc/{entry.name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            if entry.stat().st_uid == uid and state != b"Z":
                pids.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return pids


async def run_py(ws: Path, code: str, **limits: object) -> CommandResult:
    return await run_sandboxed(
        [PY, "-c", textwrap.dedent(code)],
        workspace=ws,
        limits=SandboxLimits.model_validate(limits) if limits else None,
    )


def assert_contained(result: CommandResult) -> None:
    assert "PWNED" not in result.output, result.output
    assert result.exit_code != 0, result.output


# --- environment ------------------------------------------------------------------------


async def test_secrets_in_worker_env_are_invisible(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("TEMPORAL_TLS_KEY", "sk-test-secret-123")
    result = await run_py(
        ws,
        """
        import os, sys
        leaks = [k for k, v in os.environ.items() if "sk-test-secret" in v]
        for pid in (os.getppid(), 1):
            try:
                if b"sk-test-secret" in open(f"/proc/{pid}/environ", "rb").read():
                    leaks.append(f"/proc/{pid}/environ")
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
        "PYTHONHASHSEED",
    }  # fmt: skip
    home_line = result.output.splitlines()[-1].split()
    assert home_line[2] == "True" and not Path(home_line[1]).exists()  # private, then removed
    if run_uid(result) is not None:
        assert f"environ of {os.getpid()} unreadable" in result.output


async def test_extra_env_passes_and_credentials_are_refused(ws: Path) -> None:
    result = await run_sandboxed(
        [PY, "-c", "import os; print(os.environ['APP_MODE'])"],
        workspace=ws,
        env={"APP_MODE": "testing"},
    )
    assert result.exit_code == 0 and result.output.strip() == "testing"
    for name in ("OPENAI_API_KEY", "TEMPORAL_NAMESPACE", "GITHUB_TOKEN", "DB_PASSWORD"):
        with pytest.raises(ValueError, match=name):
            await run_sandboxed(["true"], workspace=ws, env={name: "x"})


async def test_bad_arguments_raise(ws: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        await run_sandboxed(["true"], workspace=tmp_path / "missing")
    with pytest.raises(ValueError, match="non-empty"):
        await run_sandboxed([], workspace=ws)


async def test_concurrent_runs_get_their_own_uid(tmp_path: Path, probe: CommandResult) -> None:
    require(probe, "uid")
    spaces = [tmp_path / f"ws{i}" for i in range(3)]
    for space in spaces:
        space.mkdir()
    code = "import os; open('me', 'w').write(str(os.getuid())); print(os.getuid())"
    results = await asyncio.gather(
        *(run_sandboxed([PY, "-c", code], workspace=space) for space in spaces)
    )
    assert all(r.exit_code == 0 for r in results)
    assert len({run_uid(r) for r in results}) == 3
    assert all(r.output.strip() == str(run_uid(r)) for r in results)


async def test_missing_command_is_reported_not_raised(ws: Path) -> None:
    result = await run_sandboxed(["./no-such-tool", "--x"], workspace=ws)
    assert result.exit_code == 127 and "cannot execute ./no-such-tool" in result.output


# --- filesystem -------------------------------------------------------------------------


async def test_writes_outside_the_workspace_fail(
    ws: Path, tmp_path: Path, probe: CommandResult
) -> None:
    require(probe, "uid")
    token = uuid.uuid4().hex
    targets = [Path(f"/tmp/outside-{token}"), REPO / f"outside-{token}", tmp_path / "sibling"]
    try:
        result = await run_py(
            ws,
            f"""
            import os, sys
            os.makedirs("pkg/sub", exist_ok=True)
            open("pkg/sub/inside.txt", "w").write("ok")
            won = []
            for target in {[str(t) for t in targets]!r}:
                try:
                    open(target, "w").write("owned")
                    won.append(target)
                except OSError as err:
                    print("blocked", target, err.strerror)
            if won:
                print("PWNED", won)
                sys.exit(0)
            sys.exit(1)
            """,
        )
        assert_contained(result)
        assert result.output.count("blocked") == len(targets)
    finally:
        created = [t for t in targets if t.exists()]
        for t in created:
            t.unlink()
    assert not created
    inside = ws / "pkg" / "sub" / "inside.txt"
    assert inside.read_text() == "ok"
    owner = ws.parent.stat().st_uid
    for path in (ws, ws / "pkg", ws / "pkg" / "sub", inside):  # ownership given back
        assert path.stat().st_uid == owner


async def test_symlinks_out_of_the_workspace_fail(
    ws: Path, tmp_path: Path, probe: CommandResult
) -> None:
    require(probe, "uid")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    secret.chmod(0o600)
    target = tmp_path / "target.txt"
    target.write_text("original")
    target.chmod(0o644)
    (ws / "leak").symlink_to(secret)
    (ws / "clobber").symlink_to(target)
    os.link(target, ws / "hardlink")  # must not be handed to the sandbox uid
    reads = ["leak"]
    if Path("/etc/shadow").exists():  # root-only and not hidden by any mount
        (ws / "shadow").symlink_to("/etc/shadow")
        reads.append("shadow")
    result = await run_py(
        ws,
        f"""
        import sys
        won = []
        for name in {reads!r}:
            try:
                won.append((name, open(name).read()[:40]))
            except OSError as err:
                print("read blocked", name, err.strerror)
        for name in ("clobber", "hardlink"):
            try:
                open(name, "w").write("owned")
                won.append(name)
            except OSError as err:
                print("write blocked", name, err.strerror)
        if won:
            print("PWNED", won)
            sys.exit(0)
        sys.exit(1)
        """,
    )
    assert_contained(result)
    assert "TOPSECRET" not in result.output
    assert target.read_text() == "original"
    assert target.stat().st_uid == os.geteuid()
    assert secret.stat().st_uid == os.geteuid()  # the chown-back never followed a symlink
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


async def test_private_dev_shm_keeps_multiprocessing_working(
    ws: Path, probe: CommandResult
) -> None:
    require(probe, "mountns")
    name = f"/dev/shm/backforge-test-{uuid.uuid4().hex}"
    result = await run_py(
        ws,
        f"""
        import multiprocessing
        with multiprocessing.Lock():
            open({name!r}, "w").write("x")
        print("ok")
        """,
    )
    assert result.exit_code == 0 and result.output.strip() == "ok", result.output
    assert not Path(name).exists()  # the sandbox's /dev/shm is its own


async def test_file_size_limit(ws: Path) -> None:
    result = await run_py(
        ws,
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
    assert (ws / "big.bin").stat().st_size <= 1024 * 1024


# --- network ----------------------------------------------------------------------------


async def test_socket_to_host_loopback_fails(ws: Path, probe: CommandResult) -> None:
    require(probe, "netns")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = await run_py(
            ws,
            f"""
            import socket, sys
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
            except OSError as err:
                print("connect failed:", err)
                sys.exit(1)
            print("PWNED")
            """,
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    assert_contained(result)
    assert "connect failed" in result.output


async def test_loopback_inside_the_sandbox_works(ws: Path, probe: CommandResult) -> None:
    require(probe, "netns")
    result = await run_py(
        ws,
        """
        import socket
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname(), timeout=3)
        conn, _ = server.accept()
        client.sendall(b"ping")
        print(conn.recv(4).decode())
        """,
    )
    assert result.exit_code == 0 and result.output.strip() == "ping", result.output


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


async def test_fork_bomb_is_bounded(ws: Path, probe: CommandResult) -> None:
    if run_uid(probe) is None and not any(i.startswith("pids-cgroup") for i in probe.isolation):
        pytest.skip(f"no process limit applies to root here: {probe.warnings}")
    result = await run_py(ws, FORK_BOMB, max_processes=32, timeout_s=30)
    assert not result.timed_out, result.output
    assert "limited True" in result.output, result.output
    assert_contained(result)
    assert (ws / "started").stat().st_size < 32
    if (uid := run_uid(result)) is not None:
        assert live_processes(uid) == []  # the sleeping bomb was killed with the run


async def test_processes_escaping_the_session_are_killed(ws: Path, probe: CommandResult) -> None:
    if run_uid(probe) is None and not any(i.startswith("pids-cgroup") for i in probe.isolation):
        pytest.skip(f"escaped processes cannot be found here: {probe.warnings}")
    result = await run_py(
        ws,
        """
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open("daemon.pid.tmp", "w").write(str(os.getpid()))
                os.rename("daemon.pid.tmp", "daemon.pid")
                os.execv("/bin/sleep", ["sleep", "120"])
            os._exit(0)
        deadline = time.monotonic() + 10
        while not os.path.exists("daemon.pid") and time.monotonic() < deadline:
            time.sleep(0.02)
        print("daemon started:", os.path.exists("daemon.pid"))
        """,
    )
    assert "daemon started: True" in result.output, result.output
    pid = int((ws / "daemon.pid").read_text())
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        state = b"gone"
    assert state in (b"Z", b"X", b"gone")  # dead (a zombie waiting for PID 1 counts)


async def test_fork_bomb_without_cgroup_is_bounded_by_the_uid(
    ws: Path, probe: CommandResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(probe, "uid")
    monkeypatch.setattr(sandbox, "_pids_cgroup_parent", lambda: (None, "simulated"))
    result = await run_py(ws, FORK_BOMB, max_processes=32, timeout_s=30)
    assert any("pids cgroup unavailable (simulated)" in w for w in result.warnings)
    assert not any(i.startswith("pids-cgroup") for i in result.isolation)
    assert "limited True" in result.output, result.output
    assert (ws / "started").stat().st_size < 32
    assert live_processes(run_uid(result) or -1) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_missing_privileges_are_reported_not_silent(ws: Path) -> None:
    """Without CAP_SYS_ADMIN (a default container) the fallbacks are all in warnings."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from activities.sandbox import run_sandboxed

        result = asyncio.run(run_sandboxed(["true"], workspace=Path(sys.argv[1])))
        print(result.model_dump_json())
        """
    )
    argv = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", PY, "-c", script]
    proc = subprocess.run([*argv, str(ws)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = CommandResult.model_validate_json(proc.stdout.splitlines()[-1])
    assert result.exit_code == 0
    assert "netns" not in result.isolation and "mountns" not in result.isolation
    warnings = "\n".join(result.warnings)
    assert "network isolation unavailable" in warnings
    assert "mount namespace unavailable" in warnings
    assert "network isolation unavailable" in proc.stderr  # and logged


async def test_cancelling_the_run_kills_it_and_restores_ownership(
    ws: Path, probe: CommandResult
) -> None:
    require(probe, "uid")
    code = "import os, time\nopen('uid', 'w').write(str(os.getuid()))\ntime.sleep(120)"
    task = asyncio.create_task(run_sandboxed([PY, "-c", code], workspace=ws))
    uid = await eventually(lambda: _read_int(ws / "uid"), timeout=20)
    assert live_processes(uid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert live_processes(uid) == []
    assert (ws / "uid").stat().st_uid == ws.stat().st_uid == ws.parent.stat().st_uid


async def _read_int(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text) if text else None


async def test_infinite_loop_ends_at_the_timeout(ws: Path) -> None:
    result = await run_py(ws, "print('spinning', flush=True)\nwhile True: pass", timeout_s=2)
    assert result.timed_out
    assert result.exit_code == -9
    assert 1.9 <= result.duration_s < 10
    assert "spinning" in result.output


async def test_memory_limit(ws: Path) -> None:
    result = await run_py(
        ws,
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


async def test_megabytes_of_output_keep_head_and_tail(ws: Path) -> None:
    result = await run_py(
        ws,
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


# --- project environment ----------------------------------------------------------------

APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
"""

APP_TEST = """
from fastapi.testclient import TestClient

from app.main import app


def test_health() -> None:
    assert TestClient(app).get("/health").json() == {"status": "ok"}
"""


async def test_project_env_satisfied_offline_then_reused(ws: Path) -> None:
    (ws / "requirements.txt").write_text("# runtime\nfastapi>=0.100\nhttpx\n\npytest\n")
    (ws / "app").mkdir()
    (ws / "app" / "__init__.py").write_text("")
    (ws / "app" / "main.py").write_text(APP)
    (ws / "tests").mkdir()
    (ws / "tests" / "test_health.py").write_text(APP_TEST)

    env = await ensure_project_env(ws)
    assert env.ok, env.log
    assert not env.network_used  # the offline (--no-index, no network) pass sufficed
    assert env.requirements == ["fastapi>=0.100", "httpx", "pytest"]
    assert env.python == ws / ".git" / "backforge" / "venv" / "bin" / "python"
    assert "Requirement already satisfied: fastapi" in env.log

    again = await ensure_project_env(ws)
    assert again.ok and again.reused and again.log == ""
    assert again.duration_s < 1.0
    assert project_python(ws) == env.python

    # Exactly how the test phase calls it.
    py = (await ensure_project_env(ws)).python
    result = await run_sandboxed(
        [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], workspace=ws
    )
    assert result.exit_code == 0, result.output
    assert "1 passed" in result.output.splitlines()[-1]
    assert not (ws / ".pytest_cache").exists()


async def test_uninstallable_requirement_is_a_clear_failure(ws: Path) -> None:
    (ws / "requirements.txt").write_text("backforge-no-such-package-xyz==0.0.1\n")
    env = await ensure_project_env(ws)
    assert not env.ok
    assert env.message.startswith("pip install of the declared dependencies failed")
    assert "backforge-no-such-package-xyz" in env.log
    assert env.python.exists()  # the venv itself is fine; the test phase reports the failure


async def test_invalid_pyproject_is_a_clear_failure(ws: Path) -> None:
    (ws / "pyproject.toml").write_text("[project\nname = 'x'\n")
    env = await ensure_project_env(ws)
    assert not env.ok and "pyproject.toml is not valid TOML" in env.message


def test_project_python_needs_a_git_work_tree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a git work tree"):
        project_python(tmp_path)
