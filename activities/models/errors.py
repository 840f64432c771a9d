"""Turn model SDK failures into Temporal errors that say what to do.

The SDKs run with ``max_retries=0``: Temporal owns retries. Every failure of a
model call leaves the provider as a :class:`temporalio.exceptions.ApplicationError`
with a stable ``type``:

================================  ===========  =========================================
type                              retryable    raised for
================================  ===========  =========================================
``ModelRateLimited``              yes          429 (``retry-after`` honoured)
``ModelOverloaded``               yes          529, ``overloaded_error`` mid-stream
``ModelServerError``              yes          5xx, server errors inside a stream
``ModelTimeout``                  yes          408, connect/read timeouts, ``timeout_s``
``ModelConflict``                 yes          409
``ModelConnectionError``          yes          refused/reset/dropped connections
``ModelStreamIncomplete``         yes          a stream that ended before its last event
``ModelBadResponse``              yes          a body the SDK could not parse
``ModelAuthError``                no           401: the key was rejected
``ModelPermissionDenied``         no           403
``ModelBillingError``             no           402, 429 ``insufficient_quota``
``ModelNotFound``                 no           404: unknown model (or wrong base URL)
``ModelRequestTooLarge``          no           413, 400 "prompt is too long" and kin
``ModelBadRequest``               no           other 4xx
``ModelConfigError``              no           missing key, bad price file
``ModelOutputInvalid``            no           structured output still invalid (structured.py)
================================  ===========  =========================================

Retryable errors carry ``next_retry_delay`` when the server said how long to
wait (``retry-after-ms`` or ``retry-after``); otherwise the activity's retry
policy decides.

Secrets never leave this module: messages are built from the provider's
``error.message`` only, passed through :func:`scrub` (which removes ``sk-…``-like
tokens, bearer tokens, ``key=…`` pairs and the literal values of the key
variables), and errors are raised ``from None`` so the SDK exception, whose
request object holds the ``Authorization`` header, is not chained into the
Temporal failure.
"""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx2
import openai
from temporalio.exceptions import ApplicationError

__all__ = [
    "KEY_ENV_VARS",
    "MAX_RETRY_DELAY",
    "ModelErrorType",
    "config_error",
    "from_exception",
    "retry_delay_from_headers",
    "scrub",
]

#: Environment variables whose values are secrets wherever they appear.
KEY_ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY")

#: Longest delay we pass on from a ``retry-after`` header.
MAX_RETRY_DELAY = timedelta(minutes=15)

#: Longest provider message quoted in an error.
_MAX_MESSAGE_CHARS = 500


class ModelErrorType:
    """The stable ``ApplicationError.type`` strings."""

    RATE_LIMITED = "ModelRateLimited"
    OVERLOADED = "ModelOverloaded"
    SERVER_ERROR = "ModelServerError"
    TIMEOUT = "ModelTimeout"
    CONFLICT = "ModelConflict"
    CONNECTION = "ModelConnectionError"
    STREAM_INCOMPLETE = "ModelStreamIncomplete"
    BAD_RESPONSE = "ModelBadResponse"
    AUTH = "ModelAuthError"
    PERMISSION = "ModelPermissionDenied"
    BILLING = "ModelBillingError"
    NOT_FOUND = "ModelNotFound"
    TOO_LARGE = "ModelRequestTooLarge"
    BAD_REQUEST = "ModelBadRequest"
    CONFIG = "ModelConfigError"
    OUTPUT_INVALID = "ModelOutputInvalid"


# ---------------------------------------------------------------------------
# Scrubbing

_SECRET_PATTERNS = (
    # OpenAI / Anthropic style keys, including masked echoes like "sk-abc***xyz".
    re.compile(r"sk-[A-Za-z0-9_\-*.]{4,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9_\-.~+/=*]+"),
    re.compile(
        r"(?i)\b(x-api-key|api[_-]?key|authorization|auth[_-]?token)"
        r"(\"?'?\s*[:=]\s*\"?'?)[^\s\"',}]+"
    ),
    # Credentials in URLs: scheme://user:password@host
    re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"),
)


