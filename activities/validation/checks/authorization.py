"""Object-level authorization: one user can neither see nor touch another's records.

User A creates a record of every resource; user B tries to read, update and
delete it by id (each must be refused with 403/404, and A's record must be
unchanged and still there), and neither user's list may show the other's
records. Every other secured operation that addresses records by id is called by
B with A's ids, and with B's own parent and A's child (adding A's record to B's
collection); none may succeed.
"""

from __future__ import annotations

from typing import Any

from activities.validation.checks.stateful import ids_in
from activities.validation.context import Created, RunContext
from activities.validation.http import Call
from activities.validation.models import Severity
from activities.validation.openapi import Operation, Resource

__all__ = ["run_authorization"]


def _refused(call: Call) -> bool:
    return call.status is not None and not call.ok


def _idor(ctx: RunContext, check: str, title: str, call: Call, note: str, refs: list[str]) -> None:
    ctx.report_http(
        check, "authorization", Severity.CRITICAL, title, call, note=note, requirements=refs
    )


def _changed(before: Any, after: Any) -> bool:
    if not isinstance(before, dict) or not isinstance(after, dict):
        return False
    ignored = {"updated_at", "updatedAt", "modified_at", "version", "etag"}
    return any(before.get(k) != after.get(k) for k in before if k not in ignored)


def _resource_idor(ctx: RunContext, resource: Resource, victim: Created, refs: list[str]) -> None:
    prober = ctx.prober_required
    run = ctx.run_record("authorization")
    owner, intruder = ctx.principals["A"], ctx.principals["B"]
    path = {**victim.parents, resource.id_param: victim.id}
    before = None
    if resource.read is not None:
        original = prober.call(resource.read, principal=owner, path=path)
        before = original.json() if original.ok else None
        attempt = prober.call(resource.read, principal=intruder, path=path)
        ctx.validate(
            attempt,
            positive=True,
            checks=("not_a_server_error",),
            note="user B reads user A's record",
        )
        run.operations.append(resource.read.label)
        if attempt.ok:
            _idor(
                ctx,
                "authorization.idor_read",
                "Another user's record can be read",
                attempt,
                "user B reads user A's record",
                refs,
            )
    if resource.update is not None:
        body = ctx.valid_body(resource.update)
        attempt = prober.call(resource.update, principal=intruder, path=path, body=body)
        ctx.validate(
            attempt,
            positive=True,
            checks=("not_a_server_error",),
            note="user B updates user A's record",
        )
        run.operations.append(resource.update.label)
        after = prober.call(resource.read, principal=owner, path=path) if resource.read else None
        altered = after is not None and after.ok and _changed(before, after.json())
        if attempt.ok or altered:
            _idor(
                ctx,
                "authorization.idor_update",
                "Another user's record can be changed",
                attempt,
                "user B updates user A's record" + ("; A's record changed" if altered else ""),
                refs,
            )
    if resource.delete is not None:
        attempt = prober.call(resource.delete, principal=intruder, path=path)
        ctx.validate(
            attempt,
            positive=True,
            checks=("not_a_server_error",),
            note="user B deletes user A's record",
        )
        run.operations.append(resource.delete.label)
        gone = False
        if resource.read is not None:
            check = prober.call(resource.read, principal=owner, path=path)
            gone = check.status == 404
        if attempt.ok or gone:
            _idor(
                ctx,
                "authorization.idor_delete",
                "Another user's record can be deleted",
                attempt,
                "user B deletes user A's record" + ("; A can no longer read it" if gone else ""),
                refs,
            )


def _list_isolation(
    ctx: RunContext, resource: Resource, mine: Created, theirs: Created, refs: list[str]
) -> None:
    # Nested lists are addressed through a parent id; the cross-user sweep covers them.
    if resource.listing is None or resource.parent_params:
        return
    prober = ctx.prober_required
    run = ctx.run_record("authorization")
    for viewer, other in ((ctx.principals["B"], mine), (ctx.principals["A"], theirs)):
        listed = prober.call(resource.listing, principal=viewer)
        ctx.validate(
            listed, positive=True, checks=("not_a_server_error",), note=f"user {viewer.name} lists"
        )
        run.operations.append(resource.listing.label)
        if listed.ok and any(
            str(i) == str(other.id) for i in ids_in(listed.json(), resource.id_field)
        ):
            _idor(
                ctx,
                "authorization.list_leak",
                "A list shows another user's records",
                listed,
                f"user {viewer.name}'s list contains user {other.owner}'s record {other.id!r}",
                refs,
            )


def _cross_user_operations(ctx: RunContext, refs: list[str], covered: set[str]) -> None:
    run = ctx.run_record("authorization")
    owner, intruder = ctx.principals["A"], ctx.principals["B"]
    for operation in ctx.contract.operations:
        params = [p.name for p in operation.params("path")]
        if operation.label in covered or not operation.secured or not params:
            continue
        theirs = ctx.path_values(operation, owner)
        if theirs is None:
            continue
        variants: list[tuple[str, dict[str, Any]]] = [("all ids are user A's", theirs)]
        if len(params) > 1:
            mine = ctx.path_values(operation, intruder)
            if mine is not None:
                mixed = {**mine, params[-1]: theirs[params[-1]]}
                variants.append((f"user B's own {params[0]}, user A's {params[-1]}", mixed))
        for label, values in variants:
            call = _send(ctx, operation, values)
            ctx.validate(
                call, positive=True, checks=("not_a_server_error",), note=f"user B: {label}"
            )
            if call.ok:
                _idor(
                    ctx,
                    "authorization.cross_user_access",
                    "An operation acts on another user's record",
                    call,
                    f"user B calls with {label}",
                    refs,
                )
        run.operations.append(operation.label)


def _send(ctx: RunContext, operation: Operation, path: dict[str, Any]) -> Call:
    return ctx.prober_required.call(
        operation, principal=ctx.principals["B"], path=path, body=ctx.valid_body(operation)
    )


def run_authorization(ctx: RunContext) -> None:
    """Check that user B can neither read, change, delete nor list user A's records."""
    run = ctx.run_record("authorization")
    refs = ctx.category_requirements("authorization")
    covered: set[str] = set()
    if not ctx.contract.resources:
        run.note = "the contract describes no owned resource"
    for resource in ctx.contract.resources:
        if not resource.create.secured:
            continue
        victim = ctx.create(resource, ctx.principals["A"])
        own = ctx.create(resource, ctx.principals["B"])
        if victim is None or own is None:
            run.note += f" could not create {resource.name} records for both users;"
            continue
        _resource_idor(ctx, resource, victim, refs)
        fresh = ctx.create(resource, ctx.principals["A"])
        if fresh is not None:
            _list_isolation(ctx, resource, fresh, own, refs)
        for op in (resource.read, resource.update, resource.delete, resource.listing):
            if op is not None:
                covered.add(op.label)
    _cross_user_operations(ctx, refs, covered)
    run.probes.extend(
        [
            "user B reads, updates and deletes user A's record",
            "each user's list excludes the other's records",
            "user B calls id-addressed operations with user A's ids",
        ]
    )
