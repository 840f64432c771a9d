"""Backforge command line: start features, follow them, answer their questions.

    python starter.py demo                      # everything in one process, offline
    python starter.py start "Build a bookmarks API" --repo ../svc --gates spec,delivery
    python starter.py status FEATURE_ID
    python starter.py answer FEATURE_ID REQUEST_ID Q1=B Q2="free text"
    python starter.py approve FEATURE_ID REQUEST_ID
    python starter.py reject FEATURE_ID REQUEST_ID --comment "what to change"
    python starter.py list --awaiting
    python starter.py watch FEATURE_ID

Exit codes: 0 success; 1 the feature failed or was aborted, an answer was
rejected, or the server could not be reached; 2 invalid arguments or unknown
workflow id (nothing was started or sent); 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from workflows.types import (
    DEFAULT_MODEL,
    GATES,
    MAX_FEATURE_CHARS,
    PHASES,
    SA_AWAITING_HUMAN,
    SA_FEATURE,
    SA_PHASE,
    TASK_QUEUE,
    AgentBudget,
    FeatureRequest,
    FeatureResult,
    FeatureStatus,
    HumanQuestion,
    HumanRequest,
    HumanResponse,
    RespondResult,
)

if TYPE_CHECKING:
    from temporalio.testing import WorkflowEnvironment

__all__ = [
    "app",
    "CliError",
    "derive_workflow_id",
    "parse_answers",
    "parse_gates",
    "parse_phase_models",
    "main",
]

WORKFLOW_TYPE = "BackendFeatureWorkflow"
DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
DEMO_FEATURE = "Build a bookmarks API with tags and per-user collections"
DEMO_GATES = "spec,delivery"
#: How often the live display asks the workflow for its status (UI refresh only).
POLL_SECONDS = 0.4
QUERY_TIMEOUT = timedelta(seconds=5)
UPDATE_TIMEOUT = timedelta(seconds=60)
CONNECT_TIMEOUT_S = 15.0
#: Under --yes, escalations after this many are answered "abort" rather than "retry".
MAX_AUTO_ESCALATIONS = 3
#: Temporal limits a search attribute value to 2 KB by default.
SA_FEATURE_MAX_BYTES = 1500
SUMMARY_MAX_CHARS = 200
TERMINAL_STATES = ("completed", "failed", "cancelled", "aborted")

console = Console(highlight=False)

APP_HELP = (
    "[bold]Backforge[/bold]: a feature request in, a tested FastAPI service on a git "
    "branch out.\n\n"
    "Try it offline, all in one process: [cyan]python starter.py demo[/cyan]\n\n"
    "With a worker running ([cyan]python worker.py --dev[/cyan]): "
    "[cyan]start[/cyan] a feature, follow it with [cyan]watch[/cyan] or [cyan]status[/cyan], "
    "answer its questions with [cyan]answer[/cyan] / [cyan]approve[/cyan] / [cyan]reject[/cyan], "
    "find features with [cyan]list --awaiting[/cyan]."
)
APP_EPILOG = (
    "Exit codes: 0 success · 1 feature failed or aborted, answer rejected, server unreachable · "
    "2 invalid arguments or unknown workflow id (nothing started or sent) · 130 interrupted."
)

app = typer.Typer(
    name="starter.py",
    help=APP_HELP,
    epilog=APP_EPILOG,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)


# --------------------------------------------------------------------------- errors


class CliError(Exception):
    """A problem to report as one ``error: ...`` line and an exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # always one line
        self.code = code


def _print_error(message: str) -> None:
    # Plain print: rich would wrap long lines at the terminal width.
    print(f"error: {message}", file=sys.stderr, flush=True)


def _run(factory: Callable[[], Coroutine[Any, Any, int | None]]) -> NoReturn:
    """Run one command's coroutine and turn its outcome into an exit code."""
    try:
        code: int = asyncio.run(factory()) or 0
    except CliError as err:
        _print_error(err.message)
        code = err.code
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(
            "interrupted; the workflow (if started) keeps its state on the server", file=sys.stderr
        )
        code = 130
    raise typer.Exit(code)


# ----------------------------------------------------------------------- settings


@dataclass
class Settings:
    address: str
    namespace: str
    task_queue: str

    def command_prefix(self) -> str:
        """``python starter.py`` plus the global options needed to reach this server."""
        parts = ["python starter.py"]
        if self.address != os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS):
            parts.append(f"--address {self.address}")
        if self.namespace != os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE):
            parts.append(f"--namespace {self.namespace}")
        return " ".join(parts)


@app.callback()
def _global_options(
    ctx: typer.Context,
    address: Annotated[
        str,
        typer.Option(envvar="TEMPORAL_ADDRESS", help="Temporal frontend host:port."),
    ] = DEFAULT_ADDRESS,
    namespace: Annotated[
        str, typer.Option(envvar="TEMPORAL_NAMESPACE", help="Temporal namespace.")
    ] = DEFAULT_NAMESPACE,
    task_queue: Annotated[
        str, typer.Option(help="Task queue the Backforge workers poll.")
    ] = TASK_QUEUE,
) -> None:
    """Backforge: a feature request in, a tested FastAPI service on a git branch out."""
    ctx.obj = Settings(address=address, namespace=namespace, task_queue=task_queue)


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    return Settings(DEFAULT_ADDRESS, DEFAULT_NAMESPACE, TASK_QUEUE)


# --------------------------------------------------------------------- validation


def validate_feature(feature: str) -> str:
    """The feature text, stripped; CliError if it is empty or too long."""
    text = feature.strip()
    if not text:
        raise CliError(
            "the feature request is empty. Describe the feature in a sentence, "
            'e.g. "Build a bookmarks API with tags"'
        )
    if len(text) > MAX_FEATURE_CHARS:
        raise CliError(
            f"the feature request is {len(text)} characters, over the {MAX_FEATURE_CHARS} limit. "
            "Keep it to a few sentences; details come up in the clarification questions"
        )
    return text


def validate_model(model_id: str, *, what: str = "") -> str:
    """Check a model id with the model registry (offline: no keys, no network)."""
    from activities.models.registry import validate_model_id  # lazy: keeps --help fast

    model_id = model_id.strip()
    try:
        validate_model_id(model_id)
    except ValueError as err:
        raise CliError(f"{what}{err}") from None
    return model_id


def validate_repo(path: str) -> str:
    """The repository path made absolute; CliError when it cannot be used."""
    if not path or not path.strip():
        raise CliError("--repo is empty. Pass the path of the git repository to build in")
    from activities.workspace import check_repo_path  # lazy: keeps --help fast

    resolved = Path(path).expanduser().resolve()
    try:
        check_repo_path(str(resolved))
    except ValueError as err:
        raise CliError(str(err)) from None
    return str(resolved)


def parse_gates(spec: str | None) -> list[str]:
    """``"spec, delivery"`` -> ``["spec", "delivery"]``; ``""``/``"none"`` -> ``[]``."""
    if spec is None:
        return []
    names = [name.strip().lower() for name in spec.split(",") if name.strip()]
    if names == ["none"]:
        return []
    unknown = [name for name in names if name not in GATES]
    if unknown:
        raise CliError(
            f"unknown gate {unknown[0]!r}. Use a comma-separated list of {', '.join(GATES)} "
            "(or 'none')"
        )
    return list(dict.fromkeys(names))


def parse_phase_models(values: Sequence[str]) -> dict[str, str]:
    """``["tasks=openai:gpt-5-mini"]`` -> ``{"tasks": "openai:gpt-5-mini"}``, validated."""
    allowed = [*PHASES, "fix"]
    result: dict[str, str] = {}
    for value in values:
        phase, sep, model_id = value.partition("=")
        phase = phase.strip().lower()
        if not sep or not phase or not model_id.strip():
            raise CliError(
                f"cannot read --phase-model {value!r}. Write it as PHASE=MODEL_ID, "
                "e.g. --phase-model tasks=openai:gpt-5-mini"
            )
        if phase not in allowed:
            raise CliError(
                f"unknown phase {phase!r} in --phase-model. Use one of {', '.join(allowed)}"
            )
        result[phase] = validate_model(model_id, what=f"--phase-model {phase}: ")
    return result


