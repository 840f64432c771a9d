"""Someone else moves the feature branch: the next push is refused, and a person is asked.

The lease on each push means Backforge never overwrites commits it did not make. The
escalation says what happened and what to do; once the branch is moved back, "retry"
carries on from the last good commit.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.services import Services
from activities.workspace import Workspaces
from contract import FeatureRequest
from tests.support.cluster import TINY
from tests.support.fake_phases import open_request, respond
from tests.support.git import git
from tests.support.repos import user_repo
from tests.support.temporal import unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow


async def test_a_branch_moved_by_someone_else_is_escalated_then_retried(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "svc")
    git(repo, "rm", "-q", "app.py")  # the tiny feature builds an app/ package
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "no app.py")
    queue = unique("moved")
    services = Services(workspaces=Workspaces(tmp_path / "scratch"))
    async with build_worker(local_env.client, task_queue=queue, services=services):
        handle = await local_env.client.start_workflow(
            BackendFeatureWorkflow.run,
            FeatureRequest(
                feature="Add an add and a subtract helper",
                repo_path=str(repo),
                model=f"scripted:{TINY}",
                gates=["spec"],
            ),
            id=unique("moved"),
            task_queue=queue,
        )
        gate = await open_request(handle, "approval")
        status = await handle.query(BackendFeatureWorkflow.status)
        branch, good = status.branch, status.head_commit
        assert branch and good
        # A colleague commits onto the feature branch in the meantime.
        git(repo, "checkout", "-q", branch)
        (repo / "theirs.txt").write_text("mine\n")
        git(repo, "add", "theirs.txt")
        git(repo, "-c", "user.name=c", "-c", "user.email=c@c", "commit", "-q", "-m", "theirs")
        theirs = git(repo, "rev-parse", "HEAD")
        git(repo, "checkout", "-q", "main")
        await respond(handle, request_id=gate.id, approved=True)

        escalation = await open_request(handle, "escalation")
        assert escalation.title == "plan failed after its retries"
        assert f"branch {branch} is at {theirs[:10]}, not at {good[:10]}" in escalation.body
        assert "someone else moved it" in escalation.body and "retry, or abort" in escalation.body
        assert git(repo, "rev-parse", branch) == theirs  # nothing of theirs was overwritten

        git(repo, "branch", "-f", branch, good)  # as the escalation says: move it back
        await respond(handle, request_id=escalation.id, answers={"Q1": "retry"})
        result = await handle.result()
    assert result.state == "completed", result.message
    assert git(repo, "merge-base", "--is-ancestor", good, result.head_commit) == ""
