"""Measure the demo feature: workflow history size (normal and 10x code) and wall time split.

    python bench/pipeline.py [--scale 10]

Runs the whole pipeline on an embedded dev server with the scripted model
(a hand-written transcript standing in for a model), twice: once as bundled
and once with every generated source file made ``--scale`` times larger
(each file gets a padding block of comment lines appended). Prints the
history size in bytes (``fetch_history().to_json()``, the same JSON as
``temporal workflow show --output json``), the largest event types, and the
wall time split into model time, test time, validation time (the ``validate`` phase:
serving the app in the sandbox and checking it from outside) and the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import yaml
from temporalio.client import WorkflowHandle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.services import Services  # noqa: E402
from contract import DEFAULT_MODEL, FeatureRequest  # noqa: E402
from runtime import start_dev_server, temporal_binary  # noqa: E402
from tests.support.pipeline import FEATURE, answer_until_closed  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.backend_feature import BackendFeatureWorkflow  # noqa: E402

CODE_SUFFIXES = (".py", ".toml", ".txt")


def scaled_transcript(scale: int, out: Path) -> Path:
    """A copy of the bundled transcript whose generated code files are ``scale`` times larger."""
    src = Path(__file__).resolve().parents[1] / DEFAULT_MODEL.split(":", 1)[1]
    data = yaml.safe_load(src.read_text())
    for key, turns in data["calls"].items():
        if not key.startswith("implement/"):
            continue
        for turn in turns:
            for call in turn.get("tool_calls") or []:
                args = call.get("arguments") or {}
                if call["name"] == "create_file" and args.get("path", "").endswith(CODE_SUFFIXES):
                    content = args["content"]
                    pad_line = "# " + "padding to scale the generated code " * 2 + "\n"
                    lines_needed = (len(content) * (scale - 1)) // len(pad_line) + 1
                    args["content"] = (
                        content
                        + ("\n" if not content.endswith("\n") else "")
                        + pad_line * lines_needed
                    )
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


async def drive(env, request: FeatureRequest, services: Services | None = None) -> WorkflowHandle:  # type: ignore[no-untyped-def]
    """Run one feature to the end with a worker in this process, taking recommended answers."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    async with build_worker(env.client, task_queue=queue, services=services):
        handle = await env.client.start_workflow(
            BackendFeatureWorkflow.run,
            request,
            id=f"bench-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        async with asyncio.timeout(600):  # bounded
            await answer_until_closed(handle, [])
        await handle.result()
    return handle


async def run_once(env, model: str, repo: Path) -> dict:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    handle = await drive(env, FeatureRequest(feature=FEATURE, repo_path=str(repo), model=model))
    result = await handle.result()
    wall = time.monotonic() - started
    history = await handle.fetch_history()
    raw = history.to_json()
    desc = await handle.describe()
    server_bytes = desc.raw_description.workflow_execution_info.history_size_bytes
    shown = subprocess.run(
        [temporal_binary(), "workflow", "show", "--workflow-id", handle.id, "--output", "json",
         "--address", env.client.service_client.config.target_host],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    sizes: Counter[str] = Counter()
    seconds: Counter[str] = Counter()  # time from scheduled to completed, by activity
    scheduled: dict[int, tuple[str, float]] = {}
    for event in history.to_json_dict()["events"]:
        sizes[event["eventType"].removeprefix("EVENT_TYPE_")] += len(json.dumps(event))
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, event.event_time.ToDatetime().timestamp())
        if event.HasField("activity_task_completed_event_attributes"):
            name, at = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            seconds[name] += event.event_time.ToDatetime().timestamp() - at
    test_seconds = seconds["run_phase_test"]
    # The generated code is on the feature branch (the user's checkout is never touched).
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "-l", result.branch],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    code_bytes = sum(
        int(size)
        for _, kind, _, size, path in (line.split(maxsplit=4) for line in listing.splitlines())
        if kind == "blob" and path.endswith(CODE_SUFFIXES)
    )
    return {
        "state": result.state,
        "history_bytes": server_bytes,
        "history_json_bytes": len(raw.encode()),
        "temporal_show_json_bytes": len(shown),
        "events": len(history.events),
        "top_events": sizes.most_common(4),
        "generated_code_bytes": code_bytes,
        "wall_s": round(wall, 2),
        "model_s": round(result.usage.model_seconds, 3),
        "test_s": round(test_seconds, 2),
        # What the black-box validation of the running service adds to the feature.
        "validate_s": round(seconds["run_phase_validate"], 2),
        "overhead_s": round(
            wall - test_seconds - seconds["run_phase_validate"] - result.usage.model_seconds, 2
        ),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = await start_dev_server(data_dir=root / "data", port=None, ui=False)
        try:
            normal = await run_once(env, DEFAULT_MODEL, root / "normal")
            scaled_file = scaled_transcript(args.scale, root / "scaled.yaml")
            scaled = await run_once(env, f"scripted:{scaled_file}", root / "scaled")
        finally:
            await env.shutdown()
    for name, row in (("bundled", normal), (f"code x{args.scale}", scaled)):
        print(f"{name:>10}: " + json.dumps(row))
    growth = scaled["history_bytes"] - normal["history_bytes"]
    print(
        f"history: {normal['history_bytes']} B -> {scaled['history_bytes']} B ({growth:+d} B) while "
        f"generated code grew {normal['generated_code_bytes']} B -> {scaled['generated_code_bytes']} B"
    )


if __name__ == "__main__":
    asyncio.run(main())