_QUESTION_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def parse_answers(values: Sequence[str]) -> dict[str, str]:
    """``["Q1=B", "Q2=free text"]`` -> ``{"Q1": "B", "Q2": "free text"}``.

    Raises:
        CliError: an argument is not ``QUESTION_ID=ANSWER``, has an empty answer,
            or names a question twice.
    """
    answers: dict[str, str] = {}
    for value in values:
        qid, sep, answer = value.partition("=")
        qid, answer = qid.strip(), answer.strip()
        if not sep or not _QUESTION_ID.match(qid):
            raise CliError(
                f"cannot read answer {value!r}. Write each answer as QUESTION_ID=ANSWER, "
                'e.g. Q1=B or Q2="free text"'
            )
        if not answer:
            raise CliError(
                f"answer {value!r} is empty. Give an option key or text after '=', e.g. {qid}=A"
            )
        if qid in answers:
            raise CliError(f"question {qid} is answered twice. Give one answer per question")
        answers[qid] = answer
    return answers


def derive_workflow_id(feature: str, repo_path: str, *, now_ns: int | None = None) -> str:
    """``feature-<slug of the first words, <=40 chars>-<6 hex chars>``."""
    ascii_text = unicodedata.normalize("NFKD", feature).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > 40:
            break
        slug = candidate
    if not slug:
        slug = words[0][:40] if words else "request"
    stamp = time.time_ns() if now_ns is None else now_ns
    digest = hashlib.sha256(f"{feature}\0{repo_path}\0{stamp}".encode()).hexdigest()[:6]
    return f"feature-{slug}-{digest}"


def _truncate_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --------------------------------------------------------------------- connecting


async def _connect(settings: Settings) -> Client:
    from runtime import connect

    try:
        return await asyncio.wait_for(
            connect(settings.address, settings.namespace), timeout=CONNECT_TIMEOUT_S
        )
    except (ConnectionError, RuntimeError, OSError, TimeoutError):
        raise CliError(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}). "
            "Start a local server and worker with 'python worker.py --dev', "
            "or point --address / TEMPORAL_ADDRESS at your cluster",
            code=1,
        ) from None


def _rpc_error(err: RPCError, settings: Settings, workflow_id: str | None = None) -> CliError:
    text = str(err.message or err)
    lowered = text.lower()
    if err.status == RPCStatusCode.NOT_FOUND and "namespace" in lowered:
        return CliError(
            f"namespace {settings.namespace!r} does not exist at {settings.address}. "
            "Pass --namespace or set TEMPORAL_NAMESPACE",
            code=1,
        )
    if err.status == RPCStatusCode.NOT_FOUND and workflow_id is not None:
        return _unknown_workflow(workflow_id, settings)
    if err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in lowered:
        return CliError(
            f"the server rejected a Backforge search attribute ({_one_line(text, 160)}). "
            "Register them with 'temporal operator search-attribute create --name BackforgePhase "
            "--type Keyword --name BackforgeAwaitingHuman --type Bool --name BackforgeFeature "
            "--type Text', or use 'python worker.py --dev' which registers them",
            code=1,
        )
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return CliError(
            f"Temporal at {settings.address} did not answer ({_one_line(text, 120)}). "
            "Check the server, or start one with 'python worker.py --dev'",
            code=1,
        )
    return CliError(f"Temporal error {err.status.name}: {_one_line(text, 200)}", code=1)


def _unknown_workflow(workflow_id: str, settings: Settings, detail: str = "") -> CliError:
    return CliError(
        f"no feature workflow with id {workflow_id!r} in namespace {settings.namespace} at "
        f"{settings.address}{detail}. Run '{settings.command_prefix()} list' to see feature ids",
        code=2,
    )


async def _feature_handle(
    client: Client, settings: Settings, workflow_id: str
) -> tuple[WorkflowHandle[Any, FeatureResult], WorkflowExecutionDescription]:
    """The handle of a feature workflow, checked to exist and to be a Backforge feature."""
    handle = client.get_workflow_handle(workflow_id, result_type=FeatureResult)
    try:
        description = await handle.describe()
    except RPCError as err:
        raise _rpc_error(err, settings, workflow_id) from None
    if description.workflow_type != WORKFLOW_TYPE:
        raise _unknown_workflow(
            workflow_id, settings, f" (that id is a {description.workflow_type} workflow)"
        )
    return handle, description


