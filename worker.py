"""Run a Backforge worker.

    python worker.py                 # against TEMPORAL_ADDRESS (default localhost:7233)
    python worker.py --dev           # also start the embedded dev server (UI on :8233)

Ctrl-C drains in-flight activities for up to ``--drain-seconds`` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.phases.analyze import AnalyzePhase
from activities.phases.constitution import ConstitutionPhase
from activities.phases.deliver import DeliverPhase
from activities.phases.fix import FixPhase
from activities.phases.implement import ImplementPhase
from activities.phases.merge import MergeStep
from activities.phases.plan import PlanPhase
from activities.phases.prepare import PrepareStep, ResetStep
from activities.phases.specify import SpecifyPhase
from activities.phases.tasks import TasksPhase
from activities.phases.testing import TestPhase
from activities.phases.validate import ValidatePhase
from activities.sandbox import sweep
from activities.services import Services
from activities.workspace import WorkspaceError, Workspaces
from contract import SANDBOX_QUEUE_SUFFIX, TASK_QUEUE
from runtime import DEFAULT_DATA_DIR, connect, start_dev_server
from telemetry import install_prometheus, instrument_services, worker_interceptors
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.phases import SANDBOXED_ACTIVITIES

__all__ = ["WorkerGroup", "activities", "build_worker", "default_sandbox_slots", "main"]


def activities(services: Services) -> list[Callable[..., Any]]:
    """Every activity of the pipeline, bound to ``services``."""
    return [
        PrepareStep(services).run,
        ResetStep(services).run,
        ConstitutionPhase(services).run,
        SpecifyPhase(services).run,
        PlanPhase(services).run,
        TasksPhase(services).run,
        ImplementPhase(services).run,
        MergeStep(services).run,
        TestPhase(services).run,
        FixPhase(services).run,
        ValidatePhase(services).run,
        AnalyzePhase(services).run,
        DeliverPhase(services).run,
    ]


#: Model-driven activities mostly wait on a model: many may be in flight per worker.
DEFAULT_ACTIVITY_SLOTS = 64


def default_sandbox_slots() -> int:
    """Sandboxed runs use the CPU: one per core (at least one)."""
    return max(1, os.cpu_count() or 1)


class WorkerGroup:
    """The pollers of one Backforge worker process, started and stopped together.

    One polls the feature's task queue (the workflow and every model-driven or git
    activity, with many slots); one polls ``<queue>-sandbox`` (test and validation runs
    of generated code, with one slot per core). Either may be absent (``slots=0``) when
    another process serves that queue.
    """

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers

    async def __aenter__(self) -> WorkerGroup:
        for worker in self.workers:
            await worker.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for worker in reversed(self.workers):
            await worker.__aexit__(*exc)  # type: ignore[arg-type]


def build_worker(
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    services: Services | None = None,
    activity_overrides: list[Callable[..., Any]] | None = None,
    activity_slots: int = DEFAULT_ACTIVITY_SLOTS,
    sandbox_slots: int | None = None,
    drain_seconds: float = 30.0,
) -> WorkerGroup:
    """A worker with the workflow and every activity registered.

    Args:
        services: What the activities use (models, workspaces); by default the real
            models and a fresh scratch directory of the worker's own.
        activity_overrides: Activities registered instead of the real ones with the same
            name (tests register fakes this way).
        activity_slots: Concurrent activities on the feature queue (0: do not poll it).
        sandbox_slots: Concurrent sandboxed runs on the sandbox queue (default one per
            core; 0: do not poll it).
    """
    if services is None:
        scratch = Path(tempfile.mkdtemp(prefix="backforge-scratch-"))
        services = Services(workspaces=Workspaces(scratch))
    services = instrument_services(services)
    services.workspaces.claim()
    for cleaned in sweep():  # what a killed worker's sandboxed runs left behind
        logging.getLogger(__name__).info("sandbox sweep: %s", cleaned)
    registered = {_name(a): a for a in activities(services)}
    for fake in activity_overrides or []:
        registered[_name(fake)] = fake
    sandboxed = [a for n, a in registered.items() if n in SANDBOXED_ACTIVITIES]
    other = [a for n, a in registered.items() if n not in SANDBOXED_ACTIVITIES]
    slots = default_sandbox_slots() if sandbox_slots is None else sandbox_slots
    shutdown = timedelta(seconds=drain_seconds)
    interceptors = worker_interceptors(client)
    workers = []
    if activity_slots > 0:
        workers.append(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[BackendFeatureWorkflow],
                activities=other,
                max_concurrent_activities=activity_slots,
                graceful_shutdown_timeout=shutdown,
                interceptors=interceptors,
            )
        )
    if slots > 0:
        workers.append(
            Worker(
                client,
                task_queue=task_queue + SANDBOX_QUEUE_SUFFIX,
                activities=sandboxed,
                max_concurrent_activities=slots,
                graceful_shutdown_timeout=shutdown,
                interceptors=interceptors,
            )
        )
    if not workers:
        raise ValueError(
            "activity_slots and sandbox_slots are both 0: this worker would do nothing"
        )
    return WorkerGroup(workers)


def _name(fn: Callable[..., Any]) -> str:
    defn = getattr(fn, "__temporal_activity_definition", None)
    return defn.name if defn is not None else fn.__name__


async def _run(args: argparse.Namespace) -> None:
    env = None
    if args.dev:
        env = await start_dev_server(data_dir=args.data_dir)
        client = env.client
        print("Embedded Temporal dev server: localhost:7233, UI http://localhost:8233")
    else:
        client = await connect(args.address, args.namespace)
    services = Services(workspaces=Workspaces(args.scratch or args.data_dir / "scratch"))
    worker = build_worker(
        client,
        task_queue=args.task_queue,
        services=services,
        activity_slots=args.activity_slots,
        sandbox_slots=args.sandbox_slots,
        drain_seconds=args.drain_seconds,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"Worker polling task queue {args.task_queue!r}. Ctrl-C to stop.")
    async with worker:
        await stop.wait()
        print("Shutting down: finishing in-flight activities...")
    if env is not None:
        with contextlib.suppress(Exception):
            await env.shutdown()
    print("Worker stopped.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--address", default=None, help="Temporal address (env TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", default=None, help="namespace (env TEMPORAL_NAMESPACE)")
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    parser.add_argument("--dev", action="store_true", help="start the embedded dev server too")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, type=Path)
    parser.add_argument(
        "--scratch",
        type=Path,
        default=os.environ.get("BACKFORGE_SCRATCH") or None,
        help="this worker's own directory for repository caches and checkouts "
        "(default: <data-dir>/scratch; env BACKFORGE_SCRATCH)",
    )
    parser.add_argument(
        "--activity-slots",
        type=int,
        default=DEFAULT_ACTIVITY_SLOTS,
        help="concurrent model-driven and git activities (they mostly wait; 0: none here)",
    )
    parser.add_argument(
        "--sandbox-slots",
        type=int,
        default=None,
        help="concurrent sandboxed test and validation runs (default: one per core; 0: none "
        "here, another worker serves the <queue>-sandbox queue)",
    )
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("BACKFORGE_METRICS_PORT") or 0) or None,
        help="serve Prometheus metrics (Temporal's and Backforge's) on this port at /metrics "
        "(default: off; env BACKFORGE_METRICS_PORT). Traces: see telemetry/config.py",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.metrics_port:
            install_prometheus(args.metrics_port)
        asyncio.run(_run(args))
    except (ConnectionError, WorkspaceError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
