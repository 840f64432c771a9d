"""The report as a page a person can open: one self-contained HTML file with inline SVG.

No script, stylesheet, font or image is fetched from anywhere: the page works offline
and from an attachment. Every text from a workflow is escaped.
"""

from __future__ import annotations

from html import escape

from telemetry.figures import FeatureFigures, TeamFigures
from telemetry.formatting import days, duration, money, percent

__all__ = ["PHASE_COLOURS", "WAIT_COLOUR", "render_html", "summary_lines"]

#: One colour per phase and step, in pipeline order (Okabe-Ito based, colour-blind safe).
PHASE_COLOURS = {
    "prepare": "#999999",
    "constitution": "#56B4E9",
    "specify": "#0072B2",
    "plan": "#009E73",
    "tasks": "#F0E442",
    "implement": "#E69F00",
    "merge": "#CC79A7",
    "test": "#D55E00",
    "fix": "#882255",
    "analyze": "#44AA99",
    "deliver": "#332288",
    "reset": "#BBBBBB",
}
WAIT_COLOUR = "#DDDDDD"
_OTHER = "#666666"
_BAR_H, _GAP, _LABEL_W, _PLOT_W, _RIGHT_W = 22, 10, 250, 640, 110


def _label(feature: FeatureFigures) -> str:
    text = feature.feature or feature.workflow_id
    return text if len(text) <= 32 else text[:31] + "…"


