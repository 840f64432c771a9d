"""One whole feature with tracing and metrics on: the span tree, OTLP export, /metrics.

The scripted pipeline runs on the real dev server with a client carrying Temporal's
``TracingInterceptor`` and a runtime serving Prometheus on 127.0.0.1. Spans go to the
SDK's in-memory exporter (for the tree) and over OTLP/HTTP to a receiver started here
(for the wire path). One model call fails once with an API key in its message, so the
error paths and the redaction are part of the same run.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.models import Model, ModelRequest, ModelResolver, ModelResponse
from activities.services import Services
from activities.workspace import Workspaces
from telemetry import tracing
from telemetry.metrics import METRIC_NAMES
from telemetry.prometheus import prometheus_runtime
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver
from tests.support.otlp_spans import SpanTree
from tests.support.pipeline import Run, run_pipeline
from tests.support.temporal import unique

FAKE_KEY = "sk-test-telemetry-0123456789abcdefDONOTLEAK"
ROOT = "StartWorkflow:BackendFeatureWorkflow"


@dataclass
class Traced:
    run: Run
    spans: list[ReadableSpan]
    tree: SpanTree
    received: OtlpReceiver
    metrics_text: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FailOnce:
    """Fails the first plan call like a provider would, quoting the key in its message."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, model: Model) -> Model:
        outer = self

        class Flaky:
            inner = model
            model_id = model.model_id

            async def request(self, request: ModelRequest) -> ModelResponse:
                if request.origin.phase == "plan" and not outer.failed:
                    outer.failed = True
                    raise RuntimeError(f"401 Incorrect API key provided: {FAKE_KEY}")
                return await model.request(request)

        return Flaky()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as found:
        yield found


@pytest.fixture(scope="module")
async def traced(
    local_env: WorkflowEnvironment,
    receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Traced]:
    memory = InMemorySpanExporter()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", FAKE_KEY)  # the redaction reads secrets from the env
        provider = tracing.configure([memory, OTLPSpanExporter(endpoint=receiver.endpoint)])
    port = free_port()
    client = await Client.connect(
        local_env.client.service_client.config.target_host,
        namespace=local_env.client.namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor(tracing.tracer())],
        runtime=prometheus_runtime(port, host="127.0.0.1"),
    )
    services = Services(
        models=ModelResolver(wrappers=[FailOnce()]),
        workspaces=Workspaces(tmp_path_factory.mktemp("traced-scratch")),
    )
    try:
        repo = tmp_path_factory.mktemp("traced") / "service"
        run = await run_pipeline(
            SimpleNamespace(client=client),  # type: ignore[arg-type]
            repo,
            workflow_id=unique("traced"),
            services=services,
        )
        assert provider.force_flush(30_000)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            text = page.read().decode()
    finally:
        tracing.use_provider(None)
        provider.shutdown()
    spans = list(memory.get_finished_spans())
    yield Traced(run, spans, SpanTree.of_trace(spans, ROOT), receiver, text)


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


async def test_one_feature_is_one_trace(traced: Traced) -> None:
    tree = traced.tree
    assert traced.run.result.state == "completed", traced.run.result.message
    assert not tree.orphans()
    (run_wf,) = tree.named("RunWorkflow:BackendFeatureWorkflow")
    assert tree.parent(run_wf) is tree.root()
    activities_run = {s.name.removeprefix("RunActivity:") for s in tree.named("RunActivity:")}
    phases = {f"run_phase_{p}" for p in ("constitution", "specify", "plan", "tasks")}
    phases |= {f"run_phase_{p}" for p in ("implement", "test", "fix", "analyze", "deliver")}
    assert phases | {"prepare_workspace"} <= activities_run
    # Temporal's interceptor records workflow-side steps as instants under the start:
    # each activity is scheduled (StartActivity) and run (RunActivity) beneath it.
    for span in tree.named("RunActivity:"):
        scheduled = tree.parent(span)
        assert scheduled is not None and scheduled.name.startswith("StartActivity:"), span.name
        assert scheduled.name.split(":")[1] == span.name.split(":")[1]
        assert tree.parent(scheduled) is tree.root()
    started = [s.name.removeprefix("StartActivity:") for s in tree.named("StartActivity:")]
    assert started.count("run_phase_test") == 2 and started.count("run_phase_fix") == 1
    # The person's answer reaches the workflow as an update, in the same trace.
    assert [s.name for s in tree.named("HandleUpdate:")] == ["HandleUpdate:respond"]
    assert tree.named("CompleteWorkflow:BackendFeatureWorkflow")


async def test_every_paid_model_call_is_a_genai_span(traced: Traced) -> None:
    tree, usage = traced.tree, traced.run.status.usage
    chats = tree.named("chat ")
    assert len(chats) == usage.model_calls > 20
    ok = [s for s in chats if "error.type" not in attrs(s)]
    failed = [s for s in chats if "error.type" in attrs(s)]
    assert len(failed) == 1 and attrs(failed[0])["backforge.phase"] == "plan"
    assert sum(int(attrs(s)["gen_ai.usage.input_tokens"]) for s in ok) == usage.input_tokens
    assert sum(int(attrs(s)["gen_ai.usage.output_tokens"]) for s in ok) == usage.output_tokens
    for span in chats:
        a = attrs(span)
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "backforge.scripted"
        assert a["gen_ai.request.model"] == "examples/bookmarks.yaml"
        assert span.name == "chat examples/bookmarks.yaml"
        activity_span = tree.nearest(span, "RunActivity:")
        assert activity_span is not None
        assert activity_span.name == f"RunActivity:run_phase_{a['backforge.phase']}"
    for span in ok:
        reasons = attrs(span)["gen_ai.response.finish_reasons"]
        assert list(reasons) in (["tool_calls"], ["stop"]), reasons  # type: ignore[call-overload]
    # The failed plan attempt was retried: two RunActivity spans for one StartActivity.
    (plan_start,) = tree.named("StartActivity:run_phase_plan")
    attempts = [s for s in tree.named("RunActivity:run_phase_plan") if tree.parent(s) is plan_start]
    assert len(attempts) == 2
    assert tree.nearest(failed[0], "RunActivity:") in attempts


