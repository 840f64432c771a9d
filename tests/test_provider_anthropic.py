"""The Anthropic adapter against the real ``anthropic`` SDK and a local wire server.

No network, no key: ``ANTHROPIC_BASE_URL`` points at :mod:`tests.support.wire_server` on
127.0.0.1 and the key is a fake that must never leak.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.failure.v1 import Failure
from temporalio.common import RetryPolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.models import heartbeat
from activities.models.anthropic_provider import AnthropicModel
from activities.models.base import CallOrigin, Message, ModelRequest, ToolResultPart, ToolSpec
from activities.models.errors import retry_delay_from_headers, scrub
from activities.models.scripted import ScriptedModel
from activities.models.structured import model_tool, parse_arguments
from tests.support.wire_server import (
    Reply,
    WireCall,
    WireServer,
    drop,
    error,
    text,
    tool,
    wire_to_request,
)

KEY = "sk-test-SECRET-abc123"
MODEL = "claude-sonnet-4-6"
EPHEMERAL = {"type": "ephemeral"}


class TaskList(BaseModel):
    """Tasks for one user story."""

    story: str
    tasks: list[str]


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def env(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> WireServer:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", wire.anthropic_url)
    monkeypatch.delenv("BACKFORGE_PRICES", raising=False)
    return wire


def req(*messages: Message, **kwargs: object) -> ModelRequest:
    return ModelRequest(
        system="You are a careful backend engineer.",
        context="# Spec\nBookmarks with tags.",
        messages=list(messages) or [Message.user("List the tasks.")],
        origin=CallOrigin(phase="tasks"),
        **kwargs,  # type: ignore[arg-type]
    )


READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


async def expect_error(model: AnthropicModel, request: ModelRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await model.request(request)
    return caught.value


def breakpoints(body: dict) -> list[str]:
    """Where the request put cache_control markers."""
    found = [f"system[{i}]" for i, b in enumerate(body["system"]) if "cache_control" in b]
    for i, m in enumerate(body["messages"]):
        found += [f"messages[{i}].{b['type']}" for b in m["content"] if "cache_control" in b]
    return found


# ---------------------------------------------------------------------------
# Completions and caching


async def test_plain_completion_caches_system_and_context(env: WireServer) -> None:
    env.script(
        text("T001 Create models", input_tokens=40, cache_read_tokens=3000, cache_write_tokens=500)
    )
    response = await AnthropicModel(MODEL).request(req())

    assert response.text == "T001 Create models" and response.stop_reason == "end_turn"
    usage = response.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        40,
        3000,
        500,
    )
    assert usage.output_tokens == 7 and usage.model_calls == 1
    assert usage.cost_usd == pytest.approx((40 * 3 + 3000 * 0.3 + 500 * 3.75 + 7 * 15) / 1e6)

    [sent] = env.requests
    assert sent.path == "/v1/messages"
    assert json.loads(sent.headers["x-backforge-origin"]) == {"phase": "tasks"}
    body = sent.body
    assert body["stream"] is True and body["model"] == MODEL and body["max_tokens"] == 8192
    assert body["system"] == [
        {"type": "text", "text": "You are a careful backend engineer.", "cache_control": EPHEMERAL},
        {"type": "text", "text": "# Spec\nBookmarks with tags.", "cache_control": EPHEMERAL},
    ]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "List the tasks.", "cache_control": EPHEMERAL}],
        }
    ]
    assert breakpoints(body) == ["system[0]", "system[1]", "messages[0].text"]


async def test_tool_use_round_trip(env: WireServer) -> None:
    env.script(
        Reply(
            text="Let me look.",
            tool_calls=[WireCall("read_file", {"path": "app/main.py"}, id="toolu_1")],
        ),
        text("One route."),
    )
    model = AnthropicModel(MODEL)
    first_request = req(tools=[READ_FILE])
    first = await model.request(first_request)

    assert first.stop_reason == "tool_use" and first.text == "Let me look."
    [call] = first.tool_calls
    assert (call.id, call.name, call.arguments) == ("toolu_1", "read_file", {"path": "app/main.py"})

    follow_up = first_request.model_copy(
        update={
            "messages": [
                *first_request.messages,
                Message(role="assistant", parts=list(first.parts)),
                Message(
                    role="user",
                    parts=[
                        Message.user("(note)").parts[0],
                        ToolResultPart(
                            tool_call_id="toolu_1", content="no such file", is_error=True
                        ),
                    ],
                ),
            ]
        }
    )
    final = await model.request(follow_up)
    assert final.text == "One route."

    body = env.requests[1].body
    assert body["tools"] == [
        {"name": "read_file", "description": "Read a file", "input_schema": READ_FILE.parameters}
    ]
    assert "tool_choice" not in body
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "read_file",
                "input": {"path": "app/main.py"},
            },
        ],
    }
    # Tool results come first in the user turn; the rolling breakpoint is on its last block.
    assert body["messages"][2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": "no such file",
            "is_error": True,
        },
        {"type": "text", "text": "(note)", "cache_control": EPHEMERAL},
    ]
    assert breakpoints(body) == ["system[0]", "system[1]", "messages[2].text"]


async def test_thinking_blocks_are_echoed_verbatim_with_their_tool_calls(env: WireServer) -> None:
    env.script(
        Reply(
            thinking="I should read the file.",
            tool_calls=[WireCall("read_file", {"path": "x"}, id="toolu_t")],
        ),
        text("done"),
    )
    model = AnthropicModel(MODEL)
    first = await model.request(req(tools=[READ_FILE]))
    assert [p.kind for p in first.parts] == ["tool_call"]  # thinking is not a neutral part

    conversation = [
        *req().messages,
        Message(role="assistant", parts=list(first.parts)),
        Message(role="user", parts=[ToolResultPart(tool_call_id="toolu_t", content="x = 1")]),
    ]
    await model.request(req(*conversation, tools=[READ_FILE]))

    assert env.requests[1].body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "I should read the file.", "signature": "sig-wire"},
        {"type": "tool_use", "id": "toolu_t", "name": "read_file", "input": {"path": "x"}},
    ]


# ---------------------------------------------------------------------------
# Structured output and model quirks


SUBMIT = model_tool(TaskList, name="submit")


def forced(**kwargs: object) -> ModelRequest:
    return req(tools=[SUBMIT], tool_choice="submit", **kwargs)


async def submitted(model: AnthropicModel, request: ModelRequest) -> TaskList:
    [call] = (await model.request(request)).tool_calls
    value = parse_arguments(TaskList, call.arguments)
    assert isinstance(value, TaskList), value
    return value


async def test_a_forced_tool_is_sent_as_tool_choice(env: WireServer) -> None:
    env.script(tool("submit", {"story": "US1", "tasks": ["T001", "T002"]}))
    value = await submitted(AnthropicModel(MODEL), forced())

    assert value == TaskList(story="US1", tasks=["T001", "T002"])
    body = env.requests[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "submit"}
    assert body["tools"][0]["name"] == "submit"
    assert body["tools"][0]["input_schema"]["required"] == ["story", "tasks"]


async def test_models_that_reject_forcing_and_sampling_are_not_sent_them(env: WireServer) -> None:
    env.script(tool("submit", {"story": "US1", "tasks": []}))
    model = AnthropicModel("claude-sonnet-5-5")
    value = await submitted(model, forced(settings={"temperature": 0.3}))

    assert value.story == "US1"
    body = env.requests[0].body
    assert "tool_choice" not in body and "temperature" not in body


async def test_a_rejected_forced_tool_choice_is_dropped_and_remembered(env: WireServer) -> None:
    env.script(
        error(400, "tool_choice: forced tool use is not supported for this model"),
        tool("submit", {"story": "US1", "tasks": []}),
        tool("submit", {"story": "US2", "tasks": []}),
    )
    model = AnthropicModel("claude-haiku-5-5")
    assert (await submitted(model, forced())).story == "US1"
    assert (await submitted(model, forced())).story == "US2"
    assert [("tool_choice" in b) for b in env.bodies()] == [True, False, False]


# ---------------------------------------------------------------------------
# Errors


async def test_rate_limit_is_retryable_after_the_stated_delay(env: WireServer) -> None:
    env.script(
        error(
            429,
            "Number of request tokens has exceeded your rate limit",
            headers={"retry-after": "12"},
        )
    )
    err = await expect_error(AnthropicModel(MODEL), req())
    assert err.type == "ModelRateLimited" and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=12)


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=45), usegmt=True)
    assert retry_delay_from_headers({"Retry-After": later}, now=now) == timedelta(seconds=45)
    assert retry_delay_from_headers({"retry-after": "nonsense"}) is None
    assert retry_delay_from_headers({"retry-after": "99999"}) == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("reply", "etype"),
    [
        (error(529, "Overloaded"), "ModelOverloaded"),
        (error(500, "Internal server error"), "ModelServerError"),
        (error(503, "unavailable"), "ModelServerError"),
        (drop("error_event", error_message="Overloaded"), "ModelOverloaded"),
        (drop("drop_before"), "ModelConnectionError"),
        (drop("drop_mid"), "ModelConnectionError"),
        (drop("truncate"), "ModelStreamIncomplete"),
    ],
)
async def test_transient_failures_are_retryable(env: WireServer, reply: Reply, etype: str) -> None:
    env.script(reply)
    err = await expect_error(AnthropicModel(MODEL), req())
    assert (err.type, err.non_retryable) == (etype, False)


async def test_unauthorized_is_not_retryable_and_says_what_to_fix(env: WireServer) -> None:
    env.script(error(401, "invalid x-api-key"))
    err = await expect_error(AnthropicModel(MODEL), req())
    assert err.type == "ModelAuthError" and err.non_retryable
    assert "check ANTHROPIC_API_KEY" in err.message


@pytest.mark.parametrize(
    ("status", "message", "etype", "advice"),
    [
        (
            404,
            "model: claude-nope",
            "ModelNotFound",
            "check the model id 'anthropic:claude-sonnet-4-6'",
        ),
        (
            413,
            "Request exceeds the maximum allowed number of bytes",
            "ModelRequestTooLarge",
            "request too large",
        ),
        (
            400,
            "prompt is too long: 210000 tokens > 200000 maximum",
            "ModelRequestTooLarge",
            "request too large",
        ),
        (400, "messages.0.content: empty", "ModelBadRequest", "request rejected"),
        (403, "not allowed", "ModelPermissionDenied", "check that the key in ANTHROPIC_API_KEY"),
        (402, "credit balance too low", "ModelBillingError", "billing"),
    ],
)
async def test_client_errors_are_not_retryable(
    env: WireServer, status: int, message: str, etype: str, advice: str
) -> None:
    env.script(error(status, message))
    err = await expect_error(AnthropicModel(MODEL), req())
    assert (err.type, err.non_retryable) == (etype, True)
    assert advice in err.message and message in err.message


async def test_missing_key_fails_fast_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ApplicationError) as caught:
        AnthropicModel(MODEL)
    assert caught.value.type == "ModelConfigError" and caught.value.non_retryable
    assert "ANTHROPIC_API_KEY is not set" in caught.value.message


async def test_key_never_leaks_into_errors_logs_or_records(
    env: WireServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env.script(
        error(401, f"invalid x-api-key: {KEY}"),
        error(429, f"rate limited for key {KEY}", headers={"retry-after": "2"}),
        drop("error_event", error_message=f"overloaded (Authorization: Bearer {KEY})"),
        drop("drop_mid"),
        text("fine"),
    )
    model = AnthropicModel(MODEL)
    errors = [await expect_error(model, req()) for _ in range(4)]
    response = await model.request(req())

    for err in errors:
        assert KEY not in str(err) and KEY not in repr(err.details)
        assert err.__cause__ is None and err.__suppress_context__
        failure = Failure()  # what Temporal would store in history
        await DataConverter.default.encode_failure(err, failure)
        assert KEY not in str(failure)
    assert KEY not in response.model_dump_json()
    logged = "\n".join(
        record.getMessage()
        + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
    )
    assert KEY not in logged
    assert "[redacted]" in errors[0].message


# ---------------------------------------------------------------------------
# A stuck call is caught by the heartbeat timeout, then retried


@activity.defn(name="anthropic_call")
async def anthropic_call(prompt: str) -> str:
    response = await AnthropicModel(MODEL).request(req(Message.user(prompt)))
    return f"{response.text} (attempt {activity.info().attempt})"


@workflow.defn(name="AnthropicCallWorkflow", sandboxed=False)
class AnthropicCallWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> str:
        return await workflow.execute_activity(
            anthropic_call,
            prompt,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=3
            ),
        )


async def test_a_stuck_stream_is_caught_by_the_heartbeat_timeout(
    env: WireServer, local_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heartbeat, "MIN_INTERVAL_S", 0.0)
    # Attempt 1: one event, then the server holds the connection silently (5 min call timeout).
    env.script(drop("stall"), text("tasks listed"))
    queue = f"anthropic-{uuid.uuid4().hex[:8]}"
    try:
        async with Worker(
            local_env.client,
            task_queue=queue,
            workflows=[AnthropicCallWorkflow],
            activities=[anthropic_call],
            workflow_runner=UnsandboxedWorkflowRunner(),
            graceful_shutdown_timeout=timedelta(seconds=0),
        ):
            result = await local_env.client.execute_workflow(
                AnthropicCallWorkflow.run,
                "list them",
                id=f"wf-{queue}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )
    finally:
        env.release()
    assert result == "tasks listed (attempt 2)"
    assert env.wait_stalled(0) and len(env.requests) == 2


# ---------------------------------------------------------------------------
# Play mode: the wire server answers with the scripted model


async def test_wire_server_plays_a_scripted_transcript(env: WireServer, tmp_path: Path) -> None:
    transcript = tmp_path / "t.yaml"
    transcript.write_text(
        "kind: backforge-scripted-transcript\n"
        "calls:\n"
        "  tasks#1:\n"
        "    - tool_calls: [{name: submit, arguments: {story: US1, tasks: [T001]}}]\n"
    )
    env.play(ScriptedModel(str(transcript)))
    assert await submitted(AnthropicModel(MODEL), forced()) == TaskList(story="US1", tasks=["T001"])


def test_origin_falls_back_to_the_prompt_marker() -> None:
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "system": [
            {"type": "text", "text": "Be brief.\n\nbackforge-call: plan#3\n"},
            {"type": "text", "text": "context"},
        ],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "go"}]}],
    }
    request = wire_to_request("/v1/messages", {}, body)
    assert request.origin == CallOrigin(phase="plan", invocation=3)
    assert request.context == "context"


def test_scrub_removes_key_material(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "plain-secret-value")
    dirty = (
        "key sk-ant-api03-AbC_123-xyz, Authorization: Bearer abc.def, x-api-key=zzz9, "
        "url https://user:pw@example.test/v1, env plain-secret-value, "
        "check ANTHROPIC_API_KEY (HTTP 401)"
    )
    clean = scrub(dirty)
    for secret in ("sk-ant-api03", "abc.def", "zzz9", "user:pw", "plain-secret-value"):
        assert secret not in clean
    assert "check ANTHROPIC_API_KEY (HTTP 401)" in clean
