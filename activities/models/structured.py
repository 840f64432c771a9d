"""Ask a model for an answer that validates against a pydantic model.

The answer is requested as a call of one tool, ``submit``, whose parameters are
the output model's JSON schema. Tool calling is the one structured-output
mechanism that Anthropic, OpenAI and the OpenAI-compatible local servers all
share. The tool is forced through the ``tool_choice`` tag, which providers turn
into their ``tool_choice`` (and leave out for models that reject a forced choice;
the instruction in the prompt still asks for the call). A reply that puts the
JSON in text instead of a tool call is accepted too.

If the arguments do not validate, the model is asked once more with the
validation errors (as the ``submit`` tool's error result, so the conversation
stays well-formed for both providers). A second failure raises a non-retryable
``ModelOutputInvalid``: retrying the activity would replay the same recorded
answers.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from activities.models.base import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from activities.models.errors import ModelErrorType, scrub
from workflows.types import Usage

__all__ = [
    "SUBMIT_TOOL",
    "TOOL_CHOICE_TAG",
    "request_structured",
    "submit_tool",
    "total_usage",
]

T = TypeVar("T", bound=BaseModel)

SUBMIT_TOOL = "submit"
#: Tag read by providers: the name of the tool the model must call.
TOOL_CHOICE_TAG = "tool_choice"

_MAX_ERROR_CHARS = 2000
_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline local ``$ref``s (``#/$defs/...``) for servers that do not resolve them.

    Recursive models keep their ``$defs``.
    """
    defs = schema.get("$defs", {})
    if not defs:
        return schema

    recursive = False

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        nonlocal recursive
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name in seen or name not in defs:
                    recursive = True
                    return node
                target = resolve(copy.deepcopy(defs[name]), (*seen, name))
                extra = {k: resolve(v, seen) for k, v in node.items() if k != "$ref"}
                return {**target, **extra}
            return {k: resolve(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        return node

    inlined = resolve(schema, ())
    if recursive:
        return schema
    return inlined


def submit_tool(output_type: type[BaseModel], *, name: str = SUBMIT_TOOL) -> ToolSpec:
    """The tool whose arguments are an instance of ``output_type``."""
    doc = (output_type.__doc__ or "").strip().split("\n\n")[0]
    description = f"Submit your final answer as a {output_type.__name__} object."
    if doc:
        description += f" {doc}"
    return ToolSpec(
        name=name, description=description, parameters=_inline_refs(output_type.model_json_schema())
    )


def total_usage(responses: list[ModelResponse]) -> Usage:
    """Usage summed over ``responses``."""
    total = Usage()
    for response in responses:
        total = total + response.usage
    return total


def _instruction(tool: str) -> str:
    return (
        f"Answer by calling the `{tool}` tool exactly once, with arguments that match its "
        "JSON schema. Do not answer in prose."
    )


def _with_instruction(request: ModelRequest, tool: ToolSpec) -> ModelRequest:
    messages = list(request.messages)
    note = TextPart(text=_instruction(tool.name))
    if messages and messages[-1].role == "user":
        messages[-1] = Message(role="user", parts=[*messages[-1].parts, note])
    else:
        messages.append(Message(role="user", parts=[note]))
    return request.model_copy(
        update={
            "messages": messages,
            "tools": [t for t in request.tools if t.name != tool.name] + [tool],
            "tags": {**request.tags, TOOL_CHOICE_TAG: tool.name},
        }
    )


def _json_from_text(text: str) -> Any:
    text = text.strip()
    if not text:
        raise ValueError("the reply was empty")
    candidates = [m.group(1) for m in _FENCED.finditer(text)]
    if "{" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("the reply contains no tool call and no JSON object")


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(x) for x in e["loc"]) or "(root)"
        lines.append(f"- {loc}: {e['msg']}")
    text = "\n".join(lines)
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _extract(response: ModelResponse, output_type: type[T], tool: str) -> tuple[T | None, str]:
    """The validated value, or None and what was wrong with it."""
    calls = response.tool_calls
    submits = [c for c in calls if c.name == tool]
    if submits:
        arguments: Any = submits[-1].arguments
        if set(arguments) == {"_raw_arguments"}:
            return None, "the arguments were not valid JSON"
    elif calls:
        names = ", ".join(sorted({c.name for c in calls}))
        return None, f"you called {names}; call `{tool}` instead"
    else:
        try:
            arguments = _json_from_text(response.text)
        except ValueError as err:
            return None, str(err)
    try:
        return output_type.model_validate(arguments), ""
    except ValidationError as err:
        return None, f"the arguments do not match the schema:\n{_format_errors(err)}"


def _retry_messages(response: ModelResponse, problem: str, tool: str) -> list[Message]:
    """The assistant's reply and our correction, as two well-formed turns."""
    feedback = f"Your answer was invalid: {problem}\nCall `{tool}` again with corrected arguments."
    assistant = Message(
        role="assistant", parts=list(response.parts) or [TextPart(text="(no answer)")]
    )
    calls: list[ToolCallPart] = response.tool_calls
    if calls:
        parts: list[Any] = [
            ToolResultPart(
                tool_call_id=c.id,
                name=c.name,
                content=feedback if c.name == tool else f"Not run: call `{tool}` instead.",
                is_error=True,
            )
            for c in calls
        ]
        return [assistant, Message(role="user", parts=parts)]
    return [assistant, Message(role="user", parts=[TextPart(text=feedback)])]


async def request_structured(
    model: Model,
    request: ModelRequest,
    output_type: type[T],
    *,
    tool_name: str = SUBMIT_TOOL,
    attempts: int = 2,
) -> tuple[T, list[ModelResponse]]:
    """Ask ``model`` for an instance of ``output_type``.

    Args:
        model: Any model (providers, the scripted model).
        request: The request; its tools may include others, but the answer must
            come through ``tool_name``.
        output_type: The pydantic model the answer must validate against.
        tool_name: Name of the answer tool.
        attempts: Calls in all, the first included (2: one re-ask).

    Returns:
        The validated value and every response received (sum their usage with
        :func:`total_usage`).

    Raises:
        ApplicationError: ``ModelOutputInvalid`` (non-retryable) when no attempt
            validates. Provider errors propagate unchanged.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    tool = submit_tool(output_type, name=tool_name)
    current = _with_instruction(request, tool)
    responses: list[ModelResponse] = []
    problem = ""
    for attempt in range(attempts):
        response = await model.request(current)
        responses.append(response)
        value, problem = _extract(response, output_type, tool.name)
        if value is not None:
            return value, responses
        if attempt + 1 < attempts:
            current = current.model_copy(
                update={
                    "messages": [*current.messages, *_retry_messages(response, problem, tool.name)]
                }
            )
    raise ApplicationError(
        scrub(
            f"{model.model_id} did not return a valid {output_type.__name__} after {attempts} "
            f"attempt(s); last problem: {problem}"
        ),
        type=ModelErrorType.OUTPUT_INVALID,
        non_retryable=True,
    )
