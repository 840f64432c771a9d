"""Keeping secrets out of spans: credentials in URLs, key-like tokens, the keys themselves.

Spans are built from known-safe fields, and every exporter is wrapped in
``RedactingExporter`` as well, so that an error message quoting a key (some providers
echo part of one) or a remote URL with a token in it is scrubbed before it leaves the
process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

__all__ = ["REDACTED", "RedactingExporter", "redact", "redact_url", "secret_values"]

REDACTED = "[REDACTED]"
#: Environment variable names that hold credentials.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.I)
#: Provider key prefixes and bearer tokens.
_KEY_LIKE = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}|\bgh[pousr]_[A-Za-z0-9]{16,}|\bglpat-[A-Za-z0-9_-]{16,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
)
#: ``scheme://user:password@host`` (also ``scheme://token@host``).
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
#: Shorter values are not treated as secrets (they would match ordinary words).
_MIN_SECRET_LEN = 8


def secret_values(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Values of environment variables whose names say they hold a credential."""
    env = os.environ if env is None else env
    found = {
        value
        for name, value in env.items()
        if _SECRET_NAME.search(name) and len(value.strip()) >= _MIN_SECRET_LEN
    }
    return tuple(sorted(found, key=len, reverse=True))


def redact_url(url: str) -> str:
    """``url`` without the user and password part (``https://[REDACTED]@host/...``)."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", url)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with credentials in URLs, key-like tokens and ``secrets`` replaced."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = redact_url(text)
    return _KEY_LIKE.sub(REDACTED, text)


def _value(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, (list, tuple)):
        return tuple(redact(v, secrets) if isinstance(v, str) else v for v in value)
    return value


def _attributes(attrs: Mapping[str, Any] | None, secrets: Sequence[str]) -> dict[str, Any]:
    return {key: _value(value, secrets) for key, value in (attrs or {}).items()}


def _scrubbed(span: ReadableSpan, secrets: Sequence[str]) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description, secrets))
    events = [
        Event(e.name, _attributes(e.attributes, secrets), timestamp=e.timestamp)
        for e in span.events
    ]
    return ReadableSpan(
        name=redact(span.name, secrets),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_attributes(span.attributes, secrets),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingExporter(SpanExporter):
    """Scrubs every span before handing it to ``inner``.

    Args:
        inner: The exporter that sends the spans on.
        secrets: Values to remove wherever they appear (default: the credentials in
            the environment when the exporter is made).
    """

    def __init__(self, inner: SpanExporter, *, secrets: Sequence[str] | None = None) -> None:
        self.inner = inner
        self.secrets = tuple(secrets) if secrets is not None else secret_values()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_scrubbed(span, self.secrets) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
