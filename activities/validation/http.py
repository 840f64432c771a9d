"""Sending one request to a documented operation and keeping it as evidence.

Every probe goes through a schemathesis ``Case`` built for the contract's
operation, so the request is shaped exactly as the contract says (path template,
media type), the response can be validated with schemathesis's own checks, and
the evidence carries schemathesis's curl line. Connection failures become a
``Call`` with an error instead of an exception, so a dead service is a finding.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from activities.validation.models import BODY_EXCERPT_CHARS, Evidence
from activities.validation.openapi import Operation

if TYPE_CHECKING:
    from schemathesis import Case, Response
    from schemathesis.schemas import APIOperation, BaseSchema

__all__ = ["Principal", "Call", "Prober", "excerpt", "NOT_SET", "MAX_CURL_CHARS"]

#: Curl lines longer than this (oversized probes) are cut, with the body size noted.
MAX_CURL_CHARS = 2000


class _NotSet:
    def __repr__(self) -> str:
        return "NOT_SET"


#: Marks "no request body" (``None`` is a JSON null body).
NOT_SET: Any = _NotSet()


@dataclass
class Principal:
    """A user the checker acts as: the credentials to attach to each request."""

    name: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    #: How this user was obtained, for the report (never a password).
    description: str = ""
    username: str | None = None
    password: str | None = None


def excerpt(text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of ``text``, marked when cut."""
    text = text.replace("\r", "")
    return text if len(text) <= limit else text[:limit] + f"… [{len(text)} chars]"


@dataclass
class Call:
    """A request to one operation and its response (or the reason there is none)."""

    operation: Operation
    case: Case
    response: Response | None
    error: str | None = None
    base_url: str = ""

    @property
    def status(self) -> int | None:
        """The response status, ``None`` when the request failed."""
        return self.response.status_code if self.response is not None else None

    @property
    def ok(self) -> bool:
        """A 2xx response."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The response body as text ('' when there is none)."""
        if self.response is None:
            return ""
        return self.response.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The response body as JSON, or ``None`` when it is not JSON."""
        if self.response is None or not self.response.content:
            return None
        try:
            return self.response.json()
        except Exception:  # noqa: BLE001 - any decoding failure means "not JSON"
            return None

    def curl(self) -> str:
        """A curl line that replays the request (cut for oversized bodies)."""
        try:
            line = self.case.as_curl_command(base_url=self.base_url)
        except Exception as exc:  # noqa: BLE001 - evidence rendering must never fail a check
            line = f"# could not render curl: {exc}"
        if len(line) > MAX_CURL_CHARS:
            line = line[:MAX_CURL_CHARS] + f"… [curl cut at {MAX_CURL_CHARS} of {len(line)} chars]"
        return line

    def evidence(self, note: str | None = None) -> Evidence:
        """This call as reproducible evidence."""
        body = self.text if self.response is not None else (self.error or "")
        return Evidence(
            curl=self.curl(),
            method=self.operation.method.upper(),
            url=self.case.formatted_path,
            status=self.status,
            body_excerpt=excerpt(body),
            note=note,
        )


class Prober:
    """Sends requests to documented operations of a running service.

    Args:
        schema: The schemathesis schema of the contract.
        base_url: Where the service listens.
        timeout: Seconds per request.
    """

    def __init__(self, schema: BaseSchema, base_url: str, *, timeout: float) -> None:
        self.schema = schema
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()
        self.requests_sent = 0
        self.operations_touched: set[str] = set()
        self._lock = threading.Lock()
        self._ops: dict[str, APIOperation] = {}

    def close(self) -> None:
        """Close the connection pool."""
        self.session.close()

    def api_operation(self, operation: Operation) -> APIOperation:
        """The schemathesis operation for one of the contract's operations."""
        found = self._ops.get(operation.label)
        if found is None:
            found = self.schema[operation.path][operation.method.upper()]
            self._ops[operation.label] = found
        return found

    def make_case(
        self,
        operation: Operation,
        *,
        principal: Principal | None,
        path: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = NOT_SET,
        drop_headers: tuple[str, ...] = (),
    ) -> Case:
        """A case for ``operation`` with the principal's credentials attached."""
        merged_headers: dict[str, str] = {}
        merged_query: dict[str, Any] = {}
        cookies: dict[str, str] = {}
        if principal is not None:
            merged_headers.update(principal.headers)
            merged_query.update(principal.query)
            cookies.update(principal.cookies)
        merged_headers.update(headers or {})
        merged_query.update(query or {})
        for name in drop_headers:
            for key in [k for k in merged_headers if k.lower() == name.lower()]:
                del merged_headers[key]
        kwargs: dict[str, Any] = {
            "path_parameters": dict(path or {}),
            "headers": merged_headers,
            "query": merged_query,
            "cookies": cookies,
        }
        if body is not NOT_SET:
            kwargs["body"] = body
            if operation.body_media_type:
                kwargs["media_type"] = operation.body_media_type
        return self.api_operation(operation).Case(**kwargs)

    def send(self, operation: Operation, case: Case) -> Call:
        """Send a prepared case; a transport failure is recorded, not raised."""
        with self._lock:
            self.requests_sent += 1
            self.operations_touched.add(operation.label)
        try:
            # Never follow a redirect: the checker talks to the service under test only.
            response = case.call(
                base_url=self.base_url,
                session=self.session,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return Call(
                operation, case, None, error=f"{type(exc).__name__}: {exc}", base_url=self.base_url
            )
        return Call(operation, case, response, base_url=self.base_url)

    def call(
        self,
        operation: Operation,
        *,
        principal: Principal | None,
        path: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = NOT_SET,
        drop_headers: tuple[str, ...] = (),
    ) -> Call:
        """Build and send a request to ``operation`` (see ``make_case`` for the arguments)."""
        case = self.make_case(
            operation,
            principal=principal,
            path=path,
            query=query,
            headers=headers,
            body=body,
            drop_headers=drop_headers,
        )
        return self.send(operation, case)

    def count(self, operation_label: str, requests_sent: int = 1) -> None:
        """Count requests sent outside ``send`` (schemathesis-driven runs)."""
        with self._lock:
            self.requests_sent += requests_sent
            self.operations_touched.add(operation_label)
