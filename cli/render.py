"""What the CLI prints: requests, how to answer them, status, results and lists.

Pure rendering onto a rich ``Console``; nothing here talks to a server or runs
git. Command lines are printed with ``print_command`` (never wrapped, so a
hint stays one copyable line even when output is piped). Markdown request
bodies load rich's Markdown (and markdown-it) only when there is one to show.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cli.errors import one_line
from cli.listing import ListRow
from cli.settings import Settings
from contract import FeatureResult, FeatureStatus, HumanQuestion, HumanRequest, PhaseRecord

__all__ = [
    "console",
    "short",
    "stage_label",
    "print_command",
    "render_request",
    "print_request",
    "print_status",
    "print_result",
    "print_list",
]

#: The CLI's standard output (rich picks up ``sys.stdout`` at print time).
console = Console(highlight=False)

_STATE_STYLE = {"running": "cyan", "waiting": "yellow", "completed": "green"}


def short(sha: str | None) -> str:
    """The 7-character form of a commit SHA (empty for None)."""
    return (sha or "")[:7]


def stage_label(status: FeatureStatus) -> str:
    """Where the feature is, for people: ``implement T003``, or just the phase."""
    return f"{status.phase} {status.task_id}" if status.task_id else status.phase


def print_command(out: Console, line: str, *, label: str = "", style: str = "cyan") -> None:
    """Print a command line (after an optional label) as one line, never wrapped."""
    text = Text(label) if label else Text("")
    text.append(line, style=style)
    out.print(text, soft_wrap=True)


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
        from rich.markdown import Markdown  # lazy: markdown-it is slow to import

        parts.append(Markdown(request.body))
    for question in request.questions:
        parts.append(Text(""))
        parts.append(Text.assemble((f"{question.id}. ", "bold"), question.text))
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


def print_request(
    out: Console,
    request: HumanRequest,
    *,
    workflow_id: str | None = None,
    settings: Settings | None = None,
) -> None:
    """The request's panel, then (given the workflow) the command lines that answer it."""
    out.print(render_request(request))
    if workflow_id is None or settings is None:
        return
    from workflows.human import how_to_answer  # lazy: imports the workflow SDK

    how = how_to_answer(request, workflow_id, cli=settings.command_prefix())
    out.print(Text("To answer:", style="bold"))
    print_command(out, how.command, label="  ")
    if how.reject_command:
        print_command(out, how.reject_command, label="  ")


def _status_head(status: FeatureStatus) -> Table:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    head.add_row("Feature", Text(status.feature))
    head.add_row("Workflow", Text(status.workflow_id))
    state_style = _STATE_STYLE.get(status.state, "red")
    head.add_row(
        "State", Text.assemble((status.state, state_style), f"  phase {stage_label(status)}")
    )
    if status.repo_path:
        head.add_row("Repository", Text(status.repo_path))
    if status.branch:
        head.add_row("Branch", Text(f"{status.branch}  head {short(status.head_commit)}"))
    if status.feature_dir:
        head.add_row("Spec dir", Text(status.feature_dir))
    if status.tasks:
        done = sum(1 for task in status.tasks if task.done)
        head.add_row("Tasks", Text(f"{done}/{len(status.tasks)} done"))
    if status.fix_rounds:
        head.add_row("Fix rounds", Text(str(status.fix_rounds)))
    if status.message:
        head.add_row("Message", Text(status.message))
    if status.last_ignored_answer:
        head.add_row(
            "Not applied", Text(f"last answer sent by signal: {status.last_ignored_answer}", "red")
        )
    return head


def _completed_table(status: FeatureStatus) -> Table:
    phases = Table(title="Completed phases", title_justify="left", show_edge=False, pad_edge=False)
    phases.add_column("phase")
    phases.add_column("task")
    phases.add_column("commit", style="cyan")
    phases.add_column("summary", overflow="fold")
    for record in status.completed:
        phases.add_row(
            record.phase,
            record.task_id or "",
            short(record.commit),
            Text(one_line(record.summary, 160)),
        )
    return phases


