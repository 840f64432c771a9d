"""Running the generated project's tests, and an honest verdict on them.

pytest runs in the sandbox through Backforge's runner with Backforge's recorder plugin
(``activities/sandbox/pytest_recorder.py``). The recorder sends, per test id, the raw
outcome of setup, call and teardown (did they raise, and what) and the final reported
outcome to a pipe the worker reads outside the sandbox. The worker counts from those
records itself and never reads pytest's summary line for its verdict.

The verdict is PASS only if the exit code, Backforge's counts and the recorded outcomes
agree and at least one test passed. Every disagreement is a FAIL with a reason line:
a test function that raised but was reported as passed (a project hook rewrote the
report), a missing record (the recorder was disabled, pytest died or the project called
``os._exit``), exit code 0 with failures, an exit code that is not the session's, a
project file overriding how tests are called (``pytest_pyfunc_call``,
``pytest_runtest_protocol``), a hook wrapper slipped inside Backforge's observer.

What an in-process recorder cannot rule out: code running inside the pytest process
(``conftest.py``, the tests) can forge records by other means, e.g. by replacing a test
function's body or writing to the records pipe itself. The black-box validation of the
running service is the independent check for that.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from activities.reused_runs import RunCache, tree_digest
from activities.sandbox import (
    RECORDER,
    ChannelStream,
    CommandResult,
    EnvResult,
    SandboxLimits,
    ensure_project_env,
    run_with_channel,
)
from activities.sandbox.pytest_plugins import plugin_options
from contract import TestReport

__all__ = [
    "TestOutcome",
    "TestRun",
    "Verdict",
    "run_project_tests",
    "establish_verdict",
    "parse_pytest_summary",
    "normalise_output",
    "format_for_model",
    "TAIL_CHARS",
    "RUNS",
]

TAIL_CHARS = 800
RECORDS_LIMIT = 16 * 1024 * 1024
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_EXIT_MEANING = {
    2: "pytest was interrupted",
    3: "pytest hit an internal error",
    4: "pytest was called wrongly (a usage error in the options or the configuration)",
    5: "no tests were collected",
}
_RUN_OVERRIDES = ("pytest_pyfunc_call", "pytest_runtest_protocol")
Outcome = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]


class TestOutcome(BaseModel):
    """One test id as Backforge recorded it."""

    __test__ = False

    id: str
    outcome: Outcome
    raised: str | None = Field(
        default=None, description="Exception class the test function raised, if any."
    )
    reported: str | None = Field(
        default=None, description="The call phase's outcome as pytest reported it."
    )


class Verdict(BaseModel):
    """Counts, outcomes and problems established from the records and the exit code."""

    counts: dict[str, int]
    outcomes: list[TestOutcome]
    problems: list[str]
    notes: list[str]


class TestRun(BaseModel):
    """A run of the project's tests: the contract's report plus everything behind it."""

    __test__ = False

    report: TestReport
    output: str = Field(description="pytest's output (head and tail if long), as it printed it.")
    outcomes: list[TestOutcome] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    problems: list[str] = Field(
        default_factory=list, description="Why the verdict is FAIL beyond failing tests."
    )
    notes: list[str] = Field(default_factory=list)
    reused: bool = Field(
        default=False,
        description="A kept run of the same files (activities.reused_runs); never shown to "
        "the model or written to the feature, so a prompt is the same either way.",
    )
    env: EnvResult | None = None
    isolation: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.problems

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "FAIL"

    def summary(self) -> str:
        """Backforge's own verdict and counts, and one line per problem."""
        c = self.counts
        extra = ", ".join(f"{c[k]} {k}" for k in ("skipped", "xfailed", "xpassed") if c.get(k))
        line = (
            f"Backforge verdict: {self.verdict} ({self.report.passed} passed, "
            f"{self.report.failed} failed, {self.report.errors} errors"
            f"{', ' + extra if extra else ''}; exit code {self.report.exit_code}"
            f"{', timed out' if self.report.timed_out else ''})"
        )
        lines = [line, *(f"- {p}" for p in self.problems)]
        lines += [f"- note: {n}" for n in self.notes]
        lines += [f"- sandbox warning: {w}" for w in self.warnings]
        return "\n".join(lines)


#: This process's completed test runs, by what decides their result.
RUNS: RunCache[TestRun] = RunCache()


# --- running -----------------------------------------------------------------------------


def _read_records(stream: ChannelStream) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    truncated = False
    while chunk := stream.read(65536):
        if size < RECORDS_LIMIT:
            chunks.append(chunk)
        else:
            truncated = True
        size += len(chunk)
    return b"".join(chunks)[:RECORDS_LIMIT], truncated or size > RECORDS_LIMIT


