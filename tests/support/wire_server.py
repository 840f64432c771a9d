"""A local HTTP server that speaks the Anthropic and OpenAI wire formats (a test double).

It lets the real ``anthropic`` and ``openai`` SDKs run against 127.0.0.1 with no
network and no keys:

- ``POST /v1/messages`` — Anthropic Messages, JSON or SSE (``"stream": true``).
- ``POST /v1/chat/completions`` — OpenAI Chat Completions, JSON or SSE.

Two modes:

*Scripted replies.* ``server.script(reply, ...)`` queues answers; each request
takes the next one, whatever the endpoint. A :class:`Reply` is text, tool calls,
usage figures, an HTTP error with headers (``429`` + ``retry-after``), or a fault:
``drop_before`` (close without answering), ``drop_mid`` (close in the middle of
the stream), ``truncate`` (end the stream cleanly but early), ``error_event`` (an
error event inside a 200 stream, e.g. Anthropic's ``overloaded_error``) or
``stall`` (send the first event, then wait for :meth:`WireServer.release`).

*Playing a model.* ``server.play(model)`` answers every request by converting the
wire request back into a :class:`~activities.models.base.ModelRequest` and asking
``model`` (e.g. a ``ScriptedModel``). The call's origin comes from the
``x-backforge-origin`` header the providers send, else from the ``backforge-call:``
marker in the conversation.

Every request is recorded (path, lower-cased headers, JSON body) in
:attr:`WireServer.requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from activities.models.base import (
    CallOrigin,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

__all__ = [
    "Recorded",
    "Reply",
    "WireCall",
    "WireServer",
    "drop",
    "error",
    "text",
    "tool",
    "wire_to_request",
]

Fault = Literal["drop_before", "drop_mid", "truncate", "stall", "error_event"]

_MARKER = re.compile(
    r"^backforge-call:\s*(?P<phase>[A-Za-z_]+)(?:/(?P<task>[^#\s]+))?#(?P<inv>\d+)(?:/(?P<task2>\S+))?\s*$",
    re.MULTILINE,
)
_CONTEXT = re.compile(r"\n\n<context>\n(?P<context>.*)\n</context>$", re.DOTALL)


@dataclass
class WireCall:
    """One tool call in a scripted reply."""

    name: str
    arguments: dict[str, Any] | None = None
    #: Sent verbatim instead of ``arguments`` (e.g. malformed JSON).
    raw_arguments: str | None = None
    id: str | None = None


@dataclass
class Reply:
    """One scripted answer, rendered in whichever wire format was asked."""

    text: str = ""
    tool_calls: list[WireCall] = field(default_factory=list)
    #: Anthropic only: a thinking block (with a fake signature) before the text.
    thinking: str | None = None
    input_tokens: int = 11
    output_tokens: int = 7
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: Wire stop/finish reason; derived from the content when None.
    stop: str | None = None
    status: int = 200
    error_type: str | None = None
    error_code: str | None = None
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    fault: Fault | None = None
    model: str | None = None


def text(value: str, **kwargs: Any) -> Reply:
    """A plain text answer."""
    return Reply(text=value, **kwargs)


def tool(name: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> Reply:
    """An answer calling one tool (``raw_arguments=`` for malformed JSON)."""
    raw = kwargs.pop("raw_arguments", None)
    call_id = kwargs.pop("id", None)
    return Reply(
        tool_calls=[WireCall(name, arguments or {}, raw_arguments=raw, id=call_id)], **kwargs
    )


def error(
    status: int,
    message: str = "scripted error",
    *,
    headers: dict[str, str] | None = None,
    type: str | None = None,
    code: str | None = None,
) -> Reply:
    """An HTTP error answer in the provider's error body format."""
    return Reply(
        status=status,
        error_message=message,
        headers=headers or {},
        error_type=type,
        error_code=code,
    )


def drop(fault: Fault = "drop_before", **kwargs: Any) -> Reply:
    """A transport fault (a text reply if the fault lets anything through)."""
    kwargs.setdefault("text", "partial answer that never completes")
    return Reply(fault=fault, **kwargs)


@dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
_ANTHROPIC_STOP = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens"}


def _pieces(value: str, n: int = 3) -> list[str]:
    """Split ``value`` into about ``n`` pieces (streams send several deltas)."""
    if not value:
        return []
    size = max(1, -(-len(value) // n))
    return [value[i : i + size] for i in range(0, len(value), size)]


def _args(call: WireCall) -> str:
    return (
        call.raw_arguments if call.raw_arguments is not None else json.dumps(call.arguments or {})
    )


# ---------------------------------------------------------------------------
# Wire → neutral request (play mode)


def _origin(headers: dict[str, str], system: str) -> CallOrigin:
    if raw := headers.get("x-backforge-origin"):
        with contextlib.suppress(ValueError):
            return CallOrigin.model_validate_json(raw)
    if match := _MARKER.search(system):
        return CallOrigin(
            phase=match["phase"],
            invocation=int(match["inv"]),
            task_id=match["task"] or match["task2"],
        )
    return CallOrigin()


def wire_to_request(path: str, headers: dict[str, str], body: dict[str, Any]) -> ModelRequest:
    """Rebuild the neutral request a provider sent (for :meth:`WireServer.play`)."""
    messages: list[Message] = []

    def add(role: Literal["user", "assistant"], parts: list[Any]) -> None:
        if not parts:
            return
        if messages and messages[-1].role == role == "user":
            messages[-1] = Message(role="user", parts=[*messages[-1].parts, *parts])
        else:
            messages.append(Message(role=role, parts=parts))

    if path.endswith("/messages"):
        blocks = body.get("system") or []
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        system = blocks[0]["text"] if blocks else ""
        context = blocks[1]["text"] if len(blocks) > 1 else ""
        for m in body["messages"]:
            content = m["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            parts: list[Any] = []
            for b in content:
                if b["type"] == "text":
                    parts.append(TextPart(text=b["text"]))
                elif b["type"] == "tool_use":
                    parts.append(ToolCallPart(id=b["id"], name=b["name"], arguments=b["input"]))
                elif b["type"] == "tool_result":
                    value = b.get("content", "")
                    if isinstance(value, list):
                        value = "".join(x.get("text", "") for x in value)
                    parts.append(
                        ToolResultPart(
                            tool_call_id=b["tool_use_id"],
                            content=value,
                            is_error=bool(b.get("is_error")),
                        )
                    )
            add(m["role"], parts)
        tools = [
            ToolSpec(
                name=t["name"], description=t.get("description", ""), parameters=t["input_schema"]
            )
            for t in body.get("tools") or []
        ]
        max_tokens = body["max_tokens"]
    else:
        system, context = "", ""
        for m in body["messages"]:
            role, content = m["role"], m.get("content")
            if role in ("system", "developer"):
                system = content or ""
                if found := _CONTEXT.search(system):
                    context = found["context"]
                    system = system[: found.start()]
            elif role == "user":
                add("user", [TextPart(text=content)] if content else [])
            elif role == "tool":
                is_error = content.startswith("ERROR: ")
                add(
                    "user",
                    [
                        ToolResultPart(
                            tool_call_id=m["tool_call_id"],
                            content=content.removeprefix("ERROR: "),
                            is_error=is_error,
                        )
                    ],
                )
            else:
                parts = [TextPart(text=content)] if content else []
                parts += [
                    ToolCallPart(
                        id=c["id"],
                        name=c["function"]["name"],
                        arguments=json.loads(c["function"]["arguments"] or "{}"),
                    )
                    for c in m.get("tool_calls") or []
                ]
                add("assistant", parts)
        tools = [
            ToolSpec(
                name=t["function"]["name"],
                description=t["function"].get("description", ""),
                parameters=t["function"].get("parameters", {}),
            )
            for t in body.get("tools") or []
        ]
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 8192
    return ModelRequest(
        system=system,
        context=context,
        messages=messages,
        tools=tools,
        settings=ModelSettings(max_tokens=max_tokens, temperature=body.get("temperature")),
        origin=_origin(headers, system),
    )


def response_to_reply(response: ModelResponse) -> Reply:
    """A neutral response as a scripted reply."""
    usage = response.usage
    return Reply(
        text=response.text,
        tool_calls=[WireCall(c.name, c.arguments, id=c.id) for c in response.tool_calls],
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        stop=None,
    )


# ---------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Small SSE writes must not wait for Nagle's algorithm (40 ms stalls).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    # -- plumbing ----------------------------------------------------------

    def _json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Close the connection abruptly, mid-response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _sse(self, events: list[bytes], reply: Reply) -> None:
        self._start_stream()
        if reply.fault == "stall":
            self._chunk(events[0])
            self.server.owner._stalled.set()
            self.server.owner._release.wait(timeout=60)
            self._cut()
            return
        if reply.fault == "drop_mid":
            for event in events[: max(1, len(events) // 2)]:
                self._chunk(event)
            self._cut()
            return
        if reply.fault == "truncate":
            events = events[: max(1, len(events) // 2)]
        if reply.fault == "error_event":
            events = [*events[:1], self.server.owner._error_event(reply, self.path)]
        for event in events:
            self._chunk(event)
        self._end_stream()

    # -- requests ------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        owner = self.server.owner
        owner._record(Recorded(self.path, headers, body))
        anthropic_api = self.path.rstrip("/").endswith("/messages")
        if not anthropic_api and not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(
                404, {"error": {"type": "not_found_error", "message": f"no route {self.path}"}}
            )
            return
        reply = owner._next(self.path, headers, body)
        if reply.fault == "drop_before":
            self._cut()
            return
        if reply.status >= 400:
            self._error(reply, anthropic_api)
            return
        model = reply.model or body.get("model", "wire-model")
        stream = bool(body.get("stream"))
        if anthropic_api:
            if stream:
                self._sse(_anthropic_events(reply, model), reply)
            else:
                self._json(200, _anthropic_message(reply, model), {"request-id": "req_wire"})
        elif stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._sse(_openai_chunks(reply, model, include_usage), reply)
        else:
            self._json(200, _openai_completion(reply, model), {"x-request-id": "req_wire"})

    def _error(self, reply: Reply, anthropic_api: bool) -> None:
        headers = {
            "request-id" if anthropic_api else "x-request-id": "req_wire_error",
            **reply.headers,
        }
        if anthropic_api:
            etype = reply.error_type or _ANTHROPIC_ERROR_TYPES.get(reply.status, "api_error")
            payload = {"type": "error", "error": {"type": etype, "message": reply.error_message}}
        else:
            payload = {
                "error": {
                    "message": reply.error_message,
                    "type": reply.error_type or "invalid_request_error",
                    "param": None,
                    "code": reply.error_code,
                }
            }
        self._json(reply.status, payload, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: WireServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, cancelled calls) are part of the tests.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class WireServer:
    """The server; use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._player: Model | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stalled = threading.Event()
        self._release = threading.Event()
        self._httpd = _Server(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="wire-server", daemon=True
        )

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> WireServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def anthropic_url(self) -> str:
        """``base_url`` for the Anthropic SDK."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """``base_url`` for the OpenAI SDK."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting -----------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in order."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        return len(self._replies)

    def play(self, model: Model) -> None:
        """Answer every request by asking ``model`` (play mode)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="wire-player", daemon=True).start()
        self._player = model

    def wait_stalled(self, timeout: float = 10.0) -> bool:
        """Block until a ``stall`` reply has sent its first event."""
        return self._stalled.wait(timeout)

    def release(self) -> None:
        """Let a stalled reply finish (by dropping the connection)."""
        self._release.set()

    @staticmethod
    def _error_event(reply: Reply, path: str) -> bytes:
        message = reply.error_message or "scripted stream error"
        if path.rstrip("/").endswith("/messages"):
            etype = reply.error_type or "overloaded_error"
            return _event("error", {"type": "error", "error": {"type": etype, "message": message}})
        payload = {"error": {"message": message, "type": reply.error_type or "server_error"}}
        return f"data: {json.dumps(payload)}\n\n".encode()

    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def _next(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        if self._player is not None and self._loop is not None:
            try:
                request = wire_to_request(path, headers, body)
                future = asyncio.run_coroutine_threadsafe(self._player.request(request), self._loop)
                return response_to_reply(future.result(timeout=60))
            except Exception as err:  # surfaces as a non-retryable 400 in the client
                return error(400, f"wire server player failed: {type(err).__name__}: {err}")
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return error(400, "wire server: no scripted reply left for this request")


# ---------------------------------------------------------------------------
# Rendering


def _anthropic_stop(reply: Reply) -> str:
    if reply.stop:
        return _ANTHROPIC_STOP.get(reply.stop, reply.stop)
    return "tool_use" if reply.tool_calls else "end_turn"


def _anthropic_usage(reply: Reply) -> dict[str, int]:
    return {
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "cache_read_input_tokens": reply.cache_read_tokens,
        "cache_creation_input_tokens": reply.cache_write_tokens,
    }


def _anthropic_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.thinking is not None:
        blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": "sig-wire"})
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for i, call in enumerate(reply.tool_calls):
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or f"toolu_wire_{i}",
                "name": call.name,
                "input": call.arguments or {},
            }
        )
    return blocks


def _anthropic_message(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "msg_wire",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _anthropic_blocks(reply),
        "stop_reason": _anthropic_stop(reply),
        "stop_sequence": None,
        "usage": _anthropic_usage(reply),
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _anthropic_events(reply: Reply, model: str) -> list[bytes]:
    start = {**_anthropic_message(reply, model), "content": [], "stop_reason": None}
    start["usage"] = {**_anthropic_usage(reply), "output_tokens": 1}
    events = [_event("message_start", {"type": "message_start", "message": start})]
    events.append(_event("ping", {"type": "ping"}))
    calls = iter(reply.tool_calls)
    for index, block in enumerate(_anthropic_blocks(reply)):
        if block["type"] == "text":
            first = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        elif block["type"] == "thinking":
            first = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            call = next(calls)
            first = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(_args(call))]
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": first},
            )
        )
        for delta in deltas:
            events.append(
                _event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _anthropic_stop(reply), "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def _openai_finish(reply: Reply) -> str:
    if reply.stop:
        return _OPENAI_FINISH.get(reply.stop, reply.stop)
    return "tool_calls" if reply.tool_calls else "stop"


def _openai_usage(reply: Reply) -> dict[str, Any]:
    prompt = reply.input_tokens + reply.cache_read_tokens + reply.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": reply.output_tokens,
        "total_tokens": prompt + reply.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": reply.cache_read_tokens,
            "cache_write_tokens": reply.cache_write_tokens,
        },
    }


def _openai_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": call.id or f"call_wire_{i}",
            "type": "function",
            "function": {"name": call.name, "arguments": _args(call)},
        }
        for i, call in enumerate(reply.tool_calls)
    ]


def _openai_completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = _openai_calls(reply)
    return {
        "id": "chatcmpl-wire",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _openai_finish(reply)}],
        "usage": _openai_usage(reply),
    }


def _openai_chunks(reply: Reply, model: str, include_usage: bool) -> list[bytes]:
    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {
            "id": "chatcmpl-wire",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
        return chunk([{"index": 0, "delta": d, "finish_reason": finish}])

    chunks = [delta({"role": "assistant", "content": ""})]
    chunks += [delta({"content": p}) for p in _pieces(reply.text)]
    for i, call in enumerate(_openai_calls(reply)):
        head = {**call, "index": i, "function": {"name": call["function"]["name"], "arguments": ""}}
        chunks.append(delta({"tool_calls": [head]}))
        chunks += [
            delta({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
            for p in _pieces(call["function"]["arguments"])
        ]
    chunks.append(delta({}, _openai_finish(reply)))
    if include_usage:
        chunks.append(chunk([], usage=_openai_usage(reply)))
    chunks.append(b"data: [DONE]\n\n")
    return chunks
