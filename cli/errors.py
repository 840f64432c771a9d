"""The CLI's one kind of failure: a one-line message and an exit code."""

from __future__ import annotations

import sys

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_QUEUED",
    "EXIT_INTERRUPTED",
    "CliError",
    "print_error",
    "one_line",
]

#: The feature completed, or the command did what it was asked.
EXIT_OK = 0
#: The feature failed or was aborted, an answer was rejected, or the server could not be reached.
EXIT_FAILED = 1
#: Invalid arguments or an unknown workflow id: nothing was started or sent.
EXIT_USAGE = 2
#: An answer was queued on the server but not yet checked: no worker took it (yet).
EXIT_QUEUED = 3
#: Ctrl-C (or SIGTERM/SIGHUP in the demo).
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A problem to report as one ``error: ...`` line and an exit code.

    Args:
        message: What went wrong and what to do; whitespace is folded so that it
            always prints as one line.
        code: The exit code (``EXIT_USAGE`` unless said otherwise).
        label: The word before the message (``error``; ``queued`` for a queued answer).
    """

    def __init__(self, message: str, code: int = EXIT_USAGE, *, label: str = "error") -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.code = code
        self.label = label


def print_error(message: str, *, label: str = "error") -> None:
    """Print ``label: message`` to stderr.

    Plain ``print``, not rich: rich would wrap a long line at the terminal width.
    """
    print(f"{label}: {message}", file=sys.stderr, flush=True)


def one_line(text: str, limit: int) -> str:
    """``text`` with whitespace folded, cut to ``limit`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
