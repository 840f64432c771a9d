"""Measure what the model reads, per phase and per task, on the demo feature.

    python bench/tokens.py [--model scripted:examples/bookmarks.yaml] [--json out.json]
                           [--compare before.json]

Runs the whole pipeline on an embedded dev server with the scripted model (a
hand-written transcript standing in for a model) and a wrapper that sees every
request before the model does. Every figure is estimated the same way for any code
version, at four characters a token, from the request itself: the system prompt,
the context documents, the tool definitions and the conversation. (The scripted
model's own usage figure leaves the tool definitions out; a real provider bills them.)

Printed per phase: model requests, input and output tokens; for ``implement`` also
per task. Two shares of the input:

- *repeated*: the part of each request that the previous request of the same
  conversation already sent (system, context, tools, earlier turns): what a provider
  reads again on every turn, and what prompt caching can serve;
- *documents*: system prompt plus context documents, over all input.

``--compare`` prints the ratio to an earlier ``--json`` output. The run's own usage as
the workflow recorded it (``status.usage_by_phase``) is printed too, so the figures
can be checked against what the report shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.models import Model, ModelRequest, ModelResolver, ModelResponse  # noqa: E402
from activities.models.scripted import script_key  # noqa: E402
from activities.services import Services  # noqa: E402
from contract import DEFAULT_MODEL, FeatureRequest  # noqa: E402
from runtime import start_dev_server  # noqa: E402
from tests.support.pipeline import FEATURE, answer_until_closed  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.backend_feature import BackendFeatureWorkflow  # noqa: E402

CHARS_PER_TOKEN = 4


@dataclass
class Conversation:
    """What one conversation (``implement/T003#1``) sent, request by request."""

    phase: str
    task: str | None
    requests: int = 0
    input_chars: int = 0
    repeated_chars: int = 0
    document_chars: int = 0
    output_chars: int = 0
    last_prefix: int = 0


@dataclass
class Meter:
    """A model wrapper's shared state: every conversation by script key."""

    conversations: dict[str, Conversation] = field(default_factory=dict)

    def wrap(self, model: Model) -> Model:
        return _Metered(model, self)


class _Metered:
    def __init__(self, inner: Model, meter: Meter) -> None:
        self.inner, self.meter = inner, meter
        self.model_id = inner.model_id

    async def request(self, request: ModelRequest) -> ModelResponse:
        key = script_key(request.origin)
        conv = self.meter.conversations.setdefault(
            key, Conversation(phase=str(request.origin.phase), task=request.origin.task_id)
        )
        fixed = len(request.system) + len(request.context)
        tools = len(json.dumps([t.model_dump() for t in request.tools]))
        turns = [len(m.model_dump_json()) for m in request.messages]
        total = fixed + tools + sum(turns)
        # Everything up to the last turn was in the previous request already.
        conv.repeated_chars += min(conv.last_prefix, total) if conv.requests else 0
        conv.requests += 1
        conv.input_chars += total
        conv.document_chars += fixed
        response = await self.inner.request(request)
        conv.output_chars += sum(len(p.model_dump_json()) for p in response.parts)
        conv.last_prefix = total + sum(len(p.model_dump_json()) for p in response.parts)
        return response


async def run(model: str) -> tuple[Meter, dict[str, Any]]:
    """One pipeline run of the demo feature; the meter and the workflow's usage by phase."""
    meter = Meter()
    services = Services(models=ModelResolver(wrappers=[meter.wrap]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = await start_dev_server(data_dir=root / "data", port=None, ui=False)
        try:
            queue = f"tokens-{uuid.uuid4().hex[:8]}"
            async with build_worker(env.client, task_queue=queue, services=services):
                handle = await env.client.start_workflow(
                    BackendFeatureWorkflow.run,
                    FeatureRequest(feature=FEATURE, repo_path=str(root / "repo"), model=model),
                    id=f"tokens-{uuid.uuid4().hex[:8]}",
                    task_queue=queue,
                )
                async with asyncio.timeout(600):  # bounded
                    await answer_until_closed(handle, [])
                result = await handle.result()
                status = await handle.query(BackendFeatureWorkflow.status)
        finally:
            await env.shutdown()
    if result.state != "completed":
        raise SystemExit(f"the pipeline did not complete: {result.message}")
    recorded = {p: u.model_dump() for p, u in status.usage_by_phase.items()}
    return meter, recorded


def figures(meter: Meter) -> dict[str, Any]:
    """Per phase and per task: requests, tokens, shares (all estimated from the requests)."""
    phases: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    tasks: dict[str, dict[str, int]] = {}
    for conv in meter.conversations.values():
        row = phases[conv.phase]
        row["requests"] += conv.requests
        row["input_tokens"] += conv.input_chars // CHARS_PER_TOKEN
        row["output_tokens"] += conv.output_chars // CHARS_PER_TOKEN
        row["repeated_tokens"] += conv.repeated_chars // CHARS_PER_TOKEN
        row["document_tokens"] += conv.document_chars // CHARS_PER_TOKEN
        if conv.phase == "implement" and conv.task:
            task = tasks.setdefault(conv.task, defaultdict(int))
            task["requests"] += conv.requests
            task["input_tokens"] += conv.input_chars // CHARS_PER_TOKEN
    total_in = sum(r["input_tokens"] for r in phases.values())
    impl = phases.get("implement", {})
    return {
        "phases": {p: dict(r) for p, r in phases.items()},
        "tasks": {t: dict(r) for t, r in sorted(tasks.items())},
        "implement_input_per_task": (impl.get("input_tokens", 0) // max(len(tasks), 1)),
        "input_tokens": total_in,
        "repeated_share": round(
            sum(r["repeated_tokens"] for r in phases.values()) / max(total_in, 1), 3
        ),
        "document_share": round(
            sum(r["document_tokens"] for r in phases.values()) / max(total_in, 1), 3
        ),
    }


def show(data: dict[str, Any], before: dict[str, Any] | None) -> None:
    def ratio(now: int, then: int | None) -> str:
        return f"  ({now / then:.2f}x before)" if then else ""

    print(f"{'phase':<13}{'requests':>9}{'input':>10}{'output':>9}{'repeated':>10}")
    for phase, row in data["phases"].items():
        then = (before or {}).get("phases", {}).get(phase, {}).get("input_tokens")
        print(
            f"{phase:<13}{row['requests']:>9}{row['input_tokens']:>10}{row['output_tokens']:>9}"
            f"{row['repeated_tokens'] / max(row['input_tokens'], 1):>9.0%}"
            + ratio(row["input_tokens"], then)
        )
    print("\nimplement, per task (requests, input tokens):")
    for task, row in data["tasks"].items():
        then = (before or {}).get("tasks", {}).get(task, {}).get("input_tokens")
        print(
            f"  {task}: {row['requests']:>3} {row['input_tokens']:>8}"
            + ratio(row["input_tokens"], then)
        )
    per_task = data["implement_input_per_task"]
    print(
        f"\nimplementation input tokens per task: {per_task}"
        + ratio(per_task, (before or {}).get("implement_input_per_task"))
    )
    print(
        f"all input tokens: {data['input_tokens']}"
        + ratio(data["input_tokens"], (before or {}).get("input_tokens"))
    )
    print(
        f"repeated share of input: {data['repeated_share']:.0%}; "
        f"system+documents share: {data['document_share']:.0%}"
    )
    if before:
        print(
            f"before: repeated {before['repeated_share']:.0%}, "
            f"system+documents {before['document_share']:.0%}"
        )
    print("\nusage the workflow recorded (scripted estimate, tools not counted):")
    for phase, usage in data.get("recorded", {}).items():
        print(
            f"  {phase:<13} calls {usage.get('model_calls', 0):>4}  "
            f"in {usage.get('input_tokens', 0):>8}  out {usage.get('output_tokens', 0):>7}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--compare", type=Path, help="an earlier --json output")
    args = parser.parse_args()
    meter, recorded = await run(args.model)
    data = figures(meter)
    data["recorded"] = recorded
    before = json.loads(args.compare.read_text()) if args.compare else None
    show(data, before)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
