"""Reading pytest's verdict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from activities.project_tests import parse_pytest_summary


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("1 failed, 57 passed in 0.52s", (57, 1, 0)),
        ("==== 3 passed, 1 error in 1.0s ====", (3, 0, 1)),
        ("=== 2 failed, 3 passed, 2 errors, 1 skipped, 4 warnings in 2.31s ===", (3, 2, 2)),
        ("12 passed, 1 xfailed, 2 warnings in 0.40s", (12, 0, 0)),
        ("==== 1 error in 0.12s ====", (0, 0, 1)),
        ("no tests ran in 0.01s", (0, 0, 0)),
        (
            "============================ no tests ran in 0.01s =============================",
            (0, 0, 0),
        ),
        ("", (0, 0, 0)),
        ("tests/test_a.py ..F\nKilled", (0, 0, 0)),
        (
            "..F.\nFAILED tests/test_a.py::test_in_range - assert 2 == 3\n"
            "1 failed, 3 passed in 0.10s\n",
            (3, 1, 0),
        ),
    ],
)
def test_parse_pytest_summary_lines(output: str, expected: tuple[int, int, int]) -> None:
    counts = parse_pytest_summary(output)
    assert (counts["passed"], counts["failed"], counts["errors"]) == expected


def _run_pytest(project: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    (project / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return proc.stdout + proc.stderr


def test_parse_pytest_summary_on_real_pytest_output(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_mixed.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def broken():\n    raise RuntimeError('fixture blew up')\n\n"
        "def test_ok_1():\n    assert True\n\n"
        "def test_ok_2():\n    assert 1 + 1 == 2\n\n"
        "def test_passed_in_name():\n    assert 'passed in' == 'failed'\n\n"
        "def test_uses_broken(broken):\n    pass\n"
    )
    counts = parse_pytest_summary(_run_pytest(project))
    assert counts == {"passed": 2, "failed": 1, "errors": 1}

    empty = tmp_path / "empty"
    empty.mkdir()
    out = _run_pytest(empty)
    assert "no tests ran" in out
    assert parse_pytest_summary(out) == {"passed": 0, "failed": 0, "errors": 0}