async def _query_status(handle: WorkflowHandle[Any, Any]) -> FeatureStatus | None:
    """The workflow's ``status`` query, or None when no worker answered in time."""
    try:
        return await handle.query("status", result_type=FeatureStatus, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise
        return None
    except Exception:  # query failed inside the workflow, or a decode problem
        return None


async def _has_worker(client: Client, task_queue: str) -> bool | None:
    """Whether any worker polled ``task_queue`` recently (None if unknown)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=timedelta(seconds=5),
        )
    except Exception:
        return None
    return len(response.pollers) > 0


# ---------------------------------------------------------------------- rendering


def _short(sha: str | None) -> str:
    return (sha or "")[:7]


def _question_table(question: HumanQuestion) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for option in question.options:
        key = option.key + (" ★" if option.key == question.recommended else "")
        cell = Text(option.answer)
        if option.implications:
            cell.append("\n" + option.implications, style="dim")
        table.add_row(key, cell)
    return table


def how_to_answer(request: HumanRequest, workflow_id: str, settings: Settings) -> str:
    """The command line that answers ``request`` (recommended answers filled in)."""
    prefix = f"{settings.command_prefix()}"
    if request.kind == "approval":
        return (
            f"{prefix} approve {workflow_id} {request.id}\n"
            f'{prefix} reject {workflow_id} {request.id} --comment "what to change"'
        )
    parts = []
    for question in request.questions:
        answer = question.recommended or (question.options[0].key if question.options else "...")
        parts.append(f"{question.id}={_shell_quote(answer)}")
    line = f"{prefix} answer {workflow_id} {request.id} {' '.join(parts)}".rstrip()
    if request.kind == "escalation":
        line += ' [--comment "guidance for the next attempt"]'
    return line


def _shell_quote(value: str) -> str:
    return value if re.fullmatch(r"[\w.:/@+-]+", value) else json.dumps(value)


def render_request(request: HumanRequest) -> Panel:
    """A panel with the request's title, body, questions, options and recommendations."""
    parts: list[RenderableType] = []
    meta = Text(f"{request.kind} · phase {request.phase} · request id {request.id}", style="dim")
    if request.deadline is not None:
        meta.append(
            f" · deadline {request.deadline:%Y-%m-%d %H:%M} UTC (then {request.on_timeout})"
        )
    parts.append(meta)
    if request.body.strip():
        parts.append(Markdown(request.body))
    for question in request.questions:
        heading = Text.assemble((f"{question.id}. ", "bold"), question.text)
        parts.append(Text(""))
        parts.append(heading)
        if question.options:
            parts.append(_question_table(question))
        if question.recommended:
            parts.append(
                Text(
                    f"recommended: {question.recommended}"
                    + ("" if not question.options else "  (★)")
                    + ("  · free text accepted" if question.allow_free_text else ""),
                    style="green",
                )
            )
    return Panel(Group(*parts), title=Text(request.title, style="bold yellow"), title_align="left")


def _current_phase(status: FeatureStatus) -> str:
    """``"implement T003"`` -> ``"implement"``."""
    return status.phase.split(" ")[0] if status.phase else ""


def _phase_marks(status: FeatureStatus) -> dict[str, str]:
    """phase -> 'done' | 'current' | 'waiting' | 'failed' | 'pending'."""
    done = {record.phase for record in status.completed}
    current = _current_phase(status)
    marks: dict[str, str] = {}
    for phase in PHASES:
        if status.state == "completed" or (phase in done and phase != current):
            marks[phase] = "done"
        elif phase == current:
            if status.state == "waiting":
                marks[phase] = "waiting"
            elif status.state in ("failed", "aborted", "cancelled"):
                marks[phase] = "failed"
            else:
                marks[phase] = "current"
        else:
            marks[phase] = "pending"
    return marks


def _phase_detail(status: FeatureStatus, phase: str) -> str:
    records = [r for r in status.completed if r.phase == phase]
    detail = ""
    if records:
        last = records[-1]
        detail = f"{_short(last.commit)}  {last.summary}".strip()
        if len(records) > 1:
            detail += f"  ({len(records)} commits)"
    if phase == "implement" and status.tasks:
        done = sum(1 for task in status.tasks if task.done)
        prefix = f"tasks {done}/{len(status.tasks)}"
        if _current_phase(status) == "implement":
            task_id = status.phase.partition(" ")[2]
            current = next((t for t in status.tasks if t.id == task_id), None) or next(
                (t for t in status.tasks if not t.done), None
            )
            if current is not None:
                prefix += f" · {current.id} {current.title}"
        detail = f"{prefix}  {detail}".strip()
    if phase == "test" and status.test_report is not None and not records:
        report = status.test_report
        detail = f"{detail}  {report.passed} passed, {report.failed} failed".strip()
    return detail


def _usage_line(status: FeatureStatus) -> str:
    usage = status.usage
    line = (
        f"model calls {usage.model_calls}"
        + (f" ({usage.replayed_calls} replayed)" if usage.replayed_calls else "")
        + f" · tokens {usage.input_tokens:,} in / {usage.output_tokens:,} out"
        + f" · ${usage.cost_usd:.4f}"
    )
    if status.budget_usd is not None:
        line += f" of ${status.budget_usd:.2f} budget"
    return line


class ProgressView:
    """Live phase-by-phase progress, fed by the ``status`` query.

    On a terminal it is a rich live display with a spinner on the running phase;
    elsewhere (CI logs, pipes) it prints one line per change.
    """

    _MARKS = {"done": ("✓", "green"), "waiting": ("?", "yellow"), "failed": ("✗", "red")}

    def __init__(self, out: Console, workflow_id: str) -> None:
        self.console = out
        self.workflow_id = workflow_id
        self.status: FeatureStatus | None = None
        self.note = "waiting for the first status..."
        self._live: Live | None = None
        self._spinner = Spinner("dots", style="cyan")
        self._printed_records = 0
        self._last_line = ""

    def start(self) -> None:
        if self.console.is_terminal and self._live is None:
            self._live = Live(
                get_renderable=self.render, console=self.console, refresh_per_second=8
            )
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def update(self, status: FeatureStatus | None, note: str | None = None) -> None:
        if note is not None:
            self.note = note
        if status is not None:
            self.status = status
            self.note = ""
        if self._live is None:
            self._print_changes()

    def render(self) -> RenderableType:
        status = self.status
        if status is None:
            waiting = Table.grid(padding=(0, 1))
            waiting.add_row(self._spinner, Text(self.note))
            return Group(Text(self.workflow_id, style="bold"), waiting)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=2)
        grid.add_column(no_wrap=True, min_width=12)
        grid.add_column(overflow="ellipsis", no_wrap=True)
        marks = _phase_marks(status)
        current = _current_phase(status)
        extra_row: tuple[RenderableType, Text, Text] | None = None
        if current not in PHASES and status.state in ("running", "waiting"):
            extra_symbol: RenderableType = (
                self._spinner if status.state == "running" else Text("?", style="yellow")
            )
            extra = f"round {status.fix_rounds}" if current == "fix" else ""
            extra_row = (extra_symbol, Text(status.phase, style="bold"), Text(extra, style="dim"))
        if extra_row is not None and current in ("starting", "prepare"):
            grid.add_row(*extra_row)  # steps before the first phase go on top
            extra_row = None
        for phase in PHASES:
            mark = marks[phase]
            if mark == "current":
                symbol: RenderableType = self._spinner
            elif mark in self._MARKS:
                char, style = self._MARKS[mark]
                symbol = Text(char, style=style)
            else:
                symbol = Text("·", style="dim")
            name_style = (
                "bold" if mark in ("current", "waiting") else ("dim" if mark == "pending" else "")
            )
            grid.add_row(
                symbol,
                Text(phase, style=name_style),
                Text(_phase_detail(status, phase), style="dim"),
            )
        if extra_row is not None:
            grid.add_row(*extra_row)
        footer = Text(_usage_line(status), style="dim")
        lines: list[RenderableType] = [
            Text.assemble((status.workflow_id, "bold"), f"  {status.state}", style=""),
            grid,
            footer,
        ]
        if status.state == "waiting" and status.open_requests:
            lines.append(
                Text(f"waiting for a person: {status.open_requests[0].title}", style="yellow")
            )
        elif status.message:
            lines.append(Text(status.message, style="italic"))
        if self.note:
            lines.append(Text(self.note, style="yellow"))
        return Group(*lines)

    def _print_changes(self) -> None:
        status = self.status
        if status is None:
            if self.note and self.note != self._last_line:
                self._last_line = self.note
                self.console.print(Text(self.note, style="dim"))
            return
        for record in status.completed[self._printed_records :]:
            task = f" {record.task_id}" if record.task_id else ""
            self.console.print(
                Text.assemble(
                    ("✓ ", "green"),
                    f"{record.phase}{task}",
                    (f"  {_short(record.commit)}", "dim"),
                    f"  {record.summary}",
                )
            )
        self._printed_records = len(status.completed)
        done = sum(1 for task in status.tasks if task.done)
        tasks = f" · tasks {done}/{len(status.tasks)}" if status.tasks else ""
        line = f"→ {status.phase} ({status.state}){tasks}"
        if status.message:
            line += f" · {status.message}"
        if self.note:
            line += f" · {self.note}"
        if line != self._last_line:
            self._last_line = line
            self.console.print(Text(line, style="dim"))


def print_request(
    out: Console,
    request: HumanRequest,
    workflow_id: str | None = None,
    settings: Settings | None = None,
) -> None:
    """The request's panel, then the command lines that answer it (never wrapped)."""
    out.print(render_request(request))
    if workflow_id is not None and settings is not None:
        out.print(Text("To answer:", style="bold"))
        for line in how_to_answer(request, workflow_id, settings).splitlines():
            out.print(Text("  " + line, style="cyan"), soft_wrap=True)


