"""The generated project's tests: Backforge's own counts and an honest verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from activities.project_tests import (
    RUNS,
    TestRun,
    establish_verdict,
    format_for_model,
    normalise_output,
    parse_pytest_summary,
    run_project_tests,
)
from contract import TestReport
from tests.support.sandbox_support import git, make_project, tree_digest

pytest_plugins = ["tests.support.sandbox_fixtures"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")


def records(*events: dict[str, object]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def passing(test_id: str) -> list[dict[str, object]]:
    return [
        {"e": "raw", "id": test_id, "when": w, "kind": "ok"} for w in ("setup", "call", "teardown")
    ] + [
        {"e": "report", "id": test_id, "when": w, "outcome": "passed", "xfail": False}
        for w in ("setup", "call", "teardown")
    ]


START = {"e": "start", "pytest": "9"}


def finish(status: int) -> dict[str, object]:
    return {"e": "finish", "status": status}


# --- the verdict from records --------------------------------------------------------------


def test_agreeing_records_pass() -> None:
    raw = records(START, {"e": "collected", "n": 2, "ids": ["t::a", "t::b"]}, *passing("t::a"),
                  *passing("t::b"), finish(0))  # fmt: skip
    verdict = establish_verdict(raw, exit_code=0, timed_out=False, output="")
    assert verdict.problems == []
    assert verdict.counts["passed"] == 2 and verdict.counts["failed"] == 0


def test_a_rewritten_failure_is_a_failure_with_a_reason() -> None:
    events = passing("t::a")
    events[1] = {"e": "raw", "id": "t::a", "when": "call", "kind": "fail", "exc": "AssertionError"}
    raw = records(START, *events, finish(0))
    verdict = establish_verdict(raw, exit_code=0, timed_out=False, output="1 passed in 0.1s")
    assert verdict.counts["failed"] == 1 and verdict.counts["passed"] == 0
    text = "\n".join(verdict.problems)
    assert "t::a: its call raised AssertionError but was reported as passed" in text
    assert "pytest exited 0 but Backforge recorded 1 failed" in text
    assert "summary line says 1 passed" in text


@pytest.mark.parametrize(
    ("raw", "exit_code", "reason"),
    [
        (records(*passing("t::a"), finish(0)), 0, "recorder did not run"),
        (records(START, *passing("t::a")), 0, "did not finish its session"),
        (records(START, *passing("t::a"), finish(0)), 1, "ended with status 0 but the process exited with 1"),
        (records(START, finish(5)), 5, "no tests were collected"),
        (records(START, {"e": "collected", "n": 1, "ids": ["t::a"]}, finish(0)), 0, "have no recorded outcome"),
        (records(START, *passing("t::a"), {"e": "tamper", "id": "t::a", "when": "call", "by": "x"}, finish(0)), 0, "inside Backforge's observer"),
        (records(START, *passing("t::a"), *passing("t::a")[4:5], finish(0)), 0, "two report records"),
        (b"not json\n" + records(START, *passing("t::a"), finish(0)), 0, "unreadable"),
        (records(START, *[e for e in passing("t::a") if not (e["e"] == "raw" and e["when"] == "call")], finish(0)), 0, "did not see it run"),
    ],
)  # fmt: skip
def test_disagreements_fail_with_a_reason(raw: bytes, exit_code: int, reason: str) -> None:
    verdict = establish_verdict(raw, exit_code=exit_code, timed_out=False, output="")
    assert any(reason in p for p in verdict.problems), verdict.problems


def test_skips_and_xfails_are_not_problems() -> None:
    skip = [
        {"e": "raw", "id": "t::s", "when": "setup", "kind": "skip", "exc": "Skipped"},
        {"e": "report", "id": "t::s", "when": "setup", "outcome": "skipped", "xfail": False},
    ]
    xfail = [
        {"e": "raw", "id": "t::x", "when": "call", "kind": "fail", "exc": "ValueError"},
        {"e": "report", "id": "t::x", "when": "setup", "outcome": "passed", "xfail": False},
        {"e": "report", "id": "t::x", "when": "call", "outcome": "skipped", "xfail": True},
    ]
    raw = records(START, *passing("t::a"), *skip, *xfail, finish(0))
    verdict = establish_verdict(raw, exit_code=0, timed_out=False, output="")
    assert verdict.problems == []
    c = verdict.counts
    assert (c["passed"], c["skipped"], c["xfailed"], c["failed"]) == (1, 1, 1, 0)


def test_summary_line_is_optional_and_only_a_cross_check() -> None:
    assert parse_pytest_summary("== 3 failed, 12 passed in 0.4s ==") == {
        "passed": 12, "failed": 3, "errors": 0,
    }  # fmt: skip
    assert parse_pytest_summary("no summary here") == {"passed": 0, "failed": 0, "errors": 0}
    assert parse_pytest_summary("no summary here", missing=None) is None


# --- real runs ---------------------------------------------------------------------------


async def test_addopts_quiet_project_passes_with_correct_counts(tmp_path: Path) -> None:
    """-q in the project's own config (no summary line with ours) is still a PASS."""
    project = make_project(tmp_path / "p", tests=143)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-qq"\n')
    run = await run_project_tests(project, [])
    assert run.verdict == "PASS", run.summary() + run.output
    assert (run.report.passed, run.report.failed, run.report.errors) == (144, 0, 0)
    assert run.report.ok and run.report.exit_code == 0
    assert parse_pytest_summary(run.output, missing=None) is None  # really no summary line
    assert isinstance(run.report, TestReport)


