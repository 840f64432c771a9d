"""Injection: SQL and path metacharacters in every string the client controls.

Query parameters get paired probes: a value that matches nothing
(``bfnomatch``) and the same value with an SQL tautology appended. On a filter
that binds its parameters both return the same records; if the tautology returns
more, or returns another user's record, the input reached the query as code.
Path parameters and body fields get metacharacter values; none may produce a
5xx (a database error is the usual sign of composed SQL), and an id made of SQL
must not find a record.
"""

from __future__ import annotations

from typing import Any

from activities.validation.checks.stateful import ids_in
from activities.validation.context import Created, RunContext
from activities.validation.http import NOT_SET, Call
from activities.validation.models import Severity
from activities.validation.openapi import Operation
from activities.validation.payloads import schema_types

__all__ = ["run_injection", "SQL_TAUTOLOGIES", "METACHARACTERS", "PATH_PAYLOADS"]

BENIGN = "bfnomatch"
#: Appended to ``BENIGN``: each turns a quoted filter into "everything" if composed as SQL.
SQL_TAUTOLOGIES = (
    "' OR '1'='1",
    "' OR 1=1 --",
    "%' OR 1=1 --",
    "') OR ('1'='1",
    '" OR "1"="1',
    "' UNION SELECT NULL --",
)
METACHARACTERS = (
    "'",
    '"',
    "'; DROP TABLE bf_probe; --",
    "\\",
    "%",
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "${7*7}{{7*7}}",
)
PATH_PAYLOADS = ("1' OR '1'='1", "1 OR 1=1", "1;--", "../1", "%2e%2e%2f1")


def _server_error(ctx: RunContext, call: Call, what: str, refs: list[str]) -> bool:
    if call.status is None or call.status < 500:
        return False
    ctx.report_http(
        "injection.server_error",
        "injection",
        Severity.HIGH,
        "Metacharacters in input cause a server error",
        call,
        detail=f"{what}. A 5xx on quote or comment characters often means the value was "
        "composed into a query or a path.",
        note=what,
        requirements=refs,
    )
    return True


def _markers(records: list[Created], label: str) -> list[str]:
    """Unique values of the other user's records (they carry the run label), to spot leaks."""
    markers: list[str] = []
    for record in records:
        if isinstance(record.body, dict):
            markers += [v for v in record.body.values() if isinstance(v, str) and label in v]
    return markers


def _query_probes(ctx: RunContext, operation: Operation, seeded: list[Created]) -> None:
    prober = ctx.prober_required
    user = ctx.principals["A"]
    run = ctx.run_record("injection")
    path = ctx.path_values(operation, user)
    if path is None:
        return
    others = [r for r in seeded if r.owner != user.name]
    other_ids = {str(r.id) for r in others}
    markers = _markers(others, ctx.factory.label)
    id_field = next((r.resource.id_field for r in seeded if r.resource.listing is operation), "id")
    for param in operation.params("query"):
        benign = prober.call(operation, principal=user, path=path, query={param.name: BENIGN})
        if _server_error(ctx, benign, f"query {param.name}={BENIGN}", operation.requirements):
            continue
        baseline = {str(i) for i in ids_in(benign.json(), id_field)} if benign.ok else set()
        for tail in SQL_TAUTOLOGIES:
            value = BENIGN + tail
            call = prober.call(operation, principal=user, path=path, query={param.name: value})
            if _server_error(ctx, call, f"query {param.name}={value!r}", operation.requirements):
                continue
            if not call.ok:
                continue
            found = {str(i) for i in ids_in(call.json(), id_field)}
            leaked = (found & other_ids) or any(m in call.text for m in markers)
            if leaked:
                ctx.report_http(
                    "injection.data_leak",
                    "injection",
                    Severity.CRITICAL,
                    "An SQL tautology in a query parameter returns another user's records",
                    call,
                    detail=f"{param.name}={value!r} returned records owned by user B.",
                    note=f"compare with {param.name}={BENIGN!r}",
                    requirements=ctx.category_requirements("authorization"),
                )
            elif found - baseline:
                ctx.report_http(
                    "injection.sql_result_changed",
                    "injection",
                    Severity.CRITICAL,
                    "An SQL tautology in a query parameter changes the result set",
                    call,
                    detail=(
                        f"{param.name}={BENIGN!r} returned {len(baseline)} record(s); "
                        f"{param.name}={value!r} returned {len(found)}."
                    ),
                    note=f"baseline {param.name}={BENIGN!r}",
                )
        for value in METACHARACTERS:
            call = prober.call(operation, principal=user, path=path, query={param.name: value})
            _server_error(ctx, call, f"query {param.name}={value!r}", operation.requirements)
        run.probes.append(f"query parameter {param.name} of {operation.label}")
    run.operations.append(operation.label)


