"""HistoryWatch: a change per page of state events, and bursts of events coalesce."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

import cli.changes as changes
from cli.changes import SETTLE_S, HistoryWatch


@dataclass
class _Event:
    event_type: int


class _Pages:
    """A stand-in for ``fetch_history_events``: pages handed out one by one, at once."""

    def __init__(self, pages: list[list[_Event]]) -> None:
        self._pages = pages
        self.current_page: list[_Event] | None = None
        self.next_page_token: bytes | None = b"more"

    async def fetch_next_page(self) -> None:
        self.current_page = self._pages.pop(0)
        self.next_page_token = b"more" if self._pages else None


class _Handle:
    id = "wf-stand-in"

    def __init__(self, pages: list[list[_Event]]) -> None:
        self.pages = _Pages(pages)

    def fetch_history_events(self, **_: Any) -> _Pages:
        return self.pages


TASK = _Event(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
OTHER = _Event(EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
CLOSE = _Event(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)


@pytest.mark.parametrize("settle", [SETTLE_S, 0.0])
async def test_the_watch_lets_events_settle_between_polls(
    settle: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(changes.asyncio, "sleep", sleep)
    handle = _Handle([[TASK], [OTHER], [TASK, OTHER], [CLOSE]])
    async with HistoryWatch(handle, settle=settle) as watch:  # type: ignore[arg-type]
        await watch.caught_up()
        while not watch.stopped:
            await watch.wait(watch.generation)
    assert watch.closed and watch.pages == 4
    # the first page is what is there already; then a task page and the close (+1 at the end)
    assert watch.generation == 3
    assert waits == ([settle] * 3 if settle else [])
    assert SETTLE_S >= 0.5  # a person's view: one history read per burst, not per event
