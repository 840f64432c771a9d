"""The steps around the phases: prepare the feature branch, reset it after a stop."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.model_phase import PhaseActivity
from activities.workspace import Workspace, WorkspaceError, prepare
from contract import FeatureRequest, ResetInput, WorkspaceInfo

__all__ = ["PrepareStep", "ResetStep"]


class PrepareStep(PhaseActivity):
    """Creates (or finds again, on retry) the feature's branch and records the request."""

    @activity.defn(name="prepare_workspace")
    async def run(self, request: FeatureRequest) -> WorkspaceInfo:
        try:
            return await asyncio.to_thread(prepare, request, activity.info().workflow_id or "")
        except WorkspaceError as err:
            raise ApplicationError(str(err), type="WorkspaceError", non_retryable=True) from err


class ResetStep(PhaseActivity):
    """Puts the branch back at its last good commit (after a cancel or abort)."""

    @activity.defn(name="reset_workspace")
    async def run(self, inp: ResetInput) -> str:
        ws = Workspace(inp.repo_path)
        await asyncio.to_thread(ws.reset_to, inp.branch, inp.commit)
        return await asyncio.to_thread(ws.head)
