"""Activities around the workspace itself: prepare the branch, reset after cancel."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.workspace import Workspace, WorkspaceError, prepare
from workflows.types import FeatureRequest, ResetInput, WorkspaceInfo


@activity.defn
async def prepare_workspace(request: FeatureRequest) -> WorkspaceInfo:
    try:
        return await asyncio.to_thread(prepare, request, activity.info().workflow_id or "")
    except WorkspaceError as err:
        raise ApplicationError(str(err), type="WorkspaceError", non_retryable=True) from err


@activity.defn
async def reset_workspace(inp: ResetInput) -> str:
    """Put the branch back at its last good commit (after a cancel or abort)."""
    ws = Workspace(inp.repo_path)
    await asyncio.to_thread(ws.reset_to, inp.branch, inp.commit)
    return ws.head()
