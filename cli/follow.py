"""Following a feature until it closes, and answering its open requests on the way.

``watch`` and ``start --wait`` follow and show each new request with how to
answer it; the demo also answers, at the terminal or (``--yes``) with the
default answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from rich.text import Text

from cli.asking import ask_response
from cli.connect import has_worker, query_status, rpc_error
from cli.errors import EXIT_FAILED, CliError, one_line
from cli.progress import ProgressView
from cli.render import console, print_request, render_request
from cli.responding import auto_response, describe_choice, responder, send_response
from cli.settings import WORKER_COMMAND, Settings
from contract import FeatureResult, FeatureStatus, HumanRequest, HumanResponse

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

__all__ = ["POLL_SECONDS", "MAX_AUTO_ESCALATIONS", "follow", "answer_open_request"]

#: How often the live display asks the workflow for its status (UI refresh only).
POLL_SECONDS = 0.4
#: How often a pending prompt checks whether its request was answered elsewhere.
ELSEWHERE_POLL_SECONDS = 1.0
#: Under --yes, escalations after this many are answered "abort" rather than "retry".
MAX_AUTO_ESCALATIONS = 3
AUTO_RESPONDER = "backforge-demo --yes"


async def _wait_until_closed(handle: WorkflowHandle[Any, Any], request_id: str) -> None:
    """Return once ``request_id`` is no longer open (answered, timed out, workflow done)."""
    from temporalio.service import RPCError

    while True:
        await asyncio.sleep(ELSEWHERE_POLL_SECONDS)
        try:
            status = await query_status(handle)
        except RPCError:
            continue
        if status is not None and all(r.id != request_id for r in status.open_requests):
            return


async def _ask_unless_answered_elsewhere(
    handle: WorkflowHandle[Any, Any], request: HumanRequest, who: str
) -> HumanResponse | None:
    """The person's response, or None if someone answered first (UI, another terminal)."""
    ask = asyncio.create_task(ask_response(request, who))
    closed = asyncio.create_task(_wait_until_closed(handle, request.id))
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
    handle: WorkflowHandle[Any, Any], request: HumanRequest, *, auto: bool, give_up: bool = False
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
            answered = await _ask_unless_answered_elsewhere(handle, request, who)
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
            status = await query_status(handle)
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
) -> tuple[FeatureResult, FeatureStatus | None]:
    """Show progress until the workflow closes; answer its requests when ``answer``.

    Args:
        client: The connected client.
        handle: The feature workflow.
        settings: For hints (how to answer) and the default task queue.
        answer: Answer each new request here (else show how to answer it).
        auto: Answer with the defaults (``--yes``) instead of asking.
        task_queue: The workflow's task queue, when it is not ``settings.task_queue``.

    Returns:
        The result and the last status seen.

    Raises:
        CliError: Exit 1 when the workflow fails, is cancelled or terminated.
    """
    from temporalio.client import WorkflowFailureError
    from temporalio.service import RPCError

    queue = task_queue or settings.task_queue
    result_task: asyncio.Task[FeatureResult] = asyncio.create_task(handle.result())
    view = ProgressView(console, handle.id)
    handled: set[str] = set()
    misses = 0
    escalations = 0
    view.start()
    try:
        while not result_task.done():
            try:
                status = await query_status(handle)
            except RPCError as err:
                raise rpc_error(err, settings, workflow_id=handle.id) from None
            if status is None:
                misses += 1
                if misses == 3:
                    polling = await has_worker(client, queue)
                    view.update(
                        None,
                        note=(
                            f"no worker is polling task queue {queue!r}; "
                            f"start one with '{WORKER_COMMAND}'"
                            if polling is False
                            else "the workflow is not answering status queries yet..."
                        ),
                    )
            else:
                misses = 0
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
                            handle, request, auto=auto, give_up=escalations > MAX_AUTO_ESCALATIONS
                        )
                    view.start()
                    continue
            await asyncio.wait({result_task}, timeout=POLL_SECONDS)
        # One last status so the display ends on the final state.
        final = await query_status(handle) if result_task.exception() is None else None
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
