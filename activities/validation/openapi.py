"""The planned contract as the checker sees it: operations, identity and resources.

This reads ``contracts/openapi.yaml`` on its own (schemathesis reads it again for
conformance) to answer the questions the security and stateful checks ask: which
operations are secured and how, which header carries the caller's identity,
which paths form an owned resource (``POST /things``, ``GET/PATCH/DELETE
/things/{id}``), how to log in, and which requirements each operation serves
(``FR-###`` in its summary or description, or an ``x-backforge-requirements``
list on the operation).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from activities.validation.extension import EXTENSION_KEY, BackforgeExtension
from activities.validation.spec import expand_requirement_refs
from activities.yaml_text import YAMLError, load_yaml

__all__ = [
    "Contract",
    "ContractError",
    "Operation",
    "Parameter",
    "Resource",
    "SecurityScheme",
    "AuthFlow",
    "load_contract",
    "HTTP_METHODS",
]

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_IDENTITY_HEADER = re.compile(
    r"user|account|tenant|principal|identity|auth|api[-_]?key|token|session|caller", re.IGNORECASE
)
_LOGIN = re.compile(r"log[-_]?in|sign[-_]?in|token|session|auth$", re.IGNORECASE)
_REGISTER = re.compile(
    r"regist|sign[-_]?up|/users$|/accounts$|create[-_]?user|create[-_]?account", re.IGNORECASE
)
_PASSWORD = re.compile(r"pass(word|wd|phrase)?$|^pwd$|secret$", re.IGNORECASE)
_USERNAME_FIELDS = ("username", "email", "login", "user", "user_name", "name", "handle")
TOKEN_FIELDS = (
    "access_token",
    "token",
    "accessToken",
    "jwt",
    "id_token",
    "api_key",
    "apiKey",
    "key",
)


class ContractError(ValueError):
    """The contract cannot be read or is not an OpenAPI 3 document."""


@dataclass
class Parameter:
    """One operation parameter, its schema resolved."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]


@dataclass
class SecurityScheme:
    """A ``components.securitySchemes`` entry."""

    name: str
    type: str
    #: ``bearer`` or ``basic`` for ``type: http``.
    scheme: str | None = None
    #: ``header``, ``query`` or ``cookie`` for ``type: apiKey``.
    location: str | None = None
    param_name: str | None = None

    @property
    def label(self) -> str:
        """Short description, e.g. ``http bearer`` or ``apiKey header X-API-Key``."""
        if self.type == "http":
            return f"http {self.scheme or ''}".strip()
        if self.type == "apiKey":
            return f"apiKey {self.location} {self.param_name}"
        return self.type


