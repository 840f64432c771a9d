"""The OpenAI adapter against the real ``openai`` SDK and a local wire server.

No network, no key: ``OPENAI_BASE_URL`` points at :mod:`tests.support.wire_server` on
127.0.0.1 and the key is a fake that must never leak.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.failure.v1 import Failure
from temporalio.common import RetryPolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.models import heartbeat, pricing
from activities.models.base import CallOrigin, Message, ModelRequest, ToolResultPart, ToolSpec
from activities.models.openai_provider import LOCAL_SERVER_KEY, OpenAIModel
from activities.models.pricing import price_for
from activities.models.scripted import ScriptedModel, script_key
from activities.models.structured import model_tool, parse_arguments
from tests.support.wire_server import Reply, WireServer, drop, error, text, tool, wire_to_request

KEY = "sk-test-SECRET-abc123"
MODEL = "gpt-5.4"


class Verdict(BaseModel):
    """A review verdict."""

    approved: bool
    reasons: list[str]


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def env(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> WireServer:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", wire.openai_url)
    monkeypatch.delenv("BACKFORGE_PRICES", raising=False)
    return wire


def req(*messages: Message, **kwargs: object) -> ModelRequest:
    return ModelRequest(
        system="You are a careful backend engineer.",
        context="# Constitution\nUse FastAPI.",
        messages=list(messages) or [Message.user("Write the plan.")],
        origin=CallOrigin(phase="plan"),
        **kwargs,  # type: ignore[arg-type]
    )


READ_FILE = ToolSpec(
    name="read_file",
    description="Read a file",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


async def expect_error(model: OpenAIModel, request: ModelRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await model.request(request)
    return caught.value


# ---------------------------------------------------------------------------
# Completions


async def test_plain_completion_maps_text_usage_and_cost(env: WireServer) -> None:
    env.script(text("Here is the plan.", input_tokens=120, cache_read_tokens=80, output_tokens=30))
    model = OpenAIModel(MODEL)

    response = await model.request(req())

    assert response.text == "Here is the plan."
    assert response.stop_reason == "end_turn"
    assert response.model == MODEL
    usage = response.usage
    # input_tokens is the *uncached* input: prompt_tokens (200) minus cached (80).
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (120, 80, 30)
    assert usage.model_calls == 1 and usage.model_seconds > 0
    price = price_for(f"openai:{MODEL}")
    assert price is not None
    assert usage.cost_usd == pytest.approx((120 * 2.5 + 80 * 0.25 + 30 * 15) / 1e6)

    [sent] = env.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.headers["x-backforge-origin"]) == {"phase": "plan"}
    body = sent.body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].endswith(
        "<context>\n# Constitution\nUse FastAPI.\n</context>"
    )
    assert body["messages"][1] == {"role": "user", "content": "Write the plan."}
    # A local server gets the universally supported field name.
    assert body["max_tokens"] == 8192 and "max_completion_tokens" not in body


async def test_official_api_uses_max_completion_tokens(env: WireServer) -> None:
    env.script(text("ok"))
    model = OpenAIModel(MODEL, max_tokens_param="max_completion_tokens")
    await model.request(req())
    assert env.requests[0].body["max_completion_tokens"] == 8192


async def test_rejected_optional_field_is_dropped_and_remembered(env: WireServer) -> None:
    env.script(
        error(400, "Unsupported value: 'temperature' does not support 0.2 with this model."),
        text("first"),
        text("second"),
    )
    model = OpenAIModel(MODEL)
    request = req(settings={"temperature": 0.2})

    assert (await model.request(request)).text == "first"
    assert (await model.request(request)).text == "second"
    assert [("temperature" in b) for b in env.bodies()] == [True, False, False]


async def test_tool_use_round_trip(env: WireServer) -> None:
    env.script(
        tool("read_file", {"path": "app/main.py"}, id="call_1", input_tokens=50),
        text("The app has one route.", input_tokens=70),
    )
    model = OpenAIModel(MODEL)
    first_request = req(tools=[READ_FILE])

    first = await model.request(first_request)
    assert first.stop_reason == "tool_use"
    [call] = first.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_1", "read_file", {"path": "app/main.py"})

    follow_up = first_request.model_copy(
        update={
            "messages": [
                *first_request.messages,
                Message(role="assistant", parts=list(first.parts)),
                Message(
                    role="user",
                    parts=[
                        ToolResultPart(
                            tool_call_id="call_1", name="read_file", content="app = FastAPI()"
                        )
                    ],
                ),
            ]
        }
    )
    final = await model.request(follow_up)
    assert final.text == "The app has one route." and final.stop_reason == "end_turn"

    body = env.requests[1].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file",
                "parameters": READ_FILE.parameters,
            },
        }
    ]
    assert "tool_choice" not in body
    assistant, tool_message = body["messages"][2], body["messages"][3]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "read_file", "arguments": '{"path": "app/main.py"}'},
        }
    ]
    assert tool_message == {"role": "tool", "tool_call_id": "call_1", "content": "app = FastAPI()"}


async def test_length_and_content_filter_stop_reasons(env: WireServer) -> None:
    env.script(text("cut", stop="length"), text("no", stop="content_filter"))
    model = OpenAIModel(MODEL)
    assert (await model.request(req())).stop_reason == "max_tokens"
    assert (await model.request(req())).stop_reason == "refusal"


# ---------------------------------------------------------------------------
# Structured output


SUBMIT = model_tool(Verdict, name="submit")


async def test_a_forced_tool_is_sent_as_tool_choice(env: WireServer) -> None:
    env.script(tool("submit", {"approved": True, "reasons": ["tests pass"]}))
    response = await OpenAIModel(MODEL).request(req(tools=[SUBMIT], tool_choice="submit"))

    [call] = response.tool_calls
    assert parse_arguments(Verdict, call.arguments) == Verdict(
        approved=True, reasons=["tests pass"]
    )
    body = env.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "submit"}}
    [submit] = body["tools"]
    assert submit["function"]["name"] == "submit"
    assert submit["function"]["parameters"]["required"] == ["approved", "reasons"]


async def test_malformed_tool_arguments_are_kept_raw_and_reported(env: WireServer) -> None:
    env.script(tool("submit", raw_arguments='{"approved": tru', id="call_bad"))
    response = await OpenAIModel(MODEL).request(req(tools=[SUBMIT]))

    [call] = response.tool_calls
    problem = parse_arguments(Verdict, call.arguments)
    assert isinstance(problem, str) and "not valid JSON" in problem


# ---------------------------------------------------------------------------
# Errors


async def test_rate_limit_is_retryable_after_the_stated_delay(env: WireServer) -> None:
    env.script(
        error(429, "Rate limit reached", headers={"retry-after": "7"}),
        error(429, "Rate limit reached", headers={"retry-after-ms": "1500", "retry-after": "9"}),
    )
    model = OpenAIModel(MODEL)

    first = await expect_error(model, req())
    assert first.type == "ModelRateLimited" and not first.non_retryable
    assert first.next_retry_delay == timedelta(seconds=7)
    assert first.details == ({"status": 429, "request_id": "req_wire_error"},)

    second = await expect_error(model, req())
    assert second.next_retry_delay == timedelta(milliseconds=1500)


async def test_insufficient_quota_is_not_retried(env: WireServer) -> None:
    env.script(error(429, "You exceeded your current quota", code="insufficient_quota"))
    err = await expect_error(OpenAIModel(MODEL), req())
    assert err.type == "ModelBillingError" and err.non_retryable


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
async def test_server_errors_are_retryable(env: WireServer, status: int) -> None:
    env.script(error(status, "upstream trouble"))
    err = await expect_error(OpenAIModel(MODEL), req())
    assert not err.non_retryable
    assert err.type in {"ModelServerError", "ModelTimeout", "ModelConflict"}
    assert err.next_retry_delay is None


async def test_unauthorized_is_not_retryable_and_says_what_to_fix(env: WireServer) -> None:
    env.script(error(401, f"Incorrect API key provided: {KEY}"))
    err = await expect_error(OpenAIModel(MODEL), req())
    assert err.type == "ModelAuthError" and err.non_retryable
    assert "check OPENAI_API_KEY" in err.message
    assert KEY not in str(err)


@pytest.mark.parametrize(
    ("status", "message", "etype", "advice"),
    [
        (
            404,
            "The model `gpt-9` does not exist",
            "ModelNotFound",
            "check the model id 'openai:gpt-5.4'",
        ),
        (
            400,
            "This model's maximum context length is 128000 tokens",
            "ModelRequestTooLarge",
            "request too large",
        ),
        (413, "Request body too large", "ModelRequestTooLarge", "request too large"),
        (422, "Unprocessable", "ModelBadRequest", "request rejected"),
        (
            403,
            "Project does not have access",
            "ModelPermissionDenied",
            "check that the key in OPENAI_API_KEY",
        ),
    ],
)
async def test_client_errors_are_not_retryable(
    env: WireServer, status: int, message: str, etype: str, advice: str
) -> None:
    env.script(error(status, message))
    err = await expect_error(OpenAIModel(MODEL), req())
    assert (err.type, err.non_retryable) == (etype, True)
    assert advice in err.message and message in err.message


@pytest.mark.parametrize(
    ("fault", "etype"),
    [
        ("drop_before", "ModelConnectionError"),
        ("drop_mid", "ModelConnectionError"),
        ("truncate", "ModelStreamIncomplete"),
        ("error_event", "ModelServerError"),
    ],
)
async def test_dropped_connections_are_retryable(env: WireServer, fault: str, etype: str) -> None:
    env.script(drop(fault))  # type: ignore[arg-type]
    err = await expect_error(OpenAIModel(MODEL), req())
    assert (err.type, err.non_retryable) == (etype, False)


async def test_unreachable_server_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with WireServer() as server:
        url = server.openai_url  # a port nobody listens on once stopped
    err = await expect_error(OpenAIModel(MODEL, base_url=url), req())
    assert (err.type, err.non_retryable) == ("ModelConnectionError", False)


async def test_call_timeout_is_retryable(env: WireServer) -> None:
    env.script(drop("stall"))
    model = OpenAIModel(MODEL)
    try:
        err = await expect_error(model, req(settings={"timeout_s": 0.3}))
    finally:
        env.release()
    assert (err.type, err.non_retryable) == ("ModelTimeout", False)


# ---------------------------------------------------------------------------
# Keys


async def test_missing_key_fails_fast_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ApplicationError) as caught:
        OpenAIModel(MODEL)
    assert caught.value.type == "ModelConfigError" and caught.value.non_retryable
    assert "OPENAI_API_KEY is not set" in caught.value.message


async def test_local_server_needs_no_key(env: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    env.script(text("local answer"))
    response = await OpenAIModel("llama3.1").request(req())
    assert response.text == "local answer"
    assert env.requests[0].headers["authorization"] == f"Bearer {LOCAL_SERVER_KEY}"
    assert response.usage.cost_usd == 0.0  # unpriced: flagged, counted as $0


async def test_key_never_leaks_into_errors_logs_or_records(
    env: WireServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env.script(
        error(401, f"Incorrect API key provided: {KEY}. Header was Authorization: Bearer {KEY}"),
        error(429, f"slow down {KEY}", headers={"retry-after": "1"}),
        error(500, f"internal: api_key={KEY}"),
        drop("drop_mid"),
        text(f"the model repeats sk-proj-{uuid.uuid4().hex}"),
    )
    model = OpenAIModel(MODEL)
    errors: list[ApplicationError] = [await expect_error(model, req()) for _ in range(4)]
    response = await model.request(req())

    for err in errors:
        assert KEY not in str(err) and KEY not in repr(err) and KEY not in repr(err.details)
        # Raised `from None`: the SDK error (whose request holds the header) is not chained.
        assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
        failure = Failure()  # what Temporal would store in history
        await DataConverter.default.encode_failure(err, failure)
        assert KEY not in str(failure)
    # What the run store records is the response; the key is not in it.
    assert KEY not in response.model_dump_json()
    logged = "\n".join(
        record.getMessage()
        + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
    )
    assert KEY not in logged
    assert KEY not in repr(model)


# ---------------------------------------------------------------------------
# Heartbeats and Temporal retries


async def test_heartbeats_follow_stream_chunks(
    env: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heartbeat, "MIN_INTERVAL_S", 0.0)
    env.script(text("a fairly long answer in several chunks"))
    beats: list[object] = []
    activity_env = ActivityEnvironment()
    activity_env.on_heartbeat = lambda *details: beats.append(details)

    response = await activity_env.run(OpenAIModel(MODEL).request, req())

    assert response.text == "a fairly long answer in several chunks"
    # role chunk + 3 content chunks + finish chunk + usage chunk
    assert len(beats) == 6


async def test_a_stalled_stream_stops_heartbeating(
    env: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(heartbeat, "MIN_INTERVAL_S", 0.0)
    env.script(drop("stall"))
    beats: list[object] = []
    first_beat = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_heartbeat(*details: object) -> None:
        beats.append(details)
        loop.call_soon_threadsafe(first_beat.set)

    activity_env = ActivityEnvironment()
    activity_env.on_heartbeat = on_heartbeat
    call = asyncio.create_task(activity_env.run(OpenAIModel(MODEL).request, req()))
    await asyncio.wait_for(first_beat.wait(), 10)
    assert await asyncio.to_thread(env.wait_stalled)
    # The server now holds the stream open without sending: no event, no beat.
    assert len(beats) == 1
    env.release()  # the server gives up and drops the connection
    with pytest.raises(ApplicationError) as caught:
        await call
    assert caught.value.type == "ModelConnectionError"
    assert len(beats) == 1


ATTEMPTS: list[tuple[int, object]] = []


@activity.defn(name="openai_call")
async def openai_call(prompt: str) -> str:
    ATTEMPTS.append((activity.info().attempt, activity.info().current_attempt_scheduled_time))
    response = await OpenAIModel(MODEL).request(req(Message.user(prompt)))
    return response.text


@workflow.defn(name="OpenAICallWorkflow", sandboxed=False)
class OpenAICallWorkflow:
    @workflow.run
    async def run(self, prompt: str) -> tuple[str, float]:
        started = workflow.now()
        answer = await workflow.execute_activity(
            openai_call,
            prompt,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
        )
        return answer, (workflow.now() - started).total_seconds()


async def test_temporal_retries_a_rate_limited_call_after_retry_after(
    env: WireServer, ts_env: WorkflowEnvironment
) -> None:
    env.script(error(429, "Rate limit reached", headers={"retry-after": "30"}), text("planned"))
    ATTEMPTS.clear()
    queue = f"openai-{uuid.uuid4().hex[:8]}"
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[OpenAICallWorkflow],
        activities=[openai_call],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result = await ts_env.client.execute_workflow(
            OpenAICallWorkflow.run, "plan it", id=f"wf-{queue}", task_queue=queue
        )

    answer, elapsed = result
    assert answer == "planned"
    assert [attempt for attempt, _ in ATTEMPTS] == [1, 2]
    # The retry waited the 30 s the server asked for (skipped time), not the policy's 1 s.
    assert 30 <= elapsed < 60
    assert len(env.requests) == 2


def test_reply_defaults_are_sane() -> None:
    assert Reply().status == 200


# ---------------------------------------------------------------------------
# Play mode: the wire server answers with the scripted model


TRANSCRIPT = """\
kind: backforge-scripted-transcript
calls:
  implement/T003#1:
    - text: Reading first.
      tool_calls:
        - name: read_file
          arguments: {path: "{{feature_dir}}/plan.md"}
    - text: All done.