def _secret_values(extra: Iterable[str] = ()) -> list[str]:
    values = [os.environ.get(name, "") for name in KEY_ENV_VARS]
    values.extend(extra)
    # Longest first so a key that contains another is removed whole.
    return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove API keys and authorization material from ``text``.

    Args:
        text: Any text that may be logged, raised or recorded.
        secrets: Literal values to remove in addition to the key variables
            named in :data:`KEY_ENV_VARS`.

    Returns:
        The text with every secret replaced by ``[redacted]``.
    """
    for value in _secret_values(secrets):
        text = text.replace(value, "[redacted]")
    text = _SECRET_PATTERNS[0].sub("[redacted]", text)
    text = _SECRET_PATTERNS[1].sub("Bearer [redacted]", text)
    text = _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _SECRET_PATTERNS[3].sub(lambda m: f"{m.group(1)}[redacted]@", text)
    return text


def _short(text: str, secrets: Iterable[str]) -> str:
    text = scrub(" ".join(text.split()), secrets)
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return text


# ---------------------------------------------------------------------------
# Retry-after


def retry_delay_from_headers(
    headers: Mapping[str, str] | None, *, now: datetime | None = None
) -> timedelta | None:
    """The delay a server asked for, from ``retry-after-ms`` or ``retry-after``.

    Args:
        headers: Response headers (case-insensitive mapping, or lower-case keys).
        now: The current time, for ``retry-after`` given as an HTTP date.

    Returns:
        The delay, capped at :data:`MAX_RETRY_DELAY`, or None when the headers
        carry no usable hint.
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    seconds: float | None = None
    if (ms := lowered.get("retry-after-ms")) is not None:
        try:
            seconds = float(ms) / 1000.0
        except ValueError:
            seconds = None
    if seconds is None and (value := lowered.get("retry-after")) is not None:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds is None or seconds != seconds:  # None or NaN
        return None
    return min(timedelta(seconds=max(seconds, 0.0)), MAX_RETRY_DELAY)


# ---------------------------------------------------------------------------
# Classification

_TOO_LARGE_HINTS = (
    "too long",
    "too large",
    "too many tokens",
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "request_too_large",
    "exceeds the maximum",
)

#: Anthropic ``error.type`` values (as sent in the body or inside a stream).
_ANTHROPIC_TYPES: dict[str, tuple[str, bool]] = {
    "rate_limit_error": (ModelErrorType.RATE_LIMITED, True),
    "overloaded_error": (ModelErrorType.OVERLOADED, True),
    "api_error": (ModelErrorType.SERVER_ERROR, True),
    "timeout_error": (ModelErrorType.TIMEOUT, True),
    "authentication_error": (ModelErrorType.AUTH, False),
    "permission_error": (ModelErrorType.PERMISSION, False),
    "billing_error": (ModelErrorType.BILLING, False),
    "not_found_error": (ModelErrorType.NOT_FOUND, False),
    "request_too_large": (ModelErrorType.TOO_LARGE, False),
    "invalid_request_error": (ModelErrorType.BAD_REQUEST, False),
}


def config_error(message: str) -> ApplicationError:
    """A non-retryable configuration error (missing key, bad price file...)."""
    return ApplicationError(scrub(message), type=ModelErrorType.CONFIG, non_retryable=True)


def _body_error(body: object) -> tuple[str | None, str | None, str | None]:
    """``(message, type, code)`` from an error body of either provider."""
    if not isinstance(body, Mapping):
        return (body if isinstance(body, str) and body else None), None, None
    error = body.get("error", body)
    if not isinstance(error, Mapping):
        return (error if isinstance(error, str) else None), None, None
    message = error.get("message")
    etype = error.get("type")
    code = error.get("code")
    return (
        message if isinstance(message, str) else None,
        etype if isinstance(etype, str) else None,
        str(code) if code is not None else None,
    )


def _status_type(status: int, message: str, code: str | None) -> tuple[str, bool]:
    lowered = message.lower()
    if status == 429:
        if code == "insufficient_quota" or ("quota" in lowered and "exceeded" in lowered):
            return ModelErrorType.BILLING, False
        return ModelErrorType.RATE_LIMITED, True
    if status == 529:
        return ModelErrorType.OVERLOADED, True
    if status >= 500 or status == 499:
        return ModelErrorType.SERVER_ERROR, True
    if status == 408:
        return ModelErrorType.TIMEOUT, True
    if status == 409:
        return ModelErrorType.CONFLICT, True
    if status == 401:
        return ModelErrorType.AUTH, False
    if status == 402:
        return ModelErrorType.BILLING, False
    if status == 403:
        return ModelErrorType.PERMISSION, False
    if status == 404:
        return ModelErrorType.NOT_FOUND, False
    if status == 413 or (
        status == 400
        and (code == "context_length_exceeded" or any(h in lowered for h in _TOO_LARGE_HINTS))
    ):
        return ModelErrorType.TOO_LARGE, False
    return ModelErrorType.BAD_REQUEST, False


