"""How a process that loaded the Temporal client ends (the CLI and the worker): flush,
then leave without tearing the interpreter down.

Why: the Temporal client's Rust core completes each Python future from a Tokio
thread, which takes the GIL and runs Python code (``call_soon_threadsafe``) to
hand the result over. The main thread can take the GIL back in the middle of
that, print the error, and start finalizing the interpreter while the Tokio
thread still wants the GIL. CPython 3.11 ends such a thread with
``pthread_exit``; the forced unwind runs pyo3's GIL guard, whose
``PyGILState_Release`` finds a thread state that is not current, and the process
aborts (``Fatal Python error: PyGILState_Release``, exit 134) after the correct
message. It is a race, most often lost on the shortest paths (an unreachable
server: about one run in two). The SDK offers no way to close a client or join
its runtime's threads (temporalio/sdk-python#300), so once the bridge is loaded
the process exits with ``os._exit`` after flushing everything it wrote:
finalization, the only place the race can bite, never starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import NoReturn

__all__ = ["BRIDGE_MODULE", "INTERRUPTED", "exit_code", "leave", "exit_on_interrupt"]

#: What a Ctrl-C prints: nothing is lost, the workflow lives on the server.
INTERRUPTED = "interrupted; the workflow (if started) keeps its state on the server"

#: The Temporal SDK's Rust extension; once imported, its Tokio threads may run Python.
BRIDGE_MODULE = "temporalio.bridge.temporal_sdk_bridge"


def exit_code(code: object) -> int:
    """The process exit status for a ``SystemExit.code`` (None: 0; a message: 1)."""
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what sys.exit("message") would print
    return 1


def leave(code: int) -> NoReturn:
    """End the process with ``code``, skipping finalization once the bridge is loaded.

    Without the bridge (``--help``, a rejected argument) this is a plain
    ``SystemExit``, so callers in the same process (tests) can catch it.
    """
    if BRIDGE_MODULE not in sys.modules:
        raise SystemExit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _interrupted(signum: int, frame: FrameType | None) -> None:
    print(f"\n{INTERRUPTED}", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(130)


@contextlib.contextmanager
def exit_on_interrupt() -> Iterator[None]:
    """Ctrl-C ends the process at once with one line and exit 130.

    For commands with nothing to clean up (the state is on the server): no
    cancellation has to find its way through the client's tasks, so there is
    no traceback and no wait. Only in the main thread (tests run commands in
    others, where signal handlers cannot be set).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
