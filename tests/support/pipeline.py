"""Driving the whole pipeline on a real server, as a person answering with the defaults would."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.models import Model, ModelRequest, ModelResponse
from activities.services import Services
from cli.changes import HistoryWatch
from contract import DEFAULT_MODEL, PHASE_NAMES, FeatureRequest, FeatureResult, FeatureStatus
from tests.support.git import git, trailers
from tests.support.temporal import unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.human import default_response

__all__ = [
    "checkout",
    "FEATURE",
    "HISTORY_LIMIT_BYTES",
    "HISTORY_JSON_LIMIT_BYTES",
    "Run",
    "SlowModel",
    "answer_recommended",
    "answer_until_closed",
    "run_pipeline",
    "assert_delivered",
]

FEATURE = "Build a bookmarks API with tags and per-user collections"
#: The server's own figure for the demo history (what Temporal's size limits apply to).
HISTORY_LIMIT_BYTES = 60_000
#: The same history as ``temporal workflow show --output json`` prints it: ~160 KB with
#: temporalio 1.35 (validation phase, waiting timer and patch markers included), two thirds
#: of it Temporal's own per-event framing.
HISTORY_JSON_LIMIT_BYTES = 180_000


class SlowModel:
    """A model wrapper (test double) that adds a fixed latency to every call, as a remote
    model's would (the scripted model answers at once)."""

    def __init__(self, inner: Model, latency: float) -> None:
        self.inner, self.latency, self.model_id = inner, latency, inner.model_id

    async def request(self, request: ModelRequest) -> ModelResponse:
        await asyncio.sleep(self.latency)
        return await self.inner.request(request)


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


async def answer_until_closed(handle: WorkflowHandle, answered: list[str]) -> None:
    """Answer every request with its recommended answers until the workflow closes.

    Looks after each change of the history (a long poll), not on a timer: the
    benchmarks that drive the pipeline measure the worker, not this loop.
    """
    async with HistoryWatch(handle, settle=0) as changes:
        seen = await changes.caught_up()
        while not changes.stopped:
            await answer_recommended(handle, answered)
            seen = await changes.wait(seen)


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
        async with asyncio.timeout(600):
            await answer_until_closed(handle, answered)
        result = await handle.result()
        status = await handle.query(BackendFeatureWorkflow.status)
    # The server's own figure (what Temporal's history size limits apply to).
    desc = await handle.describe()
    history_bytes = desc.raw_description.workflow_execution_info.history_size_bytes
    return Run(repo, handle, result, status, history_bytes, answered)


def checkout(repo: Path, branch: str, into: Path) -> Path:
    """A clone of ``branch`` at ``into`` (the user's own checkout is never switched)."""
    subprocess.run(
        ["git", "clone", "-q", "--branch", branch, str(repo), str(into)],
        check=True,
        capture_output=True,
    )
    return into


def assert_delivered(run: Run, scratch: Path) -> None:
    """A completed feature: one commit per phase and task, docs, a green suite.

    The user's checkout stays on ``main`` with nothing changed; the feature is on its
    branch, which is checked out into ``scratch`` here to run its tests.
    """
    repo = run.repo
    assert run.result.state == "completed", run.result.message
    branch = run.result.branch
    assert branch == "001-bookmarks-api-tags"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", branch) == run.result.head_commit
    # One commit per phase (implement: one per task), each with workflow and phase trailers.
    rows = trailers(repo, f"main..{branch}")
    phases_seen = [p for p, _ in rows]
    for phase in (p for p in PHASE_NAMES if p != "fix"):
        assert phase in phases_seen, (phase, rows)
    work = checkout(repo, branch, scratch / "delivered")
    tasks_md = (work / "specs" / branch / "tasks.md").read_text()
    task_ids = re.findall(r"^- \[[ X]\] (T\d+)", tasks_md, flags=re.M)
    assert [t for p, t in rows if p == "implement"] == task_ids
    assert phases_seen.count("specify") == 2  # draft, then clarified
    log = git(repo, "log", "--format=%B", f"main..{branch}")
    assert log.count(f"Backforge-Workflow: {run.handle.id}") == len(rows)
    # tasks.md fully checked.
    assert "- [ ]" not in tasks_md and tasks_md.count("- [X]") == len(task_ids) >= 8
    # The clarification was recorded in spec.md by the pipeline.
    spec = (work / "specs" / branch / "spec.md").read_text()
    assert (
        "## Clarifications" in spec
        and spec.count("- Q: ") == 2
        and "[NEEDS CLARIFICATION" not in spec
    )
    # A generated test failed once and the fix step repaired it.
    assert phases_seen[phases_seen.index("test") + 1] == "fix"
    assert phases_seen.count("test") == 2
    assert (
        run.result.test_report and run.result.test_report.ok and run.result.test_report.passed >= 15
    )
    # The generated tests really pass, run here with plain pytest.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    # Spec Kit artifacts and the report exist.
    fd = work / "specs" / branch
    for name in (
        "spec.md",
        "plan.md",
        "research.md",
        "data-model.md",
        "contracts/openapi.yaml",
        "quickstart.md",
        "tasks.md",
        "analysis.md",
        "report.md",
        "test-results.md",
        "validation.md",
    ):
        assert (fd / name).is_file(), name
    assert (work / ".specify/memory/constitution.md").is_file()
    report = (fd / "report.md").read_text()
    for section in (
        "## Confidence",
        "## Rollout and rollback",
        "### Rollback",
        "Black-box validation: passed",
    ):
        assert section in report, section
    assert len(list((work / "history/prompts" / branch).glob("*.prompt.md"))) >= 10
