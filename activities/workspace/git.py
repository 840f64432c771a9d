"""Running git: one async call per command, never blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GitError", "Completed", "git", "run_git", "git_sync", "IDENTITY"]

#: Commits are made as Backforge, unsigned, whatever the worker's git config says.
IDENTITY = (
    "-c", "user.name=Backforge", "-c", "user.email=backforge@localhost",
    "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null",
)  # fmt: skip
_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true"}


class GitError(Exception):
    """A git command failed; the message names the command and what git said."""

    def __init__(self, args: tuple[str, ...], returncode: int, stderr: str) -> None:
        self.args_ = args
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(
            f"git {' '.join(args[:3])} failed (exit {returncode}): {self.stderr[-800:]}"
        )


def _env() -> dict[str, str]:
    return {**os.environ, **_ENV}


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


async def run_git(
    cwd: Path | None, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> Completed:
    """Run ``git args`` in ``cwd``; the caller reads the exit code and both outputs."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *IDENTITY,
        *args,
        cwd=cwd,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**_env(), **(env or {})},
    )
    out, err = await proc.communicate(input)
    return Completed(
        proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
    )


async def git(
    cwd: Path | None,
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> str:
    """Run ``git args`` in ``cwd`` and return its stdout (stripped).

    Raises:
        GitError: The command failed (unless ``check`` is False).
        FileNotFoundError: git is not installed.
    """
    done = await run_git(cwd, *args, input=input, env=env)
    if check and done.returncode != 0:
        raise GitError(args, done.returncode, done.stderr)
    return done.stdout.strip()


def git_sync(cwd: Path | None, *args: str, check: bool = True) -> str:
    """``git`` for code that is not async (pre-flight checks in the CLI, tests)."""
    proc = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True, env=_env()
    )
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr)
    return proc.stdout.strip()
