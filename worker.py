"""Run a Backforge worker.

    python worker.py                 # against TEMPORAL_ADDRESS (default localhost:7233)
    python worker.py --dev           # also start the embedded dev server (UI on :8233)
    python worker.py --dev --port 7300 --ui-port 8300

Model API keys (ANTHROPIC_API_KEY, OPENAI_API_KEY) are read here, from this
worker's environment. Ctrl-C drains in-flight activities for up to
``--drain-seconds`` (they report to the server, which stops last) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
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
from activities.phases.summarize import SummarizePhase
from activities.phases.tasks import TasksPhase
from activities.phases.testing import TestPhase
from activities.phases.validate import ValidatePhase
from activities.sandbox import set_cpu_slots, sweep
from activities.services import Services
from activities.workspace import WorkspaceError, Workspaces
from contract import SANDBOX_QUEUE_SUFFIX, TASK_QUEUE
from runtime import DEFAULT_DATA_DIR, DevServer, PortInUse, connect, start_dev_server
from telemetry import worker_interceptors
from telemetry.prometheus import prometheus_config
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.phases import SANDBOXED_ACTIVITIES

__all__ = ["WorkerGroup", "activities", "build_worker", "default_sandbox_slots", "main"]


def activities(services: Services) -> list[Callable[..., Any]]:
    """Every activity of the pipeline, bound to ``services``."""
    return [
        PrepareStep(services).run,
        ResetStep(services).run,
        SummarizePhase(services).run,
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
    """Sandboxed runs use the CPU: one per core this process may run on (at least one).

    A container's CPU limit is not visible here (only a cpuset is): set
    ``--sandbox-slots`` / ``BACKFORGE_SANDBOX_SLOTS`` to the limit there.
    """
    return max(1, len(os.sched_getaffinity(0)))


class WorkerGroup:
    """The pollers of one Backforge worker process, started and stopped together.

    One polls the feature's task queue (the workflow and every model-driven or git
    activity, with many slots); one polls ``<queue>-sandbox`` (test and validation runs
    of generated code, with one slot per core). Either may be absent (``slots=0``) when
    another process serves that queue.
    """

    def __init__(self, workers: list[Worker], workspaces: Workspaces) -> None:
        self.workers = workers
        self.workspaces = workspaces

    async def __aenter__(self) -> WorkerGroup:
        for worker in self.workers:
            await worker.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            for worker in reversed(self.workers):
                await worker.__aexit__(*exc)  # type: ignore[arg-type]
        finally:
            self.workspaces.release()


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
            core; 0: do not poll it). Also the process's CPU slots
            (``activities.sandbox.cpu_slots``): how many sandboxed runs of any phase
            (evidence checks and tools of model-driven phases too) run at once.
    """
    if services is None:
        scratch = Path(tempfile.mkdtemp(prefix="backforge-scratch-"))
        services = Services(workspaces=Workspaces(scratch))
    services = services.traced()
    services.workspaces.claim()
    for cleaned in sweep():  # what a killed worker's sandboxed runs left behind
        logging.getLogger(__name__).info("sandbox sweep: %s", cleaned)
    registered = {_name(a): a for a in activities(services)}
    for fake in activity_overrides or []:
        registered[_name(fake)] = fake
    sandboxed = [a for n, a in registered.items() if n in SANDBOXED_ACTIVITIES]
    other = [a for n, a in registered.items() if n not in SANDBOXED_ACTIVITIES]
    slots = default_sandbox_slots() if sandbox_slots is None else sandbox_slots
    set_cpu_slots(slots or default_sandbox_slots())
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
        services.workspaces.release()
        raise ValueError(
            "activity_slots and sandbox_slots are both 0: this worker would do nothing"
        )
    return WorkerGroup(workers, services.workspaces)


def _name(fn: Callable[..., Any]) -> str:
    defn = getattr(fn, "__temporal_activity_definition", None)
    return defn.name if defn is not None else fn.__name__