def print_status(out: Console, status: FeatureStatus, settings: Settings) -> None:
    """Everything ``status`` shows."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    head.add_row("Feature", Text(status.feature))
    head.add_row("Workflow", Text(status.workflow_id))
    state_style = {"completed": "green", "waiting": "yellow", "running": "cyan"}.get(
        status.state, "red"
    )
    head.add_row("State", Text.assemble((status.state, state_style), f"  phase {status.phase}"))
    if status.repo_path:
        head.add_row("Repository", Text(status.repo_path))
    if status.branch:
        head.add_row(
            "Branch",
            Text(
                f"{status.branch}  head {_short(status.head_commit)}"
                + (
                    f"  last good {_short(status.last_good_commit)}"
                    if status.last_good_commit
                    else ""
                )
            ),
        )
    if status.feature_dir:
        head.add_row("Spec dir", Text(status.feature_dir))
    if status.tasks:
        done = sum(1 for task in status.tasks if task.done)
        head.add_row("Tasks", Text(f"{done}/{len(status.tasks)} done"))
    if status.fix_rounds:
        head.add_row("Fix rounds", Text(str(status.fix_rounds)))
    if status.message:
        head.add_row("Message", Text(status.message))
    parts: list[RenderableType | Callable[[], None]] = [head]

    if status.completed:
        phases = Table(
            title="Completed phases", title_justify="left", show_edge=False, pad_edge=False
        )
        phases.add_column("phase")
        phases.add_column("task")
        phases.add_column("commit", style="cyan")
        phases.add_column("summary", overflow="fold")
        for record in status.completed:
            phases.add_row(
                record.phase,
                record.task_id or "",
                _short(record.commit),
                Text(_one_line(record.summary, 160)),
            )
        parts += [Text(""), phases]

    if status.open_requests:
        parts += [
            Text(""),
            Text(f"Open requests ({len(status.open_requests)})", style="bold yellow"),
        ]
        for request in status.open_requests:
            parts.append(partial(print_request, out, request, status.workflow_id, settings))

    if status.usage_by_phase or status.usage.model_calls:
        phase_models = {status.models.get(phase, "") for phase in status.usage_by_phase}
        one_model = len(phase_models) <= 1
        title = "Usage" + (f" ({next(iter(phase_models))})" if one_model and phase_models else "")
        usage = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        columns = ["phase"] + ([] if one_model else ["model"])
        columns += ["calls", "replayed", "tokens in", "tokens out", "cost $"]
        for column in columns:
            usage.add_column(column, justify="left" if column in ("phase", "model") else "right")
        for phase, item in status.usage_by_phase.items():
            model_cell = [] if one_model else [status.models.get(phase, "")]
            usage.add_row(
                phase,
                *model_cell,
                str(item.model_calls),
                str(item.replayed_calls),
                f"{item.input_tokens:,}",
                f"{item.output_tokens:,}",
                f"{item.cost_usd:.4f}",
            )
        total = status.usage
        usage.add_row(
            Text("total", style="bold"),
            *([] if one_model else [""]),
            str(total.model_calls),
            str(total.replayed_calls),
            f"{total.input_tokens:,}",
            f"{total.output_tokens:,}",
            Text(f"{total.cost_usd:.4f}", style="bold"),
        )
        parts += [Text(""), usage]
        if status.budget_usd is not None:
            parts.append(Text(f"budget ${status.budget_usd:.2f}", style="dim"))

    if status.test_report is not None:
        report = status.test_report
        style = "green" if report.ok else "red"
        line = Text.assemble(
            ("Last test run: ", "bold"),
            (f"{report.passed} passed, {report.failed} failed, {report.errors} errors", style),
            f"  exit {report.exit_code}  {report.duration_s:.1f}s"
            + ("  TIMED OUT" if report.timed_out else ""),
        )
        parts += [Text(""), line]
        if report.output_path:
            parts.append(Text(f"output: {report.output_path}", style="dim"))
        if report.tail.strip() and not report.ok:
            parts.append(
                Panel(Text(report.tail.rstrip()), title="test output (tail)", border_style="dim")
            )
    for part in parts:
        if callable(part) and not hasattr(part, "__rich_console__"):
            part()
        else:
            out.print(part)


# ------------------------------------------------------------------ following runs


def _settle(future: asyncio.Future[str], value: str | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value or "")


class _StdinLines:
    """Lines from stdin read through the event loop, so a pending prompt can be cancelled.

    The worker and the embedded server keep running while a person types, and a
    prompt gives way when the request is answered elsewhere (another terminal, the
    Temporal UI). Where the loop cannot watch stdin (Windows, a regular file, test
    runners), ``input()`` runs in a daemon thread instead.
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.eof = False

    async def readline(self, prompt: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return await self._thread_input(prompt)
        sys.stdout.write(prompt)
        sys.stdout.flush()
        while b"\n" not in self.buffer:
            if self.eof:
                if not self.buffer:
                    raise EOFError
                self.buffer += b"\n"  # last line without a newline
                break
            ready: asyncio.Future[str] = loop.create_future()
            try:
                loop.add_reader(fd, _settle, ready, "", None)
            except (NotImplementedError, PermissionError, OSError, ValueError):
                return await self._thread_input("")
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            chunk = os.read(fd, 4096)
            self.eof = not chunk
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\n")
        line = raw.decode(errors="replace").rstrip("\r")
        if not os.isatty(fd):  # piped answers: show them, as a terminal would
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return line

    @staticmethod
    async def _thread_input(prompt: str) -> str:
        # A daemon thread (not asyncio.to_thread): Ctrl-C must not wait for it.
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def read() -> None:
            try:
                value = input(prompt)
            except BaseException as err:  # EOFError, KeyboardInterrupt
                loop.call_soon_threadsafe(_settle, future, None, err)
                return
            loop.call_soon_threadsafe(_settle, future, value, None)

        threading.Thread(target=read, daemon=True, name="backforge-input").start()
        return await future


_stdin = _StdinLines()


async def ainput(prompt: str) -> str:
    """One line from stdin without blocking the event loop."""
    try:
        return await _stdin.readline(prompt)
    except EOFError:
        raise CliError(
            "standard input closed while a question was waiting for an answer. "
            "Run interactively, or pass --yes to take the recommended answers",
            code=1,
        ) from None


def _match_option(question: HumanQuestion, answer: str) -> str | None:
    """The option key ``answer`` names (case-insensitive), or None."""
    for option in question.options:
        if option.key.lower() == answer.strip().lower():
            return option.key
    return None


def recommended_response(
    request: HumanRequest, responder: str, *, give_up: bool = False
) -> HumanResponse:
    """The response ``--yes`` sends: recommended answers, or approval.

    With ``give_up`` an escalation is answered with its abort/stop option when it
    has one, so that an unattended run cannot retry a broken step forever.
    """
    if request.kind == "approval":
        return HumanResponse(
            request_id=request.id,
            approved=True,
            comment="approved automatically (--yes)",
            responder=responder,
        )
    answers = {}
    for question in request.questions:
        stop = next((o.key for o in question.options if o.key in ("abort", "stop")), None)
        if give_up and request.kind == "escalation" and stop is not None:
            answers[question.id] = stop
        elif question.recommended:
            answers[question.id] = question.recommended
        elif question.options:
            answers[question.id] = question.options[0].key
        else:
            answers[question.id] = "Use your best judgement and note the assumption."
    return HumanResponse(request_id=request.id, answers=answers, responder=responder)


async def _ask_question(question: HumanQuestion) -> str:
    keys = "/".join(option.key for option in question.options)
    default = question.recommended or ""
    hint = f" [{keys}]" if keys else ""
    if default:
        hint += f" (Enter = {default})"
    while True:
        raw = (await ainput(f"{question.id}{hint}: ")).strip()
        if not raw:
            if default:
                return default
            console.print(Text("An answer is needed here.", style="red"))
            continue
        key = _match_option(question, raw)
        if key is not None:
            return key
        if question.options and not question.allow_free_text:
            console.print(Text(f"Choose one of {keys}.", style="red"))
            continue
        return raw


async def ask_response(request: HumanRequest, responder: str) -> HumanResponse:
    """Read a response to ``request`` at the terminal."""
    if request.kind == "approval" and not request.questions:
        while True:
            raw = (await ainput("Approve? [Y/n]: ")).strip().lower()
            if raw in ("", "y", "yes"):
                comment = (await ainput("Comment (optional): ")).strip() or None
                return HumanResponse(
                    request_id=request.id, approved=True, comment=comment, responder=responder
                )
            if raw in ("n", "no"):
                comment = ""
                while not comment:
                    comment = (await ainput("What should change? (required): ")).strip()
                return HumanResponse(
                    request_id=request.id, approved=False, comment=comment, responder=responder
                )
            console.print(Text("Answer y or n.", style="red"))
    answers = {}
    for question in request.questions:
        answers[question.id] = await _ask_question(question)
    approved = None
    comment = None
    if request.kind == "approval":
        approved = (await ainput("Approve? [Y/n]: ")).strip().lower() not in ("n", "no")
    if request.kind == "escalation" or approved is False:
        comment = (await ainput("Guidance / comment (optional): ")).strip() or None
    return HumanResponse(
        request_id=request.id,
        answers=answers,
        approved=approved,
        comment=comment,
        responder=responder,
    )


def _describe_choice(request: HumanRequest, response: HumanResponse) -> str:
    if request.kind == "approval" and response.approved is not None and not response.answers:
        return "approved" if response.approved else f"rejected: {response.comment}"
    chosen = []
    for question in request.questions:
        answer = response.answers.get(question.id, "")
        text = question.answer_text(answer)
        chosen.append(f"{question.id} → {answer}" + (f" ({text})" if text != answer else ""))
    return "; ".join(chosen)


async def send_response(handle: WorkflowHandle[Any, Any], response: HumanResponse) -> RespondResult:
    """Send a response through the ``respond`` update.

    Raises:
        CliError: code 1 with the workflow's reason when it rejects the response.
    """
    try:
        result = await handle.execute_update(
            "respond", response, result_type=RespondResult, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        raise CliError(f"the workflow rejected the response: {reason}", code=1) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise CliError(
            f"the workflow did not take the response within {UPDATE_TIMEOUT.seconds}s. "
            "Check that a worker is running ('python worker.py') and try again",
            code=1,
        ) from None
    if not result.accepted:
        raise CliError(f"the workflow rejected the response: {result.message}", code=1)
    return result


async def _wait_until_closed(handle: WorkflowHandle[Any, Any], request_id: str) -> None:
    """Return once ``request_id`` is no longer open (answered, timed out, workflow done)."""
    while True:
        await asyncio.sleep(1.0)
        try:
            status = await _query_status(handle)
        except RPCError:
            continue
        if status is not None and all(r.id != request_id for r in status.open_requests):
            return


async def _ask_unless_answered_elsewhere(
    handle: WorkflowHandle[Any, Any], request: HumanRequest, responder: str
) -> HumanResponse | None:
    """The person's response, or None if someone answered first (UI, another terminal)."""
    ask = asyncio.create_task(ask_response(request, responder))
    closed = asyncio.create_task(_wait_until_closed(handle, request.id))
    try:
        await asyncio.wait({ask, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (ask, closed):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if ask.done() and not ask.cancelled():
        return ask.result()
    return None


async def _answer_open_request(
    handle: WorkflowHandle[Any, Any], request: HumanRequest, *, auto: bool, give_up: bool = False
) -> None:
    """Show ``request``, get an answer (terminal or --yes) and send it until accepted."""
    console.print(render_request(request))
    responder = "backforge-demo --yes" if auto else _responder()
    while True:
        if auto:
            response = recommended_response(request, responder, give_up=give_up)
            if give_up and request.kind == "escalation":
                console.print(
                    Text(
                        f"--yes: {MAX_AUTO_ESCALATIONS} escalations answered automatically "
                        "already; stopping instead of retrying again",
                        style="yellow",
                    )
                )
            console.print(Text(f"--yes: {_describe_choice(request, response)}", style="green"))
        else:
            answered = await _ask_unless_answered_elsewhere(handle, request, responder)
            if answered is None:
                console.print(
                    Text(f"\n{request.id} was answered elsewhere; moving on.", style="dim")
                )
                return
            response = answered
        try:
            result = await send_response(handle, response)
        except CliError as err:
            console.print(Text(err.message, style="red"))
            status = await _query_status(handle)
            if status is not None and all(r.id != request.id for r in status.open_requests):
                console.print(Text("The request is no longer open; moving on.", style="dim"))
                return
            if auto:
                raise CliError(
                    f"the recommended answer to {request.id} was rejected. Answer it yourself "
                    "(run without --yes)",
                    code=1,
                ) from None
            continue
        console.print(Text(f"✓ {result.message or 'accepted'}", style="green"))
        return


async def follow(
    client: Client,
    handle: WorkflowHandle[Any, FeatureResult],
    settings: Settings,
    *,
    answer: bool,
    auto: bool = False,
    task_queue: str | None = None,
) -> tuple[FeatureResult, FeatureStatus | None]:
    """Show progress until the workflow closes; answer its requests when ``answer``.

    Returns the result and the last status seen.

    Raises:
        CliError: code 1 when the workflow fails, is cancelled or terminated.
    """
    result_task: asyncio.Task[FeatureResult] = asyncio.create_task(handle.result())
    view = ProgressView(console, handle.id)
    handled: set[str] = set()
    misses = 0
    escalations = 0
    view.start()
    try:
        while not result_task.done():
            try:
                status = await _query_status(handle)
            except RPCError as err:
                raise _rpc_error(err, settings, handle.id) from None
            if status is None:
                misses += 1
                if misses == 3:
                    polling = await _has_worker(client, task_queue or settings.task_queue)
                    view.update(
                        None,
                        note=(
                            "no worker is polling task queue "
                            f"{task_queue or settings.task_queue!r}; "
                            "start one with 'python worker.py'"
                            if polling is False
                            else "the workflow is not answering status queries yet..."
                        ),
                    )
            else:
                misses = 0
                view.update(status)
                fresh = [r for r in status.open_requests if r.id not in handled]
                if fresh:
                    view.stop()
                    for request in fresh:
                        handled.add(request.id)
                        if answer:
                            if request.kind == "escalation":
                                escalations += 1
                            await _answer_open_request(
                                handle,
                                request,
                                auto=auto,
                                give_up=escalations > MAX_AUTO_ESCALATIONS,
                            )
                        else:
                            print_request(console, request, handle.id, settings)
                    view.start()
                    continue
            await asyncio.wait({result_task}, timeout=POLL_SECONDS)
        # One last status so the display ends on the final state.
        final = await _query_status(handle) if result_task.exception() is None else None
        if final is not None:
            view.update(final)
    finally:
        view.stop()
        if not result_task.done():
            result_task.cancel()
    try:
        return result_task.result(), view.status
    except WorkflowFailureError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        raise CliError(
            f"workflow {handle.id} did not complete: {_one_line(reason, 300)}", code=1
        ) from None


def _responder() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def print_result(
    result: FeatureResult,
    settings: Settings,
    *,
    repo: str | None = None,
    base_branch: str | None = None,
    ui: str | None = None,
) -> None:
    """The closing summary: branch, commits, tests, report, usage, UI link."""
    ok = result.state == "completed"
    console.print()
    console.print(
        Text.assemble(
            ("✓ completed" if ok else "✗ " + result.state, "bold green" if ok else "bold red"),
            f"  {result.workflow_id}",
        )
    )
    if result.message:
        console.print(Text(result.message))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True, min_width=11)
    grid.add_column(overflow="fold")
    grid.add_row("Branch", Text(f"{result.branch}  head {_short(result.head_commit)}"))
    if repo:
        grid.add_row("Repository", Text(repo))
    if result.test_report is not None:
        report = result.test_report
        grid.add_row(
            "Tests",
            Text(
                f"{report.passed} passed, {report.failed} failed, {report.errors} errors"
                + (f"  ({report.output_path})" if report.output_path else ""),
                style="green" if report.ok else "red",
            ),
        )
    if result.report_path:
        report_path = result.report_path
        if repo and not Path(report_path).is_absolute():
            report_path = str(Path(repo) / report_path)
        grid.add_row("Report", Text(report_path))
    usage = result.usage
    grid.add_row(
        "Usage",
        Text(
            f"{usage.model_calls} model calls"
            + (f" ({usage.replayed_calls} replayed)" if usage.replayed_calls else "")
            + f", {usage.input_tokens:,} tokens in / {usage.output_tokens:,} out"
            + f", ${usage.cost_usd:.4f}"
        ),
    )
    console.print(grid)
    if ui:
        console.print(Text.assemble(("Temporal UI  ", "bold"), (ui, "cyan")), soft_wrap=True)
    commits = _git_log(repo, base_branch, result.branch) if repo else None
    if commits:
        console.print(Text(f"Commits ({base_branch}..{result.branch}):", style="bold"))
        for line in commits:
            console.print(Text("  " + line), soft_wrap=True)
    elif result.commits:
        console.print(Text("Commits:", style="bold"))
        for record in result.commits:
            task = f" {record.task_id}" if record.task_id else ""
            console.print(
                Text(
                    f"  {_short(record.commit)} {record.phase}{task}: "
                    + _one_line(record.summary, 110)
                ),
                soft_wrap=True,
            )


def _git_log(repo: str | None, base: str | None, branch: str) -> list[str] | None:
    if not repo or not base or not branch:
        return None
    try:
        out = subprocess.run(
            ["git", "-C", repo, "log", "--format=%h %s", f"{base}..{branch}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line for line in out.splitlines() if line.strip()]


# ------------------------------------------------------------------------ start


def build_request(
    *,
    feature: str,
    repo: str,
    model: str,
    gates: str | None,
    phase_model: Sequence[str],
    budget_usd: float | None,
    max_fix_rounds: int,
    clarification_timeout: int | None = None,
    remind_every: int | None = None,
    agent_limits: AgentBudget | None = None,
    parallel_tasks: bool = True,
) -> FeatureRequest:
    """Validate every argument locally and build the workflow input (no server contact)."""
    feature = validate_feature(feature)
    model = validate_model(model)
    gate_list = parse_gates(gates)
    phase_models = parse_phase_models(phase_model)
    if budget_usd is not None and budget_usd <= 0:
        raise CliError(f"--budget-usd must be above 0, got {budget_usd}. Pass e.g. --budget-usd 5")
    if not 0 <= max_fix_rounds <= 10:
        raise CliError(
            f"--max-fix-rounds must be between 0 and 10, got {max_fix_rounds}. Pass e.g. 2"
        )
    for name, value in (
        ("--clarification-timeout", clarification_timeout),
        ("--remind-every", remind_every),
    ):
        if value is not None and value <= 0:
            raise CliError(f"{name} must be a positive number of seconds, got {value}")
    repo_path = validate_repo(repo)
    try:
        return FeatureRequest(
            feature=feature,
            repo_path=repo_path,
            model=model,
            phase_models=phase_models,
            gates=gate_list,  # type: ignore[arg-type]
            max_fix_rounds=max_fix_rounds,
            budget_usd=budget_usd,
            clarification_timeout_s=clarification_timeout,
            remind_every_s=remind_every,
            agent_limits=agent_limits or AgentBudget(),
            parallel_tasks=parallel_tasks,
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise CliError(f"invalid {where or 'request'}: {first.get('msg')}") from None


def _agent_limits(turns: int, tokens: int, seconds: int) -> AgentBudget:
    try:
        return AgentBudget(max_turns=turns, max_tokens=tokens, max_seconds=seconds)
    except ValidationError as err:
        first = err.errors()[0]
        flag = "--agent-" + str(first.get("loc", ("limit",))[0]).replace("_", "-")
        raise CliError(f"invalid {flag}: {first.get('msg')}") from None


def _static_details(request: FeatureRequest, workflow_id: str) -> str:
    lines = [
        f"## {workflow_id}",
        "",
        f"**Feature:** {request.feature}",
        "",
        f"- **Repository:** `{request.repo_path}`",
        f"- **Model:** `{request.model}`",
    ]
    for phase, model_id in request.phase_models.items():
        lines.append(f"  - {phase}: `{model_id}`")
    lines.append(f"- **Gates:** {', '.join(request.gates) if request.gates else 'none'}")
    lines.append(f"- **Max fix rounds:** {request.max_fix_rounds}")
    if request.budget_usd is not None:
        lines.append(f"- **Budget:** ${request.budget_usd:.2f}")
    lines.append("")
    lines.append(
        "Answer questions with `python starter.py answer|approve|reject`; see `status` for ids."
    )
    return "\n".join(lines)


async def start_feature(
    client: Client, settings: Settings, request: FeatureRequest, *, workflow_id: str | None = None
) -> WorkflowHandle[Any, FeatureResult]:
    """Start ``BackendFeatureWorkflow`` with summary, details and search attributes."""
    workflow_id = workflow_id or derive_workflow_id(request.feature, request.repo_path)
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(SA_FEATURE, _truncate_bytes(request.feature, SA_FEATURE_MAX_BYTES)),
            SearchAttributePair(SA_PHASE, "starting"),
            SearchAttributePair(SA_AWAITING_HUMAN, False),
        ]
    )
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            request,
            id=workflow_id,
            task_queue=settings.task_queue,
            result_type=FeatureResult,
            static_summary=_one_line(request.feature, SUMMARY_MAX_CHARS),
            static_details=_static_details(request, workflow_id),
            search_attributes=attributes,
        )
    except RPCError as err:
        raise _rpc_error(err, settings) from None


# ------------------------------------------------------------------ the commands


START_HELP = (
    "Start a feature workflow and print its id. Every argument is checked before the "
    "server is contacted.\n\n"
    'Example: [cyan]python starter.py start "Build a bookmarks API with tags" '
    "--repo ../bookmarks --gates spec,delivery --wait[/cyan]"
)


@app.command(help=START_HELP)
def start(
    ctx: typer.Context,
    feature: Annotated[
        str, typer.Argument(metavar="FEATURE", help="The feature request, in a sentence or a few.")
    ],
    repo: Annotated[str, typer.Option(help="Path of the git repository to build in.")],
    model: Annotated[
        str, typer.Option(help="Model id: anthropic:<model>, openai:<model> or scripted:<file>.")
    ] = DEFAULT_MODEL,
    gates: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated approval gates: {', '.join(GATES)} (or 'none')."),
    ] = None,
    phase_model: Annotated[
        list[str] | None,
        typer.Option(help="Per-phase model, PHASE=MODEL_ID; repeat for several phases."),
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(help="Ask a person before spending more than this (USD).")
    ] = None,
    max_fix_rounds: Annotated[int, typer.Option(help="Test/analyze fix rounds (0-10).")] = 2,
    clarification_timeout: Annotated[
        int | None,
        typer.Option(
            help="Seconds after which unanswered clarifications take the recommended answers."
        ),
    ] = None,
    remind_every: Annotated[
        int | None, typer.Option(help="Seconds between reminders on open requests.")
    ] = None,
    agent_max_turns: Annotated[
        int, typer.Option(help="Turns one agent conversation (a phase or a task) may take.")
    ] = AgentBudget().max_turns,
    agent_max_tokens: Annotated[
        int, typer.Option(help="Tokens (in + out) one agent conversation may spend.")
    ] = AgentBudget().max_tokens,
    agent_max_seconds: Annotated[
        int, typer.Option(help="Wall-clock seconds one agent conversation may run.")
    ] = AgentBudget().max_seconds,
    parallel_tasks: Annotated[
        bool, typer.Option(help="Run disjoint [P] tasks side by side.")
    ] = True,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow progress until the feature is done.")
    ] = False,
) -> None:
    """Start a feature workflow; prints its id."""
    settings = _settings(ctx)

    async def body() -> int:
        request = build_request(
            feature=feature,
            repo=repo,
            model=model,
            gates=gates,
            phase_model=phase_model or [],
            budget_usd=budget_usd,
            max_fix_rounds=max_fix_rounds,
            clarification_timeout=clarification_timeout,
            remind_every=remind_every,
            agent_limits=_agent_limits(agent_max_turns, agent_max_tokens, agent_max_seconds),
            parallel_tasks=parallel_tasks,
        )
        client = await _connect(settings)
        handle = await start_feature(client, settings, request)
        prefix = settings.command_prefix()
        console.print(Text.assemble(("Started ", "green"), (handle.id, "bold")))
        console.print(
            Text(
                f"  repo   {request.repo_path}\n  model  {request.model}"
                f"\n  gates  {', '.join(request.gates) or 'none'}",
                style="dim",
            )
        )
        if await _has_worker(client, settings.task_queue) is False:
            console.print(
                Text(
                    f"note: no worker is polling task queue {settings.task_queue!r} yet; "
                    "start one with 'python worker.py'",
                    style="yellow",
                )
            )
        if not wait:
            console.print(f"Follow it:  {prefix} watch {handle.id}")
            console.print(f"Status:     {prefix} status {handle.id}")
            return 0
        result, _last = await follow(client, handle, settings, answer=False)
        print_result(result, settings, repo=request.repo_path)
        return 0 if result.state == "completed" else 1

    _run(body)


@app.command()
def status(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="Feature workflow id.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the FeatureStatus as JSON.")
    ] = False,
) -> None:
    """Show phase, commits, tasks, open requests (with how to answer), usage and tests."""
    settings = _settings(ctx)

    async def body() -> int:
        client = await _connect(settings)
        handle, description = await _feature_handle(client, settings, workflow_id)
        try:
            current = await _query_status(handle)
        except RPCError as err:
            raise _rpc_error(err, settings, workflow_id) from None
        if current is None and description.status == WorkflowExecutionStatus.COMPLETED:
            # Closed and no worker to replay it for the query: its result says enough.
            current = _status_from_result(await handle.result(), description)
            if not as_json:
                console.print(
                    Text(
                        "(no worker answered the status query; built from the result)", style="dim"
                    )
                )
        if current is None:
            polling = await _has_worker(client, description.task_queue)
            why = (
                f"no worker is polling task queue {description.task_queue!r}. Start one with "
                "'python worker.py'"
                if polling is False
                else "the workflow did not answer the status query in time. Try again shortly"
            )
            raise CliError(
                f"cannot read the status of {workflow_id} "
                f"(execution {_execution_state(description)}): {why}",
                code=1,
            )
        if as_json:
            print(current.model_dump_json(indent=2))
            return 0
        print_status(console, current, settings)
        return 0

    _run(body)


