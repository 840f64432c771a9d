"""Wall time of the scripted demo feature with telemetry off, traced, and traced + metrics.

Every configuration runs the whole pipeline (``tests/support/pipeline.run_pipeline``:
real dev server, worker, git, sandboxed pytest, the scripted model) against one
embedded dev server; the configurations take turns, round after round, so background
load hits them alike. Traced runs export every span in batches over OTLP/HTTP to a
receiver on 127.0.0.1 (``tests/support/otlp_receiver.py``), as a collector would get
them; metrics runs also serve Prometheus on 127.0.0.1, scraped once at the end.

    .venv/bin/python bench/telemetry_overhead.py            # 3 rounds
    .venv/bin/python bench/telemetry_overhead.py --rounds 5

Prints the median wall time and this process's CPU time per configuration (CPU time
is what telemetry adds to; wall time on a shared machine is noisier), the span count of one feature (its
trace, and everything the process exported while it ran, status queries included),
and the metric names the worker's endpoint exposes.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.opentelemetry import TracingInterceptor  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.runtime import Runtime  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from contract import SEARCH_ATTRIBUTES  # noqa: E402
from runtime import temporal_binary  # noqa: E402
from telemetry import tracing  # noqa: E402
from telemetry.prometheus import prometheus_runtime  # noqa: E402
from tests.support.otlp_receiver import otlp_receiver  # noqa: E402
from tests.support.pipeline import run_pipeline  # noqa: E402
from tests.support.temporal import unique  # noqa: E402

CONFIGS = ("off", "traces", "traces+metrics")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main(rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_database_filename=str(work / "temporal.db"),
        dev_server_log_level="error",
    )
    target = env.client.service_client.config.target_host
    metrics_port = free_port()
    runtimes: dict[str, Runtime | None] = {
        "off": None,
        "traces": None,
        "traces+metrics": prometheus_runtime(metrics_port, host="127.0.0.1"),
    }
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    cpu: dict[str, list[float]] = {c: [] for c in CONFIGS}
    feature_spans: list[int] = []
    all_spans: list[int] = []
    with otlp_receiver() as receiver:
        for round_ in range(rounds):
            for config in CONFIGS:
                memory = InMemorySpanExporter()
                provider = None
                interceptors: list[TracingInterceptor] = []
                if config != "off":
                    provider = tracing.configure(
                        [memory, OTLPSpanExporter(endpoint=receiver.endpoint)]
                    )
                    interceptors = [TracingInterceptor(tracing.tracer())]
                client = await Client.connect(
                    target,
                    namespace=env.client.namespace,
                    data_converter=pydantic_data_converter,
                    interceptors=interceptors,
                    runtime=runtimes[config],
                )
                started, cpu_started = time.perf_counter(), time.process_time()
                run = await run_pipeline(
                    SimpleNamespace(client=client),  # type: ignore[arg-type]
                    work / f"{config}-{round_}".replace("+", "-"),
                    workflow_id=unique("bench"),
                )
                if provider is not None:
                    provider.force_flush(60_000)
                elapsed = time.perf_counter() - started
                cpu_s = time.process_time() - cpu_started
                assert run.result.state == "completed", run.result.message
                times[config].append(elapsed)
                cpu[config].append(cpu_s)
                if provider is not None:
                    spans = memory.get_finished_spans()
                    roots = [s for s in spans if s.name.startswith("StartWorkflow:")]
                    trace_id = roots[0].context.trace_id  # type: ignore[union-attr]
                    feature_spans.append(
                        sum(1 for s in spans if s.context and s.context.trace_id == trace_id)
                    )
                    all_spans.append(len(spans))
                    tracing.use_provider(None)
                    provider.shutdown()
                print(
                    f"round {round_ + 1} {config:<15} {elapsed:6.2f} s wall, {cpu_s:6.2f} s CPU",
                    flush=True,
                )
        received = len(receiver.spans)
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    names = sorted({family.name for family in text_string_to_metric_families(text)})
    await env.shutdown()

    base, base_cpu = statistics.median(times["off"]), statistics.median(cpu["off"])
    print("\nconfiguration    median wall   vs off   median CPU*   vs off   wall times")
    for config in CONFIGS:
        median, median_cpu = statistics.median(times[config]), statistics.median(cpu[config])
        runs = ", ".join(f"{t:.2f}" for t in times[config])
        print(
            f"{config:<16} {median:7.2f} s   {100 * (median / base - 1):+5.1f}%   "
            f"{median_cpu:7.2f} s   {100 * (median_cpu / base_cpu - 1):+5.1f}%   {runs}"
        )
    print("* CPU of this process: client, worker, activities and exporters (not the server,")
    print("  git or the sandboxed pytest runs)")
    print(
        f"\nspans in one feature's trace: {statistics.median(feature_spans):.0f} "
        f"(all spans exported during a run, status-query polling included: "
        f"{statistics.median(all_spans):.0f}; received over OTLP in total: {received})"
    )
    backforge = [n for n in names if n.startswith("backforge_")]
    temporal = [n for n in names if n.startswith("temporal_")]
    print(f"\nmetric families on /metrics: {len(names)} ({len(backforge)} backforge_*, "
          f"{len(temporal)} temporal_*)")  # fmt: skip
    for name in names:
        print(f"  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    asyncio.run(main(args.rounds))