def _lead_time_svg(features: list[FeatureFigures]) -> str:
    """Stacked bars: each phase's time and the human wait, per feature, on one scale."""
    longest = max([f.human_wait_s + sum(p.seconds for p in f.phases) for f in features] + [1.0])
    scale = _PLOT_W / longest
    height = len(features) * (_BAR_H + _GAP) + 40
    width = _LABEL_W + _PLOT_W + _RIGHT_W
    parts = [
        f'<svg role="img" aria-label="Lead time per feature by phase" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for row, feature in enumerate(features):
        y = 10 + row * (_BAR_H + _GAP)
        parts.append(
            f'<text x="{_LABEL_W - 8}" y="{y + _BAR_H * 0.7:.1f}" text-anchor="end" '
            f'class="label"><title>{escape(feature.workflow_id)}</title>'
            f"{escape(_label(feature))}</text>"
        )
        x = float(_LABEL_W)
        order = sorted(feature.phases, key=lambda p: list(PHASE_COLOURS).index(p.phase)
                       if p.phase in PHASE_COLOURS else len(PHASE_COLOURS))  # fmt: skip
        segments = [(p.phase, p.seconds, PHASE_COLOURS.get(p.phase, _OTHER)) for p in order]
        segments.append(("waiting for people", feature.human_wait_s, WAIT_COLOUR))
        for name, seconds, colour in segments:
            w = seconds * scale
            if w <= 0:
                continue
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}" fill="{colour}">'
                f"<title>{escape(name)}: {escape(duration(seconds))}</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + _BAR_H * 0.7:.1f}" class="value">'
            f"{escape(duration(feature.lead_time_s))}</text>"
        )
    axis_y = height - 22
    parts.append(
        f'<line x1="{_LABEL_W}" y1="{axis_y}" x2="{_LABEL_W + _PLOT_W}" y2="{axis_y}" '
        'stroke="#444"/>'
    )
    for tick in range(5):
        tx = _LABEL_W + _PLOT_W * tick / 4
        parts.append(
            f'<text x="{tx:.1f}" y="{axis_y + 15}" text-anchor="middle" class="axis">'
            f"{escape(duration(longest * tick / 4))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend(features: list[FeatureFigures]) -> str:
    used = {p.phase for f in features for p in f.phases}
    items = [(n, c) for n, c in PHASE_COLOURS.items() if n in used]
    items += [(n, _OTHER) for n in sorted(used - set(PHASE_COLOURS))]
    items.append(("waiting for people", WAIT_COLOUR))
    return "".join(
        f'<span class="key"><span class="swatch" style="background:{c}"></span>{escape(n)}</span>'
        for n, c in items
    )


def summary_lines(team: TeamFigures) -> list[tuple[str, str]]:
    """The headline figures, as (label, value) pairs (the terminal prints the same)."""
    return [
        ("Features", f"{len(team.features)} ({team.completed} completed)"),
        ("Median lead time (closed)", duration(team.median_lead_time_s)),
        ("Tests green first time", percent(team.tests_first_pass_rate)),
        ("Specs without rework", percent(team.spec_first_pass_rate)),
        ("Human interventions per feature", _num(team.interventions_per_feature)),
        ("Median wait for an answer", duration(team.median_answer_wait_s)),
        ("Share of lead time waiting for people", percent(team.human_wait_share)),
        ("Cost per feature", money(team.cost_per_feature_usd)),
        ("Cost per task", money(team.cost_per_task_usd)),
    ]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _table(team: TeamFigures) -> str:
    head = (
        "<tr><th>Feature</th><th>Workflow</th><th>State</th><th>Lead time</th>"
        "<th>Waiting for people</th><th>Interventions</th><th>Tests first time</th>"
        "<th>Spec without rework</th><th>Fix rounds</th><th>Cost</th><th>Tasks</th></tr>"
    )
    rows = []
    for f in team.features:
        rows.append(
            "<tr>"
            f"<td>{escape(f.feature)}</td><td><code>{escape(f.workflow_id)}</code></td>"
            f"<td>{escape(f.state)}{' (waiting)' if f.waiting_now else ''}</td>"
            f"<td>{escape(duration(f.lead_time_s))}</td>"
            f"<td>{escape(duration(f.human_wait_s))}</td><td>{len(f.interventions)}</td>"
            f"<td>{_yes(f.tests_first_pass)}</td><td>{_yes(f.spec_first_pass)}</td>"
            f"<td>{sum(f.fix_rounds.values())}</td><td>{escape(money(f.cost_usd))}</td>"
            f"<td>{len(f.task_costs)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _phase_table(team: TeamFigures) -> str:
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(duration(seconds))}</td></tr>"
        for name, seconds in team.phase_median_s.items()
    )
    return f"<table><tr><th>Phase</th><th>Median time</th></tr>{rows}</table>"


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 2em; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2em 1.2em; }
dl.summary dt { color: #555; } dl.summary dd { margin: 0; font-weight: 600; }
table { border-collapse: collapse; margin-top: .5em; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: left; }
svg text.label, svg text.value, svg text.axis { font: 12px system-ui, sans-serif; }
svg text.axis { fill: #555; }
.key { margin-right: 1em; white-space: nowrap; }
.swatch { display: inline-block; width: .9em; height: .9em; margin-right: .3em;
          vertical-align: -.1em; border: 1px solid #888; }
"""


def render_html(team: TeamFigures) -> str:
    """The whole report page for ``team``."""
    period = f"the last {days(team.since_days)}" if team.since_days else "all time"
    summary = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in summary_lines(team))
    chart = (
        _lead_time_svg(team.features) + f'<p class="legend">{_legend(team.features)}</p>'
        if team.features
        else "<p>No features in this period.</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Backforge report: {escape(team.namespace)}</title><style>{_STYLE}</style>"
        "</head><body>"
        f"<h1>Backforge: features in namespace {escape(team.namespace)}, {escape(period)}</h1>"
        f"<p>Generated {escape(team.generated_at.strftime('%Y-%m-%d %H:%M UTC'))}.</p>"
        f'<dl class="summary">{summary}</dl>'
        f"<h2>Lead time per feature, by phase</h2>{chart}"
        f"<h2>Time per phase (median over features)</h2>{_phase_table(team)}"
        f"<h2>Features</h2>{_table(team)}"
        "</body></html>\n"
    )