def _usage_table(status: FeatureStatus) -> Table:
    phase_models = {status.models.get(phase, "") for phase in status.usage_by_phase}
    one_model = len(phase_models) <= 1
    model = next(iter(phase_models), "") if one_model else ""
    title = f"Usage ({model})" if model else "Usage"
    usage = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    columns = ["phase"] + ([] if one_model else ["model"])
    columns += ["calls", "replayed", "tokens in", "tokens out", "cost $"]
    for column in columns:
        usage.add_column(column, justify="left" if column in ("phase", "model") else "right")
    for phase, item in status.usage_by_phase.items():
        usage.add_row(
            phase,
            *([] if one_model else [status.models.get(phase, "")]),
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
    return usage


def print_status(out: Console, status: FeatureStatus, settings: Settings) -> None:
    """Everything ``status`` shows: state, commits, open requests (and how to answer
    them), usage per phase and the last test run."""
    out.print(_status_head(status))
    if status.completed:
        out.print(Text(""))
        out.print(_completed_table(status))
    if status.open_requests:
        out.print(Text(""))
        out.print(Text(f"Open requests ({len(status.open_requests)})", style="bold yellow"))
        for request in status.open_requests:
            print_request(out, request, workflow_id=status.workflow_id, settings=settings)
    if status.usage_by_phase or status.usage.model_calls:
        out.print(Text(""))
        out.print(_usage_table(status))
        if status.budget_usd is not None:
            out.print(Text(f"budget ${status.budget_usd:.2f}", style="dim"))
    report = status.test_report
    if report is not None:
        out.print(Text(""))
        out.print(
            Text.assemble(
                ("Last test run: ", "bold"),
                (report.counts, "green" if report.ok else "red"),
                f"  exit {report.exit_code}  {report.duration_s:.1f}s"
                + ("  TIMED OUT" if report.timed_out else ""),
            )
        )
        if report.output_path:
            out.print(Text(f"output: {report.output_path}", style="dim"))
        if report.tail.strip() and not report.ok:
            out.print(
                Panel(Text(report.tail.rstrip()), title="test output (tail)", border_style="dim")
            )


def _commit_line(record: PhaseRecord) -> str:
    """``abc1234 implement T002: summary`` (no colon when the summary is unknown)."""
    task = f" {record.task_id}" if record.task_id else ""
    summary = f": {one_line(record.summary, 110)}" if record.summary.strip() else ""
    return f"  {short(record.commit)} {record.phase}{task}{summary}"


def print_result(
    out: Console,
    result: FeatureResult,
    *,
    repo: str | None = None,
    commits: list[str] | None = None,
    commits_title: str = "Commits",
    records: list[PhaseRecord] | None = None,
    ui: str | None = None,
) -> None:
    """The closing summary: branch, tests, validation, report, pull request, usage, UI, commits.

    Args:
        out: Where to print.
        result: The workflow's result.
        repo: The repository, to show the report's full path.
        commits: ``git log --oneline`` lines of the branch, when the caller read them.
        commits_title: The heading for ``commits``.
        records: The phase records of the last status (they carry summaries; the
            result's own records do not), listed when ``commits`` is not given.
        ui: A link to the workflow in the Temporal UI.
    """
    ok = result.state == "completed"
    out.print()
    out.print(
        Text.assemble(
            ("✓ completed" if ok else "✗ " + result.state, "bold green" if ok else "bold red"),
            f"  {result.workflow_id}",
        )
    )
    if result.message:
        out.print(Text(result.message))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True, min_width=11)
    grid.add_column(overflow="fold")
    grid.add_row("Branch", Text(f"{result.branch}  head {short(result.head_commit)}"))
    if repo:
        grid.add_row("Repository", Text(repo))
    report = result.test_report
    if report is not None:
        grid.add_row(
            "Tests",
            Text(
                report.counts + (f"  ({report.output_path})" if report.output_path else ""),
                style="green" if report.ok else "red",
            ),
        )
    found = result.validation
    if found is not None:
        verdict = (
            "passed"
            if found.passed
            else f"{found.blocking} blocking of {found.findings} finding(s)"
        )
        where = f"  ({found.report_path})" if found.report_path else ""
        grid.add_row("Validation", Text(verdict + where, style="green" if found.passed else "red"))
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
    out.print(grid)
    if result.pull_request:
        print_command(out, result.pull_request, label="Pull request ", style="")
    if ui:
        print_command(out, ui, label="Temporal UI  ")
    if commits:
        out.print(Text(f"{commits_title}:", style="bold"))
        for line in commits:
            out.print(Text("  " + line), soft_wrap=True)
        return
    listed = records if records else result.commits
    if listed:
        out.print(Text("Commits:", style="bold"))
        for record in listed:
            out.print(Text(_commit_line(record)), soft_wrap=True)


def print_list(out: Console, rows: list[ListRow]) -> None:
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
                Text(one_line(row.feature, 200)),
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
        if row.awaiting and row.state != "waiting":
            details.append(" · waiting for a person", style="bold yellow")
        if row.started:
            details.append(f" · started {row.started}", style="dim")
        out.print(details)
        if row.feature:
            out.print(Text("  " + one_line(row.feature, max(20, out.width - 2)), style="dim"))
