"""End to end on the real dev server: real worker, scripted model, real git, real pytest.

One clean run of the whole pipeline is shared by the assertions below; the
retry-safety test runs it a second time with faults injected part-way
through phases and checks that nothing is paid for twice and that the
retried phases commit the same content.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.models import Model, ModelRequest, ModelResolver, ModelResponse
from activities.models.scripted import load_transcript, script_key
from activities.services import Services
from activities.workspace import Workspaces
from contract import DEFAULT_MODEL, PHASE_NAMES
from tests.support.git import git, trailers
from tests.support.pipeline import (
    HISTORY_JSON_LIMIT_BYTES,
    HISTORY_LIMIT_BYTES,
    Run,
    assert_delivered,
    run_pipeline,
)
from tests.support.temporal import unique


@pytest.fixture(scope="module")
async def clean_run(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    repo = tmp_path_factory.mktemp("e2e") / "service"
    return await run_pipeline(local_env, repo, workflow_id=unique("e2e-clean"))


async def test_pipeline_delivers_a_tested_service(clean_run: Run, tmp_path: Path) -> None:
    assert_delivered(clean_run, tmp_path)


async def test_status_shows_completed_phases(clean_run: Run) -> None:
    status = clean_run.status
    assert status.state == "completed" and status.phase == "done"
    assert {r.phase for r in status.completed} == set(PHASE_NAMES)
    assert status.answered_requests == ["clarify-1"] == clean_run.answered
    assert status.usage.model_calls > 20 and status.usage.cost_usd == 0.0
    assert status.usage_by_phase["implement"].model_calls >= len(status.tasks)
    assert all(t.done for t in status.tasks)
    # Black-box validation of the running service passed, every operation exercised.
    v = status.validation
    assert v is not None and v.passed, v
    assert v.operations_checked == v.operations_total >= 10


async def test_commit_subjects_say_what_each_step_did(clean_run: Run) -> None:
    subjects = git(clean_run.repo, "log", "--format=%s", clean_run.result.branch).splitlines()
    assert "summarize: no existing code to map" in subjects  # the demo starts from nothing
    assert "fix: failing tests" in subjects  # the planted regression's repair
    assert not any("round" in s for s in subjects if s.startswith("fix"))


async def test_parallel_tasks_ran_side_by_side_and_merged_in_order(clean_run: Run) -> None:
    events = (await clean_run.handle.fetch_history()).events
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    completed_at = {
        e.activity_task_completed_event_attributes.scheduled_event_id: e.event_id
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
    }
    merge = min(i for i, name in scheduled.items() if name == "merge_task_commits")
    tasks_done = max(i for i, name in scheduled.items() if name == "run_phase_tasks")
    batch = [
        i
        for i, name in scheduled.items()
        if tasks_done < i < merge and name == "run_phase_implement"
    ]
    # The four [P] setup tasks (T001-T004) were all scheduled before any of them finished.
    assert len(batch) == 4
    assert max(batch) < min(completed_at[i] for i in batch)


async def test_history_stays_small(clean_run: Run) -> None:
    # The server's figure, and the JSON export (what `temporal workflow show --output json` prints).
    assert clean_run.history_bytes < HISTORY_LIMIT_BYTES, clean_run.history_bytes
    history = await clean_run.handle.fetch_history()
    assert len(history.to_json().encode()) < HISTORY_JSON_LIMIT_BYTES
    # History carries references, not content: no generated source in it, and the
    # feature text only where the workflow starts and the branch is prepared.
    text = json.dumps(history.to_json_dict())
    assert "def create_app" not in text and "class BookmarkStore" not in text
    inputs = [
        e.activity_task_scheduled_event_attributes.input
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name.startswith("run_phase_")
    ]
    assert len(inputs) > 20
    assert not any(b"per-user collections" in p.data for i in inputs for p in i.payloads)


class FaultyModel:
    """Counts live calls per script key; fails attempt 1 of chosen conversations after N calls."""

    def __init__(
        self, inner: Model, plan: dict[str, int], live: Counter[str], injected: Counter[str]
    ) -> None:
        self.inner, self.plan, self.live, self.injected = inner, plan, live, injected
        self.model_id = inner.model_id
        self.calls = 0

    async def request(self, request: ModelRequest) -> ModelResponse:
        key = script_key(request.origin)
        self.calls += 1
        if key in self.plan and activity.info().attempt == 1 and self.calls > self.plan[key]:
            self.injected[key] += 1
            raise RuntimeError(f"injected failure in {key} after {self.plan[key]} model calls")
        self.live[key] += 1
        return await self.inner.request(request)


async def test_retried_phase_pays_nothing_twice_and_commits_the_same(
    clean_run: Run, local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # Fail part-way through: spec draft after 1 call, a code task after 1, the fix step after 2.
    plan = {"specify#1": 1, "implement/T009#1": 1, "fix#1": 2}
    live: Counter[str] = Counter()
    injected: Counter[str] = Counter()
    services = Services(
        models=ModelResolver(wrappers=[lambda model: FaultyModel(model, plan, live, injected)]),
        workspaces=Workspaces(tmp_path / "scratch"),
    )
    faulty = await run_pipeline(
        local_env, tmp_path / "service", workflow_id=unique("e2e-faulty"), services=services
    )
    assert faulty.result.state == "completed"
    assert set(injected) == set(plan), injected  # every planned fault fired once
    # Every scripted turn reached the model exactly once across attempts.
    calls = load_transcript(DEFAULT_MODEL.split(":", 1)[1])["calls"]
    for key, count in live.items():
        assert count == len(calls[key]), (key, count, len(calls[key]))
    assert faulty.status.usage.replayed_calls == sum(plan.values())
    # The retried phases committed the same changes as the clean run (prompt
    # history files name the workflow id, so they are left out of the comparison).
    branch = faulty.result.branch
    clean_commits = dict(
        zip(
            trailers(clean_run.repo, f"main..{branch}"),
            git(clean_run.repo, "rev-list", "--reverse", f"main..{branch}").split(),
            strict=True,
        )
    )
    faulty_commits = dict(
        zip(
            trailers(faulty.repo, f"main..{branch}"),
            git(faulty.repo, "rev-list", "--reverse", f"main..{branch}").split(),
            strict=True,
        )
    )
    for key in [("specify", ""), ("implement", "T009"), ("fix", "")]:
        clean_files = files_at(clean_run.repo, clean_commits[key])
        faulty_files = files_at(faulty.repo, faulty_commits[key])
        assert clean_files == faulty_files, key


def files_at(repo: Path, commit: str) -> dict[str, str]:
    """Blob ids of the files ``commit`` changed, except prompt history records."""
    out = git(repo, "diff-tree", "--no-commit-id", "-r", commit)
    rows = (line.split(None, 5) for line in out.splitlines())
    changed = {
        path: blob for _m1, _m2, _b1, blob, _status, path in rows if not path.startswith("history/")
    }
    assert changed, f"{commit} changed nothing"
    return changed


def test_transcript_is_labelled_as_a_test_double() -> None:
    data = load_transcript("examples/bookmarks.yaml")
    assert (
        "stands in for a model" in data["note"] and "not recorded from a model run" in data["note"]
    )
