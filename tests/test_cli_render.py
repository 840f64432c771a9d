"""Rendering: requests and how to answer them, status, results and lists."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from cli.listing import ListRow
from cli.render import print_command, print_list, print_request, print_result, print_status
from cli.settings import Settings
from contract import FeatureResult, TaskItem, TestReport, Usage
from tests.support.cli_driver import named_program  # noqa: F401 (fixture)
from tests.support.cli_requests import approval, clarification, escalation, record, status

pytestmark = pytest.mark.usefixtures("named_program")

LOCAL = Settings(address="localhost:7233", namespace="default", task_queue="backforge")
REMOTE = Settings(address="temporal.internal:7233", namespace="default", task_queue="backforge")


def recorded(width: int = 120) -> Console:
    return Console(record=True, width=width, highlight=False)


def test_request_shows_options_recommendation_and_how_to_answer() -> None:
    out = recorded()
    print_request(out, clarification(), workflow_id="feature-x-abc123", settings=LOCAL)
    text = out.export_text()
    assert "[NEEDS CLARIFICATION]" in text  # user text is not taken as rich markup
    assert "Shareable by link" in text and "token table" in text
    assert "recommended: B" in text
    assert "  python starter.py answer feature-x-abc123 clarify-1 Q1=B\n" in text


def test_approval_hints_name_the_server_and_the_reject_command() -> None:
    out = recorded()
    print_request(out, approval(), workflow_id="feature-x-abc123", settings=REMOTE)
    text = out.export_text()
    prefix = "python starter.py --address temporal.internal:7233"
    assert f"  {prefix} approve feature-x-abc123 approve-spec-2\n" in text
    assert f'  {prefix} reject feature-x-abc123 approve-spec-2 --comment "what to change"\n' in text


def test_escalation_hint_asks_for_guidance() -> None:
    out = recorded()
    print_request(out, escalation(), workflow_id="feature-x", settings=LOCAL)
    assert 'answer feature-x escalate-5 Q1=retry --comment "guidance' in out.export_text()


def test_hints_are_not_wrapped_on_a_narrow_console() -> None:
    out = recorded(width=40)
    print_request(
        out, approval(), workflow_id="feature-with-a-rather-long-id-0a1b2c", settings=REMOTE
    )
    lines = out.export_text().splitlines()
    approve = [line for line in lines if " approve feature-" in line]
    assert approve == [
        "  python starter.py --address temporal.internal:7233 approve "
        "feature-with-a-rather-long-id-0a1b2c approve-spec-2"
    ]
    out = recorded(width=20)
    print_command(out, "python starter.py watch feature-x-0123456789", label="Follow it:  ")
    assert out.export_text() == "Follow it:  python starter.py watch feature-x-0123456789\n"


def test_request_without_a_body_does_not_load_markdown() -> None:
    out = recorded()
    print_request(out, approval())
    assert "Approve the spec?" in out.export_text()
    assert "To answer" not in out.export_text()  # no workflow id: no hints


def test_status_shows_phase_with_task_head_commit_and_open_requests() -> None:
    current = status(
        phase="implement",
        task_id="T003",
        branch="001-bookmarks",
        head_commit="abcdef1234567890",
        completed=[record("constitution"), record("implement", "T001", "1" * 40)],
        tasks=[TaskItem(id="T001", done=True), TaskItem(id="T003")],
        open_requests=[clarification()],
        usage=Usage(model_calls=3, input_tokens=1200, output_tokens=34, cost_usd=0.5),
        usage_by_phase={"constitution": Usage(model_calls=3, cost_usd=0.5)},
        test_report=TestReport(passed=4, failed=1, exit_code=1, tail="E assert 1 == 2"),
    )
    out = recorded()
    print_status(out, current, LOCAL)
    text = out.export_text()
    assert "running  phase implement T003" in text
    assert "001-bookmarks  head abcdef1" in text
    assert "Tasks     1/2 done" in text
    assert re.search(r"^Usage *$", text, re.M)  # no model names known: no empty "()"
    assert "T001" in text and "1111111" in text
    assert "Open requests (1)" in text and "answer w clarify-1 Q1=B" in text
    assert "total" in text and "0.5000" in text
    assert "4 passed, 1 failed, 0 errors" in text and "E assert 1 == 2" in text


def test_status_shows_an_answer_that_could_not_be_applied() -> None:
    out = recorded()
    ignored = "clarify-1: no open request 'clarify-1'; open requests: none"
    print_status(out, status(state="waiting", last_ignored_answer=ignored), LOCAL)
    assert f"Not applied  last answer sent by signal: {ignored}" in out.export_text()


def test_result_lists_given_commits_or_its_records() -> None:
    result = FeatureResult(
        workflow_id="feature-x",
        state="completed",
        branch="001-x",
        head_commit="fedcba9876",
        report_path="specs/001-x/report.md",
        commits=[record("plan", commit="a" * 40), record("implement", "T002", "b" * 40)],
        test_report=TestReport(passed=3),
    )
    out = recorded()
    print_result(out, result, repo="/repo", ui="http://localhost:8233/x")
    text = out.export_text()
    assert "✓ completed  feature-x" in text
    assert "001-x  head fedcba9" in text
    assert "/repo/specs/001-x/report.md" in text
    assert "3 passed, 0 failed, 0 errors" in text
    assert "Temporal UI  http://localhost:8233/x" in text
    assert "  aaaaaaa plan: plan done" in text and "  bbbbbbb implement T002:" in text
    # The workflow's result carries no summaries: no dangling colons, or the last status's.
    bare = result.model_copy(
        update={"commits": [r.model_copy(update={"summary": ""}) for r in result.commits]}
    )
    out = recorded()
    print_result(out, bare)
    text = out.export_text()
    assert "  aaaaaaa plan\n  bbbbbbb implement T002\n" in text and "plan:" not in text
    out = recorded()
    print_result(out, bare, records=result.commits)
    assert "  aaaaaaa plan: plan done\n" in out.export_text()
    out = recorded()
    print_result(
        out, result, commits=["1234567 deliver: report"], commits_title="Commits (main..001-x)"
    )
    text = out.export_text()
    assert "Commits (main..001-x):\n  1234567 deliver: report" in text
    assert "aaaaaaa" not in text


def test_list_is_a_table_when_wide_and_two_lines_when_narrow() -> None:
    rows = [
        ListRow(
            id="feature-build-a-bookmarks-api-0a1b2c",
            state="waiting",
            phase="specify",
            awaiting=True,
            feature="Build a bookmarks API",
            started="2026-01-02 03:04",
        )
    ]
    wide = recorded(width=160)
    print_list(wide, rows)
    header = [cell for cell in wide.export_text().splitlines()[0].split() if cell != "┃"]
    assert header == ["id", "status", "phase", "awaiting", "feature", "started"]
    narrow = recorded(width=70)
    print_list(narrow, rows)
    lines = narrow.export_text().splitlines()
    assert lines[0] == "feature-build-a-bookmarks-api-0a1b2c"
    assert lines[1].startswith("  waiting · specify · started 2026-01-02 03:04")
