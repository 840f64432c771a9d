"""Workers killed (SIGKILL, disk wiped) at chosen and at random moments: every feature
still completes with the tree of an undisturbed run, usage counts every call the model
server received, and no call that had been answered and recorded is sent again.

Two worker processes share nothing but Temporal and a git remote served by ``git
daemon``; the model server plays ``tests/fixtures/tiny.yaml`` and counts each request.
Features use a 3-second heartbeat timeout so a lost worker is noticed quickly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from contract import FeatureResult
from tests.support.cluster import Cluster, tree
from tests.support.git import git

#: Documents naming the workflow, its commits or its paths, or timings (the report, the
#: validation record, prompt records) are left out.
VARYING = ("report.md", "validation.md")
RANDOM_RUNS = 20
RESULT_TIMEOUT_S = 180


def shape(cluster: Cluster, name: str, branch: str) -> dict[str, str]:
    """The branch's tree, with the branch name taken out of its paths."""
    files = tree(cluster.bare(name), branch, without=VARYING)
    return {
        p.replace(branch, "BRANCH"): b for p, b in files.items() if not p.startswith("history/")
    }


def feature(n: int) -> str:
    return f"Batch{n} arithmetic helpers add and subtract"


class Runs:
    """The cluster, the undisturbed reference, and a counter for unique feature names."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.n = 0
        self.reference: dict[str, str] = {}
        self.calls = 0

    async def start(self) -> tuple[str, WorkflowHandle[object, FeatureResult]]:
        self.n += 1
        name = f"f{self.n}"
        return name, await self.cluster.start(name, feature=feature(self.n))

    def check(self, name: str, result: FeatureResult) -> None:
        """The invariants every disturbed run must keep."""
        assert result.state == "completed", result.message
        assert shape(self.cluster, name, result.branch) == self.reference
        received = self.cluster.received(result.branch)
        total = sum(received.values())
        repeated = sum(n - 1 for n in received.values())
        lost = result.usage.lost_calls
        assert len(received) == self.calls  # every distinct call of the conversation, once
        assert repeated <= lost, (repeated, lost)  # only calls in flight were sent again
        assert total <= result.usage.model_calls <= total + lost, (total, result.usage)


@pytest.fixture(scope="module")
async def runs(
    local_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Runs]:
    with Cluster(local_env, tmp_path_factory.mktemp("crashes")) as cluster:
        runs = Runs(cluster)
        name, handle = await runs.start()
        clean = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
        assert clean.state == "completed", clean.message
        runs.reference = shape(cluster, name, clean.branch)
        runs.calls = len(cluster.received(clean.branch))
        assert clean.usage.model_calls == runs.calls and clean.usage.lost_calls == 0
        yield runs


async def _finish(runs: Runs, name: str, handle: WorkflowHandle[object, FeatureResult]) -> None:
    result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
    runs.check(name, result)


async def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        await asyncio.sleep(0.02)


async def test_killed_inside_preparation_mid_push(runs: Runs) -> None:
    cluster = runs.cluster
    with cluster.daemon.hold("prepare", "refs/backforge/numbers/*") as entered:
        name, handle = await runs.start()
        await _wait_for(entered)
        cluster.replace(await cluster.running_activity(handle, "prepare_workspace"))
    await _finish(runs, name, handle)
    numbers = git(
        cluster.bare(name), "for-each-ref", "--format=%(refname)", "refs/backforge/numbers/"
    )
    assert numbers.splitlines() == ["refs/backforge/numbers/001"]  # one number, one branch
    heads = git(cluster.bare(name), "for-each-ref", "--format=%(refname)", "refs/heads/")
    assert len(heads.splitlines()) == 2


async def test_killed_mid_model_call(runs: Runs) -> None:
    cluster = runs.cluster
    assert cluster.gate is not None
    cluster.gate.reached.clear()
    cluster.gate.release.clear()
    cluster.gate.hold_key = ("plan#1", 1)
    try:
        name, handle = await runs.start()
        await asyncio.to_thread(cluster.gate.reached.wait, 60)
        cluster.replace(await cluster.running_activity(handle, "run_phase_plan"))
    finally:
        cluster.gate.hold_key = None
        cluster.gate.release.set()
    result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
    runs.check(name, result)
    assert result.usage.lost_calls == 1  # the call in flight: paid for, and counted


async def test_killed_after_the_last_recorded_call_of_a_fix_round(runs: Runs) -> None:
    cluster = runs.cluster
    name, handle = await runs.start()
    bare = cluster.bare(name)
    deadline = time.monotonic() + 120
    while True:  # the fix round's last answer (turn 3) is on the remote
        refs = git(bare, "for-each-ref", "--format=%(refname)", "refs/backforge/runs/")
        if any("/fix-1/" in r and r.endswith("/0003") for r in refs.splitlines()):
            break
        assert time.monotonic() < deadline, "the fix round never recorded its last call"
        await asyncio.sleep(0.01)
    cluster.replace(await cluster.running_activity(handle, "run_phase_fix", timeout=5))
    result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
    runs.check(name, result)
    assert sum(cluster.received(result.branch).values()) == runs.calls  # nothing re-sent


async def test_killed_mid_push_of_a_phase_commit(runs: Runs) -> None:
    cluster = runs.cluster
    name, handle = await runs.start()
    await cluster.running_activity(handle, "run_phase_analyze", timeout=120)
    with cluster.daemon.hold("analyze", "refs/heads/*") as entered:
        await _wait_for(entered)
        cluster.replace(await cluster.running_activity(handle, "run_phase_analyze", timeout=5))
    await _finish(runs, name, handle)


async def test_killed_mid_merge_of_parallel_tasks(runs: Runs) -> None:
    cluster = runs.cluster
    assert cluster.gate is not None
    cluster.gate.reached.clear()
    cluster.gate.release.clear()
    cluster.gate.hold_key = ("implement/T002#1", 1)  # the batch's last call
    try:
        name, handle = await runs.start()
        await asyncio.to_thread(cluster.gate.reached.wait, 60)
        with cluster.daemon.hold("merge", "refs/heads/*") as entered:
            cluster.gate.hold_key = None
            cluster.gate.release.set()
            await _wait_for(entered)
            cluster.replace(
                await cluster.running_activity(handle, "merge_task_commits", timeout=10)
            )
    finally:
        cluster.gate.hold_key = None
        cluster.gate.release.set()
    await _finish(runs, name, handle)


async def test_a_stalled_worker_resumed_after_its_retry_changes_nothing(runs: Runs) -> None:
    cluster = runs.cluster
    name, handle = await runs.start()
    stalled = await cluster.running_activity(handle, "run_phase_test")
    stalled.signal(19)  # SIGSTOP: the host stalls mid-phase (tests running)
    try:
        # Temporal gives up on the attempt; the other worker runs it and moves on.
        await cluster.running_activity(handle, "run_phase_analyze", timeout=120)
    finally:
        stalled.signal(18)  # SIGCONT: the stale attempt wakes up and tries to finish
    result = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)
    runs.check(name, result)
    # The branch only ever moved forward: no push of the stale attempt landed.
    log = git(cluster.bare(name), "reflog", "show", "--format=%H", f"refs/heads/{result.branch}")
    history = list(reversed(log.splitlines()))
    for older, newer in zip(history, history[1:], strict=False):
        assert git(cluster.bare(name), "merge-base", "--is-ancestor", older, newer) == ""


async def test_random_kills_over_twenty_runs(runs: Runs) -> None:
    """Rounds of features run side by side; a busy worker is killed at random moments
    until every feature of the round has had an activity killed under it."""
    cluster = runs.cluster
    rng = random.Random(20261130)
    disturbed: set[str] = set()
    checked = 0
    while checked < RANDOM_RUNS:
        batch = [await runs.start() for _ in range(min(4, RANDOM_RUNS - checked))]
        handles = [h for _, h in batch]
        hit: set[str] = set()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            open_ = [h for h in handles if h.id not in hit]
            if not open_:
                break
            await asyncio.sleep(rng.uniform(0.2, 2.5))
            busy = await cluster.busy_worker(open_)
            if busy is None:
                states = [(await h.describe()).status for h in open_]
                if all(s is not None and s.name != "RUNNING" for s in states):
                    break
                continue
            worker, ids = busy
            cluster.replace(worker)
            hit.update(ids)
        for name, handle in batch:
            await _finish(runs, name, handle)
            checked += 1
            if handle.id in hit:
                disturbed.add(handle.id)
    assert len(disturbed) >= RANDOM_RUNS * 3 // 4, f"only {len(disturbed)} runs had a kill land"
