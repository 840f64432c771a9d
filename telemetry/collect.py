"""A namespace's features: found through visibility, read from their histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from contract import SA_FEATURE, WORKFLOW_TYPE
from telemetry.figures import TeamFigures
from telemetry.history import feature_figures

__all__ = ["DEFAULT_LIMIT", "collect_figures", "features_query"]

#: Most features read by one report (each is one history fetch).
DEFAULT_LIMIT = 500


def features_query(since: datetime | None = None) -> str:
    """The visibility query for feature workflows started after ``since``."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}'"
    if since is not None:
        query += f" AND StartTime > '{since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"
    return query


async def collect_figures(
    client: Client,
    *,
    since_days: float | None = None,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
) -> TeamFigures:
    """The figures of every feature in ``client``'s namespace started in the last days.

    Args:
        since_days: Only features started this many days ago or later (None: all).
        limit: At most this many features, newest first.
        now: The report's time (open intervals end here).

    Raises:
        ValueError: ``since_days`` or ``limit`` is not positive.
        temporalio.service.RPCError: The server refused the query.
    """
    if since_days is not None and since_days <= 0:
        raise ValueError(f"--since must be a positive number of days, got {since_days}")
    if limit <= 0:
        raise ValueError(f"--limit must be positive, got {limit}")
    now = now or datetime.now(UTC)
    since = now - timedelta(days=since_days) if since_days is not None else None
    converter = client.data_converter.payload_converter
    features = []
    async for execution in client.list_workflows(features_query(since), limit=limit):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        features.append(
            feature_figures(
                execution.id,
                history.events,
                converter,
                now=now,
                feature=execution.typed_search_attributes.get(SA_FEATURE) or "",
            )
        )
    features.sort(key=lambda f: f.started_at)
    return TeamFigures(
        namespace=client.namespace, since_days=since_days, generated_at=now, features=features
    )
