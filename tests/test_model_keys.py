"""Model keys: which variable a model id needs, and who says so (start warns, demo refuses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.models.keys import missing_key, servable
from tests.support.cli_driver import error_line, invoke


def test_missing_key_names_the_variable_the_worker_needs() -> None:
    assert missing_key("anthropic:claude-sonnet-4-5", {}) == "ANTHROPIC_API_KEY"
    assert missing_key("anthropic:claude-sonnet-4-5", {"ANTHROPIC_API_KEY": "k"}) is None
    assert missing_key("openai:gpt-5", {}) == "OPENAI_API_KEY"
    assert missing_key("openai:gpt-5", {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}) is None
    assert missing_key("scripted:examples/bookmarks.yaml", {}) is None


def test_servable_lists_providers_with_keys() -> None:
    assert servable({}) == ["scripted"]
    assert servable({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}) == [
        "scripted",
        "anthropic",
        "openai",
    ]


def test_demo_refuses_a_model_whose_key_is_missing_before_creating_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = invoke(
        "demo", "--model", "anthropic:claude-sonnet-4-5", "--yes", "--data-dir", str(tmp_path)
    )
    assert result.exit_code == 2
    line = error_line(result)
    assert "needs ANTHROPIC_API_KEY" in line and "export ANTHROPIC_API_KEY here" in line
    assert list(tmp_path.iterdir()) == []
