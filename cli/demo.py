"""The ``demo`` command: embedded Temporal server, worker and example repo in one process.

Imported only when ``demo`` runs: it brings in the worker, and with it every
activity. The example repository is made by ``activities.workspace.init_repo``,
the same initialiser the prepare step uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from rich.panel import Panel
from rich.text import Text

from cli.arguments import build_request, check_repo
from cli.connect import Session
from cli.errors import EXIT_FAILED, CliError, one_line
from cli.follow import follow
from cli.render import console, print_command, print_result
from cli.settings import DEFAULT_NAMESPACE, Settings, worker_command
from cli.starting import derive_workflow_id, start_feature

__all__ = [
    "DEMO_README",
    "SCRIPTED_BANNER",
    "create_demo_repo",
    "demo_repo_path",
    "run_demo",
]

DEMO_README = """# Bookmarks

An example repository created by the Backforge demo.

Backforge builds the bookmarks API on a feature branch of this repository:
specification, plan, tasks, code, tests and a delivery report, one commit per phase.
"""
SCRIPTED_BANNER = (
    "This demo plays a hand-written transcript that stands in for a model: the specs, plans "
    "and code it produces were written by hand, not produced by a model. The pipeline, "
    "Temporal, git and the test runs around them are real. Use --model anthropic:<model> or "
    "openai:<model> for a real model."
)
SERVER_SHUTDOWN_S = 15
WORKER_DRAIN_S = 5


def create_demo_repo(path: Path) -> str:
    """A fresh git repo at ``path`` with README.md committed on ``main``; returns the branch.

    Raises:
        CliError: Exit 1 when git is missing or the directory cannot be written.
    """
    from activities.workspace import WorkspaceError, init_repo  # lazy: activities are heavy

    try:
        init_repo(path, files={"README.md": DEMO_README}, message="Initial commit: README")
    except FileNotFoundError:
        raise CliError(
            "git is not installed. Install git and run the demo again", code=EXIT_FAILED
        ) from None
    except (WorkspaceError, OSError) as err:
        raise CliError(
            f"could not create the demo repository at {path}: {one_line(str(err), 200)}. "
            "Pass --repo with a writable directory",
            code=EXIT_FAILED,
        ) from None
    return "main"


def demo_repo_path(repo: str | None, data_dir: Path) -> Path:
    """Where the demo builds: ``--repo``, or a new stamped directory under ``data_dir``."""
    if repo is not None:
        return Path(repo).expanduser().resolve()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = (data_dir / "demo-repos" / f"bookmarks-{stamp}").resolve()
    suffix = 1
    while path.exists():
        suffix += 1
        path = (data_dir / "demo-repos" / f"bookmarks-{stamp}-{suffix}").resolve()
    return path


def _prepare_repo(path: Path) -> str:
    """Create the example repo when ``path`` is new or empty, else check it; the base branch."""
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return create_demo_repo(path)
    check_repo(str(path))
    branch = _git_lines(path, "rev-parse", "--abbrev-ref", "HEAD")
    return branch[0] if branch else "main"


def _git_lines(repo: Path, *args: str) -> list[str]:
    """Lines git prints for a read-only command in ``repo`` (empty when git fails)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines() if line.strip()]


