"""Phase 6: run the generated project's tests in the sandbox.

No model here. The full (truncated) output is committed as
``<feature dir>/test-results.md`` so the fix step and people can read it;
only counts and a short tail go into history.
"""

from __future__ import annotations

from temporalio import activity

from activities.model_phase import PhaseActivity, layout_of
from activities.project_tests import run_project_tests
from contract import PhaseInput, PhaseOutcome, TestReport

__all__ = ["TestPhase"]


def results_markdown(report: TestReport, output: str) -> str:
    verdict = "PASS" if report.ok else "FAIL"
    return (
        f"# Test results: {verdict}\n\n"
        f"- passed: {report.passed}\n- failed: {report.failed}\n- errors: {report.errors}\n"
        f"- exit code: {report.exit_code}{' (timed out)' if report.timed_out else ''}\n"
        f"- duration: {report.duration_s:.2f}s\n\n## Output\n\n```text\n{output.strip()}\n```\n"
    )


class TestPhase(PhaseActivity):
    """Runs the whole test suite of the feature branch at its base commit."""

    __test__ = False  # not a pytest test class

    @activity.defn(name="run_phase_test")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        async with self.checkout(inp) as ws:
            report, output = await run_project_tests(ws, [])
            path = layout_of(inp).path("test-results")
            ws.write(path, results_markdown(report, output))
            report.output_path = path
            return await self.commit(
                ws,
                inp,
                f"test: {report.counts}",
                summary=report.counts,
                artifacts=[path],
                test_report=report,
            )
