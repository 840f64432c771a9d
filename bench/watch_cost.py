"""What following a feature costs: worker and server CPU with and without ``watch``.

    python bench/watch_cost.py [--rounds 3]

On one embedded dev server, runs the demo feature (scripted model, a test double that
answers at once) in interleaved pairs: once unwatched, once with ``starter.py watch``
following it from its start to its end in a separate process. The feature's
clarification is answered the same way in both (this process waits for it on the
history's long poll, as ``watch`` does). Measured per feature: this process's CPU time
(the worker runs here) and the dev server's (from ``/proc``); the watcher's own CPU is
not counted, it is the person's terminal. Prints medians and the watched/unwatched
ratios; the target is within 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.services import Services  # noqa: E402
from activities.workspace import Workspaces, init_repo  # noqa: E402
from contract import DEFAULT_MODEL, FeatureRequest  # noqa: E402
from runtime import DevServer, start_dev_server  # noqa: E402
from tests.support.pipeline import FEATURE, answer_until_closed  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.backend_feature import BackendFeatureWorkflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def one_feature(env: DevServer, tmp: Path, *, watched: bool) -> tuple[float, float, float]:
    """Worker CPU, server CPU and wall seconds for one demo feature."""
    repo = tmp / f"svc-{uuid.uuid4().hex[:6]}"
    init_repo(repo)
    queue = f"watch-cost-{uuid.uuid4().hex[:8]}"
    services = Services(workspaces=Workspaces(tmp / f"scratch-{uuid.uuid4().hex[:6]}"))
    async with build_worker(env.client, task_queue=queue, services=services):
        worker0, server0, t0 = time.process_time(), process_cpu(env.pid), time.monotonic()
        handle = await env.client.start_workflow(
            BackendFeatureWorkflow.run,
            FeatureRequest(feature=FEATURE, repo_path=str(repo), model=DEFAULT_MODEL),  # type: ignore[arg-type]
            id=f"watch-cost-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        watcher = None
        if watched:
            watcher = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "starter.py"), "--address", env.address,
                "watch", handle.id,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        await answer_until_closed(handle, [])
        await handle.result()
        worker, server = time.process_time() - worker0, process_cpu(env.pid) - server0
        wall = time.monotonic() - t0
        if watcher is not None:
            await asyncio.wait_for(watcher.wait(), timeout=60)
    return worker, server, wall


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        env = await start_dev_server(data_dir=Path(tmp) / "data", port=None, ui=False)
        try:
            await one_feature(env, Path(tmp), watched=False)  # warm-up: imports, base env
            for round_ in range(args.rounds):
                order = (False, True) if round_ % 2 == 0 else (True, False)
                for watched in order:
                    results[watched].append(await one_feature(env, Path(tmp), watched=watched))
        finally:
            await env.shutdown()

    def median(watched: bool, index: int) -> float:
        return statistics.median(r[index] for r in results[watched])

    print(f"per demo feature, median of {args.rounds} interleaved pairs:")
    for index, name in ((0, "worker CPU"), (1, "server CPU"), (2, "wall")):
        bare, watched = median(False, index), median(True, index)
        print(
            f"  {name}: unwatched {bare:.2f} s, watched {watched:.2f} s, ratio {watched / bare:.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
