"""The run store: every model response is recorded before it is used.

Records live in the target repo's private area
(``.git/backforge/runs/<workflow id>/<run key>/0001.json``), outside workflow
history and outside the commits. A retried attempt of the same phase
invocation finds them and replays them in order instead of paying again; a
record whose request fingerprint no longer matches (the prompt changed) is
dropped together with everything after it.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from activities.models.base import Model, ModelRequest, ModelResponse
from activities.workspace import private_dir

__all__ = ["RunStore", "RecordingModel"]


class RunStore:
    """Recorded calls of one phase invocation."""

    def __init__(self, repo: str | Path, workflow_id: str, run_key: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.#-]", "_", workflow_id)
        self.dir = private_dir(Path(repo)) / "runs" / safe / run_key
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, index: int) -> Path:
        return self.dir / f"{index:04d}.json"

    def load(self, index: int) -> dict | None:
        path = self.path(index)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def save(self, index: int, record: dict) -> None:
        # Write-then-rename so a crash never leaves a half record behind.
        tmp = self.path(index).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
        os.replace(tmp, self.path(index))

    def truncate(self, index: int) -> None:
        """Drop record ``index`` and every later one."""
        for path in self.dir.glob("*.json"):
            if int(path.stem) >= index:
                path.unlink()

    def records(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.dir.glob("*.json"))]


class RecordingModel:
    """Wraps a model: replay recorded responses, record new ones before returning them."""

    def __init__(self, inner: Model, store: RunStore) -> None:
        self.inner = inner
        self.store = store
        self.model_id = inner.model_id
        self.index = 0
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

    async def request(self, request: ModelRequest) -> ModelResponse:
        self.index += 1
        fingerprint = request.fingerprint()
        record = self.store.load(self.index)
        if record is not None:
            if record.get("fingerprint") == fingerprint and record.get("model") == self.model_id:
                self.replayed_calls += 1
                response = ModelResponse.model_validate(record["response"])
                # Already paid for: count it as replayed, not as new usage.
                response.usage = response.usage.model_copy(
                    update={
                        "model_calls": 0,
                        "replayed_calls": 1,
                        "cost_usd": 0.0,
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cache_read_tokens": 0,
                        "cache_write_tokens": 0,
                        "model_seconds": 0.0,
                    }
                )
                return response
            self.store.truncate(self.index)
        started = time.monotonic()
        response = await self.inner.request(request)
        elapsed = time.monotonic() - started
        if not self.model_id.startswith("scripted:"):
            response.usage.model_seconds = round(elapsed, 6)
        self.live_calls += 1
        self.store.save(
            self.index,
            {
                "fingerprint": fingerprint,
                "model": self.model_id,
                "recorded_at": datetime.now(UTC).isoformat(),
                "origin": request.origin.model_dump(mode="json", exclude_defaults=True),
                "response": response.model_dump(mode="json"),
            },
        )
        return response
