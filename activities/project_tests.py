"""Running the generated project's tests in the sandbox, and reading the verdict.

Shared by the test phase and the implement/fix phases' ``run_tests`` tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

from temporalio import activity

from activities.sandbox import SandboxLimits, ensure_project_env, run_sandboxed
from activities.workspace import Workspace
from contract import TestReport

__all__ = ["run_project_tests", "parse_pytest_summary", "TAIL_CHARS"]

_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
TAIL_CHARS = 800


def parse_pytest_summary(output: str) -> dict[str, int]:
    """Counts from pytest's closing line (``3 failed, 12 passed in 0.4s``)."""
    counts = {"passed": 0, "failed": 0, "errors": 0}
    for line in reversed(output.strip().splitlines()[-15:]):
        found = _COUNT.findall(line)
        if found and (" in " in line or line.startswith("=")):
            for number, word in found:
                key = "errors" if word.startswith("error") else word
                if key in counts:
                    counts[key] = int(number)
            break
    return counts


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
    """Install the project's declared deps (cached) and run pytest; return report and output."""
    async with _heartbeat("tests"):
        env = await ensure_project_env(ws.root)
        if not env.ok:
            output = f"Installing the project's dependencies failed:\n{env.log}"
            return TestReport(exit_code=1, errors=1, tail=output[-TAIL_CHARS:]), output
        result = await run_sandboxed(
            [str(env.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
            workspace=ws.root,
            limits=limits,
        )
    counts = parse_pytest_summary(result.output)
    output = result.output
    if result.timed_out:
        output += "\n\n(the test run was stopped by the sandbox's wall-clock timeout)"
    for warning in result.warnings:
        output += f"\n(sandbox warning: {warning})"
    report = TestReport(
        passed=counts["passed"],
        failed=counts["failed"],
        errors=counts["errors"],
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        duration_s=round(result.duration_s, 3),
        tail=output[-TAIL_CHARS:],
    )
    return report, output
