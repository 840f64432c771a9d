"""Claude models through the Anthropic Messages API.

Calls are streamed (``messages.stream``) so the activity heartbeats as events
arrive (see :mod:`activities.models.heartbeat`). ``ANTHROPIC_BASE_URL`` selects
another server speaking the same wire format.

Prompt caching. Up to three ``cache_control: ephemeral`` breakpoints, in prefix
order (tools → system → messages):

1. the system prompt block (with the tool definitions before it),
2. the ``request.context`` block (constitution, spec…), a second system block,
3. the last block of the final user message — a rolling breakpoint, so each call
   of a tool loop reads the conversation so far from cache and writes only what
   the previous turn added.

Repeated calls with the same prefix therefore write system + context to the cache
once (1.25x the input price, 5-minute TTL refreshed on every hit) and read them
at 0.1x afterwards; anything that varies must come after the context to keep that
prefix shared across calls. ``Usage.input_tokens`` is the uncached
input, ``cache_read_tokens``/``cache_write_tokens`` come from
``cache_read_input_tokens``/``cache_creation_input_tokens``.

Model quirks handled here:

- Newer models reject a forced ``tool_choice`` and non-default sampling
  parameters with a 400. Known ones are never sent them; for others the call is
  resent once without the rejected field, and the model instance remembers.
- With thinking on, an assistant turn that called tools must be echoed back with
  its thinking blocks, verbatim. The neutral ``Message`` cannot carry them, so the
  raw assistant content is kept in a process-wide cache keyed by tool-call ids and
  substituted when that turn is sent back (see ``ECHO_CACHE_SIZE``). A turn replayed
  from the run store in another process is sent without them.
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from typing import Any, Literal

import anthropic
import httpx2
from anthropic import AsyncAnthropic
from temporalio.exceptions import ApplicationError

from activities.models import pricing
from activities.models.base import (
    Message,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from activities.models.errors import ModelErrorType, config_error, scrub
from activities.models.heartbeat import StreamHeartbeat
from activities.models.streaming import StreamingProvider
from contract import Usage

__all__ = [
    "AnthropicModel",
    "ORIGIN_HEADER",
    "ECHO_CACHE_SIZE",
    "to_anthropic_params",
]

log = logging.getLogger(__name__)

#: Header carrying ``request.origin`` as JSON (ignored by servers; used by test doubles).
ORIGIN_HEADER = "x-backforge-origin"
#: Assistant turns (with thinking) remembered for verbatim echo.
ECHO_CACHE_SIZE = 512

EPHEMERAL: dict[str, str] = {"type": "ephemeral"}

#: Models documented to answer a forced tool choice with a 400.
_NO_FORCED_TOOL = frozenset({"claude-opus-5-5", "claude-sonnet-5-5", "claude-fable-5-1"})
_FAMILY_VERSION = re.compile(r"^claude-[a-z]+-(\d+)")

_STOP_REASONS: dict[str, Literal["end_turn", "tool_use", "max_tokens", "refusal", "other"]] = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "refusal": "refusal",
    "pause_turn": "other",
}

_echo_cache: OrderedDict[tuple[str, ...], list[dict[str, Any]]] = OrderedDict()


def _base_name(model_name: str) -> str:
    return re.sub(r"-(\d{8}|latest)$", "", model_name)


def _rejects_sampling(model_name: str) -> bool:
    """Claude 5 and later reject non-default temperature/top_p/top_k."""
    match = _FAMILY_VERSION.match(model_name)
    return match is not None and int(match.group(1)) >= 5


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    ids = tuple(p.id for p in message.parts if isinstance(p, ToolCallPart))
    if ids and (cached := _echo_cache.get(ids)) is not None:
        _echo_cache.move_to_end(ids)
        return [dict(block) for block in cached]
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart) and part.text:
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            blocks.append(
                {"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments}
            )
    return blocks


def _user_blocks(message: Message) -> list[dict[str, Any]]:
    # Tool results must come first in the user turn that answers tool calls.
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": part.tool_call_id,
                "content": part.content,
            }
            if part.is_error:
                block["is_error"] = True
            blocks.append(block)
    blocks.extend(
        {"type": "text", "text": p.text}
        for p in message.parts
        if isinstance(p, TextPart) and p.text
    )
    return blocks


def to_anthropic_params(request: ModelRequest) -> dict[str, Any]:
    """``system``, ``messages`` and ``tools`` for a neutral request, with cache breakpoints."""
    system: list[dict[str, Any]] = [
        {"type": "text", "text": request.system, "cache_control": EPHEMERAL}
    ]
    if request.context:
        system.append({"type": "text", "text": request.context, "cache_control": EPHEMERAL})
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        blocks = (
            _assistant_blocks(message) if message.role == "assistant" else _user_blocks(message)
        )
        if blocks:
            messages.append({"role": message.role, "content": blocks})
    if messages and messages[-1]["role"] == "user":
        last = messages[-1]["content"][-1]
        if last.get("type") in ("text", "tool_result"):
            last["cache_control"] = EPHEMERAL
    params: dict[str, Any] = {"system": system, "messages": messages}
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    return params


def _block_param(block: Any) -> dict[str, Any] | None:
    """The request form of a response content block (for verbatim echo)."""
    match block.type:
        case "thinking":
            return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
        case "redacted_thinking":
            return {"type": "redacted_thinking", "data": block.data}
        case "text":
            return {"type": "text", "text": block.text} if block.text else None
        case "tool_use":
            return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
        case _:
            return None


class AnthropicModel(StreamingProvider):
    """A Claude model behind the Messages API.

    Args:
        model_name: E.g. ``claude-sonnet-5-5``.
        api_key: Overrides ``ANTHROPIC_API_KEY``.
        base_url: Overrides ``ANTHROPIC_BASE_URL``.
        client: A ready client (tests); it must have ``max_retries=0``.

    Raises:
        ApplicationError: ``ModelConfigError`` (non-retryable) when
            ``ANTHROPIC_API_KEY`` is not set or the price file is unusable.
    """

    bad_request_error = anthropic.BadRequestError

    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"

    def __init__(
        self,
        model_name: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: AsyncAnthropic | None = None,
    ) -> None:
        if not model_name or not model_name.strip():
            raise ValueError("model_name must be a non-empty model name, e.g. 'claude-sonnet-5-5'")
        self.model_name = model_name
        self.model_id = f"anthropic:{model_name}"
        key = api_key or os.environ.get(self.key_env)
        if not key and client is None:
            raise config_error(
                f"{self.key_env} is not set: export {self.key_env} in the worker's environment "
                f"to use {self.model_id} (keys are read by the worker, never taken from "
                "workflow input)"
            )
        self._secrets = (key,) if key else ()
        pricing.check_config()
        base = _base_name(model_name)
        #: Optional request fields the model rejected; not sent again.
        self._dropped: set[str] = set()
        if base in _NO_FORCED_TOOL:
            self._dropped.add("tool_choice")
        if _rejects_sampling(base):
            self._dropped.add("temperature")
        base_url = base_url or os.environ.get(self.base_url_env) or None
        self._client = client or AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0)

    def __repr__(self) -> str:
        return (
            f"AnthropicModel({self.model_name!r}, base_url={scrub(str(self._client.base_url))!r})"
        )

    # -- request -----------------------------------------------------------

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        settings = request.settings
        params = to_anthropic_params(request)
        params.update(
            model=self.model_name,
            max_tokens=settings.max_tokens,
            timeout=httpx2.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
        )
        forced = request.tool_choice
        if (
            forced
            and "tool_choice" not in self._dropped
            and any(t.name == forced for t in request.tools)
        ):
            params["tool_choice"] = {"type": "tool", "name": forced}
        if settings.temperature is not None and "temperature" not in self._dropped:
            params["temperature"] = settings.temperature
        params["extra_headers"] = {
            ORIGIN_HEADER: request.origin.model_dump_json(exclude_defaults=True)
        }
        return params

    def _adapt(self, err: anthropic.BadRequestError, params: dict[str, Any]) -> bool:
        """Drop an optional field the model rejected; True to resend."""
        message = str(err.api_message or err.message).lower()
        for field in ("tool_choice", "temperature"):
            if field in params and field in message and field not in self._dropped:
                self._dropped.add(field)
                log.info("%s rejected %s; resending without it", self.model_id, field)
                return True
        return False

    async def _stream(self, params: dict[str, Any]) -> ModelResponse:
        heartbeat = StreamHeartbeat()
        finished = False
        async with self._client.messages.stream(**params) as stream:
            try:
                async for event in stream:
                    heartbeat.beat()
                    if event.type == "message_stop":
                        finished = True
            except ValueError as err:
                # The SDK could not parse a tool's streamed JSON input.
                raise ApplicationError(
                    f"{self.model_id} streamed unreadable tool input: {scrub(str(err))[:300]}",
                    type=ModelErrorType.BAD_RESPONSE,
                ) from None
            message = stream.current_message_snapshot if finished else None
        if message is None or message.stop_reason is None:
            raise ApplicationError(
                f"stream from {self.model_id} ended before message_stop "
                f"({heartbeat.events} events received)",
                type=ModelErrorType.STREAM_INCOMPLETE,
            )
        return self._response(message)

    def _response(self, message: Any) -> ModelResponse:
        parts: list[TextPart | ToolCallPart] = []
        raw: list[dict[str, Any]] = []
        thinking = False
        for block in message.content:
            if (param := _block_param(block)) is not None:
                raw.append(param)
            if block.type == "text" and block.text:
                parts.append(TextPart(text=block.text))
            elif block.type == "tool_use":
                arguments = (
                    block.input
                    if isinstance(block.input, dict)
                    else {"_raw_arguments": block.input}
                )
                parts.append(ToolCallPart(id=block.id, name=block.name, arguments=arguments))
            elif block.type in ("thinking", "redacted_thinking"):
                thinking = True
        ids = tuple(p.id for p in parts if isinstance(p, ToolCallPart))
        if thinking and ids:
            _echo_cache[ids] = raw
            while len(_echo_cache) > ECHO_CACHE_SIZE:
                _echo_cache.popitem(last=False)
        usage = message.usage
        return ModelResponse(
            parts=parts,
            stop_reason=_STOP_REASONS.get(message.stop_reason, "other"),
            usage=Usage(
                input_tokens=usage.input_tokens or 0,
                output_tokens=usage.output_tokens or 0,
                cache_read_tokens=usage.cache_read_input_tokens or 0,
                cache_write_tokens=usage.cache_creation_input_tokens or 0,
                model_calls=1,
            ),
            model=message.model or self.model_name,
        )
