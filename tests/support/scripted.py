"""Small transcripts and requests for tests of the scripted model and the run store."""

from __future__ import annotations

from pathlib import Path

import yaml

from activities.models.base import CallOrigin, Message, ModelRequest, ToolCallPart, ToolResultPart

__all__ = ["CALLS", "ORIGIN", "req", "write_transcript"]


def write_transcript(path: Path, calls: dict) -> str:
    path.write_text(
        yaml.safe_dump({"kind": "backforge-scripted-transcript", "version": 1, "calls": calls}),
        encoding="utf-8",
    )
    return str(path)


CALLS = {
    "specify#1": [
        {
            "text": "Writing {{feature_dir}}/spec.md on {{branch}}",
            "tool_calls": [
                {
                    "name": "create_file",
                    "arguments": {
                        "path": "{{feature_dir}}/spec.md",
                        "content": "# Spec for {{branch}} ({{unknown}})\n",
                        "nested": [{"p": "{{feature_dir}}"}, 3, None],
                    },
                }
            ],
        },
        {"text": "turn two", "tool_calls": [{"name": "finish", "arguments": {"summary": "s"}}]},
        {"text": "turn three, text only"},
    ],
    "specify#2": [{"text": "second invocation"}],
    "plan#1": [{"text": "plan one"}],
    "implement/T001#1": [{"tool_calls": [{"name": "list_files"}]}],
}

ORIGIN = CallOrigin(phase="specify", feature_dir="specs/001-x", branch="001-x")


def req(origin: CallOrigin, assistant_turns: int = 0, *, text: str = "go") -> ModelRequest:
    messages = [Message.user(text)]
    for i in range(assistant_turns):
        messages.append(
            Message(role="assistant", parts=[ToolCallPart(id=f"c{i}", name="list_files")])
        )
        messages.append(
            Message(role="user", parts=[ToolResultPart(tool_call_id=f"c{i}", content="ok")])
        )
    return ModelRequest(system="sys", messages=messages, origin=origin)
