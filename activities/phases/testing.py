"""Phase 6: run the generated project's tests in the sandbox.

No model here. The full (truncated) output is committed as
``<feature dir>/test-results.md`` so the fix step and people can read it;
only counts and a short tail go into history.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity

from activities.phases._common import commit_phase, open_workspace
from activities.project_tests import format_for_model, parse_pytest_summary
from activities.project_tests import run_project_tests as _run_project_tests
from activities.sandbox import SandboxLimits
from activities.workspace import Workspace
from workflows.types import PhaseInput, PhaseOutcome, TestReport

__all__ = ["run_phase_test", "run_project_tests", "parse_pytest_summary"]

TAIL_CHARS = 800


@contextlib.asynccontextmanager
async def _heartbeat(label: str, every: float = 5.0):  # type: ignore[no-untyped-def]
    """Heartbeat while a bounded subprocess runs (the sandbox enforces its own timeout)."""

    async def beat() -> None:
        while True:
            if activity.in_activity():
                activity.heartbeat(label)
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_project_tests(
    ws: Workspace, selection: list[str], *, limits: SandboxLimits | None = None
) -> tuple[TestReport, str]:
    """Run the project's tests on a sandboxed copy of the checkout (activities.project_tests)."""
    async with _heartbeat("tests"):
        run = await _run_project_tests(ws.root, selection, limits=limits)
    report = TestReport.model_validate(run.report.model_dump())
    return report, format_for_model(run, limit=200_000)


def results_markdown(report: TestReport, output: str) -> str:
    verdict = "PASS" if report.ok else "FAIL"
    return (
        f"# Test results: {verdict}\n\n"
        f"- passed: {report.passed}\n- failed: {report.failed}\n- errors: {report.errors}\n"
        f"- exit code: {report.exit_code}{' (timed out)' if report.timed_out else ''}\n"
        f"- duration: {report.duration_s:.2f}s\n\n## Output\n\n```text\n{output.strip()}\n```\n"
    )


@activity.defn
async def run_phase_test(inp: PhaseInput) -> PhaseOutcome:
    ws = await open_workspace(inp)
    report, output = await run_project_tests(ws, [])
    path = f"{inp.workspace.feature_dir}/test-results.md"
    ws.write(path, results_markdown(report, output))
    report.output_path = path
    summary = f"{report.passed} passed, {report.failed} failed, {report.errors} errors"
    return await commit_phase(
        ws, inp, f"test: {summary}", artifacts=[path], summary=summary, test_report=report
    )
