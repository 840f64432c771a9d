"""The run store: every response recorded before it is used, replayed on retry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from activities.models.base import (
    CallOrigin,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    TextPart,
    ToolCallPart,
)
from activities.models.run_store import RecordingModel, RunStore
from activities.models.scripted import ScriptedModel
from activities.workspace import private_dir
from contract import Usage
from tests.support.scripted import CALLS, ORIGIN, req, write_transcript


@pytest.fixture
def transcript(tmp_path: Path) -> str:
    return write_transcript(tmp_path / "t.yaml", CALLS)


# ---------------------------------------------------------------------------
# Run store and RecordingModel


class FakeModel:
    """Answers ``live <n>`` for its n-th call (so replays are recognisable)."""

    def __init__(self, model_id: str = "fake:model", *, fail_on: set[int] | None = None) -> None:
        self.model_id = model_id
        self.calls = 0
        self.fail_on = fail_on or set()
        self.events: list[str] | None = None

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError(f"connection dropped on call {self.calls}")
        if self.events is not None:
            self.events.append("inner returned")
        return ModelResponse(
            parts=[
                TextPart(text=f"live {self.calls}"),
                ToolCallPart(id=f"t{self.calls}", name="view_file", arguments={"path": "a.py"}),
            ],
            stop_reason="tool_use",
            usage=Usage(input_tokens=100, output_tokens=20, model_calls=1, cost_usd=0.01),
            model=self.model_id,
        )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    return path


def store(repo: Path, key: str = "specify-1") -> RunStore:
    return RunStore(repo, "wf-1", key)


def conversation(n: int) -> list[ModelRequest]:
    return [req(CallOrigin(phase="specify"), i) for i in range(n)]


def test_run_store_lives_in_the_private_area(repo: Path) -> None:
    s = RunStore(repo, "wf/odd:id", "implement-T001-1")
    assert s.dir == private_dir(repo) / "runs" / "wf_odd_id" / "implement-T001-1"
    assert s.dir.is_dir()
    assert s.path(3).name == "0003.json"
    assert s.load(1) is None
    assert s.records() == []


async def test_records_are_json_on_disk(repo: Path) -> None:
    inner = FakeModel()
    model = RecordingModel(inner, store(repo))
    requests = conversation(3)
    responses = [await model.request(r) for r in requests]
    files = sorted(p.name for p in store(repo).dir.iterdir())
    assert files == ["0001.json", "0002.json", "0003.json"]
    for i, (r, resp) in enumerate(zip(requests, responses, strict=True), 1):
        record = json.loads(store(repo).path(i).read_text())
        assert record["fingerprint"] == r.fingerprint()
        assert record["model"] == "fake:model"
        assert record["origin"] == {"phase": "specify"}
        assert ModelResponse.model_validate(record["response"]) == resp
    assert (model.live_calls, model.replayed_calls, inner.calls) == (3, 0, 3)


async def test_second_instance_replays_without_calling_the_model(repo: Path) -> None:
    first_inner = FakeModel()
    first = RecordingModel(first_inner, store(repo))
    originals = [await first.request(r) for r in conversation(3)]

    inner = FakeModel()
    again = RecordingModel(inner, store(repo))
    replayed = [await again.request(r) for r in conversation(3)]
    assert inner.calls == 0
    assert (again.live_calls, again.replayed_calls) == (0, 3)
    assert [r.parts for r in replayed] == [r.parts for r in originals]
    assert [r.text for r in replayed] == ["live 1", "live 2", "live 3"]
    for r in replayed:
        assert r.usage.model_calls == 0
        assert r.usage.replayed_calls == 1
        assert r.usage.cost_usd == 0.0
        assert r.usage.input_tokens == r.usage.output_tokens == 0
    # a fourth call goes past the records: live, and recorded
    nxt = await again.request(req(CallOrigin(phase="specify"), 3))
    assert nxt.text == "live 1"
    assert inner.calls == 1
    assert store(repo).path(4).exists()


async def test_changed_request_drops_that_record_and_later_ones(repo: Path) -> None:
    first = RecordingModel(FakeModel(), store(repo))
    requests = conversation(4)
    for r in requests:
        await first.request(r)
    old_fp_3 = json.loads(store(repo).path(3).read_text())["fingerprint"]

    inner = FakeModel()
    again = RecordingModel(inner, store(repo))
    assert (await again.request(requests[0])).text == "live 1"  # replayed
    changed = req(CallOrigin(phase="specify"), 1, text="a different prompt")
    assert (await again.request(changed)).text == "live 1"  # live: first call of `inner`
    assert inner.calls == 1
    assert sorted(p.name for p in store(repo).dir.glob("*.json")) == ["0001.json", "0002.json"]
    assert json.loads(store(repo).path(2).read_text())["fingerprint"] == changed.fingerprint()
    # record 3 was dropped although its request is unchanged: it followed a different past
    resp3 = await again.request(requests[2])
    assert resp3.text == "live 2"
    assert inner.calls == 2
    assert json.loads(store(repo).path(3).read_text())["fingerprint"] == old_fp_3
    assert (again.live_calls, again.replayed_calls) == (2, 1)


async def test_another_model_id_does_not_replay(repo: Path) -> None:
    await RecordingModel(FakeModel("fake:a"), store(repo)).request(conversation(1)[0])
    inner_b = FakeModel("fake:b")
    b = RecordingModel(inner_b, store(repo))
    await b.request(conversation(1)[0])
    assert inner_b.calls == 1
    assert json.loads(store(repo).path(1).read_text())["model"] == "fake:b"


async def test_timeout_setting_does_not_change_the_fingerprint(repo: Path) -> None:
    base = conversation(1)[0]
    await RecordingModel(FakeModel(), store(repo)).request(base)
    slower = base.model_copy(update={"settings": ModelSettings(timeout_s=5.0)})
    warmer = base.model_copy(update={"settings": ModelSettings(temperature=0.7)})
    inner = FakeModel()
    assert (await RecordingModel(inner, store(repo)).request(slower)).text == "live 1"
    assert inner.calls == 0
    await RecordingModel(inner, store(repo)).request(warmer)
    assert inner.calls == 1


async def test_record_is_saved_before_the_response_is_returned(repo: Path) -> None:
    events: list[str] = []

    class WatchedStore(RunStore):
        def save(self, index: int, record: dict) -> None:
            super().save(index, record)
            assert self.path(index).exists()
            events.append(f"saved {index}")

    inner = FakeModel()
    inner.events = events
    model = RecordingModel(inner, WatchedStore(repo, "wf-1", "specify-1"))
    r = conversation(1)[0]
    response = await model.request(r)
    events.append("caller got response")
    assert events == ["inner returned", "saved 1", "caller got response"]
    on_disk = json.loads(store(repo).path(1).read_text())
    assert ModelResponse.model_validate(on_disk["response"]) == response
    assert not list(store(repo).dir.glob("*.tmp"))


async def test_a_response_that_cannot_be_recorded_is_not_returned(repo: Path) -> None:
    class FullDisk(RunStore):
        def save(self, index: int, record: dict) -> None:
            raise OSError(28, "No space left on device")

    model = RecordingModel(FakeModel(), FullDisk(repo, "wf-1", "specify-1"))
    with pytest.raises(OSError, match="No space left"):
        await model.request(conversation(1)[0])


async def test_crash_mid_conversation_replays_what_was_paid_for(repo: Path) -> None:
    requests = conversation(3)
    crashing = FakeModel(fail_on={2})
    first = RecordingModel(crashing, store(repo))
    await first.request(requests[0])
    with pytest.raises(RuntimeError, match="connection dropped"):
        await first.request(requests[1])
    assert sorted(p.name for p in store(repo).dir.iterdir()) == ["0001.json"]

    retry_inner = FakeModel()
    retry = RecordingModel(retry_inner, store(repo))
    assert (await retry.request(requests[0])).text == "live 1"
    assert retry_inner.calls == 0
    await retry.request(requests[1])
    await retry.request(requests[2])
    assert retry_inner.calls == 2
    assert (retry.live_calls, retry.replayed_calls) == (2, 1)
    assert len(store(repo).records()) == 3


async def test_scripted_model_through_the_store_keeps_model_seconds_zero(
    repo: Path, transcript: str
) -> None:
    model = RecordingModel(ScriptedModel(transcript), store(repo))
    response = await model.request(req(ORIGIN, 0))
    assert response.usage.model_seconds == 0.0
    assert response.usage.model_calls == 1


async def test_run_keys_are_separate(repo: Path) -> None:
    await RecordingModel(FakeModel(), store(repo, "specify-1")).request(conversation(1)[0])
    inner = FakeModel()
    await RecordingModel(inner, store(repo, "specify-2")).request(conversation(1)[0])
    assert inner.calls == 1