async def run_project_tests(
    source: Path,
    selection: list[str],
    *,
    limits: SandboxLimits | None = None,
    env_cache: Path | None = None,
) -> TestRun:
    """Build (or reuse) the project environment and run pytest on a copy of ``source``.

    Args:
        source: The checkout (a directory the worker owns); never written.
        selection: Test paths or node ids (empty: pytest's own default). Options are
            refused: the run's options are Backforge's.
        limits: Sandbox limits of the pytest run.
        env_cache: The environment cache dir (default ``$BACKFORGE_CACHE_DIR`` or
            ``~/.cache/backforge``).

    Returns:
        The run; ``run.report`` is the contract's ``TestReport`` with Backforge's counts.
        A completed run on the same files, environment, selection and limits earlier in
        this process is reused instead of run again (``activities.reused_runs``).
    """
    started = time.monotonic()
    if bad := [s for s in selection if not isinstance(s, str) or s.startswith("-")]:
        return _failed_run(
            f"refused test selection {bad[0]!r}: give test paths or node ids, not options",
            started,
        )
    env = await ensure_project_env(source, cache_dir=env_cache)
    if not env.ok or env.env is None:
        return _failed_run(
            f"the project environment could not be prepared: {env.message}",
            started,
            output=env.log,
            env=env,
        )
    limits = limits or SandboxLimits()
    identity = RUNS.identity(
        await asyncio.to_thread(tree_digest, source),
        env.env.key,
        selection,
        limits.model_dump_json(),
    )
    if (kept := RUNS.get(identity)) is not None:
        return kept
    plugins = await asyncio.to_thread(plugin_options, env.env, env.requirements)
    argv = ["python", RECORDER, "-p", "no:cacheprovider", *plugins, *selection]
    result, records = await run_with_channel(
        argv,
        source=source,
        channel=_read_records,
        limits=limits,
        env={"BACKFORGE_RECORDS_FD": "3"},
        project_env=env.env,
    )
    raw, truncated = records if records is not None else (b"", False)
    verdict = establish_verdict(
        raw, exit_code=result.exit_code, timed_out=result.timed_out, output=result.output
    )
    if truncated:
        verdict.problems.append("Backforge's records were larger than 16 MiB and were cut")
    if env.message and not env.reused:
        verdict.notes.append(env.message)
    run = _assemble(result, verdict, env, duration=time.monotonic() - started)
    if not run.report.timed_out and run.report.exit_code in (0, 1):  # pytest ran and reported
        RUNS.put(identity, run)
    return run


def _failed_run(
    message: str, started: float, *, output: str = "", env: EnvResult | None = None
) -> TestRun:
    text = f"{message}\n{output}".strip()
    report = TestReport(
        exit_code=1,
        errors=1,
        duration_s=round(time.monotonic() - started, 3),
        tail=_tail(text),
        problems=[message[:300]],
    )
    return TestRun(report=report, output=text, problems=[message], env=env, counts={"errors": 1})


def _assemble(result: CommandResult, verdict: Verdict, env: EnvResult, duration: float) -> TestRun:
    counts = verdict.counts
    report = TestReport(
        passed=counts["passed"],
        failed=counts["failed"],
        errors=counts["errors"],
        problems=[p[:300] for p in verdict.problems[:5]],
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        duration_s=round(duration, 3),
    )
    run = TestRun(
        report=report,
        output=result.output,
        outcomes=verdict.outcomes,
        counts=counts,
        problems=verdict.problems,
        notes=verdict.notes,
        env=env,
        isolation=result.isolation,
        warnings=result.warnings,
    )
    run.report.tail = _report_tail(run)
    return run


def _report_tail(run: TestRun) -> str:
    """For history: the verdict line, the first problems, then the output's last lines."""
    head = [run.summary().splitlines()[0]]
    head += [f"- {p[:200]}" for p in run.problems[:3]]
    if len(run.problems) > 3:
        head.append(f"- ... and {len(run.problems) - 3} more")
    text = "\n".join(head)[:TAIL_CHARS]
    room = TAIL_CHARS - len(text) - 1
    return f"{text}\n{_tail(normalise_output(run.output), room)}" if room > 80 else text


def _tail(text: str, chars: int = TAIL_CHARS) -> str:
    """The last ``chars`` characters, starting at a line start."""
    text = text.strip()
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    nl = cut.find("\n")
    return cut[nl + 1 :] if 0 <= nl < len(cut) - 1 else cut


# --- the verdict -------------------------------------------------------------------------