def _advice(etype: str, *, model_id: str, key_env: str, base_url_env: str) -> str:
    base_url = os.environ.get(base_url_env)
    where = f" (server {base_url_env}={scrub(base_url)})" if base_url else ""
    match etype:
        case ModelErrorType.AUTH:
            return f"authentication failed{where}: check {key_env}"
        case ModelErrorType.PERMISSION:
            return (
                f"permission denied for {model_id}{where}: "
                f"check that the key in {key_env} may use this model"
            )
        case ModelErrorType.BILLING:
            return f"billing or quota problem for {model_id}: check the account behind {key_env}"
        case ModelErrorType.NOT_FOUND:
            return f"not found: check the model id {model_id!r}" + (
                f" and {base_url_env}={scrub(base_url)}" if base_url else ""
            )
        case ModelErrorType.TOO_LARGE:
            return f"request too large: {model_id} refused it; shorten the context or conversation"
        case ModelErrorType.BAD_REQUEST:
            return f"request rejected by {model_id}"
        case ModelErrorType.RATE_LIMITED:
            return f"rate limited by {model_id}"
        case ModelErrorType.OVERLOADED:
            return f"{model_id} is overloaded"
        case ModelErrorType.TIMEOUT:
            return f"{model_id} timed out"
        case ModelErrorType.CONFLICT:
            return f"conflict reported by {model_id}"
        case _:
            return f"server error from {model_id}{where}"


def _make(
    etype: str,
    retryable: bool,
    text: str,
    *,
    status: int | None = None,
    request_id: str | None = None,
    delay: timedelta | None = None,
) -> ApplicationError:
    details: dict[str, Any] = {}
    if status is not None:
        details["status"] = status
    if request_id:
        details["request_id"] = request_id
    args: tuple[Any, ...] = (details,) if details else ()
    return ApplicationError(
        text,
        *args,
        type=etype,
        non_retryable=not retryable,
        next_retry_delay=delay if retryable else None,
    )


def from_exception(
    exc: BaseException,
    *,
    model_id: str,
    key_env: str,
    base_url_env: str,
    secrets: Iterable[str] = (),
) -> ApplicationError | None:
    """Classify one exception raised while calling a model.

    Args:
        exc: What the SDK (or the HTTP transport underneath it) raised.
        model_id: Full model id, for the message.
        key_env: The variable holding the key (named in auth errors).
        base_url_env: The variable that selects the server.
        secrets: Extra literal values to scrub (e.g. the key in use).

    Returns:
        The ApplicationError to raise (``from None``), or None when ``exc`` is not a
        model-call failure (a bug, a cancellation) and should propagate unchanged.
    """
    secrets = tuple(secrets)
    if isinstance(exc, ApplicationError):
        return None
    status: int | None = None
    headers: Mapping[str, str] | None = None
    request_id: str | None = None
    body: object | None = None

    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        status = exc.status_code
        headers = exc.response.headers
        request_id = exc.request_id
        body = exc.body
    elif isinstance(
        exc, openai.APITimeoutError | anthropic.APITimeoutError | httpx2.TimeoutException
    ):
        return _make(ModelErrorType.TIMEOUT, True, f"{model_id} timed out (no response in time)")
    elif isinstance(exc, TimeoutError):
        return _make(ModelErrorType.TIMEOUT, True, f"{model_id} call exceeded its timeout_s")
    elif isinstance(
        exc, openai.APIConnectionError | anthropic.APIConnectionError | httpx2.TransportError
    ):
        cause = exc.__cause__ or exc.__context__
        reason = _short(str(cause or exc), secrets) or type(exc).__name__
        return _make(
            ModelErrorType.CONNECTION,
            True,
            f"connection to {model_id} failed or dropped: {reason}",
        )
    elif isinstance(exc, openai.APIResponseValidationError | anthropic.APIResponseValidationError):
        return _make(
            ModelErrorType.BAD_RESPONSE,
            True,
            f"{model_id} sent a response the SDK could not read: {_short(exc.message, secrets)}",
            status=exc.status_code,
        )
    elif isinstance(exc, openai.APIError | anthropic.APIError):
        # An error event inside a stream (no HTTP status of its own).
        body = exc.body
    else:
        return None

    message, err_type, code = _body_error(body)
    message = message or (
        exc.message if isinstance(exc, openai.APIError | anthropic.APIError) else ""
    )
    message = _short(message or "", secrets)

    if status is None or status < 400:
        # Mid-stream error event: classify by the error type in the body.
        if err_type in _ANTHROPIC_TYPES:
            etype, retryable = _ANTHROPIC_TYPES[err_type]
        elif code and "rate_limit" in code:
            etype, retryable = ModelErrorType.RATE_LIMITED, True
        else:
            etype, retryable = ModelErrorType.SERVER_ERROR, True
    else:
        etype, retryable = _status_type(status, message, code)
        if err_type == "request_too_large" or (
            err_type == "invalid_request_error"
            and etype == ModelErrorType.BAD_REQUEST
            and status == 413
        ):
            etype, retryable = ModelErrorType.TOO_LARGE, False

    advice = _advice(etype, model_id=model_id, key_env=key_env, base_url_env=base_url_env)
    text = (
        f"{advice}" + (f" (HTTP {status})" if status else "") + (f": {message}" if message else "")
    )
    delay = retry_delay_from_headers(headers) if retryable else None
    return _make(
        etype, retryable, scrub(text, secrets), status=status, request_id=request_id, delay=delay
    )
