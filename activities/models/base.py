"""The one model interface every provider implements.

A ``ModelRequest`` of provider-neutral messages and tool specs goes in; a
``ModelResponse`` of text and tool-call parts plus token usage comes out.
Message parts carry a ``kind`` tag so they round-trip through JSON (the run
store records them verbatim).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from contract import PhaseName, Usage

__all__ = [
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "Part",
    "Message",
    "ToolSpec",
    "ModelSettings",
    "CallOrigin",
    "ModelRequest",
    "ModelResponse",
    "Model",
    "ModelError",
    "Usage",
]


class TextPart(BaseModel):
    kind: Literal["text"] = "text"
    text: str


class ToolCallPart(BaseModel):
    kind: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResultPart(BaseModel):
    kind: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    name: str = ""
    content: str
    is_error: bool = False


Part = Annotated[TextPart | ToolCallPart | ToolResultPart, Field(discriminator="kind")]


class Message(BaseModel):
    """One turn. Tool results travel in a ``user`` message, as both providers expect."""

    role: Literal["user", "assistant"]
    parts: list[Part]

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", parts=[TextPart(text=text)])


class ToolSpec(BaseModel):
    name: str
    description: str
    #: JSON schema of the arguments object.
    parameters: dict[str, Any]


class ModelSettings(BaseModel):
    max_tokens: int = 8192
    temperature: float | None = None
    #: Seconds one call may take before it is abandoned (Temporal retries it).
    timeout_s: float = 600.0


class CallOrigin(BaseModel):
    """Where a call comes from. The scripted model finds its script by it; real providers
    send it in a header that servers ignore (test doubles read it)."""

    phase: PhaseName | None = None
    invocation: int = 1
    task_id: str | None = None
    feature_dir: str = ""
    branch: str = ""


class ModelRequest(BaseModel):
    #: Stable instructions. Providers that cache prompts cache this prefix.
    system: str
    #: Stable context placed before the conversation (constitution, spec...).
    #: Kept separate so providers can mark it cacheable.
    context: str = ""
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    settings: ModelSettings = Field(default_factory=ModelSettings)
    #: A tool the model must call (providers that reject a forced choice leave it out).
    tool_choice: str | None = None
    origin: CallOrigin = Field(default_factory=CallOrigin)

    def fingerprint(self) -> str:
        """A stable hash of everything that determines the answer."""
        data = self.model_dump(mode="json", exclude={"settings": {"timeout_s"}})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class ModelResponse(BaseModel):
    parts: list[TextPart | ToolCallPart]
    stop_reason: Literal["end_turn", "tool_use", "max_tokens", "refusal", "other"] = "end_turn"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


class ModelError(Exception):
    """A model call that cannot succeed as asked (bad script, bad config)."""


@runtime_checkable
class Model(Protocol):
    """What every provider implements."""

    #: Full id, e.g. ``anthropic:claude-sonnet-4-5``.
    model_id: str

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one request and return the complete response."""
        ...