def _cancel_on_termination() -> None:
    """SIGTERM/SIGHUP (a closed terminal) unwind like Ctrl-C, so the server is stopped."""
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, task.cancel)


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[Path]:
    """Send worker/SDK logs to ``path`` so they do not tear through the live display."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _auto_answers(yes: bool) -> bool:
    """``--yes``, or CI without a terminal (nobody is there to answer)."""
    return yes or (not sys.stdin.isatty() and os.environ.get("CI", "").lower() == "true")


def _check_keys(model_id: str) -> None:
    """The demo's worker is this process: a key it lacks here, it lacks.

    Raises:
        CliError: Exit 2, naming the variable, before anything is created.
    """
    from activities.models.keys import missing_key

    key = missing_key(model_id)
    if key is not None:
        raise CliError(
            f"--model {model_id} needs {key}, and the demo's worker runs in this process: "
            f"export {key} here, or leave --model out for the offline scripted model"
        )


def _print_model(model_id: str) -> None:
    if model_id.startswith("scripted:"):
        console.print(
            Panel(
                Text.assemble(("Scripted model: ", "bold"), f"{model_id}\n", SCRIPTED_BANNER),
                border_style="yellow",
            )
        )
    else:
        console.print(
            Text(
                f"Model: {model_id} (real provider; needs its API key in the environment)",
                style="bold",
            )
        )


async def run_demo(
    session: Session,
    *,
    yes: bool,
    repo: str | None,
    gates: str,
    model: str,
    data_dir: Path,
    feature: str,
) -> int:
    """Validate, create the repo, start server and worker, run the feature, print the result.

    Returns:
        0 when the feature completed, 1 when it was aborted.

    Raises:
        CliError: Invalid arguments (exit 2) or a server/repo problem (exit 1).
    """
    data = data_dir.expanduser().resolve()
    repo_path = demo_repo_path(repo, data)
    request = build_request(
        feature=feature,
        repo=str(repo_path),
        model=model,
        gates=gates,
        max_fix_rounds=2,
        check_repo_path=False,  # checked below, once the example repo exists
    )
    _check_keys(request.model)
    _print_model(request.model)
    base_branch = _prepare_repo(repo_path)

    from activities.services import Services
    from activities.workspace import Workspaces
    from runtime import free_port, port_free, start_dev_server, ui_url  # lazy: heavy
    from worker import build_worker

    port = 7233 if port_free(7233) else free_port(7233)
    ui_port = 8233 if port_free(8233) else free_port(8233)
    if (port, ui_port) != (7233, 8233):
        console.print(
            Text(
                "Port 7233 or 8233 is already in use (another Temporal server?); "
                f"using port {port} and UI port {ui_port} instead.",
                style="yellow",
            )
        )
    settings = Settings(
        address=f"localhost:{port}",
        namespace=DEFAULT_NAMESPACE,
        task_queue=session.settings.task_queue,
    )
    with _logs_to(data / "demo.log") as log_path:
        _cancel_on_termination()
        try:
            env = await start_dev_server(data_dir=data, port=port, ui_port=ui_port)
        except FileNotFoundError as err:
            raise CliError(str(err), code=EXIT_FAILED) from None
        except Exception as err:
            raise CliError(
                f"the embedded Temporal server did not start: {one_line(str(err), 200)}. "
                f"Check --data-dir is writable, or run '{worker_command()} --dev' to see its log",
                code=EXIT_FAILED,
            ) from None
        try:
            client = env.client
            workflow_id = derive_workflow_id(request.feature, request.repo_path)
            link = ui_url(workflow_id, ui_port=ui_port)
            console.print(
                Text.assemble(
                    ("Temporal dev server ", "bold"),
                    f"localhost:{port}  ",
                    ("UI ", "bold"),
                    (f"http://localhost:{ui_port}", "cyan"),
                )
            )
            console.print(Text.assemble(("Repository  ", "bold"), request.repo_path))
            console.print(Text.assemble(("Worker log  ", "bold"), str(log_path)))
            scratch = Workspaces(data / "scratch")
            async with build_worker(
                client,
                task_queue=settings.task_queue,
                services=Services(workspaces=scratch),
                drain_seconds=WORKER_DRAIN_S,
            ):
                handle = await start_feature(client, settings, request, workflow_id=workflow_id)
                console.print(Text.assemble(("Workflow    ", "bold"), handle.id))
                print_command(console, link, label="Follow      ")
                print_command(
                    console,
                    f"{settings.command_prefix()} status {handle.id}",
                    label="In another terminal, while this runs: ",
                    style="dim",
                )
                try:
                    result, _last = await follow(
                        client, handle, settings, answer=True, auto=_auto_answers(yes)
                    )
                except asyncio.CancelledError:  # Ctrl-C: say how to pick it up again
                    console.print(
                        Text(
                            f"\nStopped. The feature's state is kept in {data}; resume with "
                            f"'{worker_command()} --dev --data-dir {data}' and, in another "
                            f"terminal, '{settings.command_prefix()} watch {handle.id}'.",
                            style="yellow",
                        ),
                        soft_wrap=True,
                    )
                    raise
            commits = _git_lines(
                Path(request.repo_path), "log", "--format=%h %s", f"{base_branch}..{result.branch}"
            )
            print_result(
                console,
                result,
                repo=request.repo_path,
                commits=commits,
                commits_title=f"Commits ({base_branch}..{result.branch})",
                ui=link,
            )
            return 0 if result.state == "completed" else 1
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(env.shutdown(), timeout=SERVER_SHUTDOWN_S)