@dataclass
class Operation:
    """One method on one path of the contract."""

    method: str
    path: str
    operation_id: str | None
    summary: str
    parameters: list[Parameter]
    body_schema: dict[str, Any] | None
    body_media_type: str | None
    body_required: bool
    responses: dict[str, dict[str, Any]]
    #: Effective security requirements (operation's, else the document's).
    security: list[dict[str, list[str]]]
    requirements: list[str] = field(default_factory=list)
    identity_headers: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``METHOD /path``, the way findings name an endpoint."""
        return f"{self.method.upper()} {self.path}"

    def params(self, location: str) -> list[Parameter]:
        """Parameters in ``path``, ``query``, ``header`` or ``cookie``."""
        return [p for p in self.parameters if p.location == location]

    @property
    def secured_by_scheme(self) -> bool:
        """True when every alternative of the effective security names a scheme."""
        return bool(self.security) and all(self.security)

    @property
    def secured(self) -> bool:
        """True when the contract says a caller must be identified."""
        return self.secured_by_scheme or bool(self.identity_headers)

    def documents(self, status: int) -> bool:
        """Whether the contract lists ``status`` (exactly, as ``4XX``, or via ``default``)."""
        keys = {str(k).upper() for k in self.responses}
        return str(status) in keys or f"{str(status)[0]}XX" in keys or "DEFAULT" in keys

    def success_status(self) -> int | None:
        """The first documented 2xx status."""
        codes = sorted(
            int(k) for k in self.responses if str(k).isdigit() and str(k).startswith("2")
        )
        return codes[0] if codes else None

    def response_schema(self, status: int | None = None) -> dict[str, Any] | None:
        """The JSON schema of a response (the first 2xx when ``status`` is omitted)."""
        status = status if status is not None else self.success_status()
        response = self.responses.get(str(status)) if status is not None else None
        if not response:
            return None
        for media, content in (response.get("content") or {}).items():
            if "json" in media and isinstance(content, dict):
                schema = content.get("schema")
                return schema if isinstance(schema, dict) else None
        return None


@dataclass
class Resource:
    """An owned resource: created by a POST, addressed by an id in its item path."""

    name: str
    collection_path: str
    item_path: str
    id_param: str
    create: Operation
    id_field: str = "id"
    read: Operation | None = None
    update: Operation | None = None
    delete: Operation | None = None
    listing: Operation | None = None
    example: dict[str, Any] | None = None

    @property
    def parent_params(self) -> list[str]:
        """Path parameters of the collection (a nested resource's parents)."""
        return re.findall(r"\{([^}/]+)\}", self.collection_path)


@dataclass
class AuthFlow:
    """Registration and login operations the checker uses to get credentials."""

    login: Operation | None = None
    register: Operation | None = None
    username_field: str | None = None
    password_field: str | None = None
    token_field: str | None = None


@dataclass
class Contract:
    """The parsed contract."""

    path: Path
    raw: dict[str, Any]
    operations: list[Operation]
    schemes: dict[str, SecurityScheme]
    extension: BackforgeExtension
    resources: list[Resource]
    auth_flow: AuthFlow
    identity_header_names: list[str]
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, path: Path) -> Contract:
        """A contract with nothing in it, for runs whose contract could not be read."""
        return cls(
            path=path,
            raw={},
            operations=[],
            schemes={},
            extension=BackforgeExtension(),
            resources=[],
            auth_flow=AuthFlow(),
            identity_header_names=[],
        )

    def by_id(self, operation_id: str) -> Operation | None:
        """The operation with this ``operationId``."""
        return next((o for o in self.operations if o.operation_id == operation_id), None)

    def by_label(self, label: str) -> Operation | None:
        """The operation ``METHOD /path``."""
        return next((o for o in self.operations if o.label == label), None)

    def find(self, method: str, path: str) -> Operation | None:
        """The operation for ``method`` on ``path`` (templated, as in the contract)."""
        return self.by_label(f"{method.upper()} {path}")

    @property
    def used_schemes(self) -> list[SecurityScheme]:
        """Security schemes that at least one operation requires."""
        names: list[str] = []
        for operation in self.operations:
            for alternative in operation.security:
                for name in alternative:
                    if name not in names:
                        names.append(name)
        return [self.schemes[n] for n in names if n in self.schemes]

    def resource_for_param(self, param: str) -> Resource | None:
        """The resource whose item path is addressed by a path parameter of this name."""
        for resource in self.resources:
            if resource.id_param == param:
                return resource
        stem = re.sub(r"[_-]?id$", "", param, flags=re.IGNORECASE).lower()
        for resource in self.resources:
            name = resource.name.lower()
            if stem and (name == stem or name.rstrip("s") == stem or name == stem + "s"):
                return resource
        return None


