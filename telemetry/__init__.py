"""Telemetry for operators: traces, metrics, and the team's success figures.

- Traces (off by default; ``telemetry.config`` lists the environment variables):
  Temporal's ``TracingInterceptor`` on clients and workers (``client_interceptors``,
  ``worker_interceptors``), plus a span per model call (GenAI conventions,
  ``traced_model``), tool call (``tool_span``), sandboxed run (``SandboxSpan``) and git
  push (``push_span``). Secrets are scrubbed before export (``telemetry.redact``).
- Metrics: ``install_prometheus(port)`` serves Temporal's runtime metrics and
  Backforge's own (``telemetry.metrics``) from the worker.
- Figures: ``telemetry.figures`` reads features' histories into lead times, first-pass
  rates, human interventions and cost; ``telemetry.chart`` draws them as HTML.

Names are loaded on first use, so ``runtime.py`` (and with it the CLI) imports only
``telemetry.client`` and stays light while tracing is off.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "METRIC_NAMES",
    "MetricsInterceptor",
    "SandboxSpan",
    "ToolSpan",
    "TraceSettings",
    "TracedModel",
    "client_interceptors",
    "configure",
    "configure_from_env",
    "install_prometheus",
    "prometheus_runtime",
    "push_span",
    "tool_span",
    "trace_settings",
    "traced_model",
    "tracer",
    "use_provider",
    "worker_interceptors",
]

_WHERE = {
    "METRIC_NAMES": "telemetry.metrics",
    "MetricsInterceptor": "telemetry.interceptors",
    "SandboxSpan": "telemetry.spans",
    "ToolSpan": "telemetry.spans",
    "TraceSettings": "telemetry.config",
    "TracedModel": "telemetry.genai",
    "client_interceptors": "telemetry.client",
    "configure": "telemetry.tracing",
    "configure_from_env": "telemetry.tracing",
    "install_prometheus": "telemetry.prometheus",
    "prometheus_runtime": "telemetry.prometheus",
    "push_span": "telemetry.spans",
    "tool_span": "telemetry.spans",
    "trace_settings": "telemetry.config",
    "traced_model": "telemetry.genai",
    "tracer": "telemetry.tracing",
    "use_provider": "telemetry.tracing",
    "worker_interceptors": "telemetry.interceptors",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'telemetry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
