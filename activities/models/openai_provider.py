"""OpenAI models, and any OpenAI-compatible server, through Chat Completions.

Chat Completions is the API that OpenAI-compatible servers (vLLM, llama.cpp,
Ollama, LiteLLM...) implement, so one adapter serves them all; ``OPENAI_BASE_URL``
selects the server. Calls are streamed (``stream_options.include_usage``) so the
activity heartbeats as chunks arrive (see :mod:`activities.models.heartbeat`).

Mapping of the neutral request:

- ``system`` and ``context`` become one ``system`` message (context wrapped in
  ``<context>…</context>``); OpenAI caches any repeated prefix by itself, and one
  system message is what every local chat template accepts.
- Tool specs become ``function`` tools with the JSON schema as ``parameters``;
  tool results become ``role: tool`` messages right after the assistant message
  that asked for them.
- A forced tool (``request.tool_choice``) becomes
  ``tool_choice: {"type": "function", ...}``.
- ``request.origin`` travel in the ``x-backforge-tags`` header, which servers ignore
  and the test wire server uses to find a scripted answer. On OpenAI itself the
  phase also becomes ``prompt_cache_key``, so a phase's calls share a cache shard.

Usage convention (same as Anthropic's): ``input_tokens`` counts *uncached* input
only, so ``input_tokens + cache_read_tokens + cache_write_tokens`` is the whole
prompt. OpenAI reports ``prompt_tokens`` including cached ones, so we subtract
``prompt_tokens_details.cached_tokens`` (→ ``cache_read_tokens``) and
``cache_write_tokens`` where the server reports them.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any, Literal

import httpx2
import openai
from openai import AsyncOpenAI
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
    "OpenAIModel",
    "ORIGIN_HEADER",
    "LOCAL_SERVER_KEY",
    "to_openai_messages",
]

log = logging.getLogger(__name__)

#: Header carrying ``request.origin`` as JSON.
ORIGIN_HEADER = "x-backforge-origin"
#: Placeholder key sent to a server at ``OPENAI_BASE_URL`` when no key is set.
LOCAL_SERVER_KEY = "not-needed"

_OFFICIAL_HOST = "api.openai.com"

_STOP_REASONS: dict[str, Literal["end_turn", "tool_use", "max_tokens", "refusal", "other"]] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


def to_openai_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The Chat Completions ``messages`` for a neutral request."""
    system = request.system
    if request.context:
        system = f"{system}\n\n<context>\n{request.context}\n</context>"
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for message in request.messages:
        messages.extend(_convert(message))
    return messages


def _convert(message: Message) -> list[dict[str, Any]]:
    texts = [p.text for p in message.parts if isinstance(p, TextPart) and p.text]
    if message.role == "assistant":
        calls = [
            {
                "id": p.id,
                "type": "function",
                "function": {"name": p.name, "arguments": json.dumps(p.arguments)},
            }
            for p in message.parts
            if isinstance(p, ToolCallPart)
        ]
        if not texts and not calls:
            return []
        out: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
        if calls:
            out["tool_calls"] = calls
        return [out]
    # Tool results first: they must directly follow the assistant's tool calls.
    converted: list[dict[str, Any]] = [
        {
            "role": "tool",
            "tool_call_id": p.tool_call_id,
            "content": f"ERROR: {p.content}" if p.is_error else p.content,
        }
        for p in message.parts
        if isinstance(p, ToolResultPart)
    ]
    if texts:
        converted.append({"role": "user", "content": "\n".join(texts)})
    return converted


