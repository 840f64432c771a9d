"""The command line: local validation, answer parsing, and commands against a real server.

Validation tests point ``--address`` at a closed port: getting the validation
error (exit code 2) instead of "cannot reach Temporal" proves nothing was sent.
Server tests use the real dev server (``local_env``) and a stand-in workflow
registered under the name ``BackendFeatureWorkflow`` so the CLI's query, update
and list paths are exercised without the model pipeline.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from typer.testing import CliRunner, Result

import starter
from starter import CliError, app, derive_workflow_id, parse_answers
from workflows.types import (
    SA_AWAITING_HUMAN,
    SA_FEATURE,
    SA_PHASE,
    FeatureRequest,
    FeatureResult,
    FeatureStatus,
    HumanOption,
    HumanQuestion,
    HumanRequest,
    HumanResponse,
    PhaseRecord,
    RespondResult,
)

CLOSED = "127.0.0.1:1"  # nothing listens here: any server contact fails
#: A model id that validates offline (no transcript file, no key needed to start).
MODEL = ("--model", "openai:gpt-5")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


async def invoke_async(*args: str) -> Result:
    """Run the CLI in a thread: it calls asyncio.run, and our loop serves the worker."""
    return await asyncio.to_thread(invoke, *args)


def error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


# --------------------------------------------------------------- local validation


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    starter.create_demo_repo(repo)
    return repo


@pytest.mark.parametrize(
    ("feature", "problem", "fix"),
    [
        ("", "empty", "describe the feature"),
        ("   \n ", "empty", "describe the feature"),
        ("x" * 5000, "5000 characters", "keep it to a few sentences"),
    ],
)
def test_start_rejects_bad_feature_text(
    git_repo: Path, feature: str, problem: str, fix: str
) -> None:
    result = invoke("--address", CLOSED, "start", feature, "--repo", str(git_repo))
    assert result.exit_code == 2
    line = error_line(result).lower()
    assert problem in line and fix in line
    assert "cannot reach" not in line
    assert result.stdout == ""


def test_start_rejects_bad_agent_limits(git_repo: Path) -> None:
    result = invoke(
        "--address", CLOSED, "start", "Build a todo API", "--repo", str(git_repo),
        "--agent-max-turns", "0",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--agent-max-turns" in error_line(result) and "cannot reach" not in error_line(result)


def test_start_rejects_unknown_model(git_repo: Path) -> None:
    result = invoke(
        "--address",
        CLOSED,
        "start",
        "Build a todo API",
        "--repo",
        str(git_repo),
        "--model",
        "foo:bar",
    )
    assert result.exit_code == 2
    line = error_line(result)
    assert "'foo:bar'" in line and "anthropic:" in line and "openai:" in line


def test_start_rejects_unknown_phase_model(git_repo: Path) -> None:
    result = invoke(
        "--address",
        CLOSED,
        "start",
        "Build a todo API",
        "--repo",
        str(git_repo),
        *MODEL,
        "--phase-model",
        "tasks=nope:x",
    )
    assert result.exit_code == 2
    assert "--phase-model tasks" in error_line(result)
    result = invoke(
        "--address",
        CLOSED,
        "start",
        "Build a todo API",
        "--repo",
        str(git_repo),
        *MODEL,
        "--phase-model",
        "deploy=openai:gpt-5-mini",
    )
    assert result.exit_code == 2
    assert "unknown phase 'deploy'" in error_line(result)


def test_start_rejects_repo_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("hello")
    result = invoke("--address", CLOSED, "start", "Build a todo API", "--repo", str(file), *MODEL)
    assert result.exit_code == 2
    line = error_line(result)
    assert str(file) in line and "file" in line and "directory" in line


def test_start_rejects_non_git_directory(tmp_path: Path) -> None:
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "data.csv").write_text("a,b\n")
    result = invoke("--address", CLOSED, "start", "Build a todo API", "--repo", str(folder), *MODEL)
    assert result.exit_code == 2
    line = error_line(result)
    assert "not a git repository" in line and "git init" in line


def test_start_rejects_unknown_gate(git_repo: Path) -> None:
    result = invoke(
        "--address",
        CLOSED,
        "start",
        "Build a todo API",
        "--repo",
        str(git_repo),
        *MODEL,
        "--gates",
        "spec,deploy",
    )
    assert result.exit_code == 2
    line = error_line(result)
    assert "'deploy'" in line and "spec, plan, delivery" in line


def test_valid_start_reaches_for_the_server_and_names_it(git_repo: Path) -> None:
    # Control for the tests above: with valid arguments the closed port is hit.
    result = invoke(
        "--address", CLOSED, "start", "Build a todo API", "--repo", str(git_repo), *MODEL
    )
    assert result.exit_code == 1
    line = error_line(result)
    assert CLOSED in line and "python worker.py --dev" in line


def test_malformed_answer_and_missing_reject_comment_fail_before_contact() -> None:
    result = invoke("--address", CLOSED, "answer", "feature-x", "clarify-1", "Q1B")
    assert result.exit_code == 2
    assert "QUESTION_ID=ANSWER" in error_line(result)
    result = invoke("--address", CLOSED, "reject", "feature-x", "approve-spec-2")
    assert result.exit_code == 2
    assert "--comment" in error_line(result)


# ------------------------------------------------------------- pure helpers


def test_parse_answers() -> None:
    assert parse_answers(["Q1=B", "Q2= per-user, private = default ", "q3=a"]) == {
        "Q1": "B",
        "Q2": "per-user, private = default",
        "q3": "a",
    }
    for bad, expected in [
        ("Q1B", "QUESTION_ID=ANSWER"),
        ("=B", "QUESTION_ID=ANSWER"),
        ("1=B", "QUESTION_ID=ANSWER"),
        ("Q1=", "is empty"),
        ("Q1=  ", "is empty"),
    ]:
        with pytest.raises(CliError, match=re.escape(expected)) as info:
            parse_answers([bad])
        assert info.value.code == 2
    with pytest.raises(CliError, match="answered twice"):
        parse_answers(["Q1=A", "Q1=B"])


def test_workflow_id_from_feature() -> None:
    feature = "Build a bookmarks API with tags and per-user collections"
    wid = derive_workflow_id(feature, "/tmp/repo", now_ns=1)
    match = re.fullmatch(r"feature-([a-z0-9-]+)-([0-9a-f]{6})", wid)
    assert match, wid
    assert match.group(1) == "build-a-bookmarks-api-with-tags-and-per"
    assert len(match.group(1)) <= 40
    assert derive_workflow_id(feature, "/tmp/repo", now_ns=2) != wid
    assert derive_workflow_id(feature, "/tmp/other", now_ns=1) != wid
    assert derive_workflow_id("Añadir API de marcadores", "/r").startswith(
        "feature-anadir-api-de-marcadores-"
    )
    assert derive_workflow_id("书签 API", "/r").startswith("feature-api-")
    assert derive_workflow_id("日本語", "/r").startswith("feature-request-")


def test_demo_repo_has_readme_committed_on_main(tmp_path: Path) -> None:
    repo = tmp_path / "demo"
    assert starter.create_demo_repo(repo) == "main"
    git = ["git", "-C", str(repo)]
    assert (
        subprocess.run(
            [*git, "branch", "--show-current"], capture_output=True, text=True
        ).stdout.strip()
        == "main"
    )
    log = subprocess.run(
        [*git, "log", "--format=%s", "--name-only"], capture_output=True, text=True
    ).stdout
    assert "README.md" in log
    assert (
        subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == ""
    )


def _clarification() -> HumanRequest:
    return HumanRequest(
        id="clarify-1",
        kind="clarification",
        phase="specify",
        title="Two questions about the bookmarks API",
        body="See [NEEDS CLARIFICATION] markers in spec.md.",
        questions=[
            HumanQuestion(
                id="Q1",
                text="Are collections private?",
                options=[
                    HumanOption(key="A", answer="Private", implications="no sharing"),
                    HumanOption(key="B", answer="Shareable by link", implications="token table"),
                ],
                recommended="B",
            )
        ],
    )


def test_request_rendering_shows_options_recommendation_and_how_to_answer() -> None:
    settings = starter.Settings(
        address="localhost:7233", namespace="default", task_queue="backforge"
    )
    out = Console(record=True, width=120)
    starter.print_request(out, _clarification(), "feature-x-abc123", settings)
    text = out.export_text()
    assert "[NEEDS CLARIFICATION]" in text  # user text is not taken as rich markup
    assert "Shareable by link" in text and "token table" in text
    assert "recommended: B" in text
    assert "python starter.py answer feature-x-abc123 clarify-1 Q1=B" in text

    approval = HumanRequest(
        id="approve-spec-2", kind="approval", phase="spec", title="Approve the spec?"
    )
    remote = starter.Settings(
        address="temporal.internal:7233", namespace="default", task_queue="backforge"
    )
    how = starter.how_to_answer(approval, "feature-x-abc123", remote)
    assert (
        "python starter.py --address temporal.internal:7233 approve feature-x-abc123 approve-spec-2"
        in how
    )
    assert "reject feature-x-abc123 approve-spec-2 --comment" in how


def test_recommended_response_for_yes() -> None:
    response = starter.recommended_response(_clarification(), "ci")
    assert response.answers == {"Q1": "B"}
    approval = HumanRequest(id="approve-spec-2", kind="approval", phase="spec", title="Approve?")
    assert starter.recommended_response(approval, "ci").approved is True
    escalation = HumanRequest(
        id="escalate-5",
        kind="escalation",
        phase="implement",
        title="T003 failed after its retries",
        questions=[
            HumanQuestion(
                id="Q1",
                text="How should the pipeline proceed?",
                options=[
                    HumanOption(key="retry", answer="Retry"),
                    HumanOption(key="abort", answer="Stop"),
                ],
                recommended="retry",
                allow_free_text=False,
            )
        ],
    )
    assert starter.recommended_response(escalation, "ci").answers == {"Q1": "retry"}
    # After several automatic retries an unattended run stops instead of looping.
    assert starter.recommended_response(escalation, "ci", give_up=True).answers == {"Q1": "abort"}


def test_phase_marks_understand_task_suffix() -> None:
    status = FeatureStatus(workflow_id="w", feature="f", state="running", phase="implement T003")
    status.completed = [
        starter_record("constitution"),
        starter_record("specify"),
        starter_record("plan"),
        starter_record("tasks"),
        starter_record("implement"),
    ]
    marks = starter._phase_marks(status)
    assert marks["tasks"] == "done"
    assert marks["implement"] == "current"
    assert marks["test"] == "pending"


def starter_record(phase: str) -> PhaseRecord:
    return PhaseRecord(phase=phase, commit="0" * 40)


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
    assert "list" in line and "python starter.py" in line


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


async def test_start_sets_id_summary_details_and_search_attributes(
    local_env: WorkflowEnvironment, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(git_repo.parent)
    queue = unique("no-worker")
    feature = "Build a bookmarks API with tags and per-user collections"
    result = await invoke_async(
        "--address",
        address(local_env),
        "--task-queue",
        queue,
        "start",
        feature,
        "--repo",
        "repo",
        *MODEL,
        "--gates",
        "spec, delivery",
        "--budget-usd",
        "3",
    )
    assert result.exit_code == 0, result.output
    wid = re.search(r"feature-build-a-bookmarks-api-with-tags-and-per-[0-9a-f]{6}", result.stdout)
    assert wid, result.stdout
    assert "no worker is polling" in result.stdout
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

        # The workflow is running but no worker polls its queue: answering says so.
        answer = await invoke_async(
            "--address", address(local_env), "approve", handle.id, "approve-spec-1"
        )
        assert answer.exit_code == 1
        assert f"no worker is polling task queue '{queue}'" in error_line(answer)
    finally:
        await handle.terminate()


async def _first_input(handle: WorkflowHandle) -> FeatureRequest:
    async for event in handle.fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        payloads = attrs.input.payloads
        return handle._client.data_converter.payload_converter.from_payloads(
            payloads, [FeatureRequest]
        )[0]
    raise AssertionError("no history")


# A stand-in with the real workflow's name and interface: one clarification and
# two approvals open from the start; completes when both are answered.
@workflow.defn(name="BackendFeatureWorkflow")
class StandInFeatureWorkflow:
    def __init__(self) -> None:
        self.open: dict[str, HumanRequest] = {}

    @workflow.run
    async def run(self, request: FeatureRequest) -> FeatureResult:
        self.open = {
            "clarify-1": _clarification(),
            "approve-spec-2": HumanRequest(
                id="approve-spec-2", kind="approval", phase="spec", title="Approve the spec?"
            ),
            "approve-plan-3": HumanRequest(
                id="approve-plan-3", kind="approval", phase="plan", title="Approve the plan?"
            ),
        }
        workflow.upsert_search_attributes(
            [SA_PHASE.value_set("specify"), SA_AWAITING_HUMAN.value_set(True)]
        )
        await workflow.wait_condition(lambda: not self.open)
        workflow.upsert_search_attributes(
            [SA_PHASE.value_set("done"), SA_AWAITING_HUMAN.value_set(False)]
        )
        return FeatureResult(
            workflow_id=workflow.info().workflow_id,
            state="completed",
            branch="001-bookmarks",
            head_commit="1234567890",
            message="stand-in done",
        )

    @workflow.query
    def status(self) -> FeatureStatus:
        return FeatureStatus(
            workflow_id=workflow.info().workflow_id,
            feature="stand-in",
            state="waiting" if self.open else "completed",
            phase="specify",
            open_requests=list(self.open.values()),
        )

    @workflow.update(name="respond")
    def respond(self, response: HumanResponse) -> RespondResult:
        del self.open[response.request_id]
        return RespondResult(
            request_id=response.request_id, accepted=True, message=f"{response.request_id} answered"
        )

    @respond.validator
    def check(self, response: HumanResponse) -> None:
        request = self.open.get(response.request_id)
        if request is None:
            raise ValueError(f"no open request {response.request_id!r}")
        if request.kind == "approval":
            if response.approved is None:
                raise ValueError("answer with approved=true or approved=false")
            return
        for question in request.questions:
            keys = [o.key for o in question.options]
            answer = response.answers.get(question.id)
            if answer not in keys:
                raise ValueError(
                    f"{question.id}: unknown option {answer!r}; choose one of {', '.join(keys)}"
                )


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
        original = starter.print_request

        def print_and_signal(*args: Any, **kwargs: Any) -> None:
            original(*args, **kwargs)
            shown.set()

        monkeypatch.setattr(starter, "print_request", print_and_signal)
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
