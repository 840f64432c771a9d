"""The ``report`` command: the team's success figures over a namespace's features.

Features are found through visibility and read from their histories
(``telemetry.collect``): lead time per feature and per phase, first-pass rates, human
interventions and waits, cost per feature and per task. Printed as tables, as JSON
(``--json``), and written as a self-contained HTML page with an SVG chart (``--html``).
Registered by one line at the end of ``cli/commands.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.app import command
from cli.connect import Session, rpc_error
from cli.errors import EXIT_FAILED, CliError
from cli.render import console
from cli.settings import program

if TYPE_CHECKING:
    from telemetry.figures import TeamFigures

__all__ = ["REPORT_HELP", "print_report", "report"]

#: Columns a feature row needs besides its id (feature text, state, times, figures).
_ROW_WIDTH = 130

REPORT_HELP = (
    "The team's figures over a namespace's features: lead time per feature and phase, "
    "tests green first time, specs without rework, human interventions and waits, cost "
    "per feature and per task. Read from workflow histories; no worker needed.\n\n"
    "\b\nExample:\n"
    f"  {program()} report --since 30 --html report.html"
)


def _yes(value: bool | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text("yes", style="green") if value else Text("no", style="yellow")


def _feature_table(team: TeamFigures) -> Table:
    from telemetry.formatting import duration, money

    table = Table(show_edge=False, pad_edge=False)
    table.add_column("feature", overflow="ellipsis", no_wrap=True, min_width=20, max_width=36)
    table.add_column("id", no_wrap=True)
    for name in ("state", "lead time", "waiting", "asks", "tests 1st", "spec 1st"):
        table.add_column(name, no_wrap=True, min_width=len(name))
    for name in ("fixes", "cost", "tasks"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    for f in team.features:
        table.add_row(
            Text(f.feature or "-"),
            f.workflow_id,
            f.state + (" (waiting)" if f.waiting_now else ""),
            duration(f.lead_time_s),
            duration(f.human_wait_s),
            str(len(f.interventions)),
            _yes(f.tests_first_pass),
            _yes(f.spec_first_pass),
            str(sum(f.fix_rounds.values())),
            money(f.cost_usd),
            str(len(f.task_costs)),
        )
    return table


def print_report(out: Console, team: TeamFigures) -> None:
    """The report as rich tables: features, phases, then the figures that sum them up."""
    from telemetry.chart import summary_lines
    from telemetry.formatting import days, duration, money

    period = f"last {days(team.since_days)}" if team.since_days else "all time"
    out.print(Text(f"Features in namespace {team.namespace}, {period}", style="bold"))
    if not team.features:
        out.print(Text("No feature workflows in this period.", style="dim"))
        return
    if out.width >= max(len(f.workflow_id) for f in team.features) + _ROW_WIDTH:
        out.print(_feature_table(team))
    else:  # two lines per feature, so the feature's text is never squeezed out
        for f in team.features:
            out.print(Text(f.feature or f.workflow_id, style="bold"), soft_wrap=True)
            line = Text(f"  {f.workflow_id} · {f.state}" + (" (waiting)" if f.waiting_now else ""))
            line.append(f" · lead {duration(f.lead_time_s)} · waiting {duration(f.human_wait_s)}")
            line.append(f" · {len(f.interventions)} asks · tests 1st ")
            line.append_text(_yes(f.tests_first_pass))
            line.append(" · spec 1st ")
            line.append_text(_yes(f.spec_first_pass))
            line.append(f" · {sum(f.fix_rounds.values())} fixes · {money(f.cost_usd)}")
            out.print(line)
    phases = Table(show_edge=False, pad_edge=False, title="Median time per phase")
    phases.add_column("phase")
    phases.add_column("median", justify="right")
    for name, seconds in team.phase_median_s.items():
        phases.add_row(name, duration(seconds))
    out.print(phases)
    for label, value in summary_lines(team):
        out.print(Text.assemble((f"{label}: ", "dim"), (value, "bold")))


@command(help=REPORT_HELP)
async def report(
    session: Session,
    *,
    namespace: Annotated[
        str | None,
        typer.Option(help="Namespace to report on (default: the global --namespace)."),
    ] = None,
    since: Annotated[
        float | None,
        typer.Option(help="Only features started in the last DAYS days.", metavar="DAYS"),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Also write a self-contained HTML page with a chart to PATH."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON instead of tables.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many features, newest first.")] = 500,
) -> int:
    """Lead times, first-pass rates, human interventions and cost over a namespace."""
    if since is not None and since <= 0:
        raise CliError(f"--since takes a positive number of days, got {since:g}")
    if limit <= 0:
        raise CliError(f"--limit must be positive, got {limit}")
    if html is not None and not html.parent.is_dir():
        raise CliError(f"cannot write {html}: {html.parent} is not a directory")
    from temporalio.service import RPCError

    from telemetry.chart import render_html
    from telemetry.collect import collect_figures

    if namespace:
        session = Session(dataclasses.replace(session.settings, namespace=namespace))
    client = await session.client()
    try:
        team = await collect_figures(client, since_days=since, limit=limit)
    except RPCError as err:
        raise rpc_error(err, session.settings) from None
    if as_json:
        print(team.model_dump_json(indent=2))
    else:
        print_report(console, team)
    if html is not None:
        try:
            html.write_text(render_html(team), encoding="utf-8")
        except OSError as err:
            raise CliError(f"cannot write {html}: {err}", code=EXIT_FAILED) from None
        if not as_json:
            console.print(Text(f"Chart written to {html}", style="dim"))
    return 0
