"""Becoming users: the credentials the checker attaches to its requests.

The mechanism comes from the contract, most explicit first: the ``x-backforge``
identity settings; required identity header parameters (``X-User-Id``: each user
is a fresh, schema-valid header value); security schemes (``http bearer``,
``apiKey`` in a header, query or cookie, ``http basic``), for which the checker
registers fresh accounts and logs in through the contract's own operations, or
uses fixed credentials from the extension or the quickstart. Failing to become a
user is an ``IdentityError`` that names the step and carries its evidence; the
runner turns it into a blocking finding, never a silent pass.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from activities.validation.http import Call, Principal, Prober
from activities.validation.models import Evidence
from activities.validation.openapi import Contract, Operation, SecurityScheme
from activities.validation.payloads import PayloadFactory
from activities.validation.quickstart import Quickstart

__all__ = ["IdentityError", "IdentityPlan", "plan_identity", "establish_principals", "dig"]


class IdentityError(RuntimeError):
    """The checker could not become a user of the service."""

    def __init__(self, message: str, evidence: list[Evidence] | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or []


@dataclass
class IdentityPlan:
    """How identities are obtained for this contract."""

    headers: list[str] = field(default_factory=list)
    scheme: SecurityScheme | None = None
    needs_login: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        """One line for the report."""
        parts = [f"identity header {h}" for h in self.headers]
        if self.scheme is not None:
            parts.append(f"security scheme {self.scheme.name} ({self.scheme.label})")
        return ", ".join(parts) or "none (no operation is secured)"


def plan_identity(contract: Contract) -> IdentityPlan:
    """Decide how to become a user of the service the contract describes."""
    plan = IdentityPlan(headers=list(contract.identity_header_names))
    identity = contract.extension.identity
    schemes = contract.used_schemes
    if identity and identity.scheme:
        chosen = contract.schemes.get(identity.scheme)
        if chosen is None:
            raise IdentityError(
                f"x-backforge names security scheme {identity.scheme!r}, which the contract does not define"
            )
        plan.scheme = chosen
    elif schemes:
        supported = [s for s in schemes if s.type in ("http", "apiKey", "oauth2", "openIdConnect")]
        plan.scheme = supported[0] if supported else schemes[0]
    if plan.scheme is not None:
        plan.needs_login = not (plan.scheme.type == "http" and plan.scheme.scheme == "basic")
    return plan


def dig(data: Any, dotted: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; ``None`` when any step is missing."""
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _header_value(contract: Contract, name: str, factory: PayloadFactory, who: str) -> str:
    for operation in contract.operations:
        for param in operation.params("header"):
            if param.name.lower() == name.lower():
                return factory.string(param.schema, f"user{who}")
    return f"bf-{who}-{factory.token()}"


def _apply_scheme(principal: Principal, scheme: SecurityScheme, token: str) -> None:
    if scheme.type == "apiKey":
        target = {
            "header": principal.headers,
            "query": principal.query,
            "cookie": principal.cookies,
        }
        target.get(scheme.location or "header", principal.headers)[
            scheme.param_name or "X-API-Key"
        ] = token
    elif scheme.type == "http" and scheme.scheme == "basic":
        principal.headers["Authorization"] = f"Basic {token}"
    else:
        principal.headers["Authorization"] = f"Bearer {token}"


def _account_body(
    operation: Operation,
    factory: PayloadFactory,
    username: str,
    password: str,
    *,
    user_field: str | None,
    password_field: str | None,
) -> Any:
    body = factory.object(operation.body_schema or {}) if operation.body_schema else {}
    if user_field:
        body[user_field] = username
    if password_field:
        body[password_field] = password
    return body


def _require(call: Call, step: str, accepted: tuple[int, ...] = ()) -> None:
    if call.ok or (call.status in accepted):
        return
    reason = call.error or f"HTTP {call.status}"
    raise IdentityError(f"{step} failed: {reason}", [call.evidence(step)])


