"""Orchestration cost per activity: Backforge against a bare Temporal chain.

    python bench/orchestration.py [--rounds 5]

Interleaves three runs per round on one embedded dev server, each against a bare
workflow that runs the same number of no-op activities one after the other:

- **orchestration**: ``BackendFeatureWorkflow`` itself (workflow code, pydantic
  conversion, search attributes, the worker's task queues) with every phase activity
  replaced by a stand-in that returns at once (``tests/support/fake_phases``);
- **demo feature**: the real activities with the scripted model (a test double that
  answers at once, so no model time). The time of the sandboxed activities (test and
  validate: running generated code is real work) is taken out; what remains per
  activity is orchestration plus each step's own work: files, git (one checkout per
  attempt, one commit and push), run-store records, prompt rendering.

Prints medians of wall time and of this process's CPU time per activity (the worker
runs in this process), and their ratios to the bare chain.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.services import Services  # noqa: E402
from activities.workspace import Workspaces, init_repo  # noqa: E402
from runtime import start_dev_server  # noqa: E402
from tests.support.fake_phases import Fakes, request  # noqa: E402
from tests.support.pipeline import run_pipeline  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.backend_feature import BackendFeatureWorkflow  # noqa: E402
from workflows.phases import SANDBOXED_ACTIVITIES  # noqa: E402


@activity.defn(name="bench_noop")
async def noop(i: int) -> int:
    return i


@workflow.defn(name="BenchBareChain", sandboxed=False)
class BareChain:
    @workflow.run
    async def run(self, count: int) -> int:
        for i in range(count):
            await workflow.execute_activity(
                "bench_noop", i, start_to_close_timeout=timedelta(seconds=30)
            )
        return count


async def backforge_round(env, tmp: Path) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    repo = tmp / f"svc-{uuid.uuid4().hex[:6]}"
    init_repo(repo)
    cpu0 = time.process_time()
    run = await run_pipeline(
        env,
        repo,
        workflow_id=f"orch-{uuid.uuid4().hex[:8]}",
        services=Services(workspaces=Workspaces(tmp / f"scratch-{uuid.uuid4().hex[:6]}")),
    )
    cpu = time.process_time() - cpu0
    events = (await run.handle.fetch_history()).events
    names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    times = {e.event_id: e.event_time.ToDatetime().timestamp() for e in events}
    sandboxed = 0.0
    for e in events:
        if e.HasField("activity_task_completed_event_attributes"):
            attrs = e.activity_task_completed_event_attributes
            if names[attrs.scheduled_event_id] in SANDBOXED_ACTIVITIES:
                sandboxed += times[e.event_id] - times[attrs.scheduled_event_id]
    wall = times[events[-1].event_id] - times[events[0].event_id] - sandboxed
    count = sum(1 for n in names.values() if n not in SANDBOXED_ACTIVITIES)
    return wall, cpu, count


async def workflow_round(env) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """The workflow with stand-in activities: wall, CPU and activity count."""
    fakes = Fakes(clarify=False)
    queue = f"orch-wf-{uuid.uuid4().hex[:8]}"
    async with build_worker(env.client, task_queue=queue, activity_overrides=fakes.activities()):
        cpu0, t0 = time.process_time(), time.monotonic()
        handle = await env.client.start_workflow(
            BackendFeatureWorkflow.run,
            request(),
            id=f"orch-wf-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        result = await handle.result()
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    assert result.state == "completed", result.message
    events = (await handle.fetch_history()).events
    count = sum(1 for e in events if e.HasField("activity_task_scheduled_event_attributes"))
    return wall, cpu, count


async def bare_round(env, count: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    queue = f"bare-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[BareChain],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        cpu0, t0 = time.process_time(), time.monotonic()
        await env.client.execute_workflow(
            BareChain.run, count, id=f"bare-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        return time.monotonic() - t0, time.process_time() - cpu0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # kind -> (Backforge wall, Backforge CPU, bare wall, bare CPU) per activity, per round
    figures: dict[str, list[tuple[float, float, float, float]]] = {"orchestration": [], "demo": []}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = await start_dev_server(data_dir=Path(tmp) / "data", port=None, ui=False)
        try:
            await workflow_round(env)  # warm-up: imports, first workflow task
            for _ in range(args.rounds):
                for kind in figures:
                    if kind == "orchestration":
                        wall, cpu, count = await workflow_round(env)
                    else:
                        wall, cpu, count = await backforge_round(env, Path(tmp))
                    bare_wall, bare_cpu = await bare_round(env, count)
                    counts[kind] = count
                    figures[kind].append(
                        (wall / count, cpu / count, bare_wall / count, bare_cpu / count)
                    )
        finally:
            await env.shutdown()
    print(f"per activity, medians of {args.rounds} interleaved rounds:")
    for kind, rows in figures.items():
        w, c, bw, bc = (statistics.median(row[i] for row in rows) * 1000 for i in range(4))
        label = (
            "orchestration (stand-in activities)"
            if kind == "orchestration"
            else "demo feature (real activities, scripted model, sandboxed runs taken out)"
        )
        print(f"  {label}, {counts[kind]} activities:")
        print(f"    wall: Backforge {w:.1f} ms, bare chain {bw:.1f} ms, ratio {w / bw:.2f}")
        print(f"    worker CPU: Backforge {c:.1f} ms, bare chain {bc:.1f} ms, ratio {c / bc:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
