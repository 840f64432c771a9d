"""Speed-up of the implement phase from running ``[P]`` tasks side by side.

    python bench/parallel_tasks.py [--latency 0.5]

Runs the demo feature twice on an embedded dev server, with parallel tasks on
and off, through a model wrapper that adds a fixed latency to every call of
the scripted model (a hand-written transcript standing in for a model). The
bundled tasks.md has four ``[P]`` setup tasks with disjoint files. Prints the
implement phase's wall time (first implement scheduled to last implement or
merge completed, from the workflow history) for each mode and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.models import ModelResolver  # noqa: E402
from activities.services import Services  # noqa: E402
from bench.pipeline import drive  # noqa: E402
from contract import DEFAULT_MODEL, FeatureRequest  # noqa: E402
from runtime import start_dev_server  # noqa: E402
from tests.support.pipeline import FEATURE, SlowModel  # noqa: E402


async def implement_seconds(env, repo: Path, parallel: bool, services: Services) -> float:  # type: ignore[no-untyped-def]
    request = FeatureRequest(
        feature=FEATURE, repo_path=str(repo), model=DEFAULT_MODEL, parallel_tasks=parallel
    )
    handle = await drive(env, request, services)
    events = (await handle.fetch_history()).events
    names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    times = {e.event_id: e.event_time.ToDatetime().timestamp() for e in events}
    phase = {"run_phase_implement", "merge_task_commits"}
    starts = [times[i] for i, n in names.items() if n in phase]
    ends = [
        times[e.event_id]
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
        and names[e.activity_task_completed_event_attributes.scheduled_event_id] in phase
    ]
    return max(ends) - min(starts)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--latency", type=float, default=0.5, help="seconds added to every model call"
    )
    args = parser.parse_args()
    services = Services(
        models=ModelResolver(wrappers=[lambda model: SlowModel(model, args.latency)])
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = await start_dev_server(data_dir=Path(tmp) / "data", port=None, ui=False)
        try:
            sequential = await implement_seconds(env, Path(tmp) / "seq", False, services)
            parallel = await implement_seconds(env, Path(tmp) / "par", True, services)
        finally:
            await env.shutdown()
    print(f"model latency {args.latency:.2f}s per call; implement phase (12 tasks, 4 of them [P]):")
    print(
        f"  sequential {sequential:.2f}s, parallel {parallel:.2f}s, speed-up x{sequential / parallel:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
