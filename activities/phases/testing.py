"""Phase 6: run the generated project's tests in the sandbox.

No model here. The verdict is Backforge's own (``activities.project_tests``): each
test's outcome is recorded outside the project's reach and checked against the exit
code and pytest's counts. The verdict and the output are committed as
``<feature dir>/test-results.md`` so the fix step and people can read it; only
counts, problems and a short tail go into history. Nothing the tests write is kept.
"""

from __future__ import annotations

from temporalio import activity

from activities.heartbeat import keep_alive
from activities.model_phase import PhaseActivity, layout_of
from activities.project_tests import TestRun, normalise_output, run_project_tests
from contract import PhaseInput, PhaseOutcome

__all__ = ["TestPhase", "results_markdown"]


def results_markdown(run: TestRun) -> str:
    """The committed test results: the same text for the same code (timings normalised)."""
    r = run.report
    return (
        f"# Test results: {run.verdict}\n\n"
        f"- passed: {r.passed}\n- failed: {r.failed}\n- errors: {r.errors}\n"
        f"- exit code: {r.exit_code}{' (timed out)' if r.timed_out else ''}\n\n"
        f"## Backforge's verdict\n\n```text\n{run.summary()}\n```\n\n"
        f"## Output\n\n```text\n{normalise_output(run.output).strip()}\n```\n"
    )


class TestPhase(PhaseActivity):
    """Runs the whole test suite of the feature branch at its base commit."""

    __test__ = False  # not a pytest test class

    @activity.defn(name="run_phase_test")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        async with self.checkout(inp) as ws:
            async with keep_alive(f"{inp.run_key}: tests"):
                run = await run_project_tests(ws.root, [])
            path = layout_of(inp).path("test-results")
            ws.write(path, results_markdown(run))
            report = run.report.model_copy(update={"output_path": path})
            return await self.commit(
                ws,
                inp,
                f"test: {report.counts}",
                summary=report.counts,
                artifacts=[path],
                test_report=report,
            )
