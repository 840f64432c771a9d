"""Finding features: the visibility query behind ``list`` and the rows it yields."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cli.connect import rpc_error
from cli.outcome import closed_state
from cli.settings import Settings
from contract import SA_AWAITING_HUMAN, SA_FEATURE, SA_PHASE, WORKFLOW_TYPE

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowExecution

__all__ = ["MAX_SCANNED", "ListRow", "list_query", "newest_first", "list_features"]


#: Rows read from visibility at most; they are sorted by start time before ``--limit``
#: (the server cannot order by it), so this bounds how far back "newest first" looks.
MAX_SCANNED = 5000
#: Results of completed features read at once (aborted and completed look alike otherwise).
RESULT_READS = 8


@dataclass(frozen=True)
class ListRow:
    """One feature as ``list`` shows it (no query to a worker).

    ``state`` is the execution's: ``running``/``waiting`` from the server and the
    awaiting search attribute, ``completed``/``aborted`` from a completed
    execution's result, else ``failed``, ``terminated``, ``cancelled``, ``timed out``.
    """

    id: str
    state: str
    phase: str
    awaiting: bool
    feature: str
    started: str


def list_query(*, awaiting: bool = False, running: bool = False) -> str:
    """The visibility query: feature workflows, optionally only waiting or running ones."""
    clauses = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if awaiting:
        clauses.append(f"{SA_AWAITING_HUMAN.name} = true")
        clauses.append("ExecutionStatus = 'Running'")
    elif running:
        clauses.append("ExecutionStatus = 'Running'")
    return " AND ".join(clauses)


def newest_first(executions: list[WorkflowExecution], limit: int) -> list[WorkflowExecution]:
    """The ``limit`` most recently started executions, newest first (no start time: last)."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(executions, key=lambda e: e.start_time or oldest, reverse=True)[:limit]


async def list_features(
    client: Client, settings: Settings, *, awaiting: bool, running: bool, limit: int
) -> list[ListRow]:
    """Feature workflows, newest first, each with its execution's real state.

    Raises:
        CliError: The server refused the query (for example, unregistered search attributes).
    """
    from temporalio.service import RPCError

    executions: list[WorkflowExecution] = []
    try:
        async for execution in client.list_workflows(
            list_query(awaiting=awaiting, running=running), limit=MAX_SCANNED
        ):
            executions.append(execution)
    except RPCError as err:
        raise rpc_error(err, settings) from None
    gate = asyncio.Semaphore(RESULT_READS)
    return list(
        await asyncio.gather(*(_row(client, e, gate) for e in newest_first(executions, limit)))
    )


async def _row(client: Client, execution: WorkflowExecution, gate: asyncio.Semaphore) -> ListRow:
    """The row of one execution; a completed one's result tells completed from aborted."""
    from cli.outcome import read_outcome
    from contract import FeatureResult

    attrs = execution.typed_search_attributes
    state = closed_state(execution.status)
    awaiting = state == "running" and bool(attrs.get(SA_AWAITING_HUMAN))  # closed: nobody
    if state == "completed":
        handle = client.get_workflow_handle(
            execution.id, run_id=execution.run_id, result_type=FeatureResult
        )
        async with gate:
            with contextlib.suppress(Exception):  # unreadable: keep what visibility says
                state = (await read_outcome(handle, execution.status)).state
    return ListRow(
        id=execution.id,
        state="waiting" if awaiting else state,
        phase=attrs.get(SA_PHASE) or "",
        awaiting=awaiting,
        feature=attrs.get(SA_FEATURE) or "",
        started=f"{execution.start_time:%Y-%m-%d %H:%M}" if execution.start_time else "",
    )
