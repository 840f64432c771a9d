"""Finding features: the visibility query behind ``list`` and the rows it yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cli.connect import rpc_error
from cli.settings import Settings
from contract import SA_AWAITING_HUMAN, SA_FEATURE, SA_PHASE, WORKFLOW_TYPE

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["ListRow", "list_query", "list_features"]


@dataclass(frozen=True)
class ListRow:
    """One feature as ``list`` shows it (all from search attributes, no query to a worker)."""

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


async def list_features(
    client: Client, settings: Settings, *, awaiting: bool, running: bool, limit: int
) -> list[ListRow]:
    """Feature workflows, newest first.

    Raises:
        CliError: The server refused the query (for example, unregistered search attributes).
    """
    from temporalio.service import RPCError

    rows: list[ListRow] = []
    try:
        async for execution in client.list_workflows(
            list_query(awaiting=awaiting, running=running), limit=limit
        ):
            attrs = execution.typed_search_attributes
            rows.append(
                ListRow(
                    id=execution.id,
                    state=execution.status.name.lower() if execution.status else "?",
                    phase=attrs.get(SA_PHASE) or "",
                    awaiting=bool(attrs.get(SA_AWAITING_HUMAN)),
                    feature=attrs.get(SA_FEATURE) or "",
                    started=(
                        f"{execution.start_time:%Y-%m-%d %H:%M}" if execution.start_time else ""
                    ),
                )
            )
    except RPCError as err:
        raise rpc_error(err, settings) from None
    return rows
