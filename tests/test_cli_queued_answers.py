"""An answer sent while no worker runs: said at once, queued, applied when a worker returns."""

from __future__ import annotations

import time

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import Result

import cli.connect
from cli.connect import has_worker
from cli.errors import EXIT_QUEUED
from cli.responding import ACCEPT_TIMEOUT
from contract import FeatureStatus
from tests.support.cli_driver import address, invoke_async
from tests.support.fake_phases import Fakes, open_request, request, start
from tests.support.temporal import eventually, unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow


async def _gone(client: Client, queue: str) -> bool:
    return await has_worker(client, queue) is False


async def test_answer_with_no_worker_is_queued_at_once_and_applied_later(
    local_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that stopped long ago, without waiting minutes: its poller ages out fast.
    monkeypatch.setattr(cli.connect, "POLLER_FRESH_S", 0.5)
    fakes = Fakes(clarify=True)
    queue = unique("cli-queued")
    async with build_worker(
        local_env.client, task_queue=queue, activity_overrides=fakes.activities()
    ):
        handle = await start(local_env, fakes, request(), queue)
        clarify = await open_request(handle, "clarification")
    await eventually(lambda: _gone(local_env.client, queue))

    began = time.monotonic()
    result = await invoke_async(
        "--address", address(local_env), "answer", handle.id, clarify.id, "Q1=B", "Q2=A"
    )
    took = time.monotonic() - began
    assert result.exit_code == EXIT_QUEUED, result.output
    line = error_line_of(result)
    assert line.startswith(f"queued: {clarify.id}: no worker is polling task queue '{queue}'")
    assert "python worker.py" in line and f"status {handle.id}" in line
    assert took < 5, f"answering took {took:.1f}s with no worker"

    async with build_worker(
        local_env.client, task_queue=queue, activity_overrides=fakes.activities()
    ):
        assert (await handle.result()).state == "completed"
        status: FeatureStatus = await handle.query(BackendFeatureWorkflow.status)
    assert clarify.id in status.answered_requests and status.last_ignored_answer is None
    again = [c for c in fakes.calls if c.phase == "specify"][1]
    assert again.clarifications[0] == ("Duplicate URLs per user?", "Allow")


async def test_answer_to_a_worker_that_just_stopped_waits_a_bounded_time(
    local_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes(clarify=True)
    queue = unique("cli-queued-update")
    async with build_worker(
        local_env.client, task_queue=queue, activity_overrides=fakes.activities()
    ):
        handle = await start(local_env, fakes, request(), queue)
        clarify = await open_request(handle, "clarification")
    assert await has_worker(local_env.client, queue)  # still listed: it polled just now

    began = time.monotonic()
    result = await invoke_async(
        "--address", address(local_env), "answer", handle.id, clarify.id, "Q1=B", "Q2=A"
    )
    took = time.monotonic() - began
    assert result.exit_code == EXIT_QUEUED, result.output
    assert f"no worker took the answer to {clarify.id} within" in error_line_of(result)
    assert took < ACCEPT_TIMEOUT.total_seconds() + 10

    async with build_worker(
        local_env.client, task_queue=queue, activity_overrides=fakes.activities()
    ):
        assert (await handle.result()).state == "completed"
    again = [c for c in fakes.calls if c.phase == "specify"][1]
    assert again.clarifications[0] == ("Duplicate URLs per user?", "Allow")


def error_line_of(result: Result) -> str:
    """The one ``queued: ...`` line (``error_line`` checks for ``error:``)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("queued: "), lines
    return lines[0]
