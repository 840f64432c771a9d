"""Heartbeating an activity while it waits on bounded work (a sandboxed run, a push).

Model calls heartbeat on every streamed chunk (``activities.models.heartbeat``): a
stalled stream must stop the heartbeats. Work that is bounded by its own timeout
(the sandbox kills a run at its deadline) heartbeats on a timer instead, so the
activity's heartbeat timeout can be about a minute whatever the work takes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

__all__ = ["keep_alive", "BEAT_SECONDS"]

#: Seconds between timer heartbeats (well inside a one-minute heartbeat timeout).
BEAT_SECONDS = 5.0


@contextlib.asynccontextmanager
async def keep_alive(label: str, *, every: float = BEAT_SECONDS) -> AsyncIterator[None]:
    """Heartbeat ``label`` while the block runs (no-op outside an activity).

    Beats every ``every`` seconds, or four times per heartbeat timeout if that is shorter.
    """
    if not activity.in_activity():
        yield
        return
    timeout = activity.info().heartbeat_timeout
    if timeout:
        every = min(every, timeout.total_seconds() / 4)

    async def beat() -> None:
        while True:
            activity.heartbeat(label)
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
