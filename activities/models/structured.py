"""Tools whose arguments are pydantic models: schema out, validated value back.

A phase's ``finish`` (and ``escalate``) tool is derived from a pydantic model:
its JSON schema is the tool's parameters, and the model's call is validated into
an instance. A call that does not validate goes back to the model as a tool
error listing what was wrong, so the model can correct it in the same
conversation; nothing downstream ever reads the model's raw dict.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from activities.models.base import ToolSpec

__all__ = ["model_tool", "parse_arguments", "describe_errors"]

T = TypeVar("T", bound=BaseModel)

_MAX_ERROR_CHARS = 2000


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


def model_tool(
    output_type: type[BaseModel], *, name: str, description: str | None = None
) -> ToolSpec:
    """The tool whose arguments are an instance of ``output_type``.

    The description defaults to the first paragraph of the model's docstring.
    """
    doc = (output_type.__doc__ or "").strip().split("\n\n")[0]
    return ToolSpec(
        name=name,
        description=description or " ".join(doc.split()),
        parameters=_inline_refs(output_type.model_json_schema()),
    )


def describe_errors(err: ValidationError) -> str:
    """One line per problem (``field.path: message``), bounded for a model's context."""
    lines = []
    for e in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(x) for x in e["loc"]) or "(root)"
        lines.append(f"- {loc}: {e['msg']}")
    text = "\n".join(lines)
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def parse_arguments(output_type: type[T], arguments: dict[str, Any]) -> T | str:
    """The validated value, or a message for the model saying what to correct."""
    if set(arguments) == {"_raw_arguments"}:
        return "the arguments were not valid JSON; send a JSON object that matches the schema"
    try:
        return output_type.model_validate(arguments)
    except ValidationError as err:
        return f"the arguments do not match the schema:\n{describe_errors(err)}"
