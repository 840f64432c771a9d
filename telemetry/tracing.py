"""The process's tracer: configured from the environment, or handed in by a test.

Backforge's own spans (model calls, tools, sandbox runs, pushes) and Temporal's
``TracingInterceptor`` all use ``tracer()``. Until ``configure`` or ``use_provider``
is called it is OpenTelemetry's no-op tracer, so instrumented code costs next to
nothing when tracing is off (the default).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from telemetry.config import TraceSettings, trace_settings
from telemetry.redact import RedactingExporter

__all__ = [
    "INSTRUMENTATION_NAME",
    "configure",
    "configure_from_env",
    "enabled",
    "provider",
    "shutdown",
    "tracer",
    "use_provider",
]

INSTRUMENTATION_NAME = "backforge"

_lock = threading.Lock()
_provider: TracerProvider | None = None
_configured = False


def exporters_for(settings: TraceSettings) -> list[SpanExporter]:
    """The exporters ``settings`` asks for (OTLP is imported only when used)."""
    found: list[SpanExporter] = []
    if settings.otlp_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        found.append(OTLPSpanExporter(endpoint=settings.otlp_endpoint or None))
    if settings.console:
        found.append(ConsoleSpanExporter())
    if settings.file is not None:
        from telemetry.file_exporter import JsonLinesSpanExporter

        found.append(JsonLinesSpanExporter(settings.file))
    return found


def configure(
    exporters: Sequence[SpanExporter],
    *,
    service_name: str = "backforge",
    batch: bool = True,
    resource_attributes: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Make a provider exporting to ``exporters`` (each behind redaction) and use it.

    Args:
        exporters: Where spans go.
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` says otherwise.
        batch: Export in the background (production); False exports each span as it
            ends (tests, short-lived commands).
        resource_attributes: Extra resource attributes.
    """
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME under what it
    # is given, so the default name is given only when the environment names none.
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    given = {} if named else {SERVICE_NAME: service_name}
    resource = Resource.create({**given, **(resource_attributes or {})})
    made = TracerProvider(resource=resource)
    for exporter in exporters:
        processor: SpanProcessor = (
            BatchSpanProcessor(RedactingExporter(exporter))
            if batch
            else SimpleSpanProcessor(RedactingExporter(exporter))
        )
        made.add_span_processor(processor)
    use_provider(made)
    return made


def configure_from_env(*, service_name: str = "backforge") -> bool:
    """Configure tracing from the environment once per process; whether it is on.

    Later calls return the first answer. The provider also becomes OpenTelemetry's
    global one, and is flushed when the process exits.

    Raises:
        ValueError: ``BACKFORGE_TRACES`` has a value that is not understood.
    """
    global _configured
    with _lock:
        if _configured:
            return _provider is not None
        _configured = True
        settings = trace_settings()
        if not settings.enabled:
            return False
    made = configure(exporters_for(settings), service_name=service_name)
    trace.set_tracer_provider(made)
    atexit.register(made.shutdown)
    return True


def use_provider(provider_: TracerProvider | None) -> None:
    """Use ``provider_`` for Backforge's spans from now on (None: tracing off)."""
    global _provider
    _provider = provider_


def provider() -> TracerProvider | None:
    """The provider in use, if tracing is on."""
    return _provider


def enabled() -> bool:
    """Whether spans are being recorded."""
    return _provider is not None


def tracer() -> trace.Tracer:
    """Backforge's tracer (a no-op tracer while tracing is off)."""
    current = _provider
    if current is None:
        return trace.NoOpTracer()
    return current.get_tracer(INSTRUMENTATION_NAME)


def shutdown() -> None:
    """Flush and stop the provider in use (exporters send what they hold)."""
    current = _provider
    if current is not None:
        current.shutdown()
