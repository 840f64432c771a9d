"""Where traces go, read once from the environment: OTLP, console, a file, or nowhere.

Tracing is off unless one of these is set:

- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``: the full OTLP/HTTP traces URL
  (e.g. ``http://collector:4318/v1/traces``), used as is;
- ``OTEL_EXPORTER_OTLP_ENDPOINT``: the collector's base URL; ``/v1/traces`` is appended;
- ``BACKFORGE_TRACES``: ``console`` (spans printed to stderr), ``file:PATH`` (one JSON
  span per line appended to PATH), ``otlp`` (OTLP with the exporter's own defaults,
  ``http://localhost:4318``) or ``off`` (overrides the OTLP variables).

``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the process as usual.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TraceSettings", "trace_settings"]

_OFF = ("", "off", "none", "0", "false")


@dataclass(frozen=True)
class TraceSettings:
    """Where this process sends its spans (nothing enabled: tracing is off)."""

    #: OTLP/HTTP traces URL; ``""`` means the exporter's default endpoint.
    otlp_endpoint: str | None = None
    console: bool = False
    file: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.otlp_endpoint is not None or self.console or self.file is not None


def trace_settings(env: Mapping[str, str] | None = None) -> TraceSettings:
    """The trace settings of ``env`` (default: the process environment).

    Raises:
        ValueError: ``BACKFORGE_TRACES`` has a value this function does not know.
    """
    env = os.environ if env is None else env
    choice = env.get("BACKFORGE_TRACES", "").strip()
    traces_url = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base_url = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    otlp: str | None = None
    if traces_url:
        otlp = traces_url
    elif base_url:
        otlp = base_url.rstrip("/") + "/v1/traces"
    if choice.lower() in ("off", "none", "0", "false"):
        return TraceSettings()
    if choice.lower() in _OFF:
        return TraceSettings(otlp_endpoint=otlp)
    if choice.lower() == "console":
        return TraceSettings(otlp_endpoint=otlp, console=True)
    if choice.lower() == "otlp":
        return TraceSettings(otlp_endpoint=otlp or "")
    if choice.startswith("file:") and choice.removeprefix("file:").strip():
        return TraceSettings(otlp_endpoint=otlp, file=Path(choice.removeprefix("file:").strip()))
    raise ValueError(
        f"BACKFORGE_TRACES={choice!r} is not understood; use console, file:PATH, otlp or off"
    )
