"""Hostile generated code: every known escape is a bounded test.

Issue 8's cases are marked ``case N``; cases 2 and 3 (dependency installation) live in
``test_sandbox_project_env.py``, case 4 (forced green) in ``test_project_tests.py``.
A containment failure fails the test, not the machine: every attack is bounded in size,
count and time, and the host side is checked rather than the script's word.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from activities.sandbox import SandboxLimits, reaper, run_sandboxed
from tests.support.sandbox_support import (
    REPO,
    assert_contained,
    git,
    live_processes,
    require_contained,
    run_py,
    sandbox_owned_files,
    sandboxed_descendants,
    tree_digest,
)

pytest_plugins = ["tests.support.sandbox_fixtures"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")


async def test_case1_git_hooks_planted_by_a_test_never_run_on_the_worker(
    src: Path, tmp_path: Path
) -> None:
    """Case 1: no .git inside, nothing copied back, the worker's git sees a clean tree."""
    require_contained()
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    before = tree_digest(src / ".git")
    result = await run_py(
        src,
        f"""
        import os, subprocess, sys
        print("git visible:", os.path.exists(".git"))
        os.makedirs(".git/hooks", exist_ok=True)
        for hook in ("prepare-commit-msg", "post-commit", "pre-commit"):
            path = f".git/hooks/{{hook}}"
            open(path, "w").write("#!/bin/sh\\ntouch {marker}\\n")
            os.chmod(path, 0o755)
        open(".git/config", "w").write("[core]\\n\\tfsmonitor = touch {marker}\\n")
        open(".git/HEAD", "w").write("ref: refs/heads/main\\n")
        open("module.py", "w").write("x = 1\\n")
        try:  # the real repository, by its host path, is not there
            os.listdir({str(src / ".git")!r})
            print("PWNED: host .git readable")
            sys.exit(0)
        except OSError as err:
            print("host .git:", err.strerror)
        sys.exit(1)
        """,
    )
    assert_contained(result)
    assert "git visible: False" in result.output
    # The test phase's own git work afterwards, as root, on the checkout it owns.
    git(src, "add", "-A")
    git(src, "commit", "-q", "--no-verify", "--allow-empty", "-m", "test: results")
    git(src, "status", "--porcelain")
    assert not marker.exists()
    assert not (src / "module.py").exists()
    assert "fsmonitor" not in (src / ".git" / "config").read_text()
    assert tree_digest(src / ".git") != before  # (the commit) but no hook ran:
    assert not list((src / ".git" / "hooks").glob("post-commit"))


async def test_case5_no_run_store_repositories_features_worker_or_source(
    tmp_path: Path,
) -> None:
    """Case 5: only the checkout's own files are readable; nothing else of the worker's."""
    require_contained()
    repos = tmp_path / "repos"
    source = repos / "service"
    source.mkdir(parents=True)
    (source / "app.py").write_text("x = 1\n")
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "base")
    store = source / ".git" / "backforge" / "runs" / "wf-1" / "specify-1"
    store.mkdir(parents=True)
    (store / "response.json").write_text('{"secret": "RUNSTORE-SECRET"}')
    (source / ".git" / "backforge" / "feature.md").write_text("FEATURE-SECRET")
    other = repos / "other"
    other.mkdir()
    (other / "secret.txt").write_text("OTHER-REPO-SECRET")
    world = Path("/tmp") / f"world-readable-{uuid.uuid4().hex}"
    world.write_text("HOST-FILE-SECRET")
    world.chmod(0o644)
    targets = [
        store / "response.json", source / ".git" / "backforge" / "feature.md",
        other / "secret.txt", world, REPO / "activities" / "sandbox" / "host.py",
        REPO / "contract.py", Path(f"/proc/{os.getpid()}/cmdline"), Path("/etc/shadow"),
        Path("/etc/machine-id"), Path("/root/.bashrc"),
    ]  # fmt: skip
    try:
        result = await run_py(
            source,
            f"""
            import glob, os, sys
            won = []
            for target in {[str(t) for t in targets]!r}:
                try:
                    won.append((target, open(target, "rb").read()[:60]))
                except OSError as err:
                    print("blocked", target, err.strerror)
            # Git objects and branches: not in the copy.
            won += [p for p in glob.glob("**/*", recursive=True) if ".git" in p]
            # Other processes (the worker, the launcher, init): not visible.
            others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
            for pid in others:
                try:
                    cmd = open(f"/proc/{{pid}}/cmdline", "rb").read()
                    if b"launcher" in cmd or b"pytest" in cmd:
                        won.append(cmd[:80])
                except OSError:
                    pass
            try:  # the Backforge package must not import (editable finder masked)
                import activities
                won.append(("import activities", activities.__path__))
            except ImportError as err:
                print("import blocked:", err)
            if won:
                print("PWNED", won)
                sys.exit(0)
            sys.exit(1)
            """,
        )
    finally:
        world.unlink()
    assert_contained(result)
    for secret in ("RUNSTORE", "FEATURE-SECRET", "OTHER-REPO", "HOST-FILE", "__all__"):
        assert secret not in result.output
    assert "import blocked" in result.output
    assert result.output.count("blocked ") == len(targets)


