"""Following a feature until it closes, and answering its open requests on the way.

``watch`` and ``start --wait`` follow and show each new request with how to
answer it; the demo also answers, at the terminal or (``--yes``) with the
default answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text

from cli.asking import ask_response
from cli.changes import HistoryWatch
from cli.connect import has_worker, query_status, rpc_error
from cli.errors import EXIT_FAILED, CliError, one_line
from cli.progress import ProgressView
from cli.render import console, print_request, render_request
from cli.responding import auto_response, describe_choice, responder, send_response
from cli.settings import Settings, worker_command
from contract import FeatureResult, FeatureStatus, HumanRequest, HumanResponse

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

__all__ = [
    "MIN_QUERY_INTERVAL",
    "NO_WORKER_RECHECK_S",
    "MAX_AUTO_ESCALATIONS",
    "StatusReader",
    "follow",
    "answer_open_request",
]

#: Fewest seconds between two ``status`` queries; changes in between are coalesced.
MIN_QUERY_INTERVAL = 2.0
#: While no worker answers, how often to ask the server (not a worker) whether one polls.
NO_WORKER_RECHECK_S = 5.0
#: Under --yes, escalations after this many are answered "abort" rather than "retry".
MAX_AUTO_ESCALATIONS = 3
AUTO_RESPONDER = "backforge-demo --yes"


class StatusReader:
    """Reads ``status`` after changes, at most once per ``MIN_QUERY_INTERVAL``.

    Args:
        client: For asking whether a worker polls ``task_queue``.
        handle: The feature workflow.
        settings: For hints.
        task_queue: The workflow's task queue.
    """

    def __init__(
        self,
        client: Client,
        handle: WorkflowHandle[Any, Any],
        settings: Settings,
        task_queue: str,
    ) -> None:
        self._client = client
        self._handle = handle
        self._settings = settings
        self._queue = task_queue
        self._last: float | None = None
        #: Queries sent (the cost of following, as the worker sees it).
        self.queries = 0
        #: The last query went unanswered; ``note`` says why.
        self.stale = False
        self.note = ""

    async def read(self, *, unless_done: asyncio.Future[Any] | None = None) -> FeatureStatus | None:
        """The current status, or None (``note`` says why) when no worker answered.

        Waits out the rest of ``MIN_QUERY_INTERVAL`` first, unless
        ``unless_done`` finishes meanwhile (then it queries at once).

        Raises:
            CliError: The workflow is gone (``NOT_FOUND``).
        """
        from temporalio.service import RPCError

        loop = asyncio.get_running_loop()
        if self._last is not None:
            delay = self._last + MIN_QUERY_INTERVAL - loop.time()
            if delay > 0:  # coalesce: everything that changes meanwhile is read at once
                if unless_done is not None:
                    await asyncio.wait({unless_done}, timeout=delay)
                else:
                    await asyncio.sleep(delay)
        self._last = loop.time()
        self.queries += 1
        try:
            status = await query_status(self._handle)
        except RPCError as err:
            raise rpc_error(err, self._settings, workflow_id=self._handle.id) from None
        self.stale = status is None
        if status is None:
            await self.explain()
        else:
            self.note = ""
        return status

    async def explain(self) -> bool:
        """Set ``note`` for an unanswered query; whether a worker polls the queue now."""
        polling = await has_worker(self._client, self._queue)
        self.note = (
            f"no worker is polling task queue {self._queue!r}; start one with '{worker_command()}'"
            if polling is False
            else "the workflow is not answering status queries yet..."
        )
        return polling is not False


async def _changed(
    watch: HistoryWatch, seen: int, done: asyncio.Future[Any], *, timeout: float | None
) -> int:
    """The watch's generation once it moves past ``seen``, ``done`` finishes, or ``timeout``."""
    change = asyncio.ensure_future(watch.wait(seen, timeout=timeout))
    await asyncio.wait({change, done}, return_when=asyncio.FIRST_COMPLETED)
    if not change.done():
        change.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await change
        return seen
    return change.result()


async def _wait_until_closed(reader: StatusReader, watch: HistoryWatch, request_id: str) -> None:
    """Return once ``request_id`` is no longer open (answered, timed out, workflow done).

    Reads the status only after the workflow's history changed.
    """
    seen = watch.generation
    while not watch.stopped:
        seen = await watch.wait(seen)
        status = await reader.read()
        if status is not None and all(r.id != request_id for r in status.open_requests):
            return


