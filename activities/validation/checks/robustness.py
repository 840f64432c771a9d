"""Robustness: limits, sizes, types, edge strings and duplicates.

Each probe starts from a valid request and changes one thing:

* a string one character over the contract's ``maxLength`` (or an array one item
  over ``maxItems``) must be refused (``robustness.length_limit``);
* a string of ``oversized_chars`` characters in a field with no limit must not
  break the service or time out;
* a value of the wrong type, a body of the wrong shape and a body that is not
  JSON must be refused with a 4xx (accepted: ``robustness.wrong_type_accepted``);
* edge strings (empty, blank, non-ASCII, emoji, control characters) must never
  cause a 5xx;
* the same valid create body sent twice must give a 2xx or a 4xx, never a 5xx
  (``robustness.duplicate_server_error``).
"""

from __future__ import annotations

from typing import Any

from activities.validation.context import RunContext
from activities.validation.http import NOT_SET, Call
from activities.validation.models import Severity
from activities.validation.openapi import Operation
from activities.validation.payloads import is_nullable, schema_types

__all__ = ["run_robustness", "EDGE_STRINGS", "pad_to", "wrong_type_value"]

EDGE_STRINGS = ("", "   ", "ünïcødé ✓", "emoji 😀🚀", "tab\there\nnewline", "\u202etxt.exe", "null")


def pad_to(value: Any, length: int, schema: dict[str, Any]) -> str:
    """``value`` extended (or a fresh string) to exactly ``length`` characters."""
    text = value if isinstance(value, str) and value else "a"
    if len(text) >= length:
        return text[:length]
    filler = "a"
    pattern = str(schema.get("pattern") or "")
    if "0-9" in pattern and "a-z" not in pattern:
        filler = "1"
    return text + filler * (length - len(text))


def wrong_type_value(schema: dict[str, Any]) -> Any:
    """A JSON value of a type the schema does not allow (``NOT_SET`` when all are allowed)."""
    types = set(schema_types(schema))
    if not types:
        return NOT_SET
    for candidate in (12345, "bf-not-a-number", {"bf": 1}, ["bf"], True):
        kind = {int: "integer", str: "string", dict: "object", list: "array", bool: "boolean"}[
            type(candidate)
        ]
        allowed = kind in types or (kind == "integer" and "number" in types)
        if not allowed and not (kind == "boolean" and "integer" in types):
            return candidate
    return NOT_SET


def _server_error(
    ctx: RunContext, call: Call, what: str, check: str = "robustness.server_error"
) -> bool:
    if call.status is None:
        if call.error and "Timeout" in call.error:
            ctx.report_http(
                "robustness.timeout",
                "robustness",
                Severity.HIGH,
                "The service does not answer within the request timeout",
                call,
                note=what,
            )
            return True
        return False
    if call.status < 500:
        return False
    ctx.report_http(
        check,
        "robustness",
        Severity.CRITICAL if check == "robustness.duplicate_server_error" else Severity.HIGH,
        "Unusual but plausible input causes a server error"
        if check == "robustness.server_error"
        else "Sending the same create twice causes a server error",
        call,
        note=what,
    )
    return True


def _props(operation: Operation) -> dict[str, dict[str, Any]]:
    props = (operation.body_schema or {}).get("properties") or {}
    return {k: v for k, v in props.items() if isinstance(v, dict) and not v.get("readOnly")}


def _limits(ctx: RunContext, operation: Operation, path: dict[str, Any]) -> None:
    prober = ctx.prober_required
    user = ctx.principals["A"]
    for name, prop in _props(operation).items():
        body = ctx.valid_body(operation)
        if not isinstance(body, dict):
            return
        if "maxLength" in prop and "string" in schema_types(prop):
            limit = int(prop["maxLength"])
            body[name] = pad_to(body.get(name), limit + 1, prop)
            what = f"{name} of {limit + 1} characters (maxLength {limit})"
        elif "maxItems" in prop and "array" in schema_types(prop):
            limit = int(prop["maxItems"])
            items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
            body[name] = [ctx.factory.value(items or {}, name) for _ in range(limit + 1)]
            what = f"{name} with {limit + 1} items (maxItems {limit})"
        elif (
            "string" in schema_types(prop)
            and "pattern" not in prop
            and "format" not in prop
            and "enum" not in prop
        ):
            body[name] = "a" * ctx.settings.oversized_chars
            call = prober.call(operation, principal=user, path=path, body=body)
            _server_error(
                ctx, call, f"{name} of {ctx.settings.oversized_chars} characters (no maxLength)"
            )
            continue
        else:
            continue
        call = prober.call(operation, principal=user, path=path, body=body)
        if _server_error(ctx, call, what):
            continue
        if call.ok:
            ctx.report_http(
                "robustness.length_limit",
                "robustness",
                Severity.HIGH,
                "A value over the contract's limit is accepted",
                call,
                detail=f"Sent {what}; the contract bounds it, the service stored it.",
                note=what,
            )
    for param in operation.params("query"):
        if "maxLength" in param.schema:
            limit = int(param.schema["maxLength"])
            value = pad_to("", limit + 1, param.schema)
            call = prober.call(operation, principal=user, path=path, query={param.name: value})
            what = f"query {param.name} of {limit + 1} characters (maxLength {limit})"
            if not _server_error(ctx, call, what) and call.ok:
                ctx.report_http(
                    "robustness.length_limit",
                    "robustness",
                    Severity.MEDIUM,
                    "A query value over the contract's limit is accepted",
                    call,
                    note=what,
                )


