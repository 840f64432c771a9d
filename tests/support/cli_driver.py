"""Running the CLI in tests: CliRunner calls, the one-line error, unique names."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from cli import app
from cli.settings import set_program

__all__ = [
    "CLOSED",
    "MODEL",
    "PROGRAM",
    "invoke",
    "invoke_async",
    "error_line",
    "address",
    "make_git_repo",
    "named_program",
]

#: Nothing listens here: any server contact fails ("cannot reach Temporal").
CLOSED = "127.0.0.1:1"
#: A model id that validates offline (no transcript file, no key needed to start).
MODEL = ("--model", "openai:gpt-5")


#: How in-process runs name the program in hints (``starter.py`` run by an active venv's
#: python); detection from ``sys.argv`` is tested on its own (test_cli_settings, test_cli_commands).
PROGRAM = "python starter.py"


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in-process with ``args`` (stdout and stderr kept apart); hints say ``PROGRAM``."""
    set_program(PROGRAM)
    try:
        return CliRunner().invoke(app, list(args), input=input)
    finally:
        set_program(None)


async def invoke_async(*args: str, input: str | None = None) -> Result:
    """Run the CLI in a thread: it calls asyncio.run, and the test's loop serves the worker."""
    return await asyncio.to_thread(invoke, *args, input=input)


def error_line(result: Result) -> str:
    """The one ``error: ...`` line on stderr (fails the test if there is not exactly one)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def address(env: WorkflowEnvironment) -> str:
    """The host:port of ``env``'s frontend, as ``--address`` takes it."""
    return env.client.service_client.config.target_host


def make_git_repo(path: Path) -> Path:
    """A git repository at ``path`` with one commit (via the demo's initialiser)."""
    from cli.demo import create_demo_repo

    create_demo_repo(path)
    return path


@pytest.fixture
def named_program() -> Iterator[str]:
    """Hints name ``PROGRAM`` during the test (for rendering called without ``invoke``)."""
    set_program(PROGRAM)
    yield PROGRAM
    set_program(None)