def _path_probes(ctx: RunContext, operation: Operation) -> None:
    prober = ctx.prober_required
    user = ctx.principals["A"]
    run = ctx.run_record("injection")
    real = ctx.path_values(operation, user)
    if real is None:
        return
    body = ctx.valid_body(operation)
    for param in operation.params("path"):
        for value in PATH_PAYLOADS:
            call = prober.call(
                operation, principal=user, path={**real, param.name: value}, body=body
            )
            if _server_error(ctx, call, f"path {param.name}={value!r}", operation.requirements):
                continue
            if call.ok and operation.method == "get":
                ctx.report_http(
                    "injection.path_id_accepted",
                    "injection",
                    Severity.HIGH,
                    "An id made of SQL finds a record",
                    call,
                    detail=f"{param.name}={value!r} answered {call.status}; ids of this kind must not match.",
                    note="SQL in a path parameter",
                    requirements=operation.requirements,
                )
    run.operations.append(operation.label)


def _string_fields(schema: dict[str, Any] | None) -> list[str]:
    props = (schema or {}).get("properties") or {}
    return [
        name
        for name, prop in props.items()
        if isinstance(prop, dict) and "string" in schema_types(prop)
    ]


def _body_probes(ctx: RunContext, operation: Operation, *, anonymous: bool = False) -> None:
    prober = ctx.prober_required
    user = None if anonymous else ctx.principals["A"]
    run = ctx.run_record("injection")
    fields = _string_fields(operation.body_schema)
    if not fields:
        return
    path = {} if user is None else ctx.path_values(operation, user)
    if path is None:
        return
    for name in fields:
        for value in ("bf' OR '1'='1", "bf'; DROP TABLE bf_probe; --", '"', "../../etc/passwd"):
            body = ctx.valid_body(operation)
            if body is NOT_SET or not isinstance(body, dict):
                return
            body[name] = value
            call = prober.call(operation, principal=user, path=path, body=body)
            _server_error(ctx, call, f"body field {name}={value!r}", operation.requirements)
    run.probes.append(f"string fields of {operation.label}")
    run.operations.append(operation.label)


def _login_bypass(ctx: RunContext) -> None:
    flow = ctx.contract.auth_flow
    if flow.login is None or flow.username_field is None or flow.password_field is None:
        return
    prober = ctx.prober_required
    user = ctx.principals["A"]
    for username in (f"{user.username}' --", "' OR '1'='1' --", "' OR 1=1 --"):
        body = ctx.factory.object(flow.login.body_schema or {})
        body[flow.username_field] = username
        body[flow.password_field] = "bf-wrong-password"
        call = prober.call(flow.login, principal=None, body=body)
        if _server_error(
            ctx, call, f"login with {flow.username_field}={username!r}", flow.login.requirements
        ):
            continue
        if call.ok:
            ctx.report_http(
                "injection.login_bypass",
                "injection",
                Severity.CRITICAL,
                "SQL in the login name logs in without the password",
                call,
                note=f"{flow.username_field}={username!r} with a wrong password",
                requirements=ctx.category_requirements("authentication"),
            )
    ctx.run_record("injection").probes.append("SQL in the login name")


def run_injection(ctx: RunContext) -> None:
    """SQL and path metacharacters in query, path and body values."""
    run = ctx.run_record("injection")
    seeded: list[Created] = []
    for resource in ctx.contract.resources:
        for who in ("A", "A", "B"):
            created = ctx.create(resource, ctx.principals[who])
            if created is not None:
                seeded.append(created)
    flow = ctx.contract.auth_flow
    for operation in ctx.contract.operations:
        if operation in (flow.login, flow.register):
            _body_probes(ctx, operation, anonymous=True)
            continue
        if operation.method == "get" and operation.params("query"):
            _query_probes(ctx, operation, seeded)
        if operation.params("path"):
            _path_probes(ctx, operation)
        if operation.method in ("post", "put", "patch"):
            _body_probes(ctx, operation)
    _login_bypass(ctx)
    run.probes[:0] = [
        "paired SQL tautologies on query parameters",
        "SQL in path ids",
        "SQL and path metacharacters in body fields",
    ]