def establish_verdict(raw: bytes, *, exit_code: int, timed_out: bool, output: str) -> Verdict:
    """Counts and problems from the recorder's JSON lines, the exit code and (only as a
    cross-check, when present) pytest's summary line."""
    problems: list[str] = []
    notes: list[str] = []
    events: list[dict[str, Any]] = []
    for line in raw.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            problems.append("a record from the test run is unreadable")
            continue
        if isinstance(event, dict):
            events.append(event)
    starts = [e for e in events if e.get("e") == "start"]
    finishes = [e for e in events if e.get("e") == "finish"]
    collected: list[str] = []
    raws: dict[tuple[str, str], dict[str, Any]] = {}
    reports: dict[tuple[str, str], dict[str, Any]] = {}
    collect_errors = 0
    order: list[str] = []
    for e in events:
        kind = e.get("e")
        if kind == "collected":
            collected = [str(i) for i in e.get("ids", [])]
        elif kind == "collect_error":
            collect_errors += 1
        elif kind in ("raw", "report"):
            key = (str(e.get("id")), str(e.get("when")))
            table = raws if kind == "raw" else reports
            if key in table:
                problems.append(f"{key[0]}: two {kind} records for its {key[1]}")
                continue
            table[key] = e
            if key[0] not in order:
                order.append(key[0])
        elif kind == "tamper":
            problems.append(
                f"{e.get('id')}: a hook wrapper ({e.get('by')}) was registered inside "
                "Backforge's observer; its outcome cannot be vouched for"
            )
        elif kind == "hooks":
            for item in e.get("items", []):
                where = (
                    "the project's" if item.get("where") == "project" else "a declared package's"
                )
                text = f"{item.get('hook')} is implemented in {where} {item.get('file')}"
                if item.get("where") == "project" and item.get("hook") in _RUN_OVERRIDES:
                    problems.append(
                        f"{text}: it decides how tests run, so Backforge cannot vouch for them"
                    )
                else:
                    notes.append(text)
    if not starts:
        problems.append(
            "Backforge's recorder did not run (pytest did not start, or the project disabled it)"
        )
    elif not finishes and not timed_out:
        problems.append(
            "pytest did not finish its session (it was killed, or the project exited early)"
        )
    for test_id in collected:
        if test_id not in order:
            order.append(test_id)
    counts = dict.fromkeys(("passed", "failed", "errors", "skipped", "xfailed", "xpassed"), 0)
    counts["errors"] = collect_errors
    outcomes: list[TestOutcome] = []
    not_run: list[str] = []
    for test_id in order:
        outcome = _outcome(test_id, raws, reports, problems, counts)
        if outcome is None:
            not_run.append(test_id)
        else:
            outcomes.append(outcome)
    if not_run:
        (problems if exit_code == 0 else notes).append(
            f"{len(not_run)} collected test(s) have no recorded outcome, e.g. {not_run[0]}"
        )
    bad = counts["failed"] + counts["errors"]
    if finishes and int(finishes[-1].get("status", -1)) != exit_code and not timed_out:
        problems.append(
            f"pytest's session ended with status {finishes[-1].get('status')} but the "
            f"process exited with {exit_code}"
        )
    if exit_code == 0 and bad:
        problems.append(
            f"pytest exited 0 but Backforge recorded {counts['failed']} failed and "
            f"{counts['errors']} errors"
        )
    if exit_code == 1 and not bad:
        problems.append("pytest exited 1 but Backforge recorded no failure")
    if exit_code in _EXIT_MEANING:
        problems.append(f"{_EXIT_MEANING[exit_code]} (exit code {exit_code})")
    elif exit_code < 0 or exit_code > 5:
        problems.append(f"pytest ended abnormally (exit code {exit_code})")
    if timed_out:
        problems.append("the test run was stopped at the sandbox's timeout")
    if exit_code == 0 and not counts["passed"] and not problems:
        problems.append("no test passed")
    summary = parse_pytest_summary(output, missing=None)
    if summary is not None:
        mine = {"passed": counts["passed"], "failed": counts["failed"], "errors": counts["errors"]}
        if summary != mine:
            problems.append(
                f"pytest's summary line says {_fmt(summary)} but Backforge recorded {_fmt(mine)}"
            )
    return Verdict(counts=counts, outcomes=outcomes, problems=problems, notes=notes)


def _fmt(counts: dict[str, int]) -> str:
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['errors']} errors"