def _arguments(raw: str) -> dict[str, Any]:
    """Tool-call arguments; malformed JSON is kept under ``_raw_arguments``."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("model returned tool arguments that are not JSON (%d chars)", len(raw))
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"_raw_arguments": raw}


class OpenAIModel(StreamingProvider):
    """A model behind the Chat Completions API (OpenAI or a compatible server).

    Args:
        model_name: The server's model name, e.g. ``gpt-5.4`` or ``llama3.1``.
        api_key: Overrides ``OPENAI_API_KEY``.
        base_url: Overrides ``OPENAI_BASE_URL`` (e.g. ``http://localhost:8000/v1``).
        max_tokens_param: Which request field carries the output limit. Default:
            ``max_completion_tokens`` for OpenAI itself, ``max_tokens`` (the one
            every compatible server knows) elsewhere. Switched automatically if
            the server rejects it.
        client: A ready client (tests); it must have ``max_retries=0``.

    Raises:
        ApplicationError: ``ModelConfigError`` (non-retryable) when no key is set
            and no ``OPENAI_BASE_URL`` names a local server, or the price file
            is unusable.
    """

    bad_request_error = openai.BadRequestError

    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"

    def __init__(
        self,
        model_name: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None,
        client: AsyncOpenAI | None = None,
    ) -> None:
        if not model_name or not model_name.strip():
            raise ValueError("model_name must be a non-empty model name, e.g. 'gpt-5.4'")
        self.model_name = model_name
        self.model_id = f"openai:{model_name}"
        base_url = base_url or os.environ.get(self.base_url_env) or None
        key = api_key or os.environ.get(self.key_env)
        if not key:
            if not base_url:
                raise config_error(
                    f"{self.key_env} is not set: export {self.key_env} in the worker's environment "
                    f"to use {self.model_id}, or set {self.base_url_env} to an OpenAI-compatible "
                    "server (vLLM, llama.cpp, Ollama) that needs no key"
                )
            key = LOCAL_SERVER_KEY
        self._secrets = (key,) if key != LOCAL_SERVER_KEY else ()
        pricing.check_config()
        self._official = base_url is None or _OFFICIAL_HOST in base_url
        self._token_param: Literal["max_tokens", "max_completion_tokens"] = max_tokens_param or (
            "max_completion_tokens" if self._official else "max_tokens"
        )
        #: Optional request fields the server rejected; not sent again.
        self._dropped: set[str] = set()
        self._client = client or AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0)

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model_name!r}, base_url={scrub(str(self._client.base_url))!r})"

    # -- request -----------------------------------------------------------

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        settings = request.settings
        params: dict[str, Any] = {
            "model": self.model_name,
            "messages": to_openai_messages(request),
            "stream": True,
            self._token_param: settings.max_tokens,
            "timeout": httpx2.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
        }
        if "stream_options" not in self._dropped:
            params["stream_options"] = {"include_usage": True}
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
            forced = request.tool_choice
            if (
                forced
                and "tool_choice" not in self._dropped
                and any(t.name == forced for t in request.tools)
            ):
                params["tool_choice"] = {"type": "function", "function": {"name": forced}}
        if settings.temperature is not None and "temperature" not in self._dropped:
            params["temperature"] = settings.temperature
        if (
            self._official
            and (phase := request.origin.phase)
            and "prompt_cache_key" not in self._dropped
        ):
            # Routes a phase's calls to the same cache shard (OpenAI only).
            params["prompt_cache_key"] = f"backforge-{phase}"
        params["extra_headers"] = {
            ORIGIN_HEADER: request.origin.model_dump_json(exclude_defaults=True)
        }
        return params

    def _adapt(self, err: openai.BadRequestError, params: dict[str, Any]) -> bool:
        """Drop or rename an optional field the server rejected; True to resend."""
        message = str(err.message).lower()
        for field in ("temperature", "tool_choice", "stream_options", "prompt_cache_key"):
            if field in params and field in message and field not in self._dropped:
                self._dropped.add(field)
                log.info("%s rejected %s; resending without it", self.model_id, field)
                return True
        current = self._token_param
        other: Literal["max_tokens", "max_completion_tokens"] = (
            "max_completion_tokens" if current == "max_tokens" else "max_tokens"
        )
        # "max_tokens" is a substring of "max_completion_tokens": match whole names.
        mentioned = (
            f"'{current}'" in message or f"`{current}`" in message or f'"{current}"' in message
        )
        if mentioned and "token_param" not in self._dropped:
            self._dropped.add("token_param")  # switch once, never back and forth
            log.info("%s rejected %s; using %s", self.model_id, current, other)
            self._token_param = other
            return True
        return False

    async def _stream(self, params: dict[str, Any]) -> ModelResponse:
        heartbeat = StreamHeartbeat()
        texts: list[str] = []
        refusals: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: Any = None
        model = self.model_name
        stream = await self._client.chat.completions.create(**params)
        async with stream:
            async for chunk in stream:
                heartbeat.beat()
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.model:
                    model = chunk.model
                for choice in chunk.choices or ():
                    if choice.index not in (0, None):
                        continue
                    delta = choice.delta
                    if delta is not None:
                        if delta.content:
                            texts.append(delta.content)
                        if delta.refusal:
                            refusals.append(delta.refusal)
                        for call in delta.tool_calls or ():
                            index = call.index if isinstance(call.index, int) else len(calls)
                            slot = calls.setdefault(index, {"id": None, "name": "", "args": []})
                            if call.id:
                                slot["id"] = call.id
                            if call.function is not None:
                                if call.function.name and not slot["name"]:
                                    slot["name"] = call.function.name
                                if call.function.arguments:
                                    slot["args"].append(call.function.arguments)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        if finish is None:
            raise ApplicationError(
                f"stream from {self.model_id} ended before its finish_reason "
                f"({heartbeat.events} chunks received)",
                type=ModelErrorType.STREAM_INCOMPLETE,
            )
        parts: list[TextPart | ToolCallPart] = []
        text = "".join(texts) or "".join(refusals)
        if text:
            parts.append(TextPart(text=text))
        for index in sorted(calls):
            slot = calls[index]
            parts.append(
                ToolCallPart(
                    id=slot["id"] or f"call_{uuid.uuid4().hex[:24]}",
                    name=slot["name"],
                    arguments=_arguments("".join(slot["args"])),
                )
            )
        stop = _STOP_REASONS.get(finish, "other")
        if refusals and not texts:
            stop = "refusal"
        elif calls and stop != "max_tokens":
            stop = "tool_use"
        return ModelResponse(parts=parts, stop_reason=stop, usage=_usage(usage), model=model)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(model_calls=1)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
    written = (getattr(details, "cache_write_tokens", None) or 0) if details else 0
    prompt = usage.prompt_tokens or 0
    return Usage(
        input_tokens=max(prompt - cached - written, 0),
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        model_calls=1,
    )