def _types(ctx: RunContext, operation: Operation, path: dict[str, Any]) -> None:
    prober = ctx.prober_required
    user = ctx.principals["A"]
    for name, prop in _props(operation).items():
        body = ctx.valid_body(operation)
        if not isinstance(body, dict):
            return
        wrong = wrong_type_value(prop)
        if wrong is NOT_SET or (wrong is None and is_nullable(prop)):
            continue
        body[name] = wrong
        call = prober.call(operation, principal=user, path=path, body=body)
        what = f"{name}={wrong!r} (schema type {'/'.join(schema_types(prop))})"
        if _server_error(ctx, call, what):
            continue
        if call.ok:
            ctx.report_http(
                "robustness.wrong_type_accepted",
                "robustness",
                Severity.MEDIUM,
                "A value of the wrong type is accepted",
                call,
                note=what,
            )
    if operation.body_schema is None or operation.body_media_type != "application/json":
        return
    for label, shaped in (
        ("a JSON array instead of an object", ["bf"]),
        ("a JSON string instead of an object", "bf"),
    ):
        call = prober.call(operation, principal=user, path=path, body=shaped)
        _server_error(ctx, call, f"body is {label}")


def _edge_strings(ctx: RunContext, operation: Operation, path: dict[str, Any]) -> None:
    prober = ctx.prober_required
    user = ctx.principals["A"]
    for name, prop in _props(operation).items():
        if "string" not in schema_types(prop):
            continue
        for value in EDGE_STRINGS:
            body = ctx.valid_body(operation)
            if not isinstance(body, dict):
                return
            body[name] = value
            call = prober.call(operation, principal=user, path=path, body=body)
            _server_error(ctx, call, f"{name}={value!r}")
    for param in operation.params("query"):
        if "string" in schema_types(param.schema) or not schema_types(param.schema):
            for value in EDGE_STRINGS[2:5]:
                call = prober.call(operation, principal=user, path=path, query={param.name: value})
                _server_error(ctx, call, f"query {param.name}={value!r}")


def _duplicates(
    ctx: RunContext, operation: Operation, path: dict[str, Any], *, as_user: bool
) -> None:
    prober = ctx.prober_required
    user = ctx.principals["A"] if as_user else None
    body = ctx.valid_body(operation)
    if body is NOT_SET:
        return
    first = prober.call(operation, principal=user, path=path, body=body)
    if _server_error(ctx, first, "first of two identical requests"):
        return
    second = prober.call(operation, principal=user, path=path, body=body)
    _server_error(
        ctx, second, "the same body sent a second time", check="robustness.duplicate_server_error"
    )


def run_robustness(ctx: RunContext) -> None:
    """Limits, oversized values, wrong types, edge strings and duplicate creates."""
    run = ctx.run_record("robustness")
    user = ctx.principals["A"]
    flow = ctx.contract.auth_flow
    for operation in ctx.contract.operations:
        if operation.method not in ("post", "put", "patch") and not operation.params("query"):
            continue
        account = operation in (flow.login, flow.register)
        path = {} if account else ctx.path_values(operation, user)
        if path is None:
            continue
        if not account:
            _limits(ctx, operation, path)
            _types(ctx, operation, path)
            _edge_strings(ctx, operation, path)
        if operation.method == "post" and operation is not flow.login:
            _duplicates(ctx, operation, path, as_user=not account)
        run.operations.append(operation.label)
    run.probes.extend(
        [
            "one over maxLength / maxItems",
            f"{ctx.settings.oversized_chars}-character strings where no limit is set",
            "wrong JSON types and body shapes",
            "edge strings (empty, blank, non-ASCII, emoji, control characters)",
            "the same create sent twice",
        ]
    )
