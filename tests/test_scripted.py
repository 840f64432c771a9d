"""The scripted model: a test double that plays a hand-written transcript."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.models.base import (
    CallOrigin,
    ModelError,
)
from activities.models.scripted import ScriptedModel, script_key
from tests.support.scripted import CALLS, ORIGIN, req, write_transcript


@pytest.fixture
def transcript(tmp_path: Path) -> str:
    return write_transcript(tmp_path / "t.yaml", CALLS)


def test_script_key() -> None:
    assert script_key(CallOrigin(phase="specify")) == "specify#1"
    assert script_key(CallOrigin(phase="specify", invocation=3)) == "specify#3"
    assert script_key(CallOrigin(phase="implement", invocation=2, task_id="T003")) == (
        "implement/T003#2"
    )
    assert script_key(CallOrigin(phase="plan", invocation=5), 2) == "plan#2"


async def test_turn_is_the_number_of_assistant_messages(transcript: str) -> None:
    model = ScriptedModel(transcript)
    first = await model.request(req(ORIGIN, 0))
    second = await model.request(req(ORIGIN, 1))
    third = await model.request(req(ORIGIN, 2))
    assert first.text == "Writing specs/001-x/spec.md on 001-x"
    assert first.stop_reason == "tool_use"
    assert second.text == "turn two"
    assert [c.name for c in second.tool_calls] == ["finish"]
    assert third.text == "turn three, text only"
    assert third.tool_calls == []
    assert third.stop_reason == "end_turn"


async def test_scripted_model_is_stateless(transcript: str) -> None:
    model = ScriptedModel(transcript)
    a = await model.request(req(ORIGIN, 1))
    await model.request(req(ORIGIN, 0))
    b = await ScriptedModel(transcript).request(req(ORIGIN, 1))
    assert a.model_dump() == b.model_dump()


async def test_substitution_in_text_and_nested_arguments(transcript: str) -> None:
    response = await ScriptedModel(transcript).request(req(ORIGIN, 0))
    (call,) = response.tool_calls
    assert call.id == "call_specify#1_0_0"
    assert call.name == "create_file"
    assert call.arguments == {
        "path": "specs/001-x/spec.md",
        "content": "# Spec for 001-x ({{unknown}})\n",  # only the two known names are filled
        "nested": [{"p": "specs/001-x"}, 3, None],
    }
    # without an origin's paths the placeholders stay as they are
    bare = await ScriptedModel(transcript).request(req(CallOrigin(phase="specify"), 0))
    assert bare.tool_calls[0].arguments["path"] == "{{feature_dir}}/spec.md"


async def test_invocation_and_task_keys(transcript: str) -> None:
    model = ScriptedModel(transcript)
    assert (
        await model.request(req(ORIGIN.model_copy(update={"invocation": 2})))
    ).text == "second invocation"
    task = await model.request(req(CallOrigin(phase="implement", task_id="T001")))
    assert task.tool_calls[0].id == "call_implement/T001#1_0_0"
    assert task.tool_calls[0].arguments == {}


async def test_falls_back_to_the_latest_earlier_invocation(transcript: str) -> None:
    model = ScriptedModel(transcript)
    assert (
        await model.request(req(ORIGIN.model_copy(update={"invocation": 5})))
    ).text == "second invocation"
    assert (await model.request(req(CallOrigin(phase="plan", invocation=3)))).text == "plan one"
    retried = await model.request(req(CallOrigin(phase="implement", invocation=4, task_id="T001")))
    assert retried.tool_calls[0].name == "list_files"


async def test_missing_script_is_a_clear_error(transcript: str) -> None:
    model = ScriptedModel(transcript)
    with pytest.raises(ModelError, match=r"has no script for 'tasks#1'") as err:
        await model.request(req(CallOrigin(phase="tasks")))
    assert transcript in str(err.value)
    with pytest.raises(ModelError, match=r"has no script for 'implement/T002#1'"):
        await model.request(req(CallOrigin(phase="implement", task_id="T002")))


async def test_turn_past_the_end_is_a_clear_error(transcript: str) -> None:
    with pytest.raises(
        ModelError, match=r"'plan#1' has 1 turns, the conversation asked for turn 2"
    ):
        await ScriptedModel(transcript).request(req(CallOrigin(phase="plan"), 1))


def test_bad_or_missing_transcript_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        ScriptedModel(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("calls: {}\n")
    with pytest.raises(ModelError, match="not a Backforge scripted transcript"):
        ScriptedModel(str(bad))
    no_calls = tmp_path / "nocalls.yaml"
    no_calls.write_text("kind: backforge-scripted-transcript\ncalls: []\n")
    with pytest.raises(ModelError, match="no 'calls' mapping"):
        ScriptedModel(str(no_calls))


async def test_bundled_example_transcript_resolves_from_the_project_root() -> None:
    model = ScriptedModel("examples/bookmarks.yaml")
    response = await model.request(req(CallOrigin(phase="constitution")))
    assert response.tool_calls[0].name == "list_files"
    assert response.usage.model_calls == 1
    assert response.model == "scripted:examples/bookmarks.yaml"