def _login_principals(
    contract: Contract,
    plan: IdentityPlan,
    prober: Prober,
    factory: PayloadFactory,
    quickstart: Quickstart,
    names: list[str],
    base: dict[str, Principal],
    *,
    first_index: int = 0,
) -> None:
    flow = contract.auth_flow
    scheme = plan.scheme
    assert scheme is not None
    identity = contract.extension.identity
    fixed = list(identity.credentials) if identity else []
    if not fixed:
        fixed = [
            {"username": c.basic_auth[0], "password": c.basic_auth[1]}
            for c in quickstart.calls
            if c.basic_auth is not None
        ]
    user_field = flow.username_field
    password_field = flow.password_field
    for index, name in enumerate(names, start=first_index):
        principal = base[name]
        if flow.register is not None:
            schema_props = (flow.register.body_schema or {}).get("properties") or {}
            username = factory.string(
                schema_props.get(user_field or "", {}) or {}, user_field or "user"
            )
            password = factory.string(schema_props.get(password_field or "", {}) or {}, "password")
            body = _account_body(
                flow.register,
                factory,
                username,
                password,
                user_field=user_field,
                password_field=password_field,
            )
            call = prober.call(flow.register, principal=None, body=body)
            _require(call, f"registering user {name} with {flow.register.label}")
            principal.description = f"registered {user_field}={username} via {flow.register.label}"
            token = dig(call.json(), flow.token_field) if flow.token_field else None
        elif index < len(fixed):
            username = fixed[index].get("username") or fixed[index].get(
                user_field or "username", ""
            )
            password = fixed[index].get("password") or fixed[index].get(
                password_field or "password", ""
            )
            principal.description = f"fixed account {username}"
            token = None
        else:
            raise IdentityError(
                f"the contract secures operations with {scheme.name} ({scheme.label}) but has no "
                "registration operation, and neither x-backforge identity.credentials nor the "
                f"quickstart gives an account for user {name}"
            )
        principal.username, principal.password = username, password
        if scheme.type == "http" and scheme.scheme == "basic":
            raw = f"{username}:{password}".encode()
            _apply_scheme(principal, scheme, base64.b64encode(raw).decode())
            continue
        if token is None and flow.login is not None:
            body = _account_body(
                flow.login,
                factory,
                username,
                password,
                user_field=user_field,
                password_field=password_field,
            )
            call = prober.call(flow.login, principal=None, body=body)
            _require(call, f"logging in user {name} with {flow.login.label}")
            token = dig(call.json(), flow.token_field or "access_token")
            principal.description += f"; logged in via {flow.login.label}"
            if not isinstance(token, str) or not token:
                raise IdentityError(
                    f"logging in user {name} with {flow.login.label} returned no token in "
                    f"field {flow.token_field or 'access_token'!r}",
                    [call.evidence("login response without a token")],
                )
        if not isinstance(token, str) or not token:
            raise IdentityError(
                f"the contract secures operations with {scheme.name} ({scheme.label}) but the checker "
                "found no login operation that issues a token (declare x-backforge identity.login)"
            )
        _apply_scheme(principal, scheme, token)


def establish_principals(
    contract: Contract,
    plan: IdentityPlan,
    prober: Prober,
    factory: PayloadFactory,
    quickstart: Quickstart,
) -> list[Principal]:
    """Become users ``A`` and ``B`` of the service, and a third one for fuzzing if possible.

    The fuzz user keeps schemathesis's random requests away from the probes'
    records; when no third account can be had (two fixed credentials), it is A.

    Raises:
        IdentityError: A registration or login for A or B failed, or the contract
            secures operations in a way the checker cannot obtain credentials for.
    """
    identity = contract.extension.identity
    names = ("A", "B", "fuzz")
    principals = {name: Principal(name=name) for name in names}
    for header in plan.headers:
        fixed = list(identity.users) if identity and identity.header == header else []
        for index, name in enumerate(names):
            value = (
                fixed[index]
                if index < len(fixed)
                else _header_value(contract, header, factory, name.lower())
            )
            principals[name].headers[header] = value
            principals[name].description = f"{header}: {value}"
    if plan.scheme is not None:
        _login_principals(contract, plan, prober, factory, quickstart, ["A", "B"], principals)
        try:
            _login_principals(
                contract, plan, prober, factory, quickstart, ["fuzz"], principals, first_index=2
            )
        except IdentityError:
            a = principals["A"]
            principals["fuzz"] = Principal(
                name="fuzz",
                headers=dict(a.headers),
                query=dict(a.query),
                cookies=dict(a.cookies),
                description="same account as A (no third account available)",
            )
    ordered = [principals[n] for n in names]
    a, b = ordered[0], ordered[1]
    same = {**a.headers, **a.query, **a.cookies} == {**b.headers, **b.query, **b.cookies}
    if (plan.headers or plan.scheme is not None) and same:
        raise IdentityError("users A and B ended up with the same credentials")
    return ordered
