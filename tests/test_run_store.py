"""The run store: every call recorded before it is used; earlier attempts replayed and
paid for once. (On a real remote: ``test_workspace_workspaces.py``.)"""

from __future__ import annotations

import json
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
from activities.models.run_store import RecordingModel, RunRecord, RunStore
from activities.models.scripted import ScriptedModel
from contract import Usage
from tests.support.scripted import CALLS, req, write_transcript


class FakeModel:
    """A fake model (test double) answering ``live <n>`` for its n-th call."""

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


class Remote:
    """Records as the remote keeps them, in memory: write-once names, per attempt."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.events: list[str] | None = None
        self.refuse = False
        #: The names of each write, in order (one write is one push on a real remote).
        self.writes: list[list[str]] = []

    def store(self, attempt: int) -> RunStore:
        async def write(new: dict[str, bytes]) -> None:
            if self.refuse:
                raise OSError("the remote refused the push")
            for name, data in new.items():
                assert name not in self.records, f"{name} written twice"
                self.records[name] = data
            self.writes.append(sorted(new))
            if self.events is not None:
                self.events.append("recorded")

        earlier = {n: d for n, d in self.records.items() if not n.startswith(f"{attempt:03d}/")}
        return RunStore(attempt=attempt, earlier=earlier, write=write)


def conversation(n: int) -> list[ModelRequest]:
    return [req(CallOrigin(phase="specify"), i) for i in range(n)]


async def test_records_hold_the_response_and_where_it_came_from() -> None:
    remote = Remote()
    model = RecordingModel(FakeModel(), remote.store(1))
    responses = [await model.request(r) for r in conversation(2)]
    assert sorted(remote.records) == [
        "001/0001",
        "001/0001-started",
        "001/0002",
        "001/0002-started",
    ]
    record = RunRecord.model_validate_json(remote.records["001/0002"])
    assert record.fingerprint == conversation(2)[1].fingerprint() and record.attempt == 1
    assert record.model == "fake:model" and record.origin == {"phase": "specify"}
    assert record.response == responses[1]
    assert remote.records["001/0002-started"].decode() == record.fingerprint


async def test_a_later_attempt_replays_and_counts_what_was_paid() -> None:
    remote = Remote()
    first = RecordingModel(FakeModel(), remote.store(1))
    for r in conversation(3):
        await first.request(r)
    inner = FakeModel()
    second = RecordingModel(inner, remote.store(2))
    replayed = [await second.request(r) for r in conversation(3)]
    assert inner.calls == 0 and second.replayed_calls == 3
    assert [r.text for r in replayed] == ["live 1", "live 2", "live 3"]
    assert all(r.usage == Usage(replayed_calls=1) for r in replayed)
    paid = second.store.paid_earlier
    assert (paid.model_calls, paid.input_tokens, paid.cost_usd) == (3, 300, 0.03)
    nxt = await second.request(conversation(4)[3])  # beyond the records: a live call
    assert nxt.text == "live 1" and inner.calls == 1


async def test_a_changed_request_is_sent_again_but_the_old_answer_still_counts() -> None:
    remote = Remote()
    first = RecordingModel(FakeModel(), remote.store(1))
    for r in conversation(2):
        await first.request(r)
    inner = FakeModel()
    second = RecordingModel(inner, remote.store(2))
    assert (await second.request(conversation(1)[0])).text == "live 1"  # replayed
    changed = req(CallOrigin(phase="specify"), 1, text="a different prompt")
    assert (await second.request(changed)).text == "live 1"  # sent: nothing matched it
    assert inner.calls == 1 and second.store.paid_earlier.model_calls == 2


async def test_another_model_id_does_not_replay() -> None:
    remote = Remote()
    await RecordingModel(FakeModel("fake:a"), remote.store(1)).request(conversation(1)[0])
    inner = FakeModel("fake:b")
    await RecordingModel(inner, remote.store(2)).request(conversation(1)[0])
    assert inner.calls == 1


def test_timeout_setting_does_not_change_the_fingerprint() -> None:
    a = conversation(1)[0]
    b = a.model_copy(update={"settings": ModelSettings(timeout_s=5)})
    assert a.fingerprint() == b.fingerprint()
    c = a.model_copy(update={"settings": ModelSettings(max_tokens=5)})
    assert a.fingerprint() != c.fingerprint()


async def test_the_answer_is_recorded_before_it_is_returned_and_the_start_before_sending() -> None:
    remote = Remote()
    events: list[str] = []
    remote.events = events
    inner = FakeModel()
    inner.events = events
    model = RecordingModel(inner, remote.store(1))
    await model.request(conversation(1)[0])
    events.append("returned")
    assert events == ["recorded", "inner returned", "recorded", "returned"]


async def test_a_response_that_cannot_be_recorded_is_not_returned() -> None:
    remote = Remote()
    model = RecordingModel(FakeModel(), remote.store(1))
    remote.refuse = True
    with pytest.raises(OSError, match="refused"):
        await model.request(conversation(1)[0])


async def test_a_call_started_but_never_answered_counts_as_one_lost_paid_call() -> None:
    remote = Remote()
    first = RecordingModel(FakeModel(fail_on={2}), remote.store(1))
    await first.request(conversation(1)[0])
    with pytest.raises(RuntimeError, match="connection dropped"):
        await first.request(conversation(2)[1])
    second = remote.store(2)
    assert (second.paid_earlier.model_calls, second.paid_earlier.lost_calls) == (2, 1)
    assert second.paid_earlier.input_tokens == 100  # only the answered call's tokens are known


async def test_scripted_calls_keep_model_seconds_zero(tmp_path: Path) -> None:
    transcript = write_transcript(tmp_path / "t.yaml", CALLS)
    model = RecordingModel(ScriptedModel(transcript), Remote().store(1))
    response = await model.request(req(CallOrigin(phase="plan")))
    assert response.usage.model_seconds == 0.0


def test_record_names_sort_by_attempt_beyond_nine() -> None:
    remote = Remote()
    remote.records["010/0001"] = RunRecord(
        seq=1, attempt=10, fingerprint="f", model="m", recorded_at="t",
        response=ModelResponse(parts=[TextPart(text="new")]),
    ).model_dump_json().encode()  # fmt: skip
    remote.records["002/0001"] = RunRecord(
        seq=1, attempt=2, fingerprint="f", model="m", recorded_at="t",
        response=ModelResponse(parts=[TextPart(text="old")]),
    ).model_dump_json().encode()  # fmt: skip
    store = remote.store(11)
    assert store.answers["f"].response.text == "new"
    assert json.loads(remote.records["002/0001"])["attempt"] == 2


def goes_on(response: ModelResponse) -> bool:
    """What the agent loop says of a response: another call follows (no finish here)."""
    return True


async def test_an_answer_that_says_more_follows_carries_the_next_start_in_one_write() -> None:
    remote = Remote()
    model = RecordingModel(FakeModel(), remote.store(1))
    calls = conversation(3)
    for i, r in enumerate(calls):
        await model.request(r, goes_on=goes_on if i < len(calls) - 1 else None)
    # One write per call, plus the first start: every record is there all the same.
    assert remote.writes == [
        ["001/0001-started"],
        ["001/0001", "001/0002-started"],
        ["001/0002", "001/0003-started"],
        ["001/0003"],
    ]
    assert remote.records["001/0001-started"].decode() == calls[0].fingerprint()
    assert remote.records["001/0002-started"] == b""  # announced before its request existed
    later = remote.store(2)
    assert (later.paid_earlier.model_calls, later.paid_earlier.lost_calls) == (3, 0)
    assert len(later.answers) == 3


async def test_an_announced_call_whose_worker_died_counts_as_one_lost_call() -> None:
    remote = Remote()
    first = RecordingModel(FakeModel(), remote.store(1))
    await first.request(conversation(1)[0], goes_on=goes_on)
    # The worker dies while running the tools of turn 1: call 2 may or may not have been sent.
    inner = FakeModel()
    second = RecordingModel(inner, remote.store(2))
    paid = second.store.paid_earlier
    assert (paid.model_calls, paid.lost_calls) == (2, 1)
    assert (await second.request(conversation(2)[0])).text == "live 1"  # replayed
    assert inner.calls == 0
    await second.request(conversation(2)[1])  # sent: its start is written on its own first
    assert remote.records["002/0002-started"].decode() == conversation(2)[1].fingerprint()