"""


async def test_wire_server_plays_a_scripted_transcript(env: WireServer, tmp_path: Path) -> None:
    transcript = tmp_path / "t.yaml"
    transcript.write_text(TRANSCRIPT)
    env.play(ScriptedModel(str(transcript)))
    model = OpenAIModel(MODEL)
    origin = CallOrigin(phase="implement", task_id="T003", feature_dir="specs/001-x")
    request = req(tools=[READ_FILE]).model_copy(update={"origin": origin})

    first = await model.request(request)
    [call] = first.tool_calls
    assert call.arguments == {"path": "specs/001-x/plan.md"}  # filled from the header's origin
    follow_up = request.model_copy(
        update={
            "messages": [
                *request.messages,
                Message(role="assistant", parts=list(first.parts)),
                Message(
                    role="user", parts=[ToolResultPart(tool_call_id=call.id, content="# Plan")]
                ),
            ]
        }
    )
    assert (await model.request(follow_up)).text == "All done."


def test_origin_falls_back_to_the_prompt_marker() -> None:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief.\n\nbackforge-call: implement/T003#2\n"},
            {"role": "user", "content": "go"},
        ],
    }
    request = wire_to_request("/v1/chat/completions", {}, body)
    assert request.origin == CallOrigin(phase="implement", invocation=2, task_id="T003")
    assert script_key(request.origin) == "implement/T003#2"


# ---------------------------------------------------------------------------
# Prices


async def test_price_file_overrides_the_cost(
    env: WireServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai:llama3.1: {input: 1, output: 2}\ngpt-5.4: [10, 20, 1]\n")
    monkeypatch.setenv("BACKFORGE_PRICES", str(prices))
    env.script(
        text("a", input_tokens=1000, output_tokens=100),
        text("b", input_tokens=1000, cache_read_tokens=1000, output_tokens=100),
    )
    local = await OpenAIModel("llama3.1").request(req())
    assert local.usage.cost_usd == pytest.approx((1000 * 1 + 100 * 2) / 1e6)
    dated = await OpenAIModel("gpt-5.4-2026-03-05").request(req())  # date suffix ignored
    assert dated.usage.cost_usd == pytest.approx((1000 * 10 + 1000 * 1 + 100 * 20) / 1e6)
    estimate = pricing.estimate("openai:unknown-model", dated.usage)
    assert (estimate.usd, estimate.priced) == (0.0, False) and "BACKFORGE_PRICES" in (
        estimate.note or ""
    )


async def test_a_bad_price_file_fails_fast(
    env: WireServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"openai:gpt-5.4": {"input": -1, "output": 2}}')
    monkeypatch.setenv("BACKFORGE_PRICES", str(prices))
    with pytest.raises(ApplicationError) as caught:
        OpenAIModel(MODEL)
    assert caught.value.type == "ModelConfigError" and caught.value.non_retryable
    assert "BACKFORGE_PRICES" in caught.value.message and "input" in caught.value.message


def test_official_api_request_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    params = OpenAIModel(MODEL)._params(req())  # builds the request; sends nothing
    assert params["max_completion_tokens"] == 8192 and "max_tokens" not in params
    assert params["prompt_cache_key"] == "backforge-plan"
