"""The ``run_command`` tool: a Python snippet or a shell command in the project environment.

The model uses it for smoke checks (does this import work, what does this endpoint
return, which version is installed) instead of writing and deleting scratch files.
It runs with the same isolation as the tests (``activities.sandbox.run_sandboxed`` on
a private copy of the attempt's checkout: no network, its own file system, nothing
copied back), a short timeout and small output. The output the model sees is
normalised like test output (durations, addresses, temp paths), so the same command
on the same code reads the same on a retried attempt and the run store replays it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field

from activities.environment import COMMAND_TIMEOUT_S
from activities.project_tests import normalise_output
from activities.sandbox import SandboxLimits, ensure_project_env, run_sandboxed

__all__ = ["CommandRequest", "COMMAND_LIMITS", "run_project_command", "MAX_COMMAND_OUTPUT"]

MAX_COMMAND_OUTPUT = 6_000
_MAX_INPUT = 20_000
COMMAND_LIMITS = SandboxLimits(
    timeout_s=COMMAND_TIMEOUT_S,
    cpu_s=COMMAND_TIMEOUT_S,
    memory_mb=1024,
    file_size_mb=16,
    disk_mb=128,
    max_processes=64,
    output_limit_bytes=32_000,
)
_VOLATILE = [
    (re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|µs|us|ns)\b"), "<t>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<now>"),
    (re.compile(r"\bpid[ =:]+\d+", re.I), "pid <n>"),
]


class CommandRequest(BaseModel):
    """One ``run_command`` call: exactly one of ``python`` and ``command``."""

    python: str | None = Field(default=None, description="Python source run with `python -c`.")
    command: str | None = Field(default=None, description="A shell command run with `sh -c`.")

    def argv(self) -> list[str]:
        """The command line inside the sandbox.

        Raises:
            ValueError: Neither or both given, or the text is too long.
        """
        if (self.python is None) == (self.command is None):
            raise ValueError("give exactly one of `python` (a snippet) or `command` (shell)")
        text = self.python if self.python is not None else self.command
        assert text is not None
        if not text.strip():
            raise ValueError("the snippet is empty")
        if len(text) > _MAX_INPUT:
            raise ValueError(f"the snippet is {len(text)} characters; keep it under {_MAX_INPUT}")
        return ["python", "-c", text] if self.python is not None else ["sh", "-c", text]


def _normalise(text: str) -> str:
    text = normalise_output(text)
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _head_tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit // 3].rsplit("\n", 1)[0]
    tail = text[-(limit - len(head) - 60) :].split("\n", 1)[-1]
    elided = text.count("\n") - head.count("\n") - tail.count("\n")
    return f"{head}\n[... {elided} lines elided ...]\n{tail}"


async def run_project_command(
    source: Path, request: CommandRequest, *, env_cache: Path | None = None
) -> str:
    """Run ``request`` on a sandboxed copy of ``source``; the text the model reads.

    Raises:
        ValueError: The request is malformed (the model must correct it).
    """
    argv = request.argv()
    env = await ensure_project_env(source, cache_dir=env_cache)
    if not env.ok or env.env is None:
        return f"the project environment could not be prepared: {env.message}\n"
    result = await run_sandboxed(
        argv, source=source, limits=COMMAND_LIMITS, project_env=env.env, env={"PYTHONHASHSEED": "0"}
    )
    status = (
        f"timed out after {COMMAND_TIMEOUT_S}s (killed)"
        if result.timed_out
        else f"exit code {result.exit_code}"
    )
    output = _normalise(result.output).strip()
    body = _head_tail(output, MAX_COMMAND_OUTPUT) if output else "(no output)"
    note = "\n(the command ran on a copy of the repository; nothing it wrote was kept)"
    return f"{status}\n\n{body}\n{note}\n"
