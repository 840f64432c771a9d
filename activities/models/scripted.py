"""The scripted model: a test double that plays a hand-written transcript.

It stands in for a real model in tests and the offline demo. It is stateless:
the script key comes from the request's origin (``phase#invocation`` or
``implement/T001#1``) and the turn from the number of assistant messages
already in the conversation, so a retried activity gets the same answers.
``{{feature_dir}}`` and ``{{branch}}`` in arguments are filled from the origin.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from activities.models.base import (
    CallOrigin,
    ModelError,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
)
from activities.yaml_text import load_yaml
from contract import Usage

__all__ = ["ScriptedModel", "load_transcript", "script_key", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def script_key(origin: CallOrigin, invocation: int | None = None) -> str:
    """The transcript key for a call: ``specify#2`` or ``implement/T003#1``."""
    inv = invocation if invocation is not None else origin.invocation
    phase = origin.phase or ""
    return f"{phase}/{origin.task_id}#{inv}" if origin.task_id else f"{phase}#{inv}"


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, Any]:
    data = load_yaml(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("kind") != "backforge-scripted-transcript":
        raise ModelError(f"{path} is not a Backforge scripted transcript (kind missing)")
    if not isinstance(data.get("calls"), dict):
        raise ModelError(f"{path} has no 'calls' mapping")
    return data


def resolve_transcript(spec: str) -> Path:
    """Find a transcript given as absolute path or relative to cwd or the project root."""
    candidates = [Path(spec).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(PROJECT_ROOT / spec)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ModelError(
        f"scripted transcript {spec!r} not found (looked in the current directory and "
        f"{PROJECT_ROOT}); pass scripted:<path to a .yaml transcript>"
    )


def load_transcript(spec: str) -> dict[str, Any]:
    path = resolve_transcript(spec)
    return _load(str(path), path.stat().st_mtime)


def _fill(value: Any, origin: CallOrigin) -> Any:
    if isinstance(value, str):
        fields = {"feature_dir": origin.feature_dir, "branch": origin.branch}
        return re.sub(
            r"\{\{(feature_dir|branch)\}\}", lambda m: fields[m.group(1)] or m.group(0), value
        )
    if isinstance(value, list):
        return [_fill(v, origin) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, origin) for k, v in value.items()}
    return value


class ScriptedModel:
    """Plays ``calls[key][turn]`` from a transcript; a test double, not a model."""

    def __init__(self, transcript: str) -> None:
        self.transcript = transcript
        self.model_id = f"scripted:{transcript}"
        load_transcript(transcript)  # fail fast on a bad file

    def _turns(self, calls: dict[str, Any], origin: CallOrigin) -> tuple[str, list]:
        key = script_key(origin)
        if key in calls:
            return key, calls[key]
        # A phase asked again (after a rejection, say) replays its latest script.
        for earlier in range(origin.invocation - 1, 0, -1):
            if (k := script_key(origin, earlier)) in calls:
                return k, calls[k]
        raise ModelError(f"transcript {self.transcript} has no script for {key!r}")

    async def request(self, request: ModelRequest) -> ModelResponse:
        calls = load_transcript(self.transcript)["calls"]
        key, turns = self._turns(calls, request.origin)
        turn = sum(1 for m in request.messages if m.role == "assistant")
        if turn >= len(turns):
            raise ModelError(
                f"transcript {self.transcript}: script {key!r} has {len(turns)} turns, "
                f"the conversation asked for turn {turn + 1}"
            )
        scripted = turns[turn]
        parts: list[TextPart | ToolCallPart] = []
        if scripted.get("text"):
            parts.append(TextPart(text=_fill(scripted["text"], request.origin)))
        for i, call in enumerate(scripted.get("tool_calls") or []):
            parts.append(
                ToolCallPart(
                    id=f"call_{key}_{turn}_{i}",
                    name=call["name"],
                    arguments=_fill(call.get("arguments") or {}, request.origin),
                )
            )
        # Rough token figures (4 characters a token) so usage views are exercised;
        # the scripted model costs nothing and takes no model time.
        prompt_chars = (
            len(request.system)
            + len(request.context)
            + len(request.model_dump_json(include={"messages"}))
        )
        out_chars = sum(len(p.model_dump_json()) for p in parts)
        return ModelResponse(
            parts=parts,
            stop_reason="tool_use"
            if any(isinstance(p, ToolCallPart) for p in parts)
            else "end_turn",
            usage=Usage(
                input_tokens=prompt_chars // 4, output_tokens=out_chars // 4, model_calls=1
            ),
            model=self.model_id,
        )
