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
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities import ALL_ACTIVITIES
from runtime import DEFAULT_DATA_DIR, connect, start_dev_server
from workflows.backend_feature import BackendFeatureWorkflow
from workflows.types import TASK_QUEUE

__all__ = ["build_worker", "main"]


def build_worker(
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    activities: list | None = None,
    drain_seconds: float = 30.0,
) -> Worker:
    """A worker with the workflow and every phase activity registered."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BackendFeatureWorkflow],
        activities=activities if activities is not None else ALL_ACTIVITIES,
        # Git and file work runs in threads from async activities.
        activity_executor=ThreadPoolExecutor(max_workers=8),
        max_concurrent_activities=8,
        graceful_shutdown_timeout=timedelta(seconds=drain_seconds),
    )


async def _run(args: argparse.Namespace) -> None:
    env = None
    if args.dev:
        env = await start_dev_server(data_dir=args.data_dir)
        client = env.client
        print("Embedded Temporal dev server: localhost:7233, UI http://localhost:8233")
    else:
        client = await connect(args.address, args.namespace)
    worker = build_worker(client, task_queue=args.task_queue, drain_seconds=args.drain_seconds)

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
    parser.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, type=lambda p: __import__("pathlib").Path(p)
    )
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_run(args))
    except ConnectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
