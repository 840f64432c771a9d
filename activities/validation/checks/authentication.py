"""Authentication: every secured operation refuses a missing or malformed credential.

For each operation the contract secures (a security requirement, or a required
identity header such as ``X-User-Id``), a request that is otherwise valid (real
ids, a valid body) is sent without credentials and with malformed ones: a blank
or pattern-violating identity header; an empty, made-up, tampered or wrong-scheme
bearer token; a made-up API key; a wrong basic-auth password. Anything but 401 or
403 is a finding: a 2xx is a bypass (critical), another status is a wrong answer.
When the contract has a login operation, a wrong password and an unknown user
must not get a token.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from activities.validation.context import RunContext
from activities.validation.http import NOT_SET, Call, Principal
from activities.validation.identity import dig
from activities.validation.models import Severity
from activities.validation.openapi import Operation
from activities.validation.payloads import matches_schema_string

__all__ = ["run_authentication", "CredentialProbe", "credential_probes"]


@dataclass
class CredentialProbe:
    """One way of sending a bad credential."""

    name: str
    #: Headers to send instead of the user's own credentials.
    headers: dict[str, str]
    query: dict[str, str]
    missing: bool


def credential_probes(
    ctx: RunContext, operation: Operation, user: Principal
) -> list[CredentialProbe]:
    """The bad credentials to try on ``operation``."""
    probes = [CredentialProbe("no credentials", {}, {}, missing=True)]
    identity = {k: v for k, v in user.headers.items() if k in operation.identity_headers}
    scheme_headers = {k: v for k, v in user.headers.items() if k not in identity}
    for header in operation.identity_headers:
        schema = next((p.schema for p in operation.params("header") if p.name == header), {})
        others = {k: v for k, v in user.headers.items() if k != header}
        probes.append(
            CredentialProbe(f"blank {header}", {**others, header: ""}, dict(user.query), False)
        )
        constrained = schema.get("pattern") or schema.get("maxLength")
        for bad in ("!!not a user!!", "x" * 300):
            if constrained and not matches_schema_string(bad, schema):
                probes.append(
                    CredentialProbe(
                        f"malformed {header}", {**others, header: bad}, dict(user.query), False
                    )
                )
                break
    auth = scheme_headers.get("Authorization")
    base = {k: v for k, v in user.headers.items() if k != "Authorization"}
    if auth and auth.startswith("Bearer "):
        token = auth[len("Bearer ") :]
        tampered = token[:-1] + ("A" if token[-1:] != "A" else "B")
        for name, value in (
            ("empty bearer token", "Bearer "),
            ("made-up bearer token", "Bearer bf-not-a-real-token"),
            ("tampered bearer token", f"Bearer {tampered}"),
            ("token under the wrong scheme", f"Basic {token}"),
        ):
            probes.append(
                CredentialProbe(name, {**base, "Authorization": value}, dict(user.query), False)
            )
    elif auth and auth.startswith("Basic ") and user.username is not None:
        wrong = base64.b64encode(f"{user.username}:bf-wrong-password".encode()).decode()
        probes.append(
            CredentialProbe(
                "wrong basic password",
                {**base, "Authorization": f"Basic {wrong}"},
                dict(user.query),
                False,
            )
        )
        probes.append(
            CredentialProbe(
                "garbled basic credentials",
                {**base, "Authorization": "Basic !!!"},
                dict(user.query),
                False,
            )
        )
    for name in scheme_headers:
        if name != "Authorization":
            probes.append(
                CredentialProbe(
                    f"made-up {name}", {**base, name: "bf-not-a-real-key"}, dict(user.query), False
                )
            )
    for name in user.query:
        probes.append(
            CredentialProbe(
                f"made-up {name}",
                dict(user.headers),
                {**user.query, name: "bf-not-a-real-key"},
                False,
            )
        )
    return probes


def _judge(ctx: RunContext, call: Call, probe: CredentialProbe, refs: list[str]) -> None:
    if call.response is None:
        record = ctx.run_record("authentication")
        record.note += f" [{probe.name} on {call.operation.label} not sent: {call.error}]"[:300]
        return
    ctx.validate(call, positive=False, checks=("not_a_server_error",), note=probe.name)
    if call.status in (401, 403) or call.status is None or call.status >= 500:
        return
    if call.ok:
        check = (
            "authentication.missing_credential_accepted"
            if probe.missing
            else "authentication.malformed_credential_accepted"
        )
        ctx.report_http(
            check,
            "authentication",
            Severity.CRITICAL,
            "Secured operation answers without valid credentials",
            call,
            detail=f"Sent with {probe.name}; the contract requires an identified caller.",
            note=probe.name,
            requirements=refs,
        )
        return
    ctx.report_http(
        "authentication.wrong_status",
        "authentication",
        Severity.MEDIUM,
        "Bad credentials refused with a status other than 401/403",
        call,
        detail=f"Sent with {probe.name}; expected 401 or 403, got {call.status}.",
        note=probe.name,
        requirements=refs,
    )


def _login_probes(ctx: RunContext, refs: list[str]) -> None:
    flow = ctx.contract.auth_flow
    user = ctx.principals["A"]
    if flow.login is None or user.username is None or flow.password_field is None:
        return
    run = ctx.run_record("authentication")
    prober = ctx.prober_required
    schema = flow.login.body_schema or {}
    for name, username, password in (
        ("wrong password", user.username, f"{user.password}-wrong"),
        ("unknown user", f"{user.username}nobody", user.password or "x"),
    ):
        body = ctx.factory.object(schema) if schema else {}
        if flow.username_field:
            body[flow.username_field] = username
        body[flow.password_field] = password
        call = prober.call(flow.login, principal=None, body=body)
        run.probes.append(f"login with a {name}")
        ctx.validate(call, positive=False, checks=("not_a_server_error",), note=name)
        token = dig(call.json(), flow.token_field) if flow.token_field else None
        if call.ok or token:
            ctx.report_http(
                "authentication.login_accepts_bad_password",
                "authentication",
                Severity.CRITICAL,
                f"Login succeeds with a {name}",
                call,
                note=name,
                requirements=refs,
            )


def run_authentication(ctx: RunContext) -> None:
    """Probe every secured operation with missing and malformed credentials."""
    prober = ctx.prober_required
    run = ctx.run_record("authentication")
    user = ctx.principals["A"]
    refs = ctx.category_requirements("authentication")
    secured = [o for o in ctx.contract.operations if o.secured]
    if not secured:
        run.note = "the contract marks no operation as secured"
    names: list[str] = []
    for operation in secured:
        path = ctx.path_values(operation, user) or {p.name: 1 for p in operation.params("path")}
        body = ctx.valid_body(operation)
        for probe in credential_probes(ctx, operation, user):
            call = prober.call(
                operation,
                principal=None,
                path=path,
                headers=probe.headers,
                query=probe.query,
                body=body if body is not NOT_SET else NOT_SET,
            )
            _judge(ctx, call, probe, refs)
            if probe.name not in names:
                names.append(probe.name)
        run.operations.append(operation.label)
    run.probes.extend(names)
    _login_probes(ctx, refs)
