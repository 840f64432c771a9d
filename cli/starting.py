"""Starting a feature workflow: its id, its summary and details, its search attributes."""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from typing import TYPE_CHECKING, Any

from cli.connect import rpc_error
from cli.errors import one_line
from cli.settings import Settings
from contract import (
    SA_AWAITING_HUMAN,
    SA_FEATURE,
    SA_PHASE,
    WORKFLOW_TYPE,
    FeatureRequest,
    FeatureResult,
)

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

__all__ = ["derive_workflow_id", "static_details", "start_feature"]

#: Temporal limits a search attribute value to 2 KB by default.
SA_FEATURE_MAX_BYTES = 1500
SUMMARY_MAX_CHARS = 200


def derive_workflow_id(feature: str, repo_path: str, *, now_ns: int | None = None) -> str:
    """``feature-<slug of the first words, at most 40 chars>-<6 hex chars>``."""
    ascii_text = unicodedata.normalize("NFKD", feature).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > 40:
            break
        slug = candidate
    if not slug:
        slug = words[0][:40] if words else "request"
    stamp = time.time_ns() if now_ns is None else now_ns
    digest = hashlib.sha256(f"{feature}\0{repo_path}\0{stamp}".encode()).hexdigest()[:6]
    return f"feature-{slug}-{digest}"


def _truncate_bytes(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def static_details(request: FeatureRequest, workflow_id: str, settings: Settings) -> str:
    """The markdown the Temporal UI shows for the feature (set once, at start)."""
    lines = [
        f"## {workflow_id}",
        "",
        f"**Feature:** {request.feature}",
        "",
        f"- **Repository:** `{request.repo_path}`",
        f"- **Model:** `{request.model}`",
    ]
    for phase, model_id in request.phase_models.items():
        lines.append(f"  - {phase}: `{model_id}`")
    lines.append(f"- **Gates:** {', '.join(request.gates) if request.gates else 'none'}")
    lines.append(f"- **Max fix rounds:** {request.max_fix_rounds}")
    if request.budget_usd is not None:
        lines.append(f"- **Budget:** ${request.budget_usd:.2f}")
    lines.append("")
    lines.append(
        f"Answer questions with `{settings.command_prefix()} answer|approve|reject`; "
        "see `status` for ids."
    )
    return "\n".join(lines)


async def start_feature(
    client: Client, settings: Settings, request: FeatureRequest, *, workflow_id: str | None = None
) -> WorkflowHandle[Any, FeatureResult]:
    """Start ``BackendFeatureWorkflow`` with summary, details and search attributes.

    Raises:
        CliError: The server refused (see ``cli.connect.rpc_error``).
    """
    from temporalio.common import SearchAttributePair, TypedSearchAttributes
    from temporalio.service import RPCError

    workflow_id = workflow_id or derive_workflow_id(request.feature, request.repo_path)
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(SA_FEATURE, _truncate_bytes(request.feature, SA_FEATURE_MAX_BYTES)),
            SearchAttributePair(SA_PHASE, "starting"),
            SearchAttributePair(SA_AWAITING_HUMAN, False),
        ]
    )
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            request,
            id=workflow_id,
            task_queue=settings.task_queue,
            result_type=FeatureResult,
            static_summary=one_line(request.feature, SUMMARY_MAX_CHARS),
            static_details=static_details(request, workflow_id, settings),
            search_attributes=attributes,
        )
    except RPCError as err:
        raise rpc_error(err, settings) from None
