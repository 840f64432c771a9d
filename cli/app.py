"""The typer ``app`` and the frame every command shares (``@command``).

``@command`` registers an ``async def body(session, ...)``: it builds the session
from the global options, runs the coroutine, and turns a ``CliError`` (or
Ctrl-C) into one ``error:`` line and an exit code. The commands live in
``cli.commands`` and ``cli.report``; ``cli/__init__`` imports them so they
register.

Only typer, rich's console and ``contract`` are imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from cli.connect import Session
from cli.errors import EXIT_INTERRUPTED, CliError, print_error
from cli.settings import DEFAULT_ADDRESS, DEFAULT_NAMESPACE, Settings, program, worker_command
from contract import TASK_QUEUE

__all__ = ["app", "command", "run_command"]

CommandBody = TypeVar("CommandBody", bound=Callable[..., Coroutine[Any, Any, int | None]])

_PROGRAM = program()
# Plain click help (rich_markup_mode=None): typer's rich help imports rich's Markdown
# and markdown-it, which would double the start-up cost of --help. "\b" keeps click
# from re-wrapping the example lines.
APP_HELP = (
    "Backforge: a feature request in, a tested FastAPI service on a git branch out.\n\n"
    "\b\n"
    f"Try it offline, all in one process:  {_PROGRAM} demo\n\n"
    f"With a worker running ({worker_command()} --dev): start a feature, follow it with "
    "watch or status, answer its questions with answer / approve / reject, find "
    "features with list --awaiting."
)
APP_EPILOG = (
    "Exit codes: 0 success; 1 feature failed, aborted, cancelled, terminated or timed out, "
    "answer rejected, server unreachable; 2 invalid arguments or unknown workflow id (nothing "
    "started or sent); 3 answer queued, not yet checked (no worker took it); 130 interrupted."
)

app = typer.Typer(
    name="backforge",
    help=APP_HELP,
    epilog=APP_EPILOG,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    address: Annotated[
        str, typer.Option(envvar="TEMPORAL_ADDRESS", help="Temporal frontend host:port.")
    ] = DEFAULT_ADDRESS,
    namespace: Annotated[
        str, typer.Option(envvar="TEMPORAL_NAMESPACE", help="Temporal namespace.")
    ] = DEFAULT_NAMESPACE,
    task_queue: Annotated[
        str, typer.Option(help="Task queue the Backforge workers poll.")
    ] = TASK_QUEUE,
    ui_url: Annotated[
        str | None,
        typer.Option(
            envvar="TEMPORAL_UI_URL",
            help="Temporal Web UI base URL, for links (default: the dev server's, port + 1000, "
            "for a local address).",
        ),
    ] = None,
) -> None:
    """Backforge: a feature request in, a tested FastAPI service on a git branch out."""
    ctx.obj = Settings(address=address, namespace=namespace, task_queue=task_queue, ui_url=ui_url)


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    return Settings(DEFAULT_ADDRESS, DEFAULT_NAMESPACE, TASK_QUEUE)


def run_command(
    body: Callable[[], Coroutine[Any, Any, int | None]], *, cleanup_on_interrupt: bool = False
) -> int:
    """Run one command's coroutine; its exit code, after printing any error as one line.

    Ctrl-C ends the process at once (``process.exit_on_interrupt``), unless
    ``cleanup_on_interrupt``: then it cancels the command (the demo stops its
    worker and embedded server first).
    """
    from process import INTERRUPTED, exit_on_interrupt

    guard = contextlib.nullcontext() if cleanup_on_interrupt else exit_on_interrupt()
    try:
        with guard:
            return asyncio.run(body()) or 0
    except CliError as err:
        print_error(err.message, label=err.label)
        return err.code
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_INTERRUPTED


def command(
    name: str | None = None, *, help: str | None = None, cleanup_on_interrupt: bool = False
) -> Callable[[CommandBody], CommandBody]:
    """Register an ``async def body(session, ...)`` as a command of ``app``.

    The registered function has the body's parameters (typer reads their
    annotations) with the ``Session`` replaced by typer's context; it builds the
    session from the global options, runs the body and exits with its code.
    """

    def register(body: CommandBody) -> CommandBody:
        signature = inspect.signature(body, eval_str=True)
        session_param, *params = signature.parameters.values()
        hints = get_type_hints(body, include_extras=True)
        hints.pop(session_param.name, None)
        hints.pop("return", None)

        def run(ctx: typer.Context, **kwargs: Any) -> None:
            session = Session(_settings(ctx))
            code = run_command(
                lambda: body(session, **kwargs), cleanup_on_interrupt=cleanup_on_interrupt
            )
            raise typer.Exit(code)

        ctx_param = inspect.Parameter(
            "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
        )
        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[ctx_param, *params], return_annotation=None
        )
        run.__annotations__ = {"ctx": typer.Context, **hints}
        run.__name__ = body.__name__
        run.__qualname__ = body.__qualname__
        run.__doc__ = body.__doc__
        app.command(name, help=help)(run)
        return body

    return register
