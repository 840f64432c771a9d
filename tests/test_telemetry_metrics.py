"""Worker metrics on the Prometheus endpoint, with fake phases (fast, exact counts).

A client on a runtime serving Prometheus on 127.0.0.1 runs features with the shared
fakes; the endpoint is scraped over HTTP after each feature is over.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from contract import HumanResponse
from telemetry.prometheus import prometheus_runtime
from tests.support.fake_phases import Fakes, open_request, request, respond
from tests.support.temporal import unique
from worker import build_worker
from workflows.backend_feature import BackendFeatureWorkflow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scraper:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        with urllib.request.urlopen(self.url, timeout=10) as page:
            text = page.read().decode()
        return [
            (dict(s.labels), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(v for found, v in self.samples(name) if labels.items() <= found.items())


@pytest.fixture(scope="module")
async def metered(local_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, Scraper]]:
    port = free_port()
    client = await Client.connect(
        local_env.client.service_client.config.target_host,
        namespace=local_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=prometheus_runtime(port, host="127.0.0.1"),
    )
    yield client, Scraper(port)


async def start(client: Client, queue: str, **kw: object) -> WorkflowHandle:
    return await client.start_workflow(
        BackendFeatureWorkflow.run, request(**kw), id=unique("metrics"), task_queue=queue
    )


async def test_phase_fix_test_and_feature_metrics(metered: tuple[Client, Scraper]) -> None:
    client, scrape = metered
    queue = unique("metrics")
    fakes = Fakes(clarify=False, test_results=[False, True], cost=0.25)
    async with build_worker(client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(client, queue)
        result = await handle.result()
    assert result.state == "completed"
    runs = scrape.samples("backforge_phase_runs_total")
    assert {labels["phase"] for labels, _ in runs} >= {"specify", "implement", "test", "fix"}
    assert scrape.total("backforge_phase_runs_total", phase="test", outcome="ok") >= 2
    assert scrape.total("backforge_fix_rounds_total", reason="tests") >= 1
    assert scrape.total("backforge_test_runs_total", green="false") >= 1
    assert scrape.total("backforge_features_finished_total", state="completed") >= 1
    assert scrape.total("backforge_feature_cost_usd_sum") >= 0.25 * fakes.model_calls - 1e-9
    # Temporal's runtime metrics share the endpoint.
    assert scrape.total("temporal_workflow_completed_total") >= 1


async def test_human_wait_counts_accepted_answers_only(metered: tuple[Client, Scraper]) -> None:
    """A signal the desk refuses is not an answer; the accepted one is, once."""
    client, scrape = metered
    queue = unique("metrics")
    fakes = Fakes(clarify=True)
    before = scrape.total("backforge_human_responses_total", kind="clarification")
    async with build_worker(client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(client, queue)
        asked = await open_request(handle, "clarification")
        incomplete = HumanResponse(request_id=asked.id, answers={"Q1": "A"})
        await handle.signal(BackendFeatureWorkflow.respond_signal, incomplete)
        await handle.signal(
            BackendFeatureWorkflow.respond_signal,
            HumanResponse(request_id=asked.id, answers={"Q1": "A", "Q2": "B"}),
        )
        result = await handle.result()
    assert result.state == "completed"
    after = scrape.total("backforge_human_responses_total", kind="clarification")
    assert after - before == 1
    waits = [v for labels, v in scrape.samples("backforge_human_wait_seconds_count")]
    assert sum(waits) >= 1


async def test_aborted_feature_is_counted_by_state(metered: tuple[Client, Scraper]) -> None:
    client, scrape = metered
    queue = unique("metrics")
    fakes = Fakes(clarify=False, fail_phase={"plan": 1})
    before = scrape.total("backforge_features_finished_total", state="aborted")
    async with build_worker(client, task_queue=queue, activity_overrides=fakes.activities()):
        handle = await start(client, queue)
        escalation = await open_request(handle, "escalation")
        await respond(handle, request_id=escalation.id, answers={"Q1": "abort"})
        result = await handle.result()
    assert result.state == "aborted"
    assert scrape.total("backforge_features_finished_total", state="aborted") == before + 1
    assert scrape.total("backforge_phase_runs_total", phase="plan", outcome="error") >= 1
    waited = scrape.total("backforge_human_responses_total", kind="escalation")
    assert waited >= 1
