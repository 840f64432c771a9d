"""Running git in a test's repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["git", "show", "trailers", "GitProcesses"]


def git(repo: Path, *args: str, input_bytes: bytes | None = None) -> str:
    if input_bytes is not None:
        return (
            subprocess.run(
                ["git", *args], cwd=repo, input=input_bytes, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def trailers(repo: Path, rev_range: str) -> list[tuple[str, str]]:
    """(phase, task) trailers of every commit in ``rev_range``, oldest first."""
    out = git(
        repo,
        "log",
        "--reverse",
        "--format=%(trailers:key=Backforge-Phase,valueonly)|%(trailers:key=Backforge-Task,valueonly)%x00",
        rev_range,
    )
    rows = []
    for entry in out.split("\x00"):
        if entry.strip():
            phase, _, task = entry.strip().partition("|")
            rows.append((phase.strip(), task.strip()))
    return rows


def show(repo: Path, rev: str, path: str) -> str:
    """``path`` as it is at ``rev`` (Backforge writes branches, never the working tree)."""
    return subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


class GitProcesses:
    """Notes every git process started from now on (a ``git`` first on PATH that writes
    its arguments to a log, then runs the real git)."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = shutil.which("git")
        assert real, "git is not installed"
        shim = tmp / "git-shim"
        shim.mkdir()
        self.log = tmp / "git-shim.log"
        self.log.write_text("")
        (shim / "git").write_text(
            "#!/bin/sh\n"
            "line=$(printf '%s' \"$*\" | tr '\\n' ' ')\n"  # one line per process
            f'printf \'%s\\n\' "$line" >> "{self.log}"\n'
            f'exec "{real}" "$@"\n'
        )
        (shim / "git").chmod(0o755)
        monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")

    def clear(self) -> None:
        self.log.write_text("")

    def commands(self) -> list[str]:
        """The git subcommand of each process since the last ``clear``, in order."""
        names = []
        for line in self.log.read_text().splitlines():
            words = line.split()
            while len(words) >= 2 and words[0] == "-c":
                words = words[2:]
            names.append(words[0] if words else "?")
        return names
