"""Running git in a test's repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git", "show", "trailers"]


def git(repo: Path, *args: str) -> str:
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
