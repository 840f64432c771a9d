"""When an implementation task is done: scope of a task, and the evidence review."""

from __future__ import annotations

from pathlib import Path

from activities.evidence import ImplementFinish, PendingTest, UnchangedFile, review_task, task_scope
from activities.phases.implement import changed_files
from activities.project_tests import TestOutcome, TestRun
from activities.workspace import Workspace
from contract import TestReport
from tests.support.git import git
from tests.support.repos import user_repo

FEATURE = "specs/001-x"
TASKS = """# Tasks
- [X] T001 Create the package in app/__init__.py
- [ ] T002 [US1] Write the note tests for FR-001 to FR-003 in tests/test_notes.py
- [ ] T003 [US1] Implement the notes router in app/notes.py, registered in app/main.py, per specs/001-x/contracts/openapi.yaml
- [ ] T004 [US1] Document notes in README.md
- [ ] T005 Write a smoke test in tests/test_smoke.py
"""


def run_of(passed: int = 0, failed: int = 0, errors: int = 0, exit_code: int = 0) -> TestRun:
    report = TestReport(passed=passed, failed=failed, errors=errors, exit_code=exit_code)
    outcomes = [
        TestOutcome(id=f"tests/test_notes.py::test_f{i}", outcome="failed") for i in range(failed)
    ]
    problems = ["pytest was interrupted (exit code 2)"] if exit_code == 2 else []
    return TestRun(report=report, output="...", outcomes=outcomes, problems=problems)


async def review(
    tmp_path: Path, task: str, finish: ImplementFinish, *, changed: set[str], run: TestRun
):  # type: ignore[no-untyped-def]
    ws = Workspace(tmp_path)
    for path in ("tests/test_notes.py", "app/notes.py", "tests/test_smoke.py"):
        ws.write(path, "def test_x():\n    pass\n")
    scope = task_scope(TASKS, task, feature_dir=FEATURE)
    assert scope is not None
    ran: list[list[str]] = []

    async def changed_files(paths: list[str]) -> set[str]:
        return changed & set(paths)

    async def run_tests(selection: list[str]) -> TestRun:
        ran.append(selection)
        return run

    result = await review_task(
        ws, scope, finish, tasks_text=TASKS, changed=changed_files, run_tests=run_tests
    )
    return result, ran


def test_scope_of_test_first_code_and_other_tasks() -> None:
    tests = task_scope(TASKS, "T002", feature_dir=FEATURE)
    code = task_scope(TASKS, "T003", feature_dir=FEATURE)
    docs = task_scope(TASKS, "T004", feature_dir=FEATURE)
    assert tests and tests.test_first and tests.implemented_by == ("T003",)
    # The code task runs its story's tests; the contract it cites is not a file to change.
    assert code and not code.test_first and code.concerned == ("tests/test_notes.py",)
    assert code.files == ("app/main.py", "app/notes.py")
    assert docs and docs.concerned == () and docs.files == ("README.md",)
    assert task_scope(TASKS, "T099", feature_dir=FEATURE) is None


async def test_a_named_file_left_unchanged_is_missing_evidence(tmp_path: Path) -> None:
    result, ran = await review(
        tmp_path, "T003", ImplementFinish(summary="s"), changed={"app/notes.py"}, run=run_of(3)
    )
    assert result.problem and "app/main.py, which is unchanged" in result.problem
    assert ran == []  # nothing runs before the files are right
    excused = ImplementFinish(
        summary="s",
        unchanged_files=[UnchangedFile(path="app/main.py", reason="registered already")],
    )
    result, ran = await review(tmp_path, "T003", excused, changed={"app/notes.py"}, run=run_of(3))
    assert (
        result.problem is None
        and result.evidence == "tests/test_notes.py: 3 passed, 0 failed, 0 errors"
    )
    assert ran == [["tests/test_notes.py"]]


async def test_a_code_task_with_red_tests_is_not_done(tmp_path: Path) -> None:
    files = {"app/notes.py", "app/main.py"}
    result, _ = await review(
        tmp_path, "T003", ImplementFinish(summary="s"), changed=files, run=run_of(2, 1, exit_code=1)
    )
    assert result.problem and "do not pass" in result.problem
    assert "Backforge verdict: FAIL (2 passed, 1 failed" in result.problem


async def test_pending_tests_must_name_a_later_open_task(tmp_path: Path) -> None:
    files = {"app/notes.py", "app/main.py"}
    red = run_of(2, 1, exit_code=1)
    later = ImplementFinish(
        summary="s", pending_tests=[PendingTest(test="tests/test_notes.py", task="T004")]
    )
    result, _ = await review(tmp_path, "T003", later, changed=files, run=red)
    assert result.problem is None and "pending on T004" in result.evidence
    done = ImplementFinish(
        summary="s", pending_tests=[PendingTest(test="tests/test_notes.py", task="T001")]
    )
    result, _ = await review(tmp_path, "T003", done, changed=files, run=red)
    assert result.problem and "T001 is not one" in result.problem


async def test_a_test_first_task_may_finish_red_only_while_a_later_task_implements(
    tmp_path: Path,
) -> None:
    finish = ImplementFinish(summary="s")
    red = run_of(0, 3, exit_code=1)
    result, _ = await review(tmp_path, "T002", finish, changed={"tests/test_notes.py"}, run=red)
    assert (
        result.problem is None
        and "red as expected" in result.evidence
        and "T003" in result.evidence
    )
    # Not importable yet (collection error, exit 2) is red from missing code too.
    result, _ = await review(
        tmp_path, "T002", finish, changed={"tests/test_notes.py"}, run=run_of(0, 0, 1, 2)
    )
    assert result.problem is None
    # No later task implements T005's tests: red is not accepted.
    result, _ = await review(tmp_path, "T005", finish, changed={"tests/test_smoke.py"}, run=red)
    assert result.problem and "no later open task" in result.problem


async def test_a_test_module_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write("tests/test_notes.py", "def test_x(:\n")
    scope = task_scope(TASKS, "T002", feature_dir=FEATURE)
    assert scope is not None

    async def changed(paths: list[str]) -> set[str]:
        return set(paths)

    async def run_tests(selection: list[str]) -> TestRun:
        raise AssertionError("not run")

    result = await review_task(
        ws,
        scope,
        ImplementFinish(summary="s"),
        tasks_text=TASKS,
        changed=changed,
        run_tests=run_tests,
    )
    assert result.problem and "tests/test_notes.py does not parse" in result.problem


async def test_changed_files_are_edits_deletions_and_new_files_that_are_not_ignored(
    tmp_path: Path,
) -> None:
    repo = user_repo(tmp_path / "repo")  # app.py and a .gitignore of *.log
    for name in ("old.py", "same.py"):
        (repo / name).write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "more")
    (repo / "app.py").write_text("print('v2')\n")  # status " M": the line starts with a space
    (repo / "old.py").unlink()
    (repo / "new").mkdir()
    (repo / "new" / "mod.py").write_text("y\n")
    (repo / "debug.log").write_text("ignored\n")
    paths = ["app.py", "old.py", "same.py", "new", "debug.log", "absent.py"]
    assert await changed_files(repo, paths) == {"app.py", "old.py", "new/mod.py"}