def _status_from_result(
    result: FeatureResult, description: WorkflowExecutionDescription
) -> FeatureStatus:
    return FeatureStatus(
        workflow_id=result.workflow_id,
        feature=description.typed_search_attributes.get(SA_FEATURE) or "",
        state=result.state,
        phase="done" if result.state == "completed" else "aborted",
        branch=result.branch,
        head_commit=result.head_commit,
        completed=result.commits,
        usage=result.usage,
        usage_by_phase=result.usage_by_phase,
        test_report=result.test_report,
        message=result.message,
    )


def _execution_state(description: WorkflowExecutionDescription) -> str:
    return description.status.name.lower() if description.status else "unknown"


def _respond_command(
    ctx: typer.Context, workflow_id: str, build: Callable[[FeatureStatus | None], HumanResponse]
) -> None:
    settings = _settings(ctx)

    async def body() -> int:
        client = await _connect(settings)
        handle, description = await _feature_handle(client, settings, workflow_id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            state = description.status.name.lower() if description.status else "closed"
            raise CliError(
                f"feature workflow {workflow_id!r} is {state}; it takes no more answers. "
                f"See '{settings.command_prefix()} status {workflow_id}'",
                code=1,
            )
        if await _has_worker(client, description.task_queue) is False:
            raise CliError(
                f"no worker is polling task queue {description.task_queue!r}, so the workflow "
                "cannot take the answer now. Start one with 'python worker.py' and run this again",
                code=1,
            )
        try:
            current = await _query_status(handle)
        except RPCError:
            current = None
        response = build(current)
        result = await send_response(handle, response)
        console.print(
            Text.assemble(("✓ ", "green"), result.message or f"{response.request_id} accepted")
        )
        return 0

    _run(body)


def _find_request(status: FeatureStatus | None, request_id: str) -> HumanRequest | None:
    if status is None:
        return None
    return next((r for r in status.open_requests if r.id == request_id), None)


ANSWER_HELP = (
    "Answer a clarification, escalation or budget request.\n\n"
    'Example: [cyan]python starter.py answer ID clarify-1 Q1=B Q2="private by default"[/cyan]'
)


def _check_kind(
    request: HumanRequest | None, *, approval: bool, workflow_id: str, settings: Settings
) -> None:
    """Point at the right command when an approval is answered or a question approved."""
    if request is None or (request.kind == "approval") == approval:
        return
    hint = how_to_answer(request, workflow_id, settings).splitlines()[0]
    raise CliError(
        f"{request.id} is {'an' if request.kind[0] in 'aeiou' else 'a'} {request.kind} "
        f"request. Answer it with: {hint}"
    )


def _approval_response(
    ctx: typer.Context,
    current: FeatureStatus | None,
    workflow_id: str,
    request_id: str,
    *,
    approved: bool,
    comment: str | None,
) -> HumanResponse:
    request = _find_request(current, request_id)
    _check_kind(request, approval=True, workflow_id=workflow_id, settings=_settings(ctx))
    return HumanResponse(
        request_id=request_id, approved=approved, comment=comment, responder=_responder()
    )


@app.command(help=ANSWER_HELP)
def answer(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="Feature workflow id.")],
    request_id: Annotated[
        str, typer.Argument(metavar="REQUEST_ID", help="Request id, as shown by status.")
    ],
    answers: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="QID=ANSWER...", help='Answers: an option key or free text, e.g. Q1=B Q2="..."'
        ),
    ] = None,
    comment: Annotated[str | None, typer.Option(help="Comment or guidance (escalations).")] = None,
) -> None:
    """Answer a clarification, escalation or budget request."""
    try:
        parsed = parse_answers(answers or [])
        if not parsed and not (comment and comment.strip()):
            raise CliError(
                "no answers given. Pass QUESTION_ID=ANSWER for each question, e.g. Q1=B; "
                "'status ID' lists the questions"
            )
    except CliError as err:
        _print_error(err.message)
        raise typer.Exit(err.code) from None

    def build(current: FeatureStatus | None) -> HumanResponse:
        request = _find_request(current, request_id)
        _check_kind(request, approval=False, workflow_id=workflow_id, settings=_settings(ctx))
        normalized = dict(parsed)
        if request is not None:  # accept "b" for option "B"
            for question in request.questions:
                if question.id in normalized:
                    key = _match_option(question, normalized[question.id])
                    if key is not None:
                        normalized[question.id] = key
        return HumanResponse(
            request_id=request_id, answers=normalized, comment=comment, responder=_responder()
        )

    _respond_command(ctx, workflow_id, build)