async def test_case6_disk_quota_and_nothing_left_on_disk(src: Path) -> None:
    """Case 6: 4 x 64 MiB against a 128 MiB quota; nothing of it reaches the host."""
    require_contained()
    before = tree_digest(src)
    result = await run_py(
        src,
        """
        import sys
        written = 0
        try:
            for i in range(4):
                with open(f"blob{i}.bin", "wb") as f:
                    for _ in range(64):
                        f.write(b"x" * 1024 * 1024)
                        written += 1
        except OSError as err:
            print("stopped after", written, "MiB:", err.strerror)
            sys.exit(1)
        print("PWNED", written)
        """,
        disk_mb=128,
        file_size_mb=64,
    )
    assert_contained(result)
    assert "No space left on device" in result.output
    assert int(result.output.split("stopped after ")[1].split()[0]) < 128
    assert tree_digest(src) == before
    git(src, "add", "-A")  # what the test phase commits: nothing new
    assert git(src, "status", "--porcelain") == ""


async def test_case7_modes_set_inside_never_reach_the_checkout(src: Path) -> None:
    """Case 7: world-writable files and setgid dirs stay inside the run."""
    (src / "pkg").mkdir()
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    before = tree_digest(src)
    result = await run_py(
        src,
        """
        import os
        os.chmod("pkg/mod.py", 0o666)
        os.chmod("pkg", 0o2777)
        os.makedirs("shared", mode=0o777)
        os.chmod("shared", 0o2777)
        open("shared/x", "w").close()
        os.chmod("shared/x", 0o4777)
        print(oct(os.stat("pkg").st_mode))
        """,
    )
    assert result.exit_code == 0, result.output
    assert tree_digest(src) == before
    assert not (src / "shared").exists()


