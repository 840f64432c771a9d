"""The run store: every model call is recorded on the remote before its answer is used.

For each call an attempt makes, two write-once records go to the repository's
remote (see ``activities.workspace.records``): ``<seq>-started`` before the request
is sent, and ``<seq>`` (the response and its usage) before the response is
returned. When the caller knows from a response that the conversation goes on
(the agent loop: tool calls, and neither ``finish`` nor ``escalate``), the next
call's ``-started`` record goes in the same push as that answer, empty; otherwise
it is written on its own, holding the request's fingerprint. So a conversation of
n calls costs about n pushes, not 2n. A later attempt of the same phase
invocation, on any worker, loads every earlier attempt's records:

- a request whose fingerprint was answered before is replayed, not sent again;
- every answered record counts as paid, once (the attempt that paid for it never
  reported, or there would be no later attempt);
- a call started but never answered (its worker died in flight) counts as one paid
  call of unknown size (``Usage.lost_calls``): it may have reached the model, so
  budgets must assume it did. A call announced with the previous answer is counted
  so too if its worker died before answering it, even while still running the
  previous turn's tools (at most one such call per lost attempt, as before).

So a worker lost mid-phase costs no paid call twice, except the one in flight, which
is sent again and counted both times.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from activities.models.base import Model, ModelRequest, ModelResponse
from contract import Usage

__all__ = ["RunRecord", "RunStore", "RecordingModel", "RecordWriter", "GoesOn"]

#: Writes records (ref suffix -> bytes) durably, all at once; raises if it cannot.
RecordWriter = Callable[[dict[str, bytes]], Awaitable[None]]
#: Says from a response whether another call will follow it.
GoesOn = Callable[[ModelResponse], bool]


class RunRecord(BaseModel):
    """One answered call."""

    seq: int
    attempt: int
    fingerprint: str
    model: str
    recorded_at: str
    origin: dict[str, object] = Field(default_factory=dict)
    response: ModelResponse


class RunStore:
    """The records of one phase invocation (``run_key``), as one attempt sees them.

    Args:
        attempt: This attempt's number (records are written under it).
        earlier: Records of earlier attempts, ``name -> content`` where a name is
            ``<attempt>/<seq>`` or ``<attempt>/<seq>-started``.
        write: Writes this attempt's records (``<attempt>/<seq>...`` -> content).
    """

    def __init__(self, *, attempt: int, earlier: dict[str, bytes], write: RecordWriter) -> None:
        self.attempt = attempt
        self._write = write
        #: Calls whose ``-started`` record went out with the previous answer.
        self._announced: set[int] = set()
        self.answers: dict[str, RunRecord] = {}
        #: What earlier attempts paid for (they never reported it).
        self.paid_earlier = Usage()
        answered: set[str] = set()
        started: set[str] = set()
        for name, data in sorted(earlier.items()):
            att, _, seq = name.partition("/")
            if seq.endswith("-started"):
                started.add(f"{att}/{seq.removesuffix('-started')}")
                continue
            record = RunRecord.model_validate_json(data)
            answered.add(f"{att}/{seq}")
            self.answers[record.fingerprint] = record  # later attempts win (sorted)
            self.paid_earlier = self.paid_earlier + record.response.usage
        lost = len(started - answered)
        self.paid_earlier = self.paid_earlier + Usage(model_calls=lost, lost_calls=lost)

    async def started(self, seq: int, fingerprint: str) -> None:
        """Record that call ``seq`` is about to be sent (unless that is on record already)."""
        if seq in self._announced:
            return
        await self._write({f"{self.attempt:03d}/{seq:04d}-started": fingerprint.encode()})

    async def answered(self, record: RunRecord, *, announce_next: bool = False) -> None:
        """Record an answer; with ``announce_next``, the next call's start with it."""
        records = {f"{self.attempt:03d}/{record.seq:04d}": record.model_dump_json().encode()}
        if announce_next:
            records[f"{self.attempt:03d}/{record.seq + 1:04d}-started"] = b""
        await self._write(records)
        if announce_next:
            self._announced.add(record.seq + 1)


class RecordingModel:
    """Wraps a model: replay what earlier attempts were answered, record new calls first."""

    def __init__(self, inner: Model, store: RunStore) -> None:
        self.inner = inner
        self.store = store
        self.model_id = inner.model_id
        self.seq = 0
        self.live_calls = 0
        self.replayed_calls = 0

    async def aclose(self) -> None:
        """Close the wrapped model (and whatever it wraps) if it holds connections."""
        model: object = self.inner
        while model is not None:
            if callable(close := getattr(model, "aclose", None)):
                await close()
                return
            model = getattr(model, "inner", None)

    async def request(
        self, request: ModelRequest, *, goes_on: GoesOn | None = None
    ) -> ModelResponse:
        """The response to ``request``: replayed, or sent and recorded first.

        ``goes_on`` tells from the response whether the caller will call again; if it
        says so, the next call's start is recorded together with this answer.
        """
        self.seq += 1
        fingerprint = request.fingerprint()
        record = self.store.answers.get(fingerprint)
        if record is not None and record.model == self.model_id:
            self.replayed_calls += 1
            # Paid for by the attempt that recorded it (counted in ``paid_earlier``).
            return record.response.model_copy(update={"usage": Usage(replayed_calls=1)})
        await self.store.started(self.seq, fingerprint)
        started = time.monotonic()
        response = await self.inner.request(request)
        if not self.model_id.startswith("scripted:"):
            response.usage.model_seconds = round(time.monotonic() - started, 6)
        self.live_calls += 1
        await self.store.answered(
            RunRecord(
                seq=self.seq,
                attempt=self.store.attempt,
                fingerprint=fingerprint,
                model=self.model_id,
                recorded_at=datetime.now(UTC).isoformat(),
                origin=request.origin.model_dump(mode="json", exclude_defaults=True),
                response=response,
            ),
            announce_next=goes_on is not None and goes_on(response),
        )
        return response
