"""Features per minute on one worker, with a fixed model latency, at several concurrencies.

    python bench/throughput.py [--latency 2] [--features 1,16,64] [--transcript PATH]

Each round starts N features at once (each on its own repository) against one
in-process worker on an embedded dev server; every model call of the scripted
transcript (a test double) takes ``--latency`` seconds, as a real model's would.
Test and validation runs of the generated service are real (sandboxed pytest,
uvicorn and the black-box checker), each run for real: the features are identical, and
the worker's cache of test runs would otherwise serve one feature's runs to the others
(``--reuse`` allows it). Prints, per N: wall time, features per minute,
efficiency (the time of one feature / the time of N at once; 1.0 is perfect overlap),
the CPU ceiling (the best efficiency the machine's cores allow for the CPU the round
used: when it is below 0.8, no scheduling reaches 0.8 on this machine),
the worker process's CPU (its own, and its children's: sandboxed runs), the dev
server's CPU, and the worker's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.models import ModelResolver  # noqa: E402
from activities.project_tests import RUNS  # noqa: E402
from activities.services import Services  # noqa: E402
from activities.workspace import Workspaces, init_repo  # noqa: E402
from contract import DEFAULT_MODEL, FeatureRequest  # noqa: E402
from runtime import start_dev_server  # noqa: E402
from tests.support.pipeline import SlowModel, answer_until_closed  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.backend_feature import BackendFeatureWorkflow  # noqa: E402


def server_cpu(pid: int) -> float:
    """User+system CPU seconds of process ``pid`` and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])
    return ticks / 100.0


def server_pid() -> int:
    """The embedded dev server: the ``temporal`` child process of this process."""
    for task in Path("/proc/self/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                exe = Path(f"/proc/{child}/exe").resolve().name
            except OSError:
                continue
            if exe == "temporal":
                return int(child)
    raise RuntimeError("the embedded dev server is not a child of this process")


async def one_round(env, n: int, latency: float, transcript: str, tmp: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    services = Services(
        models=ModelResolver(wrappers=[lambda m: SlowModel(m, latency)]),
        workspaces=Workspaces(tmp / f"scratch-{n}"),
    )
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    spid = server_pid()
    cpu0, kids0, srv0 = time.process_time(), _children_cpu(), server_cpu(spid)
    started = time.monotonic()
    async with build_worker(env.client, task_queue=queue, services=services):
        handles = []
        for i in range(n):
            repo = tmp / f"repo-{n}-{i}"
            init_repo(repo)
            handles.append(
                await env.client.start_workflow(
                    BackendFeatureWorkflow.run,
                    FeatureRequest(
                        feature="Build a bookmarks API with tags and per-user collections",
                        repo_path=str(repo),
                        model=f"scripted:{transcript}",
                    ),
                    id=f"bench-{uuid.uuid4().hex[:8]}",
                    task_queue=queue,
                )
            )
        async with asyncio.timeout(3600):  # bounded: an hour
            await asyncio.gather(*(answer_until_closed(h, []) for h in handles))
        results = [await h.result() for h in handles]
    wall = time.monotonic() - started
    failed = [r for r in results if r.state != "completed"]
    return {
        "n": n,
        "wall_s": wall,
        "features_per_min": n / wall * 60,
        "worker_cpu_s": time.process_time() - cpu0,
        "children_cpu_s": _children_cpu() - kids0,
        "server_cpu_s": server_cpu(spid) - srv0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "failed": len(failed),
    }


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per model call")
    parser.add_argument("--features", default="1,16,64", help="concurrencies, comma-separated")
    parser.add_argument("--transcript", default=DEFAULT_MODEL.split(":", 1)[1])
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="let the features share test runs: they are identical here, so the worker's run "
        "cache (activities/reused_runs.py) serves one feature's runs to the others; "
        "off by default, since real features differ",
    )
    args = parser.parse_args()
    if not args.reuse:
        RUNS.size = 0  # keeps nothing: every test run is real
    counts = [int(x) for x in args.features.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        env = await start_dev_server(data_dir=Path(tmp) / "data", port=None, ui=False)
        try:
            rounds = [
                await one_round(env, n, args.latency, args.transcript, Path(tmp)) for n in counts
            ]
        finally:
            await env.shutdown()
    one = next((r for r in rounds if r["n"] == 1), None)
    cores = len(os.sched_getaffinity(0))
    print(
        f"model latency {args.latency:.1f}s per call; transcript {args.transcript}; {cores} cores"
    )
    print(
        f"{'N':>4} {'wall s':>8} {'feat/min':>9} {'efficiency':>10} {'cpu ceiling':>11} "
        f"{'worker cpu':>10} {'children cpu':>12} {'server cpu':>10} {'peak MB':>8} {'failed':>6}"
    )
    for r in rounds:
        eff = (one["wall_s"] / r["wall_s"]) if one else float("nan")
        print(
            f"{r['n']:>4} {r['wall_s']:>8.1f} {r['features_per_min']:>9.2f} {eff:>10.2f} "
            f"{ceiling(r, one, cores):>11.2f} {r['worker_cpu_s']:>10.1f} "
            f"{r['children_cpu_s']:>12.1f} {r['server_cpu_s']:>10.1f} "
            f"{r['peak_rss_mb']:>8.0f} {r['failed']:>6}"
        )
    print(
        "cpu ceiling: the best efficiency these cores allow for the CPU the round used "
        "(worker, sandboxed runs and server): time of one / max(time of one, CPU / cores)"
    )


def ceiling(r: dict[str, float], one: dict[str, float] | None, cores: int) -> float:
    """The efficiency a perfect scheduler would reach with this round's CPU on ``cores``."""
    if one is None:
        return float("nan")
    cpu = r["worker_cpu_s"] + r["children_cpu_s"] + r["server_cpu_s"]
    return one["wall_s"] / max(one["wall_s"], cpu / cores)


if __name__ == "__main__":
    asyncio.run(main())
