"""Backforge's command line: start features, follow them, answer their questions.

    backforge demo                              # everything in one process, offline
    backforge start "Build a bookmarks API" --repo ../svc --gates spec,delivery
    backforge status FEATURE_ID
    backforge answer FEATURE_ID REQUEST_ID Q1=B Q2="free text"
    backforge approve FEATURE_ID REQUEST_ID
    backforge reject FEATURE_ID REQUEST_ID --comment "what to change"
    backforge list --awaiting
    backforge watch FEATURE_ID

(``python starter.py ...`` is the same program; hints name whichever you ran, by
path when the venv is not active.)

Exit codes: 0 success (``status``: the feature runs, waits or completed); 1 the
feature failed, was aborted, cancelled, terminated or timed out, an answer was
rejected, or the server could not be reached; 2 invalid arguments or unknown
workflow id (nothing was started or sent); 3 an answer was queued unchecked
(no worker took it; it is applied when one does); 130 interrupted.

Where things are:

- ``app``        the typer ``app`` and the ``@command`` decorator that runs a
  command and maps errors to exit codes.
- ``commands``   one ``async`` function per command (``report`` has its own module).
- ``settings``   global options (address, namespace, task queue) and ``program``:
  the one place that decides how hints name this command.
- ``errors``     ``CliError`` (one line + exit code) and the exit codes.
- ``arguments``  command-line syntax to ``contract.FeatureRequest`` (the only
  validator) and one-line messages for its validation errors.
- ``connect``    connecting, RPC errors, finding a feature, the status query,
  whether a worker polls a queue; ``Session`` (settings + lazy client).
- ``outcome``    where a feature really stands: execution status and result state.
- ``changes``    when a feature may have changed: its history's long poll.
- ``starting``   workflow ids, start with summary, details and search attributes.
- ``listing``    the visibility query behind ``list``.
- ``responding`` building and sending a ``HumanResponse`` (``--yes`` included;
  a signal when no worker polls).
- ``render``     rich rendering of requests, how to answer, status, results, lists.
- ``progress``   the live phase-by-phase view.
- ``asking``     the cancellable stdin reader and asking a person at the terminal.
- ``follow``     following a feature to its end, answering requests on the way.
- ``demo``       the ``demo`` command: embedded server, worker and example repo.

The process ends through the top-level ``process`` module (shared with the worker):
no interpreter teardown under the Temporal client's threads, the cause of the old
exit-134 aborts.

Only ``app``, ``commands`` and ``report`` (typer, rich's console, ``contract``) load at
start; the Temporal client, activities, the worker and rich's Markdown load when needed.
"""

from __future__ import annotations

from typing import NoReturn

import cli.commands  # noqa: F401  (registers the commands)
import cli.report  # noqa: F401  (registers `report`, listed last)
from cli.app import app
from cli.settings import set_program

__all__ = ["app", "main"]


def main(argv: list[str] | None = None, *, prog: str | None = None) -> NoReturn:
    """Run the CLI and end the process (the ``backforge`` script and ``starter.py``).

    The process ends through ``process.leave``: once the Temporal client
    was loaded it exits without interpreter finalization (see that module for
    why), so this never returns.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
        prog: How hints and usage lines name the program (default: detected
            from ``sys.argv[0]``, see ``cli.settings.program``).
    """
    from cli.settings import program
    from process import exit_code, leave

    if prog is not None:
        set_program(prog)
    try:
        app(args=argv, prog_name=program())
    except SystemExit as done:
        leave(exit_code(done.code))
    leave(0)
