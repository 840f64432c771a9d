"""The implement phase: escalation round trip with the real activities (time-skipping server).

The implementation agent calls ``escalate``; the workflow shows the request in
``status``; a person answers; the task runs again with the answer, which is
recorded in spec.md's clarifications.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from contract import FeatureRequest
from tests.support.fake_phases import open_request, respond
from tests.support.git import show
from tests.support.temporal import unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow

TRANSCRIPT = Path(__file__).parent / "fixtures" / "escalation.yaml"


async def test_escalate_answer_resume(ts_env: WorkflowEnvironment, tmp_path: Path) -> None:
    repo = tmp_path / "svc"
    queue = unique("esc")
    async with build_worker(ts_env.client, task_queue=queue):
        handle = await ts_env.client.start_workflow(
            BackendFeatureWorkflow.run,
            FeatureRequest(
                feature="Add a price rounding helper",
                repo_path=str(repo),
                model=f"scripted:{TRANSCRIPT}",
            ),
            id=unique("esc"),
            task_queue=queue,
        )
        request = await open_request(handle, "escalation")
        status = await handle.query(BackendFeatureWorkflow.status)
        assert (
            status.state == "waiting" and status.phase == "implement" and status.task_id == "T001"
        )
        assert status.open_requests[0].id == request.id
        assert "**Blocker**: missing_detail" in request.body and "**Impact**" in request.body
        assert request.questions[0].text == "How should half cents be rounded?"
        # The agent's work so far is committed; nothing of the task is checked off yet.
        branch = status.branch
        tasks_md = subprocess.run(
            ["git", "show", f"{branch}:{status.feature_dir}/tasks.md"],
            cwd=repo,
            capture_output=True,
            text=True,
        ).stdout
        assert "- [ ] T001" in tasks_md
        await respond(handle, request_id=request.id, answers={"Q1": "B"})
        result = await handle.result()
    assert result.state == "completed", result.message
    assert result.test_report is not None and result.test_report.ok
    spec = show(repo, branch, f"specs/{branch}/spec.md")
    assert "## Clarifications" in spec
    assert "- Q: How should half cents be rounded? → A: Half to even (2.345 -> 2.34)" in spec
    assert "- [X] T001" in show(repo, branch, f"specs/{branch}/tasks.md")
