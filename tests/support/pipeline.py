"""Driving the whole pipeline on a real server, as a person answering with the defaults would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.services import Services
from contract import DEFAULT_MODEL, FeatureRequest, FeatureResult, FeatureStatus
from tests.support.temporal import eventually, unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.human import default_response

__all__ = ["FEATURE", "HISTORY_LIMIT_BYTES", "Run", "answer_recommended", "run_pipeline"]

FEATURE = "Build a bookmarks API with tags and per-user collections"
HISTORY_LIMIT_BYTES = 150_000


@dataclass
class Run:
    repo: Path
    handle: WorkflowHandle
    result: FeatureResult
    status: FeatureStatus
    history_bytes: int
    answered: list[str]


async def answer_recommended(handle: WorkflowHandle, answered: list[str]) -> None:
    """Answer every open request with its recommended answers (like ``demo --yes``)."""
    status: FeatureStatus = await handle.query(BackendFeatureWorkflow.status)
    for request in status.open_requests:
        if request.id in answered:
            continue
        # The scripted run never needs a person beyond its clarification: an
        # escalation means a phase failed, and answering "retry" would loop.
        if request.kind == "escalation":
            raise RuntimeError(f"unexpected escalation: {request.title}\n{request.body}")
        response = default_response(request, "test")
        await handle.execute_update(BackendFeatureWorkflow.respond_update, response)
        answered.append(request.id)


async def run_pipeline(
    env: WorkflowEnvironment,
    repo: Path,
    *,
    workflow_id: str,
    gates: list[str] | None = None,
    model: str = DEFAULT_MODEL,
    services: Services | None = None,
) -> Run:
    queue = unique("e2e")
    async with build_worker(env.client, task_queue=queue, services=services):
        handle = await env.client.start_workflow(
            BackendFeatureWorkflow.run,
            FeatureRequest(feature=FEATURE, repo_path=str(repo), model=model, gates=gates or []),  # type: ignore[arg-type]
            id=workflow_id,
            task_queue=queue,
        )
        answered: list[str] = []

        async def finished() -> bool:
            await answer_recommended(handle, answered)
            desc = await handle.describe()
            return desc.status is not None and desc.status.name != "RUNNING"

        await eventually(finished, timeout=600)
        result = await handle.result()
        status = await handle.query(BackendFeatureWorkflow.status)
    # The server's own figure (what Temporal's history size limits apply to).
    desc = await handle.describe()
    history_bytes = desc.raw_description.workflow_execution_info.history_size_bytes
    return Run(repo, handle, result, status, history_bytes, answered)


