"""The steps around the phases: prepare the feature branch, reset it after a stop."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.model_phase import PhaseActivity
from activities.workspace import RemoteUnreachable, WorkspaceError
from contract import FeatureRequest, ResetInput, WorkspaceInfo

__all__ = ["PrepareStep", "ResetStep"]


class PrepareStep(PhaseActivity):
    """Creates (or finds again, on retry) the feature's branch and records the request."""

    @activity.defn(name="prepare_workspace")
    async def run(self, request: FeatureRequest) -> WorkspaceInfo:
        activity.heartbeat("preparing")
        try:
            workflow_id = activity.info().workflow_id or ""
            return await self.services.workspaces.prepare(request, workflow_id)
        except RemoteUnreachable as err:  # may be passing (network): retried by policy
            raise ApplicationError(str(err), type="RemoteUnreachable") from err
        except WorkspaceError as err:
            raise ApplicationError(str(err), type="WorkspaceError", non_retryable=True) from err


class ResetStep(PhaseActivity):
    """Puts the branch back at its last good commit (after a cancel or abort)."""

    @activity.defn(name="reset_workspace")
    async def run(self, inp: ResetInput) -> str:
        activity.heartbeat("resetting")
        return await self.services.workspaces.reset(inp.repo_path, inp.branch, inp.commit)
