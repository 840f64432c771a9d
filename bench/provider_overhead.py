"""Per-call overhead of the provider adapters versus calling the SDKs directly.

Both paths talk to the local wire server (``tests/wire_server.py``) on 127.0.0.1,
which answers at once, so the figures are the client-side cost of a call: the
SDK, HTTP and SSE parsing, plus, on the adapter path, request conversion,
streaming accumulation, heartbeat bookkeeping, error wrapping and pricing.

    .venv/bin/python bench/provider_overhead.py            # N=200 calls per path
    .venv/bin/python bench/provider_overhead.py -n 500

The direct paths send the same streamed request the adapter sends (same body,
same SDK client settings) and read the stream to the end. The paths run
round-robin, one call each per round, so background load affects them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anthropic import AsyncAnthropic  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

from activities.models.anthropic_provider import AnthropicModel, to_anthropic_params  # noqa: E402
from activities.models.base import CallOrigin, Message, ModelRequest, ToolSpec  # noqa: E402
from activities.models.openai_provider import OpenAIModel, to_openai_messages  # noqa: E402
from tests.support.wire_server import Reply, WireCall, WireServer  # noqa: E402

KEY = "sk-bench-not-a-key"

REQUEST = ModelRequest(
    system="You are a careful backend engineer. " * 40,
    context="# Constitution\n" + "- Use FastAPI and pydantic.\n" * 60,
    messages=[Message.user("Implement T003: the bookmarks router.")],
    tools=[
        ToolSpec(
            name="write_file",
            description="Write a file",
            parameters={
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"],
            },
        )
    ],
    origin=CallOrigin(phase="implement", task_id="T003"),
)
REPLY = Reply(
    text="Writing the router now.",
    tool_calls=[
        WireCall("write_file", {"path": "app/routers/bookmarks.py", "content": "x = 1\n" * 20})
    ],
    input_tokens=1200,
    cache_read_tokens=3000,
    output_tokens=150,
)


async def measure(
    n: int, calls: list[Callable[[], Awaitable[object]]], warmup: int = 10
) -> list[list[float]]:
    """Milliseconds per call for each of ``calls``, run round-robin so load drift hits all alike."""
    for _ in range(warmup):
        for call in calls:
            await call()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(n):
        for i, call in enumerate(calls):
            started = time.perf_counter()
            await call()
            samples[i].append((time.perf_counter() - started) * 1000)
    return samples


async def main(n: int) -> None:
    with WireServer() as server:
        server.script(*[REPLY] * (8 * (n + 10)))

        openai_model = OpenAIModel("gpt-5.4", api_key=KEY, base_url=server.openai_url)
        openai_client = AsyncOpenAI(api_key=KEY, base_url=server.openai_url, max_retries=0)
        openai_body = {
            "model": "gpt-5.4",
            "messages": to_openai_messages(REQUEST),
            "max_tokens": 8192,
            "tools": [{"type": "function", "function": t.model_dump()} for t in REQUEST.tools],
        }

        async def openai_direct_stream() -> None:
            stream = await openai_client.chat.completions.create(
                **openai_body, stream=True, stream_options={"include_usage": True}
            )
            async with stream:
                async for _ in stream:
                    pass

        async def openai_direct_plain() -> None:
            await openai_client.chat.completions.create(**openai_body)

        anthropic_model = AnthropicModel(
            "claude-sonnet-4-6", api_key=KEY, base_url=server.anthropic_url
        )
        anthropic_client = AsyncAnthropic(api_key=KEY, base_url=server.anthropic_url, max_retries=0)
        anthropic_body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 8192,
            **to_anthropic_params(REQUEST),
        }

        async def anthropic_direct_stream() -> None:
            async with anthropic_client.messages.stream(**anthropic_body) as stream:
                async for _ in stream:
                    pass
                await stream.get_final_message()

        async def anthropic_direct_plain() -> None:
            await anthropic_client.messages.create(**anthropic_body)

        rows = [
            (
                "openai",
                "adapter (OpenAIModel.request, streamed)",
                lambda: openai_model.request(REQUEST),
            ),
            ("openai", "direct SDK, streamed", openai_direct_stream),
            ("openai", "direct SDK, not streamed", openai_direct_plain),
            (
                "anthropic",
                "adapter (AnthropicModel.request, streamed)",
                lambda: anthropic_model.request(REQUEST),
            ),
            ("anthropic", "direct SDK, messages.stream", anthropic_direct_stream),
            ("anthropic", "direct SDK, not streamed", anthropic_direct_plain),
        ]
        results: dict[tuple[str, str], float] = {}
        print(f"N={n} calls per path, interleaved (after 10 warm-up rounds), local wire server\n")
        print(f"{'provider':<10} {'path':<44} {'median ms':>10} {'p90 ms':>8}")
        all_samples = await measure(n, [call for _, _, call in rows])
        for (provider, label, _), samples in zip(rows, all_samples, strict=True):
            median = statistics.median(samples)
            p90 = statistics.quantiles(samples, n=10)[-1]
            results[(provider, label)] = median
            print(f"{provider:<10} {label:<44} {median:>10.3f} {p90:>8.3f}")
        print()
        for provider, adapter, direct in (
            ("openai", rows[0][1], rows[1][1]),
            ("anthropic", rows[3][1], rows[4][1]),
        ):
            a, d = results[(provider, adapter)], results[(provider, direct)]
            print(
                f"{provider}: adapter / direct streamed = {a / d:.2f}x (+{a - d:.3f} ms per call)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-n", type=int, default=200, help="calls per path (default 200)")
    asyncio.run(main(parser.parse_args().n))
