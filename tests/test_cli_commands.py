"""The commands against a real server, the program name in hints, and start-up cost.

Server tests use the real dev server (``local_env``) and a stand-in workflow
registered under the name ``BackendFeatureWorkflow`` so the CLI's query, update
and list paths are exercised without the model pipeline.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import cli
import cli.follow
from contract import (
    SA_AWAITING_HUMAN,
    SA_FEATURE,
    SA_PHASE,
    FeatureRequest,
    FeatureResult,
    FeatureStatus,
    HumanResponse,
    RespondResult,
)
from tests.support.cli_driver import (
    CLOSED,
    MODEL,
    address,
    error_line,
    invoke,
    invoke_async,
    make_git_repo,
)
from tests.support.cli_stand_in import StandInFeatureWorkflow
from tests.support.temporal import unique

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    return make_git_repo(tmp_path / "repo")


# ----------------------------------------------------------------- the package


def test_package_front_page_exports_app_and_main() -> None:
    assert cli.__all__ == ["app", "main"]
    assert callable(cli.main)
    assert "commands" in (cli.__doc__ or "") and "render" in (cli.__doc__ or "")


def _run(
    argv: list[str], *, path: str | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "60"}
    env.pop("TEMPORAL_ADDRESS", None)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, **kwargs)


def _typed(path: Path, cwd: Path) -> str:
    """How a person in ``cwd`` types ``path`` (relative below it, else absolute)."""
    absolute = Path(os.path.abspath(path))
    return str(absolute.relative_to(cwd)) if absolute.is_relative_to(cwd) else str(absolute)


def test_hints_name_the_command_the_user_ran(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    backforge = bin_dir / "backforge"
    if not backforge.exists():
        pytest.skip("the backforge console script is not installed (pip install -e .)")
    active = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"  # the venv activated
    inactive = f"/usr/bin{os.pathsep}/bin"  # the venv's binaries run by path
    answer = ["answer", "feature-x", "r-1"]
    runs = {
        "python starter.py": _run([sys.executable, "starter.py", *answer], cwd=ROOT, path=active),
        f"{_typed(Path(sys.executable), ROOT)} starter.py": _run(
            [sys.executable, "starter.py", *answer], cwd=ROOT, path=inactive
        ),
        "backforge": _run([str(backforge), *answer], cwd=tmp_path, path=active),
        str(backforge): _run([str(backforge), *answer], cwd=tmp_path, path=inactive),
    }
    for name, proc in runs.items():
        assert proc.returncode == 2, proc.stderr
        # One line even at 60 columns: hints are never wrapped mid-command.
        assert proc.stderr.strip() == (
            "error: no answers given. Pass QUESTION_ID=ANSWER for each question, e.g. Q1=B; "
            f"'{name} status feature-x' lists the questions"
        )
    usage = _run([str(backforge), "--help"], cwd=tmp_path, path=active)
    assert usage.returncode == 0 and "Usage: backforge" in usage.stdout
    assert "backforge demo" in usage.stdout


def test_help_and_status_do_not_import_activities_markdown_or_worker() -> None:
    probe = (
        "import sys\n"
        "from cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('activities', 'worker', 'rich.markdown', 'markdown_it',"
        " 'workflows.backend_feature') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    for args in (["--help"], ["--address", CLOSED, "status", "feature-x"]):
        proc = _run([sys.executable, "-c", probe, *args], cwd=ROOT)
        assert "HEAVY []" in proc.stdout, (args, proc.stdout, proc.stderr)


def test_unreachable_server_is_one_line_naming_address_and_fix() -> None:
    result = invoke("--address", CLOSED, "status", "feature-x")
    assert result.exit_code == 1
    line = error_line(result)
    assert CLOSED in line and "python worker.py --dev" in line


# ------------------------------------------------------------ against a real server


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["watch"],
        ["answer", "{id}", "clarify-1", "Q1=B"],
        ["approve", "{id}", "approve-spec-2"],
        ["reject", "{id}", "approve-spec-2", "--comment", "add paging"],
    ],
)
async def test_unknown_workflow_id(local_env: WorkflowEnvironment, command: list[str]) -> None:
    wid = unique("feature-missing")
    args = [a.replace("{id}", wid) for a in command]
    if "{id}" not in command:
        args.insert(1, wid)
    result = await invoke_async("--address", address(local_env), *args)
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert f"no feature workflow with id '{wid}'" in line
    assert f"'python starter.py --address {address(local_env)} list'" in line


async def test_id_of_another_workflow_type_is_not_a_feature(local_env: WorkflowEnvironment) -> None:
    wid = unique("other")
    handle = await local_env.client.start_workflow(
        "SomethingElseWorkflow", id=wid, task_queue=unique("nobody")
    )
    try:
        result = await invoke_async("--address", address(local_env), "status", wid)
        assert result.exit_code == 2
        line = error_line(result)
        assert f"'{wid}'" in line and "SomethingElseWorkflow" in line
    finally:
        await handle.terminate()


async def _first_input(handle: WorkflowHandle) -> FeatureRequest:
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        return handle._client.data_converter.payload_converter.from_payloads(
            payloads, [FeatureRequest]
        )[0]
    raise AssertionError("no history")


async def test_start_sets_id_summary_details_and_search_attributes(
    local_env: WorkflowEnvironment, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(git_repo.parent)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    queue = unique("no-worker")
    feature = "Build a bookmarks API with tags and per-user collections"
    result = await invoke_async(
        "--address", address(local_env), "--task-queue", queue,
        "start", feature, "--repo", "repo", *MODEL, "--gates", "spec, delivery", "--budget-usd", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    wid = re.search(r"feature-build-a-bookmarks-api-with-tags-and-per-[0-9a-f]{6}", result.stdout)
    assert wid, result.stdout
    assert "no worker is polling" in result.stdout
    # The model's key is not in this environment: said, and that the worker's is what counts.
    assert "note: OPENAI_API_KEY is not set in this terminal. The worker reads it" in result.stdout
    # The follow-up commands are whole lines, even at rich's 80 columns for a pipe.
    prefix = f"python starter.py --address {address(local_env)}"
    assert f"Follow it:  {prefix} watch {wid.group(0)}\n" in result.stdout
    assert f"Status:     {prefix} status {wid.group(0)}\n" in result.stdout
    handle = local_env.client.get_workflow_handle(wid.group(0))
    try:
        desc = await handle.describe()
        assert desc.workflow_type == "BackendFeatureWorkflow"
        assert desc.task_queue == queue
        assert desc.typed_search_attributes.get(SA_FEATURE) == feature
        assert desc.typed_search_attributes.get(SA_PHASE) == "starting"
        assert desc.typed_search_attributes.get(SA_AWAITING_HUMAN) is False
        assert await desc.static_summary() == feature
        details = await desc.static_details()
        assert details is not None
        assert feature in details and str(git_repo) in details and "spec, delivery" in details
        request = await _first_input(handle)
        assert request.repo_path == str(git_repo)  # made absolute
        assert request.gates == ["spec", "delivery"] and request.budget_usd == 3

        # The workflow is running but no worker polls its queue: the answer is queued.
        answer = await invoke_async(
            "--address", address(local_env), "approve", handle.id, "approve-spec-1"
        )
        assert answer.exit_code == 3
        assert answer.stderr.startswith(
            f"queued: approve-spec-1: no worker is polling task queue '{queue}'"
        )
    finally:
        await handle.terminate()


async def test_status_answer_approve_list_and_watch(
    local_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = unique("cli-stand-in")
    addr = address(local_env)
    async with Worker(
        local_env.client,
        task_queue=queue,
        workflows=[StandInFeatureWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await local_env.client.start_workflow(
            "BackendFeatureWorkflow",
            FeatureRequest(feature="stand-in feature", repo_path="/tmp/x"),
            id=unique("feature-stand-in"),
            task_queue=queue,
            result_type=FeatureResult,
            execution_timeout=timedelta(minutes=2),
        )
        wid = handle.id

        result = await invoke_async("--address", addr, "status", wid, "--json")
        assert result.exit_code == 0, result.output
        status = FeatureStatus.model_validate(json.loads(result.stdout))
        assert [r.id for r in status.open_requests] == [
            "clarify-1",
            "approve-spec-2",
            "approve-plan-3",
        ]

        result = await invoke_async("--address", addr, "status", wid)
        assert result.exit_code == 0, result.output
        assert "Open requests (3)" in result.stdout
        assert "Q1=B" in result.stdout and "Shareable by link" in result.stdout
        assert f"python starter.py --address {addr} approve {wid} approve-spec-2\n" in result.stdout

        # Rejected by the update validator: reason shown, exit 1, request stays open.
        result = await invoke_async("--address", addr, "answer", wid, "clarify-1", "Q1=Z")
        assert result.exit_code == 1
        line = error_line(result)
        assert "unknown option 'Z'" in line and "choose one of A, B" in line

        # The wrong command for the kind of request points at the right one.
        result = await invoke_async("--address", addr, "approve", wid, "clarify-1")
        assert result.exit_code == 2
        line = error_line(result)
        assert "clarify-1 is a clarification request. Answer it with: python starter.py" in line
        assert f"--address {addr} answer {wid} clarify-1 Q1=B" in line
        result = await invoke_async("--address", addr, "answer", wid, "approve-spec-2", "Q1=A")
        assert result.exit_code == 2
        assert f"approve {wid} approve-spec-2" in error_line(result)

        result = await invoke_async("--address", addr, "list", "--awaiting")
        assert result.exit_code == 0, result.output
        assert wid in result.stdout

        # Option keys are matched case-insensitively against the open request.
        result = await invoke_async("--address", addr, "answer", wid, "clarify-1", "Q1=b")
        assert result.exit_code == 0, result.output
        assert "clarify-1 answered" in result.stdout

        result = await invoke_async("--address", addr, "answer", wid, "clarify-1", "Q1=B")
        assert result.exit_code == 1
        assert "no open request 'clarify-1'" in error_line(result)

        result = await invoke_async(
            "--address", addr, "approve", wid, "approve-spec-2", "--comment", "ok"
        )
        assert result.exit_code == 0, result.output
        assert "approve-spec-2 answered" in result.stdout

        # watch follows while a request is open, shows how to answer, ends with the result.
        # (The last answer goes through the client: CliRunner cannot run twice at once.)
        shown = threading.Event()  # set when watch prints the open request
        original = cli.follow.print_request

        def print_and_signal(*args: Any, **kwargs: Any) -> None:
            original(*args, **kwargs)
            shown.set()

        monkeypatch.setattr(cli.follow, "print_request", print_and_signal)
        watch = asyncio.create_task(invoke_async("--address", addr, "watch", wid))
        assert await asyncio.to_thread(shown.wait, 60), "watch never showed the open request"
        assert not watch.done()
        await handle.execute_update(
            "respond",
            HumanResponse(request_id="approve-plan-3", approved=True),
            result_type=RespondResult,
        )
        watched = await asyncio.wait_for(watch, timeout=60)
        assert watched.exit_code == 0, watched.output
        assert "Approve the plan?" in watched.stdout
        assert f"approve {wid} approve-plan-3" in watched.stdout
        assert "completed" in watched.stdout and "001-bookmarks" in watched.stdout

        assert (await handle.result()).state == "completed"
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        result = await invoke_async("--address", addr, "approve", wid, "approve-plan-3")
        assert result.exit_code == 1
        assert "completed" in error_line(result)

    # With the worker gone, status of the completed feature falls back to its result.
    result = await invoke_async("--address", addr, "status", wid, "--json")
    assert result.exit_code == 0, result.output
    status = FeatureStatus.model_validate(json.loads(result.stdout))
    assert status.state == "completed" and status.branch == "001-bookmarks"
    assert status.phase == "done"
