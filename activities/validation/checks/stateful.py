"""Stateful sequences from the data model: create, read, list, update, delete, read again.

For every owned resource the contract describes, one user walks the record's
whole life with valid inputs, every response checked against the contract by
schemathesis. Then every other documented operation is called once with valid
inputs and real ids (the success paths random fuzzing rarely reaches). A
documented operation the service does not route (405, or the framework's
unknown-route 404) is ``contract.operation_missing``.
"""

from __future__ import annotations

from typing import Any

from activities.validation.context import Created, RunContext
from activities.validation.http import Call, Principal
from activities.validation.models import Evidence, Finding, Severity
from activities.validation.openapi import Operation, Resource

__all__ = ["run_lifecycle", "run_reachability", "is_missing_route", "ids_in"]


def is_missing_route(ctx: RunContext, call: Call, *, ids_are_real: bool) -> bool:
    """Whether ``call`` shows the service does not route this documented operation."""
    if call.status == 405:
        return True
    if call.status != 404:
        return False
    if not call.operation.params("path"):
        return True
    return (
        ids_are_real and ctx.unknown_route_body is not None and call.text == ctx.unknown_route_body
    )


def report_missing(ctx: RunContext, call: Call) -> None:
    """Record a documented operation the service does not serve."""
    ctx.report_http(
        "contract.operation_missing",
        "contract",
        Severity.CRITICAL,
        "Documented operation is not served",
        call,
        detail=(
            f"The contract documents {call.operation.label}, but a well-formed, authenticated "
            f"request got {call.status}"
            + (
                " (the method is not allowed on this path)"
                if call.status == 405
                else " (no such route)"
            )
            + "."
        ),
        note="well-formed request with valid inputs",
    )


def ids_in(data: Any, field: str) -> list[Any]:
    """Record ids in a list response (a bare array or one wrapped in an object)."""
    items: list[Any] = []
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list):
                items.extend(value)
    return [i.get(field) for i in items if isinstance(i, dict)]


def _same(a: Any, b: Any) -> bool:
    return str(a) == str(b)


def _reflects(sent: Any, got: Any) -> bool:
    if isinstance(sent, str) and isinstance(got, str):
        return sent.strip().casefold() == got.strip().casefold()
    return True


def _lifecycle(ctx: RunContext, resource: Resource, user: Principal) -> None:
    prober = ctx.prober_required
    run = ctx.run_record("stateful")
    created = ctx.create(resource, user)
    run.operations.append(resource.create.label)
    if created is None:
        failed = ctx.last_failed_create(resource)
        if failed is not None and is_missing_route(ctx, failed, ids_are_real=False):
            report_missing(ctx, failed)
        elif failed is not None and failed.status is not None and failed.status >= 500:
            ctx.validate(failed, note="create with a valid body")
        else:
            evidence = [failed.evidence("last attempt")] if failed is not None else []
            ctx.add(
                _finding(
                    "stateful.create_failed",
                    Severity.HIGH,
                    f"Could not create a {resource.name} record with a valid body",
                    resource.create,
                    "Every candidate body (x-backforge example, quickstart, schema-built) was "
                    "rejected, so checks that need a record could not run for this resource. "
                    "If the service is right, give a valid body as x-backforge resources[].example.",
                    evidence,
                )
            )
        return
    ctx.validate(created.call, note="create with a valid body")
    path = {**created.parents, resource.id_param: created.id}
    if resource.read is not None:
        read = prober.call(resource.read, principal=user, path=path)
        run.operations.append(resource.read.label)
        ctx.validate(read, note="read the record just created")
        if is_missing_route(ctx, read, ids_are_real=True):
            report_missing(ctx, read)
        elif read.status == 404:
            ctx.report_http(
                "stateful.read_after_create",
                "stateful",
                Severity.HIGH,
                "A record just created cannot be read",
                read,
                note=f"{resource.create.label} returned id {created.id!r}",
            )
    if resource.listing is not None:
        listed = prober.call(resource.listing, principal=user, path=created.parents)
        run.operations.append(resource.listing.label)
        ctx.validate(listed, note="list after create")
        if listed.ok and not any(
            _same(i, created.id) for i in ids_in(listed.json(), resource.id_field)
        ):
            ctx.report_http(
                "stateful.list_missing_record",
                "stateful",
                Severity.HIGH,
                "The owner's list does not contain a record just created",
                listed,
                note=f"expected id {created.id!r} in the list",
            )
    if resource.update is not None:
        _update(ctx, resource, user, created, path)
    if resource.delete is not None:
        _delete(ctx, resource, user, created, path)


