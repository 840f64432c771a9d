"""Following a feature: --yes answers every open request and the result comes back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from cli.follow import follow
from cli.settings import Settings
from contract import FeatureRequest, FeatureResult
from tests.support.cli_driver import address
from tests.support.cli_stand_in import StandInFeatureWorkflow
from tests.support.temporal import unique


async def test_follow_with_yes_answers_each_request_once(
    local_env: WorkflowEnvironment, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = unique("cli-follow")
    settings = Settings(address=address(local_env), namespace="default", task_queue=queue)
    async with Worker(
        local_env.client,
        task_queue=queue,
        workflows=[StandInFeatureWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await local_env.client.start_workflow(
            "BackendFeatureWorkflow",
            FeatureRequest(feature="stand-in feature", repo_path="/tmp/x"),
            id=unique("feature-follow"),
            task_queue=queue,
            result_type=FeatureResult,
            execution_timeout=timedelta(minutes=2),
        )
        result, last = await follow(local_env.client, handle, settings, answer=True, auto=True)
    assert result.state == "completed" and result.branch == "001-bookmarks"
    assert last is not None and last.open_requests == []
    out = capsys.readouterr().out
    assert out.count("--yes: Q1 → B (Shareable by link)") == 1
    assert out.count("--yes: approved") == 2
    for request_id in ("clarify-1", "approve-spec-2", "approve-plan-3"):
        assert out.count(f"✓ {request_id} answered") == 1
