"""Several worker processes: features per minute with 1 vs 3 workers, and recovery time.

    python bench/workers.py [--latency 2] [--features 6] [--heartbeat 60]

Same workload, same run: ``--features`` features at once (the small scripted feature
of ``tests/fixtures/tiny.yaml``, a test double; every model call takes ``--latency``
seconds, as a real model's would) on 1 worker process, then on 3, each worker with its
own scratch directory, against a repository served by ``git daemon`` on 127.0.0.1.
Then recovery: one feature, its worker SIGKILLed (disk wiped) while a phase runs;
recovery is the time from the kill until that phase starts again on another worker,
and is bounded by the feature's heartbeat timeout (``--heartbeat``) plus the retry
policy's first backoff (2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime import start_dev_server  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402


async def throughput(env, base: Path, workers: int, n: int, latency: float) -> float:  # type: ignore[no-untyped-def]
    with Cluster(env, base, workers=workers, latency=latency) as cluster:
        started = time.monotonic()
        handles = [
            await cluster.start(f"w{workers}-f{i}", feature=f"Batch{i} arithmetic helpers add")
            for i in range(n)
        ]
        results = await asyncio.gather(*(h.result() for h in handles))
        wall = time.monotonic() - started
    assert all(r.state == "completed" for r in results), [r.message for r in results]
    return wall


async def recovery(env, base: Path, heartbeat: int, latency: float) -> float:  # type: ignore[no-untyped-def]
    with Cluster(env, base, workers=2, latency=latency) as cluster:
        handle = await cluster.start("recovery", heartbeat_s=heartbeat)
        victim = await cluster.running_activity(handle, "run_phase_plan", timeout=120)
        killed = time.monotonic()
        victim.kill(wipe=True)
        deadline = killed + heartbeat + 120
        while time.monotonic() < deadline:
            desc = await handle.describe()
            for p in desc.raw_description.pending_activities:
                if (
                    p.activity_type.name == "run_phase_plan"
                    and p.attempt >= 2
                    and p.state == 2  # STARTED, on the other worker
                ):
                    took = time.monotonic() - killed
                    await handle.result()
                    return took
            await asyncio.sleep(0.05)
    raise RuntimeError("the phase never started again")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--features", type=int, default=6)
    parser.add_argument("--heartbeat", type=int, default=60, help="the feature's heartbeat timeout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = await start_dev_server(data_dir=Path(tmp) / "data", port=None, ui=False)
        try:
            one = await throughput(env, Path(tmp) / "one", 1, args.features, args.latency)
            three = await throughput(env, Path(tmp) / "three", 3, args.features, args.latency)
            rec = await recovery(env, Path(tmp) / "rec", args.heartbeat, args.latency)
        finally:
            await env.shutdown()
    n = args.features
    print(f"{n} features at once, {args.latency:.1f}s per model call (tiny transcript):")
    print(f"  1 worker : {one:6.1f}s  {n / one * 60:5.2f} features/min")
    print(f"  3 workers: {three:6.1f}s  {n / three * 60:5.2f} features/min  (x{one / three:.2f})")
    print(f"recovery after a worker is killed mid-phase: {rec:.1f}s "
          f"(heartbeat timeout {args.heartbeat}s + 2s backoff)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