def _update(
    ctx: RunContext, resource: Resource, user: Principal, created: Created, path: dict[str, Any]
) -> None:
    assert resource.update is not None
    prober = ctx.prober_required
    run = ctx.run_record("stateful")
    body = ctx.valid_body(resource.update)
    update = prober.call(resource.update, principal=user, path=path, body=body)
    run.operations.append(resource.update.label)
    ctx.validate(update, note="update the record with a valid body")
    if is_missing_route(ctx, update, ids_are_real=True):
        report_missing(ctx, update)
        return
    if not update.ok or resource.read is None or not isinstance(body, dict):
        return
    read = prober.call(resource.read, principal=user, path=path)
    data = read.json()
    if read.ok and isinstance(data, dict):
        stale = [k for k, v in body.items() if k in data and not _reflects(v, data[k])]
        if stale:
            ctx.report_http(
                "stateful.update_not_applied",
                "stateful",
                Severity.HIGH,
                "An accepted update is not visible when the record is read back",
                read,
                detail=f"Fields not updated: {', '.join(stale)}.",
                note=f"after {resource.update.label} answered {update.status}",
            )


def _delete(
    ctx: RunContext, resource: Resource, user: Principal, created: Created, path: dict[str, Any]
) -> None:
    assert resource.delete is not None
    prober = ctx.prober_required
    run = ctx.run_record("stateful")
    delete = prober.call(resource.delete, principal=user, path=path)
    run.operations.append(resource.delete.label)
    ctx.validate(delete, note="delete the record")
    if is_missing_route(ctx, delete, ids_are_real=True):
        report_missing(ctx, delete)
        return
    if not delete.ok:
        return
    if resource.read is not None:
        again = prober.call(resource.read, principal=user, path=path)
        ctx.validate(again, note="read after delete")
        if again.ok:
            ctx.report_http(
                "stateful.use_after_delete",
                "stateful",
                Severity.HIGH,
                "A deleted record can still be read",
                again,
                note=f"after {resource.delete.label} answered {delete.status}",
            )
    second = prober.call(resource.delete, principal=user, path=path)
    ctx.validate(second, note="delete the same record again")
    if second.ok:
        ctx.report_http(
            "stateful.use_after_delete",
            "stateful",
            Severity.MEDIUM,
            "Deleting a deleted record succeeds again",
            second,
            note="the contract's 404 was expected",
        )


def _finding(
    check: str,
    severity: Severity,
    title: str,
    operation: Operation,
    detail: str,
    evidence: list[Evidence],
) -> Finding:
    """A stateful finding that is not about a single call's response."""
    return Finding(
        check=check,
        category="stateful",
        severity=severity,
        title=title,
        detail=detail,
        endpoint=operation.label,
        evidence=evidence,
        requirements=list(operation.requirements),
    )


def run_lifecycle(ctx: RunContext) -> None:
    """Walk create → read → list → update → delete → read for every resource."""
    run = ctx.run_record("stateful")
    user = ctx.principals["A"]
    if not ctx.contract.resources:
        run.note = "the contract describes no owned resource (POST /things with /things/{id})"
        return
    for resource in ctx.contract.resources:
        _lifecycle(ctx, resource, user)
    run.probes.append("create → read → list → update → read → delete → read → delete")


def run_reachability(ctx: RunContext) -> None:
    """Call every operation the lifecycle did not cover once, with valid inputs and real ids."""
    prober = ctx.prober_required
    run = ctx.run_record("stateful")
    user = ctx.principals["A"]
    covered = set(run.operations)
    flow = ctx.contract.auth_flow
    skipped: list[str] = []
    for operation in ctx.contract.operations:
        if operation.label in covered or operation in (flow.login, flow.register):
            continue
        path = ctx.path_values(operation, user)
        if path is None:
            skipped.append(operation.label)
            continue
        call = prober.call(operation, principal=user, path=path, body=ctx.valid_body(operation))
        run.operations.append(operation.label)
        ctx.validate(call, note="well-formed request with real ids")
        if is_missing_route(ctx, call, ids_are_real=False):
            report_missing(ctx, call)
    run.probes.append("one well-formed call per remaining operation")
    if skipped:
        run.note = (run.note + " " if run.note else "") + (
            f"no valid ids for {len(skipped)} operation(s): {', '.join(skipped[:5])}"
        )
