"""How hints name the program and the server: decided in one place."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.settings import (
    Settings,
    program,
    python_command,
    set_program,
    temporal_command,
    worker_command,
)


@pytest.fixture(autouse=True)
def detected_program() -> Iterator[None]:
    set_program(None)
    yield
    set_program(None)


@pytest.fixture
def venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake venv: this "interpreter" and the backforge script live in ``tmp/venv/bin``."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "backforge", "temporal"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    return bin_dir


def test_an_active_venv_is_named_by_its_commands(
    venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{venv}{os.pathsep}/usr/bin:/bin")
    assert python_command() == "python"
    assert program(str(venv / "backforge")) == "backforge"
    assert program("starter.py") == "python starter.py"
    assert program("/usr/lib/python3/site-packages/pytest/__main__.py") == "python starter.py"
    set_program(program("starter.py"))
    assert worker_command() == "python worker.py"
    assert temporal_command() == "temporal"


def test_without_an_active_venv_hints_name_its_binaries_by_path(
    venv: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert python_command() == "venv/bin/python"
    assert program(str(venv / "backforge")) == "venv/bin/backforge"
    assert (
        program("../elsewhere/starter.py")
        == f"venv/bin/python {tmp_path.parent}/elsewhere/starter.py"
    )
    set_program(program("starter.py"))
    assert program() == "venv/bin/python starter.py"
    assert worker_command() == "venv/bin/python worker.py"
    set_program(program(str(venv / "backforge")))
    assert worker_command() == "venv/bin/python -m worker"
    assert temporal_command() == "venv/bin/temporal"
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    assert python_command() == str(venv / "python")  # outside the current directory: absolute


def test_explicit_program_wins() -> None:
    set_program("backforge")
    assert program() == "backforge"
    assert Settings("localhost:7233", "default", "q").command_prefix() == "backforge"


def test_prefix_carries_only_the_options_that_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    set_program("python starter.py")
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    monkeypatch.delenv("TEMPORAL_NAMESPACE", raising=False)
    assert Settings("localhost:7233", "default", "q").command_prefix() == "python starter.py"
    assert (
        Settings("temporal:7233", "team", "q").command_prefix()
        == "python starter.py --address temporal:7233 --namespace team"
    )
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    assert Settings("temporal:7233", "default", "q").command_prefix() == "python starter.py"
