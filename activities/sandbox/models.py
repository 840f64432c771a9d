"""The sandbox's data: limits in, results out, the project environment, fixed paths."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

__all__ = [
    "WORKSPACE",
    "SANDBOX_HOME",
    "SANDBOX_TMP",
    "VENV",
    "TOOLS",
    "WHEELHOUSE",
    "SandboxLimits",
    "CommandResult",
    "ProjectEnv",
    "EnvResult",
]

# Fixed paths inside the sandbox. They never change between runs or attempts, so the
# output a model sees (tracebacks, pytest's tmp_path) stays the same for the same code.
WORKSPACE = "/workspace"
"""The copy of the checkout (without ``.git``); the command's working directory."""
SANDBOX_HOME = "/home/sandbox"
SANDBOX_TMP = "/tmp"
VENV = "/venv"
"""The project environment, read-only (writable only while it is being built)."""
TOOLS = "/opt/backforge"
"""Backforge's own helper scripts (pytest recorder, environment builder), read-only."""
WHEELHOUSE = "/wheelhouse"
"""The operator's wheelhouse, read-only, while an environment is built."""


class SandboxLimits(BaseModel):
    """Resource limits and network policy for one sandboxed command."""

    timeout_s: float = Field(default=300.0, gt=0)
    cpu_s: int = Field(default=300, gt=0)
    memory_mb: int = Field(default=2048, gt=0)
    file_size_mb: int = Field(default=64, gt=0)
    disk_mb: int = Field(
        default=256,
        ge=16,
        description="Size of the run's one tmpfs: the working copy, /tmp, HOME, /dev/shm.",
    )
    max_processes: int = Field(default=256, gt=1)
    output_limit_bytes: int = Field(default=64_000, ge=1024)
    network: bool = False


class CommandResult(BaseModel):
    """What a sandboxed command did, and under which isolation."""

    argv: list[str]
    exit_code: int = Field(description="-N when killed by signal N (-9 at the timeout).")
    timed_out: bool
    duration_s: float
    output: str = Field(description="stdout+stderr interleaved; head and tail if truncated.")
    output_bytes: int = Field(description="Size of the whole output before truncation.")
    truncated: bool
    isolation: list[str] = Field(description='What was applied, e.g. "netns", "uid:N".')
    warnings: list[str] = Field(description="Isolation that could not be applied, and why.")


class ProjectEnv(BaseModel):
    """An immutable environment for generated code, mounted read-only at ``/venv``."""

    key: str = Field(description="Interpreter, base layer and declared requirements, hashed.")
    path: Path = Field(description="Where it lives on the worker (under the cache dir).")
    requirements: list[str] = Field(
        default_factory=list, description="The declared requirements it was built for."
    )
    installed: list[str] = Field(
        default_factory=list,
        description='Distributions installed beyond the base layer, as "name==version".',
    )


class EnvResult(BaseModel):
    """The project environment for a checkout, or why there is none."""

    ok: bool
    env: ProjectEnv | None = None
    reused: bool = Field(default=False, description="Built before; nothing ran now.")
    requirements: list[str] = Field(default_factory=list)
    missing: list[str] = Field(
        default_factory=list, description="Declared requirements not available offline."
    )
    message: str = Field(description="One line for reports.")
    log: str = Field(default="", description="pip output (head and tail) when pip ran.")
    duration_s: float = 0.0
