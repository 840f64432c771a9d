"""How many CPU-bound sandboxed runs one worker process lets run at once.

Test and validation phases come from the sandbox task queue, whose slots the worker
sizes to its cores. But model-driven phases run generated code too: the evidence check
of an implementation task, the ``run_tests`` and ``run_command`` tools, the fix step's
checks, building a project environment. Those activities sit on the feature queue with
many slots (they mostly wait on a model), so without a limit 64 features finishing
tasks at once start 64 pytest processes on 2 cores: each takes 30 times longer, and
the worker's own event loop (workflow tasks, heartbeats) starves beside them.

Every run through ``run_with_channel`` (``run_sandboxed``, the project's tests, the
environment builder) therefore takes one of these slots for its whole life, from
copying the checkout to reading the result; a run waiting for a slot has not started
(its timeout has not begun). Long-lived services (``start_service``) take none: they
sit idle between the checker's requests, and the checker may need a slot while a
service is up, which must never wait on the service.

The size is set by the worker (``build_worker``'s ``sandbox_slots``, one per core by
default); a process without a worker (a test, a bench) gets one per core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator

__all__ = ["cpu_slot", "set_cpu_slots", "cpu_slots"]

_size = max(1, len(os.sched_getaffinity(0)))
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def set_cpu_slots(size: int) -> None:
    """Concurrent CPU-bound sandboxed runs in this process from now on (at least one)."""
    global _size
    if size < 1:
        raise ValueError(f"CPU slots must be at least 1, got {size}")
    if size != _size:
        _size = size
        _gates.clear()  # runs holding an old gate finish under it


def cpu_slots() -> int:
    """The current size."""
    return _size


@contextlib.asynccontextmanager
async def cpu_slot() -> AsyncIterator[None]:
    """Hold one slot of this event loop's gate while the body runs."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(_size)
    async with gate:
        yield
