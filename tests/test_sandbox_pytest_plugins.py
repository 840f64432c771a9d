"""A project's test run loads the pytest plugins of packages it depends on, no others."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from activities.project_tests import run_project_tests
from activities.sandbox import base_env
from activities.sandbox.pytest_plugins import blocked_plugins
from tests.support.sandbox_support import make_project

pytest_plugins = ["tests.support.sandbox_fixtures"]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

# The worker's own tooling with pytest plugins (its dependencies: see pyproject.toml).
WORKER_PLUGINS = {"schemathesis", "hypothesispytest", "asyncio"}


def test_the_worker_tooling_plugins_are_blocked_for_a_fastapi_project() -> None:
    blocked = set(blocked_plugins(base_env(), ["fastapi>=0.110", "httpx", "pytest>=8"]))
    assert blocked >= WORKER_PLUGINS
    assert "anyio" not in blocked  # fastapi -> starlette -> anyio: a dependency


def test_a_declared_plugin_and_its_dependencies_load() -> None:
    assert "asyncio" not in blocked_plugins(base_env(), ["fastapi", "pytest-asyncio"])
    declared = set(blocked_plugins(base_env(), ["hypothesis"]))
    assert "hypothesispytest" not in declared and "schemathesis" in declared
    assert "anyio" in blocked_plugins(base_env(), [])  # nothing declared: only pytest's own


async def test_inside_the_run_only_the_projects_plugins_are_registered(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", tests=1)
    (project / "tests" / "test_plugins.py").write_text(
        "def test_registered(pytestconfig):\n"
        "    names = {n for n, p in pytestconfig.pluginmanager.list_name_plugin() if p}\n"
        f"    assert not names & set({sorted(WORKER_PLUGINS)!r}), names\n"
        "    assert 'anyio' in names, names\n"
    )
    run = await run_project_tests(project, [])
    assert run.verdict == "PASS", run.summary() + run.output
    assert run.report.passed == 3