async def test_case4_conftest_forcing_green_is_a_failure(tmp_path: Path) -> None:
    """Case 4: a conftest hook rewrites failures to passes in a broken app."""
    project = make_project(tmp_path / "p", tests=5)
    (project / "app" / "main.py").write_text("from fastapi import FastAPI\n\napp = FastAPI()\n")
    (project / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n    outcome = yield\n"
        "    report = outcome.get_result()\n    if report.failed:\n"
        "        report.outcome = 'passed'\n"
    )
    run = await run_project_tests(project, [])
    assert run.verdict == "FAIL" and not run.report.ok
    assert run.report.failed == 6 and run.report.passed == 0
    assert run.report.exit_code == 0  # what pytest itself claimed
    assert any("reported as passed (a hook rewrote the outcome)" in p for p in run.problems)
    assert "Backforge verdict: FAIL" in run.report.tail


async def test_project_that_skips_test_calls_is_a_failure(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", tests=2)
    (project / "conftest.py").write_text(
        "def pytest_pyfunc_call(pyfuncitem):\n    return True  # never call the test\n"
    )
    run = await run_project_tests(project, [])
    assert run.verdict == "FAIL"
    assert any("pytest_pyfunc_call" in p and "decides how tests run" in p for p in run.problems)


async def test_project_exiting_early_is_a_failure(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", tests=1)
    (project / "tests" / "test_z.py").write_text("def test_fails():\n    assert False\n")
    (project / "conftest.py").write_text(
        "import os\n\n\ndef pytest_sessionfinish(session, exitstatus):\n    os._exit(0)\n"
    )
    run = await run_project_tests(project, [])
    assert run.verdict == "FAIL" and run.report.exit_code == 0
    assert any("did not finish its session" in p for p in run.problems), run.problems


async def test_failures_selection_and_no_writes_to_the_checkout(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", tests=2)
    (project / "tests" / "test_z.py").write_text(
        "def test_fails(tmp_path):\n    (tmp_path / 'x').write_text('y')\n"
        "    open('written-by-test.txt', 'w').write('z')\n    assert 1 == 2\n"
    )
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    before = tree_digest(project)
    run = await run_project_tests(project, [])
    assert run.verdict == "FAIL" and run.problems == []
    assert (run.report.passed, run.report.failed) == (3, 1)
    assert [o.id for o in run.outcomes if o.outcome == "failed"] == ["tests/test_z.py::test_fails"]
    assert run.outcomes[-1].raised == "AssertionError"
    assert tree_digest(project) == before  # nothing for the test phase to commit
    only = await run_project_tests(project, ["tests/test_app.py::test_health"])
    assert only.verdict == "PASS" and only.report.passed == 1
    refused = await run_project_tests(project, ["-p", "evil"])
    assert refused.verdict == "FAIL" and "refused test selection" in refused.problems[0]


async def test_output_for_a_model_is_stable_and_bounded(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", tests=300)
    (project / "tests" / "test_z.py").write_text(
        "def test_fails(tmp_path):\n    print(object(), tmp_path)\n    assert 1 == 2\n"
    )
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-v"\n')
    first = await run_project_tests(project, [])
    RUNS.clear()  # two real runs, not one reused
    second = await run_project_tests(project, [])
    a, b = format_for_model(first, limit=4_000), format_for_model(second, limit=4_000)
    assert a == b
    assert len(a) <= 4_000
    assert a.startswith("Backforge verdict: FAIL (301 passed, 1 failed, 0 errors")
    assert "lines elided" in a
    assert all(not line.startswith(" " * 3) or True for line in a.splitlines())
    assert "0x…" in normalise_output("at 0x7f3a2b1c9d80>") and "<t>s" in a


async def test_a_run_on_the_same_files_is_reused_and_any_change_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import activities.project_tests as project_tests

    started: list[list[str]] = []
    real = project_tests.run_with_channel

    async def counting(argv: list[str], **kwargs: object) -> object:
        started.append(argv)
        return await real(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(project_tests, "run_with_channel", counting)
    project = make_project(tmp_path / "p", tests=2)
    first = await run_project_tests(project, [])
    again = await run_project_tests(project, [])
    assert len(started) == 1
    assert again.report.passed == first.report.passed == 3 and again.verdict == "PASS"
    assert again.reused and not first.reused  # the kept run is a copy
    # What the model reads does not depend on whether the tests ran again.
    assert format_for_model(again, limit=4_000) == format_for_model(first, limit=4_000)
    await run_project_tests(project, ["tests/test_app.py"])  # another selection
    assert len(started) == 2
    (project / "tests" / "test_z.py").write_text("def test_new():\n    assert False\n")
    changed = await run_project_tests(project, [])
    assert len(started) == 3 and changed.verdict == "FAIL" and changed.report.failed == 1
    (project / "tests" / "test_z.py").chmod(0o600)  # a mode is part of the files too
    await run_project_tests(project, [])
    assert len(started) == 4


async def test_a_timed_out_run_is_never_reused(tmp_path: Path) -> None:
    from activities.sandbox import SandboxLimits

    project = make_project(tmp_path / "p", tests=1)
    (project / "tests" / "test_z.py").write_text(
        "def test_forever():\n    while True:\n        pass\n"
    )
    limits = SandboxLimits(timeout_s=3)
    first = await run_project_tests(project, [], limits=limits)
    second = await run_project_tests(project, [], limits=limits)
    assert first.report.timed_out and second.report.timed_out
    assert not second.reused


def test_format_for_model_keeps_whole_lines() -> None:
    output = "".join(f"line {i:05d} {'x' * 50}\n" for i in range(2_000))
    run = TestRun(report=TestReport(passed=1), output=output, counts={"passed": 1})
    text = format_for_model(run, limit=3_000)
    body = text.split("\n\n", 1)[1].splitlines()
    assert body[0].startswith("line 00000") and body[-1].startswith("line 01999")
    assert all(ln.startswith("line ") or ln.startswith("[... ") for ln in body)
