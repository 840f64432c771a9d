"""The CLI as a real process: error paths end with their exit code, every time.

The Temporal client's Rust threads used to abort the interpreter at exit
(``Fatal Python error: PyGILState_Release``, exit 134) in about half the runs
of ``status`` against no server; each path here runs often enough to catch that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.process import exit_code
from tests.support.cli_driver import address
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
