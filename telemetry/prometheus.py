"""The worker's Prometheus endpoint: Temporal's runtime metrics and Backforge's, one port.

``install_prometheus(port)`` makes the process's default Temporal ``Runtime`` serve
``http://HOST:PORT/metrics``; every client connected afterwards (and its workers)
records there, including what ``telemetry.metrics`` records on the SDK's meter.
"""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from telemetry.metrics import BUCKETS

__all__ = ["DEFAULT_METRICS_HOST", "install_prometheus", "prometheus_config", "prometheus_runtime"]

#: All interfaces: Prometheus scrapes the worker from another container or host.
DEFAULT_METRICS_HOST = "0.0.0.0"


def prometheus_config(port: int, *, host: str = DEFAULT_METRICS_HOST) -> PrometheusConfig:
    """Metrics on ``host:port`` at ``/metrics`` (durations in seconds).

    Raises:
        ValueError: ``port`` is not a TCP port.
    """
    if not 0 < port < 65536:
        raise ValueError(f"metrics port {port} is not a TCP port (1-65535)")
    return PrometheusConfig(
        bind_address=f"{host}:{port}",
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides=BUCKETS,
    )


def prometheus_runtime(port: int, *, host: str = DEFAULT_METRICS_HOST) -> Runtime:
    """A Temporal runtime serving its metrics on ``host:port``.

    Raises:
        ValueError: ``port`` is not a TCP port.
    """
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus_config(port, host=host)))


def install_prometheus(port: int, *, host: str = DEFAULT_METRICS_HOST) -> Runtime:
    """Serve metrics on ``host:port`` from the process's default runtime.

    Call before the first client connects (the default runtime is made then).

    Raises:
        ValueError: ``port`` is not a TCP port.
        RuntimeError: The default runtime was already made.
    """
    runtime = prometheus_runtime(port, host=host)
    Runtime.set_default(runtime, error_if_already_set=True)
    return runtime
