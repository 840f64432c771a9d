"""Following a feature costs nothing while nothing happens.

``watch`` reads ``status`` after the workflow's history changes (a long poll on
the server), not on a timer: a feature that waits for a person gets no queries
at all, and the whole watch makes about one query per workflow task.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

import cli.follow
from tests.support.cli_driver import address, invoke_async
from tests.support.fake_phases import Fakes, open_request, request, respond, start
from tests.support.temporal import unique
from worker import build_worker

#: How long the feature waits for a person while ``watch`` follows it. Polling every
#: 0.4 s (the old follow loop) made 15 queries in this time.
IDLE_SECONDS = 6.0


async def _workflow_tasks(handle: Any) -> int:
    count = 0
    async for event in handle.fetch_history_events():
        count += event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    return count


async def test_watch_queries_follow_workflow_tasks_not_time(
    local_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries: list[str] = []
    original_query = cli.follow.query_status

    async def counted(handle: Any) -> Any:
        queries.append(handle.id)
        return await original_query(handle)

    monkeypatch.setattr(cli.follow, "query_status", counted)
    shown = threading.Event()  # set when watch prints the open request
    original_print = cli.follow.print_request

    def print_and_signal(*args: Any, **kwargs: Any) -> None:
        original_print(*args, **kwargs)
        shown.set()

    monkeypatch.setattr(cli.follow, "print_request", print_and_signal)

    fakes = Fakes(clarify=True)
    queue = unique("cli-watch-cost")
    async with build_worker(
        local_env.client, task_queue=queue, activity_overrides=fakes.activities()
    ):
        handle = await start(local_env, fakes, request(), queue)
        clarify = await open_request(handle, "clarification")
        watch = asyncio.create_task(
            invoke_async("--address", address(local_env), "watch", handle.id)
        )
        assert await asyncio.to_thread(shown.wait, 60), "watch never showed the open request"
        before_idle = len(queries)
        await asyncio.sleep(IDLE_SECONDS)  # the window measured: a person takes their time
        during_idle = len(queries) - before_idle
        assert not watch.done()
        await respond(handle, request_id=clarify.id, answers={"Q1": "A", "Q2": "A"})
        watched = await asyncio.wait_for(watch, timeout=120)
        tasks = await _workflow_tasks(handle)
    assert watched.exit_code == 0, watched.output
    assert "completed" in watched.stdout
    print(
        f"\nwatch: {len(queries)} status queries in all, {during_idle} while the feature "
        f"waited {IDLE_SECONDS:.0f}s for a person; {tasks} workflow tasks"
    )
    assert during_idle == 0
    # One query to begin with, at most one per workflow task (coalesced), one at the end.
    assert len(queries) <= tasks + 2
