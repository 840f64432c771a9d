"""Choosing a model by id."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.models.base import (
    ModelError,
)
from activities.models.registry import ModelResolver, validate_model_id
from activities.models.scripted import ScriptedModel
from tests.support.scripted import CALLS, write_transcript


@pytest.fixture
def transcript(tmp_path: Path) -> str:
    return write_transcript(tmp_path / "t.yaml", CALLS)


# ---------------------------------------------------------------------------
# Registry


@pytest.mark.parametrize(
    "model_id", ["foo:bar", "openai:", "anthropic:   ", "gpt-5", "", ":gpt-5", "OpenAI:gpt-5"]
)
def test_unknown_or_empty_model_ids(model_id: str) -> None:
    with pytest.raises(ValueError, match="unknown model id") as err:
        validate_model_id(model_id)
    assert repr(model_id) in str(err.value)
    assert "scripted:<transcript.yaml>" in str(err.value)
    with pytest.raises(ValueError, match="unknown model id"):
        ModelResolver()(model_id)


def test_missing_scripted_transcript() -> None:
    with pytest.raises(ValueError, match=r"scripted transcript 'missing\.yaml' not found"):
        validate_model_id("scripted:missing.yaml")
    with pytest.raises(ModelError, match="not found"):
        ModelResolver()("scripted:missing.yaml")


def test_valid_ids_need_no_network_or_keys(
    transcript: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    validate_model_id("openai:gpt-5")
    validate_model_id("anthropic:claude-sonnet-4-5")
    validate_model_id(f"scripted:{transcript}")
    validate_model_id("scripted:examples/bookmarks.yaml")


def test_resolve_scripted_applies_wrappers(transcript: str) -> None:
    wrapped: list[object] = []

    def wrap(model):  # type: ignore[no-untyped-def]
        wrapped.append(model)
        return model

    model = ModelResolver(wrappers=[wrap])(f"scripted:{transcript}")
    assert isinstance(model, ScriptedModel)
    assert model.model_id == f"scripted:{transcript}"
    assert wrapped == [model]