@pytest.mark.parametrize("stage", ["running"])
async def test_case8_killed_worker_leaves_nothing_behind(
    src: Path, tmp_path: Path, stage: str
) -> None:
    """Case 8: SIGKILL the worker mid-run; afterwards nothing of the run remains."""
    require_contained()
    ready = tmp_path / "started"
    worker = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from activities.sandbox import run_sandboxed

        async def main():
            task = asyncio.create_task(run_sandboxed(
                ["sh", "-c", "sleep 300 & sleep 300 & echo started; wait"],
                source=Path({str(src)!r}),
            ))
            await asyncio.sleep(0)
            Path({str(ready)!r}).write_text("x")
            await task

        asyncio.run(main())
        """
    )
    mounts_before = Path("/proc/self/mountinfo").read_text().count("tmpfs")
    proc = subprocess.Popen(
        [sys.executable, "-c", worker], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    try:
        deadline = time.monotonic() + 30
        while len(run := sandboxed_descendants(proc.pid)) < 3:  # sh and two sleeps
            assert proc.poll() is None, "the worker exited early"
            assert time.monotonic() < deadline, "the sandboxed run never started"
            time.sleep(0.05)
        uids = set(run.values())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(live_processes(uid) for uid in uids):
            assert time.monotonic() < deadline, "processes of the run outlived the worker"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert all(live_processes(uid) == [] for uid in uids)
    assert Path("/proc/self/mountinfo").read_text().count("tmpfs") == mounts_before
    cleaned = reaper.sweep()  # what the next worker does at start
    parent, _ = reaper.cgroup_parent()
    if parent is not None:
        assert any(f"backforge-sandbox-{proc.pid}-" in c for c in cleaned), cleaned
        assert not list(parent.glob(f"backforge-sandbox-{proc.pid}-*"))
    cache = Path(os.environ["BACKFORGE_CACHE_DIR"])
    # (Not all of /tmp: other sandboxes may run on this machine. A contained run cannot
    # write to the host's file system at all; see the tests above.)
    assert sandbox_owned_files(src, tmp_path, cache, Path("/dev/shm")) == []
    result = await run_sandboxed(["python", "-c", "print('next attempt')"], source=src)
    assert result.exit_code == 0 and "next attempt" in result.output


# --- the earlier hostile cases -------------------------------------------------------------


async def test_writes_outside_the_workspace_never_reach_the_host(src: Path, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    targets = [
        Path(f"/tmp/outside-{token}"), REPO / f"outside-{token}", tmp_path / "sibling",
        Path(f"/usr/outside-{token}"), Path(f"/venv/outside-{token}"),
    ]  # fmt: skip
    try:
        result = await run_py(
            src,
            f"""
            import os
            for target in {[str(t) for t in targets]!r}:
                try:
                    open(target, "w").write("owned")
                    print("wrote", target)
                except OSError as err:
                    print("blocked", target, err.strerror)
            """,
        )
        assert result.exit_code == 0, result.output
    finally:
        created = [t for t in targets if t.exists()]
        for t in created:
            t.unlink()
    assert not created
    if "no mount" not in " ".join(result.warnings):
        assert f"blocked /usr/outside-{token}" in result.output


async def test_symlinks_and_hard_links_out_of_the_checkout(src: Path, tmp_path: Path) -> None:
    require_contained()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    secret.chmod(0o600)
    target = tmp_path / "target.txt"
    target.write_text("original")
    (src / "leak").symlink_to(secret)
    (src / "clobber").symlink_to(target)
    os.link(target, src / "hardlink")
    (src / "shadow").symlink_to("/etc/shadow")
    result = await run_py(
        src,
        """
        import sys
        won = []
        for name in ("leak", "shadow"):
            try:
                won.append((name, open(name).read()[:40]))
            except OSError as err:
                print("read blocked", name, err.strerror)
        try:
            open("clobber", "w").write("owned")
            won.append("clobber")
        except OSError as err:
            print("write blocked clobber", err.strerror)
        open("hardlink", "w").write("owned")  # the copy's own file
        if won:
            print("PWNED", won)
            sys.exit(0)
        sys.exit(1)
        """,
    )
    assert_contained(result)
    assert "TOPSECRET" not in result.output
    assert target.read_text() == "original"
    assert secret.stat().st_uid == os.geteuid()


async def test_socket_to_host_loopback_fails(src: Path) -> None:
    require_contained()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = await run_py(
            src,
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


async def test_loopback_inside_the_sandbox_works(src: Path) -> None:
    require_contained()
    result = await run_py(
        src,
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


async def test_setuid_binaries_gain_nothing(src: Path) -> None:
    require_contained()
    result = await run_sandboxed(
        ["sh", "-c", "for b in /usr/bin/su /usr/bin/passwd /usr/bin/mount; do "
         "[ -u $b ] && $b --help >/dev/null 2>&1; done; "
         "python -c 'import os; print(os.getuid(), os.geteuid())'"],
        source=src,
        limits=SandboxLimits(timeout_s=30),
    )  # fmt: skip
    uid, euid = result.output.split()[-2:]
    assert uid == euid != "0"


async def test_concurrent_runs_cannot_see_each_other(tmp_path: Path) -> None:
    require_contained()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "mine.txt").write_text("A-SECRET")
    (b / "mine.txt").write_text("B-SECRET")
    code = "import os, time; time.sleep(1); print(sorted(os.listdir('/proc'))[:3], open('mine.txt').read())"
    ra, rb = await asyncio.gather(run_py(a, code), run_py(b, code))
    assert "A-SECRET" in ra.output and "B-SECRET" not in ra.output
    assert "B-SECRET" in rb.output and "A-SECRET" not in rb.output
