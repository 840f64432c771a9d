"""The client side of tracing: what ``runtime.connect`` passes as ``interceptors``.

Kept light: with tracing off (the default) nothing beyond ``telemetry.config`` is
imported, so the CLI starts as fast as before.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from telemetry.config import trace_settings

if TYPE_CHECKING:
    from temporalio.client import Interceptor

__all__ = ["client_interceptors"]


def client_interceptors() -> list[Interceptor]:
    """Temporal's ``TracingInterceptor`` when the environment turns tracing on, else none.

    The first call configures the process's tracer provider (``telemetry.tracing``);
    workers built on a client with it trace too.

    Raises:
        ValueError: ``BACKFORGE_TRACES`` has a value that is not understood.
    """
    if not trace_settings().enabled:
        loaded = sys.modules.get("telemetry.tracing")  # a provider handed in by a test
        if loaded is None or not loaded.enabled():
            return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    from telemetry import tracing

    tracing.configure_from_env()
    return [TracingInterceptor(tracing.tracer())] if tracing.enabled() else []