async def test_sandboxed_runs_and_pushes_have_spans(traced: Traced) -> None:
    tree = traced.tree
    sandbox = tree.named("sandbox.run")
    assert sandbox, tree.counts()
    under_test = [s for s in sandbox if tree.nearest(s, "RunActivity:").name.endswith("test")]  # type: ignore[union-attr]
    assert len(under_test) >= 2  # tests failed once, then passed after the fix
    exit_codes = sorted(int(attrs(s)["process.exit.code"]) for s in under_test)
    assert exit_codes[0] == 0 and exit_codes[-1] != 0
    for span in sandbox:
        assert attrs(span)["process.command_args"][0] == "python"  # type: ignore[index]
    pushes = tree.named("git.push")
    assert len(pushes) >= len(traced.run.status.completed)
    for span in pushes:
        a = attrs(span)
        assert a["backforge.git.ref_count"] == len(a["backforge.git.refs"])  # type: ignore[arg-type]
        assert tree.nearest(span, "RunActivity:") is not None


async def test_tool_calls_have_spans_under_their_phase(traced: Traced) -> None:
    tools = traced.tree.named("execute_tool ")
    assert tools
    for span in tools:
        a = attrs(span)
        assert a["gen_ai.operation.name"] == "execute_tool"
        assert span.name == f"execute_tool {a['gen_ai.tool.name']}"
        assert traced.tree.nearest(span, "RunActivity:run_phase_") is not None


async def test_no_secret_in_any_span(traced: Traced) -> None:
    (failed,) = [s for s in traced.tree.named("chat ") if "error.type" in attrs(s)]
    assert "401 Incorrect API key provided" in (failed.status.description or "")
    for span in traced.spans:
        text = " ".join(
            [span.name, span.status.description or "", *map(str, attrs(span).values())]
            + [str(v) for e in span.events for v in (e.attributes or {}).values()]
        )
        assert FAKE_KEY not in text and "sk-test" not in text, span.name
    for received in traced.received.spans:
        assert FAKE_KEY not in received.status_message
        assert FAKE_KEY not in repr(received.attributes)


async def test_spans_reach_an_otlp_http_receiver(traced: Traced) -> None:
    received = traced.received
    assert received.content_types == {"application/x-protobuf"}
    trace_id = format(traced.tree.root().context.trace_id, "032x")  # type: ignore[union-attr]
    over_wire = [s for s in received.spans if s.trace_id == trace_id]
    assert len(over_wire) == len(traced.tree.spans)
    assert {s.service for s in over_wire} == {"backforge"}
    chat = next(s for s in over_wire if s.name.startswith("chat "))
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert isinstance(chat.attributes["gen_ai.usage.input_tokens"], int)
    ids = {s.span_id for s in over_wire}
    assert all(s.parent_span_id in ids for s in over_wire if s.name != ROOT)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


async def test_metrics_endpoint_after_the_run(traced: Traced) -> None:
    found = samples(traced.metrics_text)
    usage = traced.run.status.usage
    tokens = {
        kind: sum(
            v for labels, v in found["backforge_model_tokens_total"] if labels["type"] == kind
        )
        for kind in ("input", "output")
    }
    assert tokens == {"input": usage.input_tokens, "output": usage.output_tokens}
    calls = found["backforge_model_calls_total"]
    assert sum(v for _, v in calls) == usage.model_calls
    assert sum(v for labels, v in calls if labels["outcome"] == "error") == 1
    phases = {labels["phase"] for labels, _ in found["backforge_phase_duration_seconds_count"]}
    assert {"specify", "plan", "implement", "test", "fix", "deliver"} <= phases
    fixes = {labels["reason"]: v for labels, v in found["backforge_fix_rounds_total"]}
    assert fixes.get("tests") == traced.run.status.fix_rounds == 1
    green = {labels["green"]: v for labels, v in found["backforge_test_runs_total"]}
    assert green == {"true": 1, "false": 1}
    waits = found["backforge_human_wait_seconds_count"]
    assert [(labels["kind"], v) for labels, v in waits] == [("clarification", 1)]
    finished = found["backforge_features_finished_total"]
    assert [(labels["state"], v) for labels, v in finished] == [("completed", 1)]
    assert sum(v for _, v in found["backforge_sandbox_runs_total"]) >= 2
    assert sum(v for labels, v in found["backforge_git_pushes_total"] if labels["outcome"] == "ok")
    # Temporal's own runtime metrics come from the same endpoint.
    assert any(name.startswith("temporal_") for name in found)
    exposed = {name.removesuffix("_total") for name in found}
    exposed |= {
        name.rsplit("_", 1)[0] for name in found if name.endswith(("_bucket", "_count", "_sum"))
    }
    missing = set(METRIC_NAMES) - exposed - {"backforge_findings"}  # analyze found nothing
    assert not missing, missing