class _Resolver:
    """Resolves local ``$ref``s (``#/...``) into deep copies, cutting cycles."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ContractError(f"only local $ref are supported, found {ref!r}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise ContractError(f"$ref {ref!r} does not resolve")
            node = node[part]
        return node

    def resolve(self, node: Any, stack: tuple[str, ...] = ()) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in stack or len(stack) > 30:
                    return {}
                target = self.resolve(self.lookup(ref), (*stack, ref))
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                if siblings and isinstance(target, dict):
                    return {**target, **self.resolve(siblings, stack)}
                return target
            return {k: self.resolve(v, stack) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v, stack) for v in node]
        return node


def _json_body(request_body: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    content = request_body.get("content") or {}
    for preferred in (
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        if preferred in content:
            schema = (content[preferred] or {}).get("schema")
            return (schema if isinstance(schema, dict) else {}), preferred
    for media, item in content.items():
        if "json" in media:
            schema = (item or {}).get("schema")
            return (schema if isinstance(schema, dict) else {}), media
    return None, None


def _operations(raw: dict[str, Any], resolver: _Resolver) -> list[Operation]:
    root_security = raw.get("security") or []
    operations: list[Operation] = []
    for path, item in (raw.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        item = resolver.resolve(item)
        shared = item.get("parameters") or []
        for method in HTTP_METHODS:
            spec = item.get(method)
            if not isinstance(spec, dict):
                continue
            params: dict[tuple[str, str], Parameter] = {}
            for p in [*shared, *(spec.get("parameters") or [])]:
                if isinstance(p, dict) and "name" in p and "in" in p:
                    params[(p["name"], p["in"])] = Parameter(
                        name=str(p["name"]),
                        location=str(p["in"]),
                        required=bool(p.get("required")) or p["in"] == "path",
                        schema=p.get("schema") or {},
                    )
            body_schema, media = None, None
            body = spec.get("requestBody")
            if isinstance(body, dict):
                body_schema, media = _json_body(body)
            text = " ".join(str(spec.get(k) or "") for k in ("summary", "description"))
            refs = expand_requirement_refs(text)
            for ref in spec.get("x-backforge-requirements") or []:
                if isinstance(ref, str) and ref not in refs:
                    refs.append(ref)
            security = spec.get("security", root_security)
            operations.append(
                Operation(
                    method=method,
                    path=str(path),
                    operation_id=spec.get("operationId"),
                    summary=str(spec.get("summary") or ""),
                    parameters=list(params.values()),
                    body_schema=body_schema,
                    body_media_type=media,
                    body_required=bool(isinstance(body, dict) and body.get("required")),
                    responses={str(k): v for k, v in (spec.get("responses") or {}).items()},
                    security=[dict(s) for s in security if isinstance(s, dict)],
                    requirements=refs,
                )
            )
    return operations


def _schemes(raw: dict[str, Any]) -> dict[str, SecurityScheme]:
    schemes: dict[str, SecurityScheme] = {}
    found = ((raw.get("components") or {}).get("securitySchemes")) or {}
    for name, spec in found.items():
        if not isinstance(spec, dict):
            continue
        schemes[name] = SecurityScheme(
            name=name,
            type=str(spec.get("type", "")),
            scheme=str(spec["scheme"]).lower() if spec.get("scheme") else None,
            location=spec.get("in"),
            param_name=spec.get("name"),
        )
    return schemes


def _identity_headers(operations: list[Operation], extension: BackforgeExtension) -> list[str]:
    explicit = extension.identity.header if extension.identity else None
    names: list[str] = [explicit] if explicit else []
    for operation in operations:
        rejects = "401" in operation.responses or "403" in operation.responses
        for p in operation.params("header"):
            if not p.required:
                continue
            lowered = p.name.lower()
            if explicit and lowered == explicit.lower():
                operation.identity_headers.append(p.name)
            elif not explicit and rejects and _IDENTITY_HEADER.search(p.name):
                operation.identity_headers.append(p.name)
                if lowered not in {n.lower() for n in names}:
                    names.append(p.name)
    public = set(extension.public)
    for operation in operations:
        if operation.operation_id in public:
            operation.identity_headers = []
    return names


def _object_properties(schema: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    props = dict(schema.get("properties") or {})
    for part in schema.get("allOf") or []:
        props.update(_object_properties(part))
    return props


def _id_field(create: Operation, id_param: str) -> str:
    props = _object_properties(create.response_schema())
    if id_param in props:
        return id_param
    if "id" in props:
        return "id"
    for name in props:
        if name.lower().endswith("id"):
            return name
    return "id"


def _resources(contract_ops: list[Operation], extension: BackforgeExtension) -> list[Resource]:
    by_id = {o.operation_id: o for o in contract_ops if o.operation_id}
    resources: list[Resource] = []
    for cfg in extension.resources:
        create = by_id.get(cfg.create)
        if create is None:
            continue
        read = by_id.get(cfg.read or "")
        item = read or by_id.get(cfg.update or "") or by_id.get(cfg.delete or "")
        item_path = item.path if item else create.path + "/{id}"
        params = re.findall(r"\{([^}/]+)\}$", item_path)
        resources.append(
            Resource(
                name=create.path.rstrip("/").rsplit("/", 1)[-1],
                collection_path=create.path,
                item_path=item_path,
                id_param=params[0] if params else "id",
                create=create,
                id_field=cfg.id_field,
                read=read,
                update=by_id.get(cfg.update or ""),
                delete=by_id.get(cfg.delete or ""),
                listing=by_id.get(cfg.list or ""),
                example=cfg.example,
            )
        )
    known = {r.collection_path for r in resources}
    by_label = {o.label: o for o in contract_ops}
    for create in contract_ops:
        if create.method != "post" or create.path in known or create.path.endswith("}"):
            continue
        pattern = re.compile(re.escape(create.path.rstrip("/")) + r"/\{([^}/]+)\}$")
        item_ops = [o for o in contract_ops if pattern.match(o.path)]
        if not item_ops:
            continue
        item_path = item_ops[0].path
        match = pattern.match(item_path)
        id_param = match.group(1) if match else "id"
        resources.append(
            Resource(
                name=create.path.rstrip("/").rsplit("/", 1)[-1],
                collection_path=create.path,
                item_path=item_path,
                id_param=id_param,
                create=create,
                id_field=_id_field(create, id_param),
                read=by_label.get(f"GET {item_path}"),
                update=by_label.get(f"PATCH {item_path}") or by_label.get(f"PUT {item_path}"),
                delete=by_label.get(f"DELETE {item_path}"),
                listing=by_label.get(f"GET {create.path}"),
            )
        )
    return resources


def _field(props: dict[str, Any], candidates: tuple[str, ...]) -> str | None:
    lowered = {k.lower(): k for k in props}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    return None


def _auth_flow(contract_ops: list[Operation], extension: BackforgeExtension) -> AuthFlow:
    identity = extension.identity
    flow = AuthFlow()
    by_id = {o.operation_id: o for o in contract_ops if o.operation_id}
    candidates = [o for o in contract_ops if o.method == "post" and not o.secured]
    if identity and identity.login:
        flow.login = by_id.get(identity.login)
    if identity and identity.register_op:
        flow.register = by_id.get(identity.register_op)
    for operation in candidates:
        props = _object_properties(operation.body_schema)
        if not any(_PASSWORD.search(name) for name in props):
            continue
        name = f"{operation.operation_id or ''} {operation.path}"
        response_props = _object_properties(operation.response_schema())
        issues_token = _field(response_props, tuple(t.lower() for t in TOKEN_FIELDS)) is not None
        if (
            flow.login is None
            and (issues_token or _LOGIN.search(name))
            and not _REGISTER.search(name)
        ):
            flow.login = operation
        elif flow.register is None and _REGISTER.search(name):
            flow.register = operation
    source = flow.register or flow.login
    if source is not None:
        props = _object_properties(source.body_schema)
        flow.password_field = next((n for n in props if _PASSWORD.search(n)), None)
        flow.username_field = _field(props, _USERNAME_FIELDS)
    issuer = flow.login or flow.register
    if identity and identity.token_field:
        flow.token_field = identity.token_field
    elif issuer is not None:
        # Login issues the token; without one, registration may answer with it.
        response_props = _object_properties(issuer.response_schema())
        flow.token_field = _field(response_props, tuple(t.lower() for t in TOKEN_FIELDS))
    return flow


def load_contract(path: Path) -> Contract:
    """Read and index the contract at ``path``.

    Raises:
        ContractError: The file is missing, not YAML/JSON, not OpenAPI 3, or its
            ``x-backforge`` extension is invalid.
    """
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractError(f"cannot read the contract {path}: {exc}") from exc
    except YAMLError as exc:
        raise ContractError(f"the contract {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not str(raw.get("openapi", "")).startswith("3"):
        raise ContractError(f"{path} is not an OpenAPI 3 document (no 'openapi: 3.x' field)")
    if not raw.get("paths"):
        raise ContractError(f"{path} has no paths")
    try:
        extension = BackforgeExtension.model_validate(raw.get(EXTENSION_KEY) or {})
    except ValidationError as exc:
        raise ContractError(f"invalid {EXTENSION_KEY} extension in {path}: {exc}") from exc
    resolver = _Resolver(copy.deepcopy(raw))
    operations = _operations(raw, resolver)
    schemes = _schemes(resolver.resolve(raw))
    identity_headers = _identity_headers(operations, extension)
    return Contract(
        path=path,
        raw=raw,
        operations=operations,
        schemes=schemes,
        extension=extension,
        resources=_resources(operations, extension),
        auth_flow=_auth_flow(operations, extension),
        identity_header_names=identity_headers,
    )