@app.command()
def approve(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="Feature workflow id.")],
    request_id: Annotated[
        str, typer.Argument(metavar="REQUEST_ID", help="Approval request id, as shown by status.")
    ],
    comment: Annotated[str | None, typer.Option(help="Optional comment.")] = None,
) -> None:
    """Approve a gate (spec, plan or delivery)."""
    _respond_command(
        ctx,
        workflow_id,
        lambda current: _approval_response(
            ctx, current, workflow_id, request_id, approved=True, comment=comment
        ),
    )


@app.command()
def reject(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="Feature workflow id.")],
    request_id: Annotated[
        str, typer.Argument(metavar="REQUEST_ID", help="Approval request id, as shown by status.")
    ],
    comment: Annotated[
        str | None, typer.Option(help="What to change (required); the phase is redone with it.")
    ] = None,
) -> None:
    """Reject a gate with a comment; the phase is redone with the comment as guidance."""
    if not comment or not comment.strip():
        _print_error(
            'reject needs --comment. Say what should change, e.g. --comment "add pagination"'
        )
        raise typer.Exit(2)
    _respond_command(
        ctx,
        workflow_id,
        lambda current: _approval_response(
            ctx, current, workflow_id, request_id, approved=False, comment=comment
        ),
    )


@dataclass
class _ListRow:
    id: str
    state: str
    phase: str
    awaiting: bool
    feature: str
    started: str


