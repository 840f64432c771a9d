"""``report`` on a real dev server of its own, over features run to completion with fakes.

Three features with known shapes: a clean one; one with a clarification and a failing
first test run; one whose spec gate is rejected once. The report must find each
shape in the histories, and write a self-contained chart.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.report import print_report
from contract import SEARCH_ATTRIBUTES, HumanResponse
from runtime import temporal_binary
from telemetry.collect import features_query
from telemetry.figures import FeatureFigures, TeamFigures
from tests.support.cli_driver import address, invoke_async
from tests.support.fake_phases import Fakes, open_request, request, respond
from tests.support.temporal import eventually, unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow

COST = 0.05


@dataclass
class Features:
    env: WorkflowEnvironment
    ids: dict[str, str]
    calls: dict[str, int]


@pytest.fixture(scope="module")
async def features(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Features]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_database_filename=str(tmp_path_factory.mktemp("report") / "temporal.db"),
        dev_server_log_level="error",
    )
    ids: dict[str, str] = {}
    calls: dict[str, int] = {}
    try:
        for name, fakes, kw in (
            ("clean", Fakes(clarify=False, cost=COST), {}),
            ("clarified", Fakes(clarify=True, test_results=[False, True], cost=COST), {}),
            ("reworked", Fakes(clarify=False, cost=COST), {"gates": ["spec"]}),
        ):
            queue = unique("report")
            async with build_worker(
                env.client, task_queue=queue, activity_overrides=fakes.activities()
            ):
                handle = await env.client.start_workflow(
                    BackendFeatureWorkflow.run,
                    request(**kw).model_copy(update={"feature": f"Feature {name}"}),
                    id=unique(name),
                    task_queue=queue,
                )
                if name == "clarified":
                    asked = await open_request(handle, "clarification")
                    answer = HumanResponse(request_id=asked.id, answers={"Q1": "A", "Q2": "B"})
                    await handle.signal(
                        BackendFeatureWorkflow.respond_signal, answer
                    )  # signal path
                if name == "reworked":
                    gate = await open_request(handle, "approval")
                    await respond(handle, request_id=gate.id, approved=False, comment="add limits")
                    first = gate.id
                    again = await eventually(
                        lambda h=handle, g=first: _second_gate(h, g),  # type: ignore[misc]
                        timeout=20,
                    )
                    await respond(handle, request_id=again, approved=True)
                result = await handle.result()
            assert result.state == "completed", result.message
            ids[name] = handle.id
            calls[name] = fakes.model_calls

        async def listed() -> bool:
            found = [w async for w in env.client.list_workflows(features_query())]
            return len(found) == 3 and all(w.close_time for w in found)

        await eventually(listed, timeout=30)
        yield Features(env, ids, calls)
    finally:
        await env.shutdown()


async def _second_gate(handle: object, first: str) -> str | None:
    status = await handle.query(BackendFeatureWorkflow.status)  # type: ignore[attr-defined]
    return next((r.id for r in status.open_requests if r.id != first), None)


async def report_json(features: Features, *extra: str) -> TeamFigures:
    result = await invoke_async("--address", address(features.env), "report", "--json", *extra)
    assert result.exit_code == 0, result.stderr + result.stdout
    return TeamFigures.model_validate_json(result.stdout)


async def test_report_reads_each_feature_shape(features: Features) -> None:
    team = await report_json(features, "--namespace", "default", "--since", "1")
    by_id = {f.workflow_id: f for f in team.features}
    assert set(by_id) == set(features.ids.values())
    clean, clarified, reworked = (
        by_id[features.ids[n]] for n in ("clean", "clarified", "reworked")
    )
    assert all(f.state == "completed" and f.closed_at is not None for f in team.features)

    assert (clean.tests_first_pass, clean.spec_first_pass, clean.interventions) == (True, True, [])
    assert clean.fix_rounds == {} and clean.human_wait_s == 0

    assert clarified.tests_first_pass is False and clarified.tests_green is True
    assert clarified.spec_first_pass is True  # a clarification round is not rework
    assert clarified.fix_rounds == {"tests": 1}
    assert [i.kind for i in clarified.interventions] == ["clarification"]

    assert reworked.spec_first_pass is False
    assert [(i.kind, i.approved) for i in reworked.interventions] == [
        ("approval", False),
        ("approval", True),
    ]
    assert reworked.human_wait_s > 0
    assert all(0 < i.waited_s <= reworked.human_wait_s for i in reworked.interventions)

    for name, feature in (("clean", clean), ("clarified", clarified), ("reworked", reworked)):
        assert feature.cost_usd == pytest.approx(COST * features.calls[name])
        assert feature.task_costs == {"T001": COST, "T002": COST}
        assert 0 < feature.active_s <= feature.lead_time_s
        phases = {p.phase: p for p in feature.phases}
        assert {"prepare", "specify", "plan", "implement", "test", "deliver"} <= set(phases)
        assert phases["implement"].runs == 2
        assert feature.feature == f"Feature {name}"
    assert {p.phase: p.runs for p in reworked.phases}["specify"] == 2
    assert {p.phase: p.runs for p in clarified.phases}["test"] == 2

    assert team.tests_first_pass_rate == pytest.approx(2 / 3)
    assert team.spec_first_pass_rate == pytest.approx(2 / 3)
    assert team.interventions_per_feature == pytest.approx(1.0)
    assert team.cost_per_task_usd == pytest.approx(COST)
    assert team.completed == 3 and team.median_lead_time_s is not None


async def test_report_table_and_html_chart(features: Features, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = await invoke_async(
        "--address", address(features.env), "report", "--since", "7", "--html", str(page)
    )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for name in ("clean", "clarified", "reworked"):
        assert f"Feature {name}" in out and features.ids[name] in out
    assert "Tests green first time: 67%" in out
    assert "Specs without rework: 67%" in out
    assert f"Chart written to {page}" in out.replace("\n", "")
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    # Self-contained: nothing to fetch.
    assert not re.search(r"https?://|<script|<link|<img|@import|url\(", html)
    # One labelled bar group per feature; phase segments carry their time as a tooltip.
    for name in ("clean", "clarified", "reworked"):
        assert f">Feature {name}</text>" in html
    assert html.count("<title>waiting for people:") == 2  # the clean one never waited
    assert "<title>specify:" in html and "<title>implement:" in html


async def test_report_bad_arguments(features: Features) -> None:
    bad = await invoke_async("--address", address(features.env), "report", "--since", "-1")
    assert bad.exit_code == 2 and "--since takes a positive number" in bad.stderr
    unknown = await invoke_async(
        "--address", address(features.env), "report", "--namespace", "no-such-namespace"
    )
    assert unknown.exit_code == 1 and "no-such-namespace" in unknown.stderr


def test_since_is_a_start_time_filter() -> None:
    since = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    assert features_query(since) == (
        "WorkflowType = 'BackendFeatureWorkflow' AND StartTime > '2026-03-04T05:06:07.000890Z'"
    )


@pytest.mark.parametrize("width", [80, 200])
def test_features_stay_readable_at_any_width(width: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    feature = FeatureFigures(
        workflow_id="feature-abc", feature="Build a bookmarks API with tags and collections",
        state="running", started_at=now, lead_time_s=4000, human_wait_s=3600, waiting_now=True,
        tests_first_pass=None, spec_first_pass=True, cost_usd=1.5,
    )  # fmt: skip
    out = Console(width=width, record=True)
    print_report(out, TeamFigures(namespace="ns", generated_at=now, features=[feature]))
    text = out.export_text()
    shown = "Build a bookmarks API with tags and collections"
    assert (shown if width < 150 else "Build a bookmarks API with tags") in text
    assert "feature-abc" in text and "running (waiting)" in text and "$1.50" in text
    assert "1h 06m" in text and "1h 00m" in text


def test_an_empty_period_says_so() -> None:
    out = Console(width=100, record=True)
    print_report(out, TeamFigures(namespace="ns", since_days=3, generated_at=datetime.now(UTC)))
    assert "No feature workflows in this period." in out.export_text()


def test_report_json_is_parseable_offline() -> None:
    """The JSON shape round-trips (what dashboards and scripts read)."""
    team = TeamFigures.model_validate(
        json.loads('{"namespace": "x", "generated_at": "2026-01-01T00:00:00Z", "features": []}')
    )
    assert team.tests_first_pass_rate is None and team.median_lead_time_s is None