def _runtime(metrics_port: int | None) -> None:
    """The process's Temporal runtime: the core's own log lines through Python logging
    (plain text, no colour codes in a log file) and, with ``metrics_port``, Prometheus
    metrics (Temporal's and Backforge's) on that port. Must run before the first client."""
    from temporalio.runtime import (
        LogForwardingConfig,
        LoggingConfig,
        Runtime,
        TelemetryConfig,
        TelemetryFilter,
    )

    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    metrics = prometheus_config(metrics_port) if metrics_port else None
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging_config, metrics=metrics)))


def _providers_line() -> str:
    from activities.models.keys import PROVIDER_KEYS, missing_key, servable

    missing = [key for p, (key, _) in PROVIDER_KEYS.items() if missing_key(f"{p}:x")]
    line = f"Model providers this worker can serve: {', '.join(servable())}"
    if missing:
        line += f" ({', '.join(missing)} not set in this environment)"
    return line


async def _run(args: argparse.Namespace) -> int:
    server: DevServer | None = None
    if args.dev:
        try:
            server = await start_dev_server(
                data_dir=args.data_dir, port=args.port, ui_port=args.ui_port
            )
        except PortInUse as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        client = server.client
        ui = f"http://localhost:{server.ui_port}"
        print(
            f"Embedded Temporal dev server: localhost:{server.port}, UI {ui} "
            f"(log {server.log_path})"
        )
        if server.port != 7233 or server.ui_port != server.port + 1000:
            address = f"localhost:{server.port}"
            print(f"For the CLI: export TEMPORAL_ADDRESS={address} TEMPORAL_UI_URL={ui}")
    else:
        client = await connect(args.address, args.namespace)
    try:
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
        print(_providers_line())
        print(f"Worker polling task queue {args.task_queue!r}. Ctrl-C to stop.", flush=True)
        async with worker:
            await stop.wait()
            print(
                f"Shutting down: in-flight activities have up to {args.drain_seconds:g}s to "
                "finish and report...",
                flush=True,
            )
        # The worker has drained: only now may the server go (its own session kept
        # the terminal's Ctrl-C from stopping it first).
    finally:
        if server is not None:
            await server.shutdown()
    print("Worker stopped.", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the worker (and the embedded server with ``--dev``) until Ctrl-C.

    Returns:
        The exit code: 0 after a clean stop, 1 when it could not start.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--address", default=None, help="Temporal address (env TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", default=None, help="namespace (env TEMPORAL_NAMESPACE)")
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    parser.add_argument("--dev", action="store_true", help="start the embedded dev server too")
    parser.add_argument(
        "--port", type=int, default=7233, help="--dev: the server's frontend port (default 7233)"
    )
    parser.add_argument(
        "--ui-port", type=int, default=None, help="--dev: the Web UI's port (default port + 1000)"
    )
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
        default=os.environ.get("BACKFORGE_ACTIVITY_SLOTS") or DEFAULT_ACTIVITY_SLOTS,
        help="concurrent model-driven and git activities (they mostly wait; 0: none here; "
        "env BACKFORGE_ACTIVITY_SLOTS)",
    )
    parser.add_argument(
        "--sandbox-slots",
        type=int,
        default=os.environ.get("BACKFORGE_SANDBOX_SLOTS") or None,  # argparse applies int
        help="concurrent sandboxed test and validation runs, and the cap on sandboxed runs "
        "of any phase in this process (default: one per usable core; 0: none here, another "
        "worker serves the <queue>-sandbox queue, and the cap is one per core; "
        "env BACKFORGE_SANDBOX_SLOTS)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("BACKFORGE_METRICS_PORT") or 0) or None,
        help="serve Prometheus metrics (Temporal's and Backforge's) on this port at /metrics "
        "(default: off; env BACKFORGE_METRICS_PORT). Traces: see telemetry/config.py",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="on Ctrl-C, how long in-flight activities may run on (default 30)",
    )
    args = parser.parse_args(argv)
    for name in ("activity_slots", "sandbox_slots"):
        if (getattr(args, name) or 0) < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 or more")
    if args.ui_port is None:
        args.ui_port = args.port + 1000
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _runtime(args.metrics_port)
    try:
        return asyncio.run(_run(args))
    except (ConnectionError, WorkspaceError, RuntimeError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    from process import leave  # exits without tearing down under the SDK's threads

    leave(main())
