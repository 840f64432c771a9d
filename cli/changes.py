"""Knowing when a feature's state may have changed, without asking its worker.

A workflow's state (what the ``status`` query returns) changes only when a
workflow task completes, and every completed workflow task is written to its
history. ``HistoryWatch`` long-polls that history on the server
(``GetWorkflowExecutionHistory`` with ``wait_new_event``): the server answers
when new events arrive, no worker is involved and the history does not grow.
Followers query ``status`` only after a change, so watching an idle feature
costs one pending RPC, not a query every fraction of a second.

A busy feature writes events in bursts (a workflow task, then an activity's
scheduled/started/completed, a search attribute upsert, ...), and every poll
answered early is one more read of the history on the server. So the watch lets
new events settle for ``SETTLE_S`` before it polls again: a burst costs one page,
and what a person sees lags by at most that.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import WorkflowHandle

__all__ = ["state_events", "HistoryWatch", "SETTLE_S"]

#: Seconds between one page of new history and the next long poll (bursts coalesce).
SETTLE_S = 2.0


@functools.cache
def state_events() -> frozenset[int]:
    """Events after which ``status`` may answer differently (a workflow task, the close)."""
    from temporalio.api.enums.v1 import EventType  # lazy: keeps --help fast

    return frozenset(
        {
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        }
    )


class HistoryWatch:
    """A change counter for one workflow, driven by its history's long poll.

    Use as an async context manager; ``generation`` grows by one for every page
    of new history events that holds a completed workflow task or the close
    event. Waiters compare it with the generation they last saw.

    Args:
        handle: The workflow to watch.
        settle: Seconds to let new events gather after a page before polling again
            (``SETTLE_S``; 0 polls at once, for programs that answer as fast as they can).
    """

    def __init__(self, handle: WorkflowHandle[Any, Any], *, settle: float = SETTLE_S) -> None:
        self._handle = handle
        self._settle = settle
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()
        #: How many changes were seen so far.
        self.generation = 0
        #: Pages fetched (each one long poll at most), for tests and curiosity.
        self.pages = 0
        #: The close event was seen: the workflow will not change any more.
        self.closed = False

    async def __aenter__(self) -> HistoryWatch:
        self._task = asyncio.create_task(self._follow(), name=f"history-watch {self._handle.id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        events = self._handle.fetch_history_events(wait_new_event=True, skip_archival=True)
        wanted = state_events()
        try:
            while True:
                await events.fetch_next_page()
                self.pages += 1
                page = events.current_page or []
                if self._caught_up.is_set() and any(e.event_type in wanted for e in page):
                    await self._bump()
                self._caught_up.set()  # the history so far: what a first read sees anyway
                if events.next_page_token is None:  # the close event was the last page
                    self.closed = True
                    return
                if self._settle and page:
                    await asyncio.sleep(self._settle)  # rate limit: bursts coalesce
        finally:
            self._caught_up.set()
            await self._bump()  # wake waiters: closed, failed or cancelled

    async def caught_up(self) -> int:
        """Wait for the first page of history (what is there already); the generation.

        A status read after this sees everything that page held, so only later
        pages count as changes.
        """
        await self._caught_up.wait()
        return self.generation

    async def _bump(self) -> None:
        async with self._changed:
            self.generation += 1
            self._changed.notify_all()

    @property
    def stopped(self) -> bool:
        """The long poll ended: the workflow closed, or the server could not be reached."""
        return self._task is not None and self._task.done()

    def error(self) -> BaseException | None:
        """Why the long poll stopped early (None while it runs, or after a close)."""
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return None
        return task.exception()

    async def wait(self, seen: int, *, timeout: float | None = None) -> int:
        """Wait until ``generation`` differs from ``seen`` (or ``timeout``); the new value.

        Returns at once when the watch has stopped, so callers never wait on a
        history that can no longer change.
        """
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.generation != seen or self.stopped),
                    timeout,
                )
            return self.generation