async def _ask_unless_answered_elsewhere(
    reader: StatusReader, watch: HistoryWatch, request: HumanRequest, who: str
) -> HumanResponse | None:
    """The person's response, or None if someone answered first (UI, another terminal)."""
    ask = asyncio.create_task(ask_response(request, who))
    closed = asyncio.create_task(_wait_until_closed(reader, watch, request.id))
    try:
        await asyncio.wait({ask, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (ask, closed):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if ask.done() and not ask.cancelled():
        return ask.result()
    return None


async def answer_open_request(
    handle: WorkflowHandle[Any, Any],
    request: HumanRequest,
    *,
    auto: bool,
    reader: StatusReader,
    watch: HistoryWatch,
    give_up: bool = False,
) -> None:
    """Show ``request``, get a response (terminal or ``--yes``) and send it until accepted.

    Raises:
        CliError: Exit 1 when ``--yes``'s default answer is rejected.
    """
    console.print(render_request(request))
    who = AUTO_RESPONDER if auto else responder()
    while True:
        if auto:
            response = auto_response(request, who, give_up=give_up)
            if give_up and request.kind == "escalation":
                console.print(
                    Text(
                        f"--yes: {MAX_AUTO_ESCALATIONS} escalations answered automatically "
                        "already; stopping instead of retrying again",
                        style="yellow",
                    )
                )
            console.print(Text(f"--yes: {describe_choice(request, response)}", style="green"))
        else:
            answered = await _ask_unless_answered_elsewhere(reader, watch, request, who)
            if answered is None:
                console.print(
                    Text(f"\n{request.id} was answered elsewhere; moving on.", style="dim")
                )
                return
            response = answered
        try:
            result = await send_response(handle, response)
        except CliError as err:
            console.print(Text(err.message, style="red"))
            status = await reader.read()
            if status is not None and all(r.id != request.id for r in status.open_requests):
                console.print(Text("The request is no longer open; moving on.", style="dim"))
                return
            if auto:
                raise CliError(
                    f"the recommended answer to {request.id} was rejected. Answer it yourself "
                    "(run without --yes)",
                    code=EXIT_FAILED,
                ) from None
            continue
        console.print(Text(f"✓ {result.message or 'accepted'}", style="green"))
        return


async def follow(
    client: Client,
    handle: WorkflowHandle[Any, FeatureResult],
    settings: Settings,
    *,
    answer: bool,
    auto: bool = False,
    task_queue: str | None = None,
    on_reader: Callable[[StatusReader], None] | None = None,
) -> tuple[FeatureResult, FeatureStatus | None]:
    """Show progress until the workflow closes; answer its requests when ``answer``.

    The status is read once at the start, then only after the workflow's history
    shows a change (``cli.changes.HistoryWatch``; at most one query per
    ``MIN_QUERY_INTERVAL``), and once at the end. A feature that waits for a
    person costs one pending long poll on the server and nothing on its worker.

    Args:
        client: The connected client.
        handle: The feature workflow.
        settings: For hints (how to answer) and the default task queue.
        answer: Answer each new request here (else show how to answer it).
        auto: Answer with the defaults (``--yes``) instead of asking.
        task_queue: The workflow's task queue, when it is not ``settings.task_queue``.
        on_reader: Called with the status reader once it exists (tests count its queries).

    Returns:
        The result and the last status seen.

    Raises:
        CliError: Exit 1 when the workflow fails, is cancelled or terminated, or
            the server stops answering.
    """
    from temporalio.client import WorkflowFailureError

    queue = task_queue or settings.task_queue
    result_task: asyncio.Task[FeatureResult] = asyncio.create_task(handle.result())
    reader = StatusReader(client, handle, settings, queue)
    if on_reader is not None:
        on_reader(reader)
    view = ProgressView(console, handle.id)
    handled: set[str] = set()
    escalations = 0
    view.start()
    try:
        async with HistoryWatch(handle) as watch:
            seen = await watch.caught_up()
            status = await reader.read()
            while not result_task.done():
                if status is None:
                    view.update(None, note=reader.note)
                else:
                    view.update(status)
                    fresh = [r for r in status.open_requests if r.id not in handled]
                    if fresh:
                        view.stop()
                        for request in fresh:
                            handled.add(request.id)
                            if not answer:
                                print_request(
                                    console, request, workflow_id=handle.id, settings=settings
                                )
                                continue
                            if request.kind == "escalation":
                                escalations += 1
                            await answer_open_request(
                                handle,
                                request,
                                auto=auto,
                                reader=reader,
                                watch=watch,
                                give_up=escalations > MAX_AUTO_ESCALATIONS,
                            )
                        view.start()
                # Wait for the history to change; with no worker answering, look on
                # the server every few seconds whether one has come back.
                timeout = NO_WORKER_RECHECK_S if reader.stale else None
                moved = await _changed(watch, seen, result_task, timeout=timeout)
                if result_task.done():
                    break
                if watch.stopped and not watch.closed:
                    raise _lost(handle.id, settings, watch.error())
                if moved == seen and not await reader.explain():
                    view.update(None, note=reader.note)
                    continue  # still no worker: nothing to ask
                seen = moved
                status = await reader.read(unless_done=result_task)
        # One last status so the display ends on the final state.
        final = await reader.read() if result_task.exception() is None else None
        if final is not None:
            view.update(final)
    finally:
        view.stop()
        if not result_task.done():
            result_task.cancel()
    try:
        return result_task.result(), view.status
    except WorkflowFailureError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause or err)
        raise CliError(
            f"workflow {handle.id} did not complete: {one_line(reason, 300)}", code=EXIT_FAILED
        ) from None


def _lost(workflow_id: str, settings: Settings, error: BaseException | None) -> CliError:
    """The error for a history long poll that stopped before the workflow closed."""
    from temporalio.service import RPCError

    if isinstance(error, RPCError):
        return rpc_error(error, settings, workflow_id=workflow_id)
    why = one_line(str(error), 160) if error is not None else "the server stopped answering"
    return CliError(f"lost track of {workflow_id}: {why}", code=EXIT_FAILED)
