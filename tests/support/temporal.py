"""Small helpers for tests that talk to a Temporal server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["unique", "eventually"]

T = TypeVar("T")


def unique(prefix: str) -> str:
    """A unique id (task queue, workflow id) for one test."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0) -> T:
    """Poll ``check`` until it returns a truthy value (bounded by ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await check()
        except AssertionError as err:
            last = err
        else:
            if last:
                return last  # type: ignore[return-value]
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
