"""People can answer with the plain Temporal CLI, as the README shows."""

from __future__ import annotations

import asyncio
import json
import subprocess

from temporalio.testing import WorkflowEnvironment

from runtime import temporal_binary
from tests.conftest import unique
from tests.test_workflow import Fakes, open_request, request
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow


async def temporal(env: WorkflowEnvironment, *args: str) -> subprocess.CompletedProcess[str]:
    address = env.client.service_client.config.target_host
    argv = [temporal_binary(), *args, "--address", address, "--namespace", env.client.namespace]
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, timeout=60)


async def test_answer_with_temporal_workflow_signal_and_update(
    local_env: WorkflowEnvironment,
) -> None:
    fakes = Fakes(clarify=True)
    queue, workflow_id = unique("cli"), unique("cli")
    async with build_worker(local_env.client, task_queue=queue, activities=fakes.activities()):
        handle = await local_env.client.start_workflow(
            BackendFeatureWorkflow.run, request(gates=["spec"]), id=workflow_id, task_queue=queue
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
        approved = await temporal(
            local_env, "workflow", "update", "execute", "--workflow-id", workflow_id, "--name", "respond",
            "--input", json.dumps({"request_id": approval.id, "approved": True}),
        )  # fmt: skip
        assert approved.returncode == 0, approved.stderr
        result = await handle.result()
    assert result.state == "completed"
    assert fakes.calls[2].clarifications[0] == ("Duplicate URLs per user?", "Allow")
