"""People can answer with the plain Temporal CLI, as the README shows.

The payload comes from ``workflows.human.how_to_answer``, the same place the
Backforge CLI and the workflow's UI details take it from.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from contract import FeatureRequest, FeatureStatus, HumanRequest
from runtime import temporal_binary
from tests.support.fake_phases import Fakes
from tests.support.temporal import unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.human import how_to_answer


async def temporal(env: WorkflowEnvironment, *args: str) -> subprocess.CompletedProcess[str]:
    address = env.client.service_client.config.target_host
    argv = [temporal_binary(), *args, "--address", address, "--namespace", env.client.namespace]
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60)


async def open_request(handle: WorkflowHandle, kind: str) -> HumanRequest:
    """The first open request of ``kind``, once the workflow shows one (bounded wait)."""
    for _ in range(400):
        status: FeatureStatus = await handle.query(BackendFeatureWorkflow.status)
        found = next((r for r in status.open_requests if r.kind == kind), None)
        if found is not None:
            return found
        await asyncio.sleep(0.05)  # polling a query; there is no event to wait on
    raise AssertionError(f"no open {kind} request")


async def test_answer_with_temporal_workflow_signal_and_update(
    local_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes()
    queue, workflow_id = unique("cli"), unique("cli")
    async with build_worker(
        local_env.client, task_queue=queue, activity_overrides=fakes.activities()
    ):
        handle = await local_env.client.start_workflow(
            BackendFeatureWorkflow.run,
            FeatureRequest(
                feature="Build a bookmarks API", repo_path="/tmp/not-used", gates=["spec"]
            ),
            id=workflow_id,
            task_queue=queue,
        )
        clarify = await open_request(handle, "clarification")
        bad = await temporal(
            local_env, "workflow", "update", "execute", "--workflow-id", workflow_id, "--name", "respond",
            "--input", json.dumps({"request_id": clarify.id, "answers": {"Q1": "Z", "Q2": "A"}}),
        )  # fmt: skip
        assert bad.returncode != 0 and "unknown option 'Z'" in bad.stdout + bad.stderr
        ok = await temporal(
            local_env, "workflow", "signal", "--workflow-id", workflow_id, "--name", "respond",
            "--input", json.dumps({"request_id": clarify.id, "answers": {"Q1": "B", "Q2": "A"}}),
        )  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        approval = await open_request(handle, "approval")
        payload = how_to_answer(approval, workflow_id).payload  # what people are shown
        approved = await temporal(
            local_env, "workflow", "update", "execute", "--workflow-id", workflow_id, "--name", "respond",
            "--input", payload,
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr
        result = await handle.result()
    assert result.state == "completed"
    specify_again = [c for c in fakes.calls if c.phase == "specify"][1]
    assert specify_again.clarifications[0] == ("Duplicate URLs per user?", "Allow")