def _outcome(
    test_id: str,
    raws: dict[tuple[str, str], dict[str, Any]],
    reports: dict[tuple[str, str], dict[str, Any]],
    problems: list[str],
    counts: dict[str, int],
) -> TestOutcome | None:
    """The honest outcome of one test; disagreements become problems (and failures)."""
    final: dict[str, str] = {}
    for when in ("setup", "call", "teardown"):
        rep = reports.get((test_id, when))
        raw = raws.get((test_id, when))
        if rep is None:
            if raw is not None and raw.get("kind") == "fail":
                problems.append(
                    f"{test_id}: its {when} raised {raw.get('exc')} but no outcome was reported"
                )
                final[when] = "failed"
            continue
        outcome = str(rep.get("outcome"))
        raw_kind = raw.get("kind") if raw is not None else None
        if outcome == "passed" and raw_kind not in (None, "ok"):
            problems.append(
                f"{test_id}: its {when} raised {raw.get('exc') if raw else '?'} but was "
                "reported as passed (a hook rewrote the outcome)"
            )
            outcome = "failed"
        elif outcome == "skipped" and raw_kind == "fail" and not rep.get("xfail"):
            problems.append(
                f"{test_id}: its {when} raised {raw.get('exc') if raw else '?'} but was "
                "reported as skipped (a hook rewrote the outcome)"
            )
            outcome = "failed"
        elif when == "call" and outcome == "passed" and raw is None:
            problems.append(f"{test_id}: reported as passed but Backforge did not see it run")
            outcome = "failed"
        final[when] = "xfail-" + outcome if rep.get("xfail") else outcome
    if not final:
        return None
    setup, call, teardown = (final.get(w) for w in ("setup", "call", "teardown"))
    result: Outcome
    if setup == "failed":
        result = "error"
    elif setup in ("skipped", "xfail-skipped"):
        result = "xfailed" if setup == "xfail-skipped" else "skipped"
    elif call is None:
        result = "error"
        problems.append(f"{test_id}: set up but its call has no recorded outcome")
    elif call == "passed":
        result = "passed"
    elif call == "xfail-passed":
        result = "xpassed"
    elif call == "xfail-skipped":
        result = "xfailed"
    elif call == "skipped":
        result = "skipped"
    else:
        result = "failed"
    counts[{"error": "errors"}.get(result, result)] += 1
    if teardown == "failed" and result != "error":
        counts["errors"] += 1
    raw_call = raws.get((test_id, "call"))
    raised = raw_call.get("exc") if raw_call is not None and raw_call.get("kind") != "ok" else None
    rep_call = reports.get((test_id, "call"))
    return TestOutcome(
        id=test_id,
        outcome=result,
        raised=raised,
        reported=str(rep_call.get("outcome")) if rep_call is not None else None,
    )


def parse_pytest_summary(output: str, missing: Any = ...) -> Any:
    """Counts from pytest's closing line (``3 failed, 12 passed in 0.4s``).

    Only a cross-check: with ``-qq`` (e.g. ``addopts = "-q"`` on top of ``-q``) there is
    no such line. Returns ``missing`` when there is none (by default, all zeros).
    """
    counts = {"passed": 0, "failed": 0, "errors": 0}
    for line in reversed(output.strip().splitlines()[-15:]):
        found = _COUNT.findall(line)
        if found and (" in " in line or line.startswith("=")):
            for number, word in found:
                key = "errors" if word.startswith("error") else word
                if key in counts:
                    counts[key] = int(number)
            return counts
    return counts if missing is ... else missing


# --- output for a model ------------------------------------------------------------------

_VOLATILE = [
    (re.compile(r"\b\d+(?:\.\d+)?s \(\d+:\d\d:\d\d\)"), "<t>s"),
    (re.compile(r"\b\d+\.\d+s\b"), "<t>s"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x…"),
    (re.compile(r"/tmp/pytest-of-[\w.-]+/pytest-\d+/"), "/tmp/pytest/"),
    (re.compile(r"/tmp/tmp[\w]{6,}"), "/tmp/tmp…"),
]


def normalise_output(text: str) -> str:
    """The same text for the same code: durations, addresses and temp paths neutralised."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def format_for_model(run: TestRun, limit: int = 12_000, *, line_limit: int = 2_000) -> str:
    """Backforge's verdict and counts first, then the output's head and tail, whole lines.

    Volatile text is normalised so that two runs of the same code give the same text
    (the model's conversation is fingerprinted for replay).
    """
    header = run.summary()
    lines = [
        ln if len(ln) <= line_limit else ln[:line_limit] + f"…[{len(ln) - line_limit} chars]"
        for ln in normalise_output(run.output).strip().splitlines()
    ]
    body = "\n".join(lines)
    if len(header) + len(body) + 2 <= limit:
        return f"{header}\n\n{body}".rstrip() + "\n"
    room = max(limit - len(header) - 80, 0)
    head, tail = [], []
    used = 0
    for ln in lines:
        if used + len(ln) + 1 > room // 3:
            break
        head.append(ln)
        used += len(ln) + 1
    used = 0
    for ln in reversed(lines[len(head) :]):
        if used + len(ln) + 1 > room - room // 3:
            break
        tail.append(ln)
        used += len(ln) + 1
    tail.reverse()
    elided = len(lines) - len(head) - len(tail)
    marker = f"[... {elided} lines elided ...]"
    return "\n".join([header, "", *head, marker, *tail]) + "\n"