_STATE_STYLE = {"running": "cyan", "completed": "green"}


def _print_list(out: Console, rows: list[_ListRow]) -> None:
    """A table on wide terminals; two lines per feature on narrow ones (ids stay whole)."""
    id_width = max(len(row.id) for row in rows)
    if out.width >= id_width + 70:
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("id", no_wrap=True, min_width=id_width)
        table.add_column("status", no_wrap=True)
        table.add_column("phase", no_wrap=True)
        table.add_column("awaiting", no_wrap=True)
        table.add_column("feature", overflow="ellipsis", no_wrap=True, ratio=1)
        table.add_column("started", no_wrap=True)
        for row in rows:
            table.add_row(
                row.id,
                Text(row.state, style=_STATE_STYLE.get(row.state, "red")),
                row.phase,
                Text("yes", style="bold yellow") if row.awaiting else "",
                Text(_one_line(row.feature, 200)),
                row.started,
            )
        out.print(table)
        return
    for row in rows:
        out.print(Text(row.id, style="bold"), soft_wrap=True)
        details = Text("  ")
        details.append(row.state, style=_STATE_STYLE.get(row.state, "red"))
        if row.phase:
            details.append(f" · {row.phase}")
        if row.awaiting:
            details.append(" · waiting for a person", style="bold yellow")
        if row.started:
            details.append(f" · started {row.started}", style="dim")
        out.print(details)
        if row.feature:
            out.print(Text("  " + _one_line(row.feature, max(20, out.width - 2)), style="dim"))


