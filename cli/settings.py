"""Where the CLI talks to, and how its hints name the command the user ran.

Every hint that shows a command line (how to answer, how to follow, how to
resume) is built from ``Settings.command_prefix``, and the program part of it
is decided once, in ``program``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "WORKER_COMMAND",
    "Settings",
    "program",
    "set_program",
]

# Same values as runtime.DEFAULT_ADDRESS / DEFAULT_NAMESPACE; repeated so that
# ``--help`` does not import runtime (and with it the Temporal test environment).
DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
#: How hints tell a person to start a worker (worker.py has no console script).
WORKER_COMMAND = "python worker.py"

_program: str | None = None


def program(argv0: str | None = None) -> str:
    """The command a person types to run this CLI: ``backforge`` or ``python starter.py``.

    An explicit ``set_program`` wins; otherwise it is read from ``argv0``
    (default ``sys.argv[0]``): the ``backforge`` console script names itself,
    anything else (``starter.py``, a test runner) is ``python starter.py``.
    """
    if _program is not None and argv0 is None:
        return _program
    name = Path(argv0 if argv0 is not None else sys.argv[0]).name
    if name.lower().startswith("backforge"):  # backforge, backforge.exe, backforge-script.py
        return "backforge"
    return "python starter.py"


def set_program(name: str | None) -> None:
    """Name the command for every hint from now on (``None``: detect from ``sys.argv``)."""
    global _program
    _program = name


@dataclass(frozen=True)
class Settings:
    """The global options: which Temporal server, namespace and task queue."""

    address: str
    namespace: str
    task_queue: str

    def command_prefix(self) -> str:
        """The program plus the global options needed to reach this server again.

        ``--address``/``--namespace`` are left out when they are what the
        environment (or the default) gives anyway.
        """
        parts = [program()]
        if self.address != os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS):
            parts.append(f"--address {self.address}")
        if self.namespace != os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE):
            parts.append(f"--namespace {self.namespace}")
        return " ".join(parts)
