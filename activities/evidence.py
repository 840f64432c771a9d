"""When an implementation task is done: the evidence Backforge asks for before it accepts.

A task is done only with evidence. When the model calls ``finish``:

1. every file the task line names has changed in this attempt's tree (or the finish
   says, per file, why it needed no change); the feature's own documents, which tasks
   cite but never edit, are not counted;
2. every test module the task writes parses;
3. the tests the task concerns run, in the sandbox, and Backforge reads its own
   verdict: the test modules the task names, or, for a code task that names none, the
   test modules earlier tasks of its user story wrote. They must pass, except
   - in a test-first task (it writes tests and no code) while a later open task of
     its story names the code that will make them pass: red is expected there;
   - tests the finish lists as pending on a later open task.

Otherwise the finish is refused and the model reads what is missing (with the test
output: Backforge's counts first, head and tail) in the same conversation.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from activities.agent import Finish, Review
from activities.project_tests import TestRun, format_for_model
from activities.speckit import TaskLine, task_lines
from activities.workspace import Workspace

__all__ = [
    "UnchangedFile",
    "PendingTest",
    "ImplementFinish",
    "TaskScope",
    "is_test_file",
    "task_scope",
    "review_task",
    "EVIDENCE_OUTPUT_CHARS",
]

EVIDENCE_OUTPUT_CHARS = 8_000
_TEST_MODULE = re.compile(r"(^|/)(test_[^/]*\.py|[^/]*_test\.py)$")
_CONFTEST = re.compile(r"(^|/)conftest\.py$")

TestRunner = Callable[[list[str]], Awaitable[TestRun]]
ChangedFiles = Callable[[list[str]], Awaitable[set[str]]]


class UnchangedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    reason: str


class PendingTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test: str = Field(description="Path or node id.")
    task: str = Field(description="The later task that makes it pass.")


class ImplementFinish(Finish):
    """Your report when the task is done; Backforge checks the evidence."""

    requirements: list[str] = Field(default_factory=list, description="FR-/SC- ids served.")
    unchanged_files: list[UnchangedFile] = Field(
        default_factory=list, description="Named files left unchanged, and why."
    )
    pending_tests: list[PendingTest] = Field(
        default_factory=list, description="Failing tests only a later open task can fix."
    )


def is_test_file(path: str) -> bool:
    """A test module or a conftest.py."""
    return bool(_TEST_MODULE.search(path) or _CONFTEST.search(path))


@dataclass(frozen=True)
class TaskScope:
    """What a task must show before it is done."""

    line: TaskLine
    #: Files the task must change (the feature's documents left out).
    files: tuple[str, ...]
    #: Test modules the task writes.
    test_modules: tuple[str, ...]
    #: Non-test Python files the task writes.
    code_files: tuple[str, ...]
    #: Test modules run at finish.
    concerned: tuple[str, ...]
    #: Later open tasks of the same story that name code: who makes a test-first task green.
    implemented_by: tuple[str, ...]

    @property
    def test_first(self) -> bool:
        """Writes tests and no code."""
        return bool(self.test_modules) and not self.code_files


def task_scope(tasks_text: str, task_id: str, *, feature_dir: str) -> TaskScope | None:
    """The scope of ``task_id`` in tasks.md text, or None when it is not there."""
    lines = task_lines(tasks_text)
    index = next((i for i, t in enumerate(lines) if t.id == task_id), None)
    if index is None:
        return None
    line = lines[index]
    files = tuple(
        f for f in line.files if not f.startswith((f"{feature_dir}/", ".specify/", "specs/"))
    )
    test_modules = tuple(f for f in files if _TEST_MODULE.search(f))
    code_files = tuple(f for f in files if f.endswith(".py") and not is_test_file(f))
    concerned = test_modules
    if not concerned and code_files and line.story:
        concerned = tuple(
            dict.fromkeys(
                f
                for earlier in lines[:index]
                if earlier.story == line.story
                for f in earlier.files
                if _TEST_MODULE.search(f)
            )
        )
    later = tuple(
        t.id
        for t in lines[index + 1 :]
        if not t.done
        and (line.story is None or t.story == line.story)
        and any(f.endswith(".py") and not is_test_file(f) for f in t.files)
    )
    return TaskScope(line, files, test_modules, code_files, concerned, later)


def _later_open(tasks_text: str, task_id: str) -> set[str]:
    lines = task_lines(tasks_text)
    index = next((i for i, t in enumerate(lines) if t.id == task_id), len(lines))
    return {t.id for t in lines[index + 1 :] if not t.done}


async def review_task(
    ws: Workspace,
    scope: TaskScope,
    finish: ImplementFinish,
    *,
    tasks_text: str,
    changed: ChangedFiles,
    run_tests: TestRunner,
) -> Review:
    """Accept ``finish`` with its evidence, or say what is missing.

    Args:
        ws: The attempt's tree.
        scope: The task's scope (``task_scope``).
        finish: The model's validated finish.
        tasks_text: tasks.md as the task started (for later open tasks).
        changed: Which of the given paths differ from the attempt's base.
        run_tests: Runs test paths in the sandbox.
    """
    task = scope.line.id
    excused = {u.path.strip() for u in finish.unchanged_files}
    diff = await changed(list(scope.files)) if scope.files else set()
    missing = [f for f in scope.files if f not in diff and f not in excused]
    if missing:
        return Review(
            problem=(
                f"{task} is not done: it names {', '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} unchanged. Make the change the task "
                "calls for there, or, if a file rightly needs none (it is only read), list it "
                "in finish's `unchanged_files` with the reason."
            )
        )
    for path in scope.test_modules:
        if not ws.exists(path):
            continue
        try:
            ast.parse(ws.read(path), filename=path)
        except SyntaxError as err:
            return Review(
                problem=f"{task} is not done: {path} does not parse ({err.msg}, line {err.lineno})."
            )
    concerned = [p for p in scope.concerned if ws.exists(p)]
    if not concerned:
        changed_note = f"changed {', '.join(scope.files)}" if scope.files else "no files named"
        return Review(evidence=f"{changed_note}; no tests concern this task")
    run = await run_tests(concerned)
    counts = run.report.counts
    where = ", ".join(concerned)
    if run.ok:
        return Review(evidence=f"{where}: {counts}")
    if scope.test_first and scope.implemented_by and _only_red(run, collection_errors=True):
        return Review(
            evidence=(
                f"{where}: {counts} — red as expected for a test-first task; "
                f"{', '.join(scope.implemented_by)} implement(s) them"
            )
        )
    later = _later_open(tasks_text, task)
    bad_pending = [p for p in finish.pending_tests if p.task not in later]
    if bad_pending:
        return Review(
            problem=(
                f"{task} is not done: pending_tests may only name later open tasks "
                f"({', '.join(sorted(later)) or 'there are none'}); "
                f"{bad_pending[0].task} is not one."
            )
        )
    failing = [o.id for o in run.outcomes if o.outcome in ("failed", "error")]
    uncovered = [t for t in failing if not any(_covers(p.test, t) for p in finish.pending_tests)]
    if failing and not uncovered and _only_red(run):
        tasks = sorted({p.task for p in finish.pending_tests})
        return Review(evidence=f"{where}: {counts} — failing tests pending on {', '.join(tasks)}")
    if scope.test_first and not scope.implemented_by:
        hint = (
            "These tests fail and no later open task of this story names the code that would "
            "make them pass: fix the tests, or implement what they need."
        )
    elif scope.test_first:
        hint = (
            "Red is expected in a test-first task only from missing implementation (failed "
            "assertions, missing routes or names); errors in the tests themselves are not."
        )
    else:
        hint = (
            "Fix the code so they pass (change a test only where it contradicts the spec, and "
            "say so in your summary). A test that only a later task can make pass goes in "
            "finish's `pending_tests` with that task's id."
        )
    output = format_for_model(run, limit=EVIDENCE_OUTPUT_CHARS)
    return Review(
        problem=(
            f"{task} is not done: the tests it concerns ({where}) do not pass. {hint}\n\n{output}"
        )
    )


def _covers(entry: str, test_id: str) -> bool:
    entry = entry.strip()
    return test_id == entry or test_id.startswith(entry.rstrip(":") + "::")


def _only_red(run: TestRun, *, collection_errors: bool = False) -> bool:
    """Failures and errors from the tests themselves, nothing else Backforge distrusts.

    With ``collection_errors``, a module that cannot be imported yet (test-first: the
    code it imports does not exist) counts as red too; pytest then stops with exit 2.
    """
    r = run.report
    allowed = {1, 2} if collection_errors else {1}
    if r.timed_out or r.exit_code not in allowed or r.failed + r.errors == 0:
        return False
    interrupted = "pytest was interrupted (exit code 2)"
    return all(p == interrupted and collection_errors for p in run.problems)