@app.command("list")
def list_features(
    ctx: typer.Context,
    awaiting: Annotated[
        bool, typer.Option("--awaiting", help="Only features waiting for a person.")
    ] = False,
    running: Annotated[bool, typer.Option("--running", help="Only running features.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
) -> None:
    """List feature workflows (newest first)."""
    settings = _settings(ctx)

    async def body() -> int:
        clauses = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
        if awaiting:
            clauses.append(f"{SA_AWAITING_HUMAN.name} = true")
            clauses.append("ExecutionStatus = 'Running'")
        elif running:
            clauses.append("ExecutionStatus = 'Running'")
        query = " AND ".join(clauses)
        client = await _connect(settings)
        rows: list[_ListRow] = []
        try:
            async for execution in client.list_workflows(query, limit=limit):
                attrs = execution.typed_search_attributes
                rows.append(
                    _ListRow(
                        id=execution.id,
                        state=execution.status.name.lower() if execution.status else "?",
                        phase=attrs.get(SA_PHASE) or "",
                        awaiting=bool(attrs.get(SA_AWAITING_HUMAN)),
                        feature=attrs.get(SA_FEATURE) or "",
                        started=(
                            f"{execution.start_time:%Y-%m-%d %H:%M}" if execution.start_time else ""
                        ),
                    )
                )
        except RPCError as err:
            raise _rpc_error(err, settings) from None
        if not rows:
            what = "waiting for a person" if awaiting else ("running" if running else "")
            console.print(
                Text(
                    f"No {what + ' ' if what else ''}feature workflows in namespace "
                    f"{settings.namespace}.",
                    style="dim",
                )
            )
            return 0
        _print_list(console, rows)
        return 0

    _run(body)


@app.command()
def watch(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(metavar="ID", help="Feature workflow id.")],
) -> None:
    """Follow a feature live until it finishes (answer from another terminal)."""
    settings = _settings(ctx)

    async def body() -> int:
        client = await _connect(settings)
        handle, description = await _feature_handle(client, settings, workflow_id)
        result, last = await follow(
            client, handle, settings, answer=False, task_queue=description.task_queue
        )
        print_result(result, settings, repo=last.repo_path if last else None)
        return 0 if result.state == "completed" else 1

    _run(body)


# -------------------------------------------------------------------------- demo


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port in TIME_WAIT from a server that just exited is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Backforge Demo",
            "-c",
            "user.email=demo@backforge.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


DEMO_README = """# Bookmarks

An example repository created by `python starter.py demo`.

Backforge builds the bookmarks API on a feature branch of this repository:
specification, plan, tasks, code, tests and a delivery report, one commit per phase.
"""


def create_demo_repo(path: Path) -> str:
    """A fresh git repo at ``path`` with README.md committed on ``main``; returns the branch."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        try:
            _git(path, "init", "-q", "-b", "main")
        except subprocess.CalledProcessError:  # git < 2.28 has no -b
            _git(path, "init", "-q")
            _git(path, "symbolic-ref", "HEAD", "refs/heads/main")
        (path / "README.md").write_text(DEMO_README, encoding="utf-8")
        _git(path, "add", "README.md")
        _git(path, "commit", "-q", "-m", "Initial commit: README")
    except FileNotFoundError:
        raise CliError("git is not installed. Install git and run the demo again", code=1) from None
    except subprocess.CalledProcessError as err:
        raise CliError(
            f"could not create the demo repository at {path}: "
            f"{_one_line(err.stderr or str(err), 200)}. "
            "Pass --repo with a writable directory",
            code=1,
        ) from None
    return "main"


def _demo_repo(repo: str | None, data_dir: Path) -> tuple[str, str]:
    """(absolute repo path, base branch) for the demo, creating the repo when needed."""
    if repo is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = (data_dir / "demo-repos" / f"bookmarks-{stamp}").resolve()
        suffix = 1
        while path.exists():
            suffix += 1
            path = (data_dir / "demo-repos" / f"bookmarks-{stamp}-{suffix}").resolve()
        return str(path), create_demo_repo(path)
    path = Path(repo).expanduser().resolve()
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return str(path), create_demo_repo(path)
    repo_path = validate_repo(str(path))
    try:
        branch = _git(path, "rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError):
        branch = "main"
    return repo_path, branch


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


def _log_to_file(path: Path) -> Path:
    """Send worker/SDK logs to ``path`` so they do not tear through the live display."""
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def _auto_answers(yes: bool) -> bool:
    return yes or (not sys.stdin.isatty() and os.environ.get("CI", "").lower() == "true")


SCRIPTED_BANNER = (
    "This demo plays a hand-written transcript that stands in for a model: the specs, plans "
    "and code it produces were written by hand, not produced by a model. The pipeline, "
    "Temporal, git and the test runs around them are real. Use --model anthropic:<model> or "
    "openai:<model> for a real model."
)
DEMO_HELP = (
    "Run everything in one process: embedded Temporal server, worker, example repo.\n\n"
    "Offline with the default scripted model (a hand-written transcript standing in for a "
    "model). The demo brings its own server on 7233/8233 (free ports when those are taken) "
    "and ignores --address. Questions are asked at the terminal; Enter takes the recommended "
    "answer, --yes takes all of them."
)


@app.command(help=DEMO_HELP)
def demo(
    ctx: typer.Context,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Take recommended answers and approve automatically."),
    ] = False,
    repo: Annotated[
        str | None, typer.Option(help="Repository to build in (default: a fresh example repo).")
    ] = None,
    gates: Annotated[str, typer.Option(help="Approval gates to stop at.")] = DEMO_GATES,
    model: Annotated[
        str, typer.Option(help="Model id (default: the bundled scripted model).")
    ] = DEFAULT_MODEL,
    data_dir: Annotated[
        Path, typer.Option(help="Where the embedded server's database and demo repos live.")
    ] = Path(".backforge"),
    feature: Annotated[str, typer.Option(help="The feature request.")] = DEMO_FEATURE,
) -> None:
    """Run everything in one process: embedded Temporal server, worker, example repo."""
    settings = _settings(ctx)

    async def body() -> int:
        request_feature = validate_feature(feature)
        model_id = validate_model(model)
        gate_list = parse_gates(gates)
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
        data = data_dir.expanduser().resolve()
        repo_path, base_branch = _demo_repo(repo, data)
        request = build_request(
            feature=request_feature,
            repo=repo_path,
            model=model_id,
            gates=",".join(gate_list) or "none",
            phase_model=[],
            budget_usd=None,
            max_fix_rounds=2,
        )

        from runtime import start_dev_server, ui_url
        from worker import build_worker

        port = 7233 if _port_free(7233) else _free_port()
        ui_port = 8233 if _port_free(8233) else _free_port()
        if (port, ui_port) != (7233, 8233):
            console.print(
                Text(
                    "Port 7233 or 8233 is already in use (another Temporal server?); "
                    f"using port {port} and UI port {ui_port} instead.",
                    style="yellow",
                )
            )
        log_path = _log_to_file(data / "demo.log")
        _cancel_on_termination()
        try:
            env: WorkflowEnvironment = await start_dev_server(
                data_dir=data, port=port, ui_port=ui_port
            )
        except FileNotFoundError as err:
            raise CliError(str(err), code=1) from None
        except Exception as err:
            raise CliError(
                f"the embedded Temporal server did not start: {_one_line(str(err), 200)}. "
                "Check --data-dir is writable, or run 'python worker.py --dev' to see its log",
                code=1,
            ) from None
        demo_settings = Settings(
            address=f"localhost:{port}", namespace=DEFAULT_NAMESPACE, task_queue=settings.task_queue
        )
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
            async with build_worker(client, task_queue=settings.task_queue, drain_seconds=5):
                handle = await start_feature(
                    client, demo_settings, request, workflow_id=workflow_id
                )
                console.print(Text.assemble(("Workflow    ", "bold"), handle.id))
                console.print(
                    Text.assemble(("Follow      ", "bold"), (link, "cyan")), soft_wrap=True
                )
                console.print(
                    Text(
                        "In another terminal, while this runs: "
                        f"python starter.py --address localhost:{port} status {handle.id}",
                        style="dim",
                    ),
                    soft_wrap=True,
                )
                try:
                    result, _last = await follow(
                        client, handle, demo_settings, answer=True, auto=_auto_answers(yes)
                    )
                except asyncio.CancelledError:  # Ctrl-C: say how to pick it up again
                    console.print(
                        Text(
                            f"\nStopped. The feature's state is kept in {data}; resume with "
                            f"'python worker.py --dev --data-dir {data}' and, in another "
                            f"terminal, 'python starter.py watch {handle.id}'.",
                            style="yellow",
                        ),
                        soft_wrap=True,
                    )
                    raise
            print_result(
                result, demo_settings, repo=request.repo_path, base_branch=base_branch, ui=link
            )
            return 0 if result.state == "completed" else 1
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(env.shutdown(), timeout=15)

    _run(body)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
