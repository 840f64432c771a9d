"""Several workers as separate hosts: nothing shared but Temporal and the git remote.

Two ``worker.py`` processes, each with its own scratch directory, against a
repository served by ``git daemon`` on 127.0.0.1 and a model server that counts
every call it receives. A worker is killed in the middle of a phase and its disk
wiped; the feature finishes on the other worker with the same tree as a run
nobody disturbed, and no model call is paid for twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.support.cluster import Cluster, tree

#: Documents naming the workflow (the report) differ between any two features.
VARYING = ("report.md", "validation.md")


async def test_a_feature_survives_a_lost_worker_host(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    with Cluster(local_env, tmp_path) as cluster:
        reference = await cluster.start("reference")
        clean = await asyncio.wait_for(reference.result(), 120)
        assert clean.state == "completed", clean.message
        calls_clean = len(cluster.wire.requests)

        handle = await cluster.start("disturbed")
        victim = await cluster.running_activity(handle, "run_phase_test")
        victim.kill(wipe=True)  # the host is gone, with its disk
        result = await asyncio.wait_for(handle.result(), 120)
        assert result.state == "completed", result.message

    survivor = {w.name for w in cluster.workers} - {victim.name}
    assert survivor, "one worker must have finished the feature"
    ref_tree = tree(cluster.bare("reference"), clean.branch, without=VARYING)
    assert tree(cluster.bare("disturbed"), result.branch, without=VARYING) == ref_tree
    # Counted at the model server: the disturbed run sent exactly what the clean one did.
    assert len(cluster.wire.requests) - calls_clean == calls_clean
    assert all(n == 2 for n in cluster.received().values())  # once per feature, never again
    assert result.usage.model_calls == clean.usage.model_calls == calls_clean
