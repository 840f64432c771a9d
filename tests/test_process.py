"""The CLI as a real process: error paths end with their exit code, every time.

The Temporal client's Rust threads used to abort the interpreter at exit
(``Fatal Python error: PyGILState_Release``, exit 134) in about half the runs
of ``status`` against no server; each path here runs often enough to catch that.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import pytest
from temporalio.testing import WorkflowEnvironment

from process import INTERRUPTED, exit_code
from tests.support.cli_driver import address, make_git_repo
from tests.support.temporal import unique

ROOT = Path(__file__).resolve().parent.parent
#: Nothing listens on port 1; "localhost" makes the client try ::1 and 127.0.0.1,
#: the slowest-to-fail (and most abort-prone) way to miss a server.
NO_SERVER = "localhost:1"


def _run_many(argv: list[str], runs: int) -> list[subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}

    def one(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "starter.py", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, range(runs)))


def _assert_every_run(
    runs: list[subprocess.CompletedProcess[str]], code: int, message: str
) -> None:
    codes = [run.returncode for run in runs]
    assert codes == [code] * len(runs), (
        codes,
        next(r.stderr for r in runs if r.returncode != code),
    )
    for run in runs:
        lines = run.stderr.splitlines()
        assert len(lines) == 1 and message in lines[0], run.stderr


def test_status_without_a_server_exits_1_every_time() -> None:
    runs = _run_many(["--address", NO_SERVER, "status", "foo"], runs=30)
    _assert_every_run(runs, 1, f"error: cannot reach Temporal at {NO_SERVER}")


async def test_unknown_id_exits_2_every_time(local_env: WorkflowEnvironment) -> None:
    wid = unique("feature-missing")
    runs = _run_many(["--address", address(local_env), "status", wid], runs=15)
    _assert_every_run(runs, 2, f"no feature workflow with id '{wid}'")


def test_an_answer_without_a_server_exits_1_every_time() -> None:
    runs = _run_many(["--address", NO_SERVER, "approve", "feature-x", "approve-spec-1"], runs=15)
    _assert_every_run(runs, 1, f"error: cannot reach Temporal at {NO_SERVER}")


@pytest.mark.parametrize(("code", "expected"), [(None, 0), (0, 0), (2, 2), (True, 1), ("bye", 1)])
def test_exit_code_of_system_exit(
    code: object, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(code) == expected
    if isinstance(code, str):
        assert capsys.readouterr().err == "bye\n"


async def test_ctrl_c_while_following_ends_at_once_with_one_line(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    repo = make_git_repo(tmp_path / "repo")
    queue = unique("no-worker")  # the feature waits: the CLI sits in its follow loop
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    for run in range(5):
        cli = subprocess.Popen(
            [sys.executable, "starter.py", "--address", address(local_env), "--task-queue", queue,
             "start", f"Build a bookmarks API {run}", "--repo", str(repo), "--wait",
             "--model", "openai:gpt-5"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert cli.stdout is not None
            following = threading.Thread(target=_read_until, args=(cli.stdout, "Temporal UI"))
            following.start()
            following.join(timeout=60)
            assert not following.is_alive(), "start --wait never got to following"
            cli.send_signal(signal.SIGINT)
            _, err = cli.communicate(timeout=20)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
        assert cli.returncode == 130, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines == [INTERRUPTED], err


def _read_until(stream: IO[str], marker: str) -> None:
    for line in stream:
        if marker in line:
            return
