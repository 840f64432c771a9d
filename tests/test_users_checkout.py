"""The user's checkout is theirs: features run beside it, several at once, and never
touch its files, index, HEAD or branches."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.services import Services
from activities.workspace import Workspaces
from contract import FeatureRequest, FeatureResult
from tests.support.cluster import TINY
from tests.support.git import git, trailers
from tests.support.repos import snapshot, user_repo
from tests.support.temporal import unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow

FEATURES = [
    "Alpha arithmetic helpers add and subtract",
    "Beta arithmetic helpers add and subtract",
    "Gamma arithmetic helpers add and subtract",
]


async def test_three_features_at_once_while_the_user_keeps_working(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    repo = user_repo(tmp_path / "checkout")
    git(repo, "mv", "app.py", "service.py")  # (the feature builds an app/ package)
    git(repo, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "rename")
    (repo / "service.py").write_text("print('uncommitted edit')\n")  # work in progress
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    before = snapshot(repo)
    queue = unique("users")
    writes: list[Path] = []
    stop = asyncio.Event()

    async def user_keeps_working() -> None:
        n = 0
        while not stop.is_set() and n < 2000:  # bounded
            n += 1
            path = repo / "notes" / f"note-{n}.txt"
            path.parent.mkdir(exist_ok=True)
            path.write_text(f"note {n}\n")
            writes.append(path)
            await asyncio.sleep(0.05)

    services = Services(workspaces=Workspaces(tmp_path / "scratch"))
    async with build_worker(local_env.client, task_queue=queue, services=services):
        user = asyncio.create_task(user_keeps_working())
        handles = [
            await local_env.client.start_workflow(
                BackendFeatureWorkflow.run,
                FeatureRequest(feature=f, repo_path=str(repo), model=f"scripted:{TINY}"),
                id=unique("users"),
                task_queue=queue,
            )
            for f in FEATURES
        ]
        results: list[FeatureResult] = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), 300
        )
        stop.set()
        await user
    assert [r.state for r in results] == ["completed"] * 3, [r.message for r in results]
    # Independent branches with distinct numbers, each holding only its own commits.
    assert sorted(r.branch[:4] for r in results) == ["001-", "002-", "003-"]
    for handle, result in zip(handles, results, strict=True):
        log = git(
            repo,
            "log",
            "--format=%(trailers:key=Backforge-Workflow,valueonly)",
            f"main..{result.branch}",
        )
        assert {line.strip() for line in log.splitlines() if line.strip()} == {handle.id}
        phases = [p for p, _ in trailers(repo, f"main..{result.branch}")]
        assert phases[0] == "summarize" and phases[-1] == "deliver"
        assert git(repo, "merge-base", "main", result.branch) == before["head_commit"]
    # The checkout, byte for byte: the user's files, index, HEAD and branches as they were,
    # plus exactly the notes the user wrote meanwhile.
    after = snapshot(repo)
    notes = {str(p.relative_to(repo)): p.read_bytes() for p in writes}
    assert len(notes) > 10
    assert after["files"] == {**before["files"], **notes}
    assert after["index"] == before["index"] and after["head"] == before["head"]
    assert after["head_commit"] == before["head_commit"]
    assert git(repo, "rev-parse", "main") == before["head_commit"]
    new_status = set(after["status"].splitlines()) - set(before["status"].splitlines())
    assert new_status == {f"?? {name}" for name in notes}
