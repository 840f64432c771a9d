"""Feature workflow ids and the details shown in the Temporal UI."""

from __future__ import annotations

import re

import pytest

from cli.settings import Settings
from cli.starting import derive_workflow_id, static_details
from contract import FeatureRequest
from tests.support.cli_driver import named_program  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("named_program")


def test_workflow_id_from_feature() -> None:
    feature = "Build a bookmarks API with tags and per-user collections"
    wid = derive_workflow_id(feature, "/tmp/repo", now_ns=1)
    match = re.fullmatch(r"feature-([a-z0-9-]+)-([0-9a-f]{6})", wid)
    assert match, wid
    assert match.group(1) == "build-a-bookmarks-api-with-tags-and-per"
    assert len(match.group(1)) <= 40
    assert derive_workflow_id(feature, "/tmp/repo", now_ns=2) != wid
    assert derive_workflow_id(feature, "/tmp/other", now_ns=1) != wid
    assert derive_workflow_id("Añadir API de marcadores", "/r").startswith(
        "feature-anadir-api-de-marcadores-"
    )
    assert derive_workflow_id("书签 API", "/r").startswith("feature-api-")
    assert derive_workflow_id("日本語", "/r").startswith("feature-request-")


def test_static_details_name_request_and_how_to_answer() -> None:
    request = FeatureRequest(
        feature="Build a todo API",
        repo_path="/repos/todo",
        model="openai:gpt-5",
        phase_models={"tasks": "openai:gpt-5-mini"},
        gates=["plan"],
        budget_usd=2.5,
    )
    settings = Settings("temporal:7233", "default", "q")
    details = static_details(request, "feature-todo-0a1b2c", settings)
    assert details.startswith("## feature-todo-0a1b2c\n")
    assert "`/repos/todo`" in details and "  - tasks: `openai:gpt-5-mini`" in details
    assert "**Gates:** plan" in details and "$2.50" in details
    assert "python starter.py --address temporal:7233 answer|approve|reject" in details
