"""Trace settings from the environment, the process-wide setup, and the metrics runtime."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from telemetry.config import TraceSettings, trace_settings
from telemetry.tracing import exporters_for

REPO = Path(__file__).resolve().parent.parent


def test_off_by_default() -> None:
    assert trace_settings({}) == TraceSettings()
    assert not trace_settings({}).enabled


def test_otlp_endpoints_follow_the_standard_variables() -> None:
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert trace_settings(base).otlp_endpoint == "http://collector:4318/v1/traces"
    both = {**base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:9999/custom"}
    assert trace_settings(both).otlp_endpoint == "http://traces:9999/custom"
    assert trace_settings({**both, "BACKFORGE_TRACES": "off"}) == TraceSettings()
    assert trace_settings({"BACKFORGE_TRACES": "otlp"}).otlp_endpoint == ""


def test_console_and_file() -> None:
    assert trace_settings({"BACKFORGE_TRACES": "console"}).console
    found = trace_settings({"BACKFORGE_TRACES": "file:/tmp/spans.jsonl"})
    assert found.file == Path("/tmp/spans.jsonl") and found.enabled


@pytest.mark.parametrize("value", ["jaeger", "file:", "file:   "])
def test_unknown_values_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="BACKFORGE_TRACES"):
        trace_settings({"BACKFORGE_TRACES": value})


def test_exporters_for_each_destination(tmp_path: Path) -> None:
    settings = TraceSettings(otlp_endpoint="http://127.0.0.1:1/v1/traces", console=True)
    names = [type(e).__name__ for e in exporters_for(settings)]
    assert names == ["OTLPSpanExporter", "ConsoleSpanExporter"]
    (only,) = exporters_for(TraceSettings(file=tmp_path / "x.jsonl"))
    assert type(only).__name__ == "JsonLinesSpanExporter"


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    clean.pop("BACKFORGE_TRACES", None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_client_factory_traces_to_a_file_when_asked(tmp_path: Path) -> None:
    """In a fresh process: the client factory's interceptors, a span, flushed at exit."""
    spans = tmp_path / "spans.jsonl"
    code = """
        from temporalio.contrib.opentelemetry import TracingInterceptor
        from telemetry import client_interceptors, tool_span
        found = client_interceptors()
        assert [type(i) for i in found] == [TracingInterceptor], found
        with tool_span("read_file", call_id="c1"):
            pass
    """
    proc = run_python(code, {"BACKFORGE_TRACES": f"file:{spans}", "OTEL_SERVICE_NAME": "bf-test"})
    assert proc.returncode == 0, proc.stderr
    (line,) = spans.read_text().splitlines()
    span = json.loads(line)
    assert span["name"] == "execute_tool read_file"
    assert span["attributes"]["gen_ai.tool.call.id"] == "c1"
    assert span["resource"]["attributes"]["service.name"] == "bf-test"


def test_client_factory_adds_nothing_when_off() -> None:
    code = """
        import sys
        from telemetry import client_interceptors
        assert client_interceptors() == []
        import runtime  # the client factory, as the CLI loads it
        assert "opentelemetry.sdk.trace" not in sys.modules  # tracing off costs no import
    """
    proc = run_python(code, {})
    assert proc.returncode == 0, proc.stderr


def test_prometheus_runtime_serves_metrics_over_http() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"""
        import urllib.request
        from temporalio.runtime import Runtime
        from telemetry import install_prometheus
        runtime = install_prometheus({port}, host="127.0.0.1")
        assert Runtime.default() is runtime
        runtime.metric_meter.create_counter("backforge_probe").add(3, {{"k": "v"}})
        page = urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=10).read()
        print(page.decode())
    """
    proc = run_python(code, {})
    assert proc.returncode == 0, proc.stderr
    assert 'backforge_probe_total{k="v"' in proc.stdout


@pytest.mark.parametrize("port", [0, 70000])
def test_metrics_port_is_checked(port: int) -> None:
    from telemetry.prometheus import prometheus_runtime

    with pytest.raises(ValueError, match="not a TCP port"):
        prometheus_runtime(port)
