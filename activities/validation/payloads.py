"""Deterministic, valid request values built from JSON schemas.

The security and stateful checks need requests a correct service accepts: a
create body that passes validation, an id-shaped path value, a username that
matches the pattern. Random generation is schemathesis's job; here every value
is built from the schema's own hints (``const``, ``enum``, ``examples``,
``default``, ``format``, ``pattern``, lengths, bounds), made unique per call with
a counter and the run label, so a run is repeatable and records never collide
with an earlier run's.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

__all__ = ["PayloadFactory", "schema_types", "is_nullable", "matches_schema_string"]

_URLISH = re.compile(r"^https?://", re.IGNORECASE)


def schema_types(schema: dict[str, Any]) -> list[str]:
    """The schema's ``type`` as a list (``[]`` when untyped)."""
    value = schema.get("type")
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [value]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def is_nullable(schema: dict[str, Any]) -> bool:
    """Whether ``null`` is allowed (OpenAPI 3.0 ``nullable`` or a 3.1 ``null`` type)."""
    return bool(schema.get("nullable")) or "null" in schema_types(schema)


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    if "allOf" not in schema:
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        part = _merge_all_of(part) if isinstance(part, dict) else {}
        for key, value in part.items():
            if key == "properties":
                merged.setdefault("properties", {}).update(value)
            elif key == "required":
                merged["required"] = sorted(set(merged.get("required", [])) | set(value))
            else:
                merged.setdefault(key, value)
    return merged


def _choose(schema: dict[str, Any]) -> dict[str, Any]:
    schema = _merge_all_of(schema)
    for key in ("oneOf", "anyOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict)]
        non_null = [o for o in options if schema_types(o) != ["null"]]
        if non_null:
            rest = {k: v for k, v in schema.items() if k != key}
            return _choose({**rest, **non_null[0]})
    return schema


def matches_schema_string(value: str, schema: dict[str, Any]) -> bool:
    """Whether a string satisfies the schema's length and pattern constraints."""
    if len(value) < int(schema.get("minLength", 0)):
        return False
    if "maxLength" in schema and len(value) > int(schema["maxLength"]):
        return False
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            return re.search(pattern, value) is not None
        except re.error:
            return True
    return True


class PayloadFactory:
    """Builds valid, unique values for schemas.

    Args:
        label: The run label, mixed into every unique value.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._counter = itertools.count(1)

    def token(self) -> str:
        """A fresh unique token of lowercase letters and digits, e.g. ``k3f900017``.

        The counter has a fixed width so no token is a prefix of another, and a
        token found in a response names exactly one record.
        """
        return f"{self.label}{next(self._counter):05d}"

    # -- strings -------------------------------------------------------------

    def _string_candidates(self, schema: dict[str, Any], hint: str, unique: str) -> list[str]:
        fmt = str(schema.get("format", "")).lower()
        examples = [
            e
            for e in [*(schema.get("examples") or []), schema.get("example"), schema.get("default")]
            if isinstance(e, str)
        ]
        candidates: list[str] = []
        for example in examples:
            if _URLISH.match(example):
                joiner = "&" if "?" in example else "?"
                candidates.append(f"{example}{joiner}bf={unique}")
            elif "@" in example:
                local, _, domain = example.partition("@")
                candidates.append(f"{local}.{unique}@{domain}")
            else:
                candidates.append(f"{example}-{unique}")
            candidates.append(example)
        if fmt == "email" or "email" in hint.lower():
            candidates.append(f"bf.{unique}@example.com")
        if fmt in ("uri", "url", "iri") or hint.lower() in (
            "url",
            "uri",
            "link",
            "href",
            "website",
        ):
            candidates.append(f"https://example.com/bf/{unique}")
        if fmt == "date-time":
            candidates.append("2026-01-01T00:00:00Z")
        if fmt == "date":
            candidates.append("2026-01-01")
        if fmt == "uuid":
            digits = re.sub(r"[^0-9]", "", unique).rjust(12, "0")[-12:]
            candidates.append(f"00000000-0000-4000-8000-{digits}")
        if "password" in hint.lower():
            candidates.append(f"Bf-{unique}-Passw0rd!")
        base = re.sub(r"[^a-z0-9]", "", hint.lower())[:12] or "value"
        candidates += [
            f"bf-{base}-{unique}",
            f"bf_{base}_{unique}",
            f"bf{base}{unique}",
            f"bf{unique}",
            unique,
            f"Bf{unique}",
            f"BF{unique.upper()}",
        ]
        return candidates

    def string(self, schema: dict[str, Any], hint: str = "") -> str:
        """A valid, unique string for ``schema`` (``hint`` is the property name)."""
        if "const" in schema and isinstance(schema["const"], str):
            return schema["const"]
        enum = [e for e in schema.get("enum") or [] if isinstance(e, str)]
        if enum:
            return enum[0]
        unique = self.token()
        min_len = int(schema.get("minLength", 0))
        max_len = int(schema.get("maxLength", 10_000))
        for candidate in self._string_candidates(schema, hint, unique):
            if len(candidate) < min_len:
                candidate = candidate + "x" * (min_len - len(candidate))
            if len(candidate) > max_len:
                candidate = candidate[-max_len:] if max_len >= len(unique) else candidate[:max_len]
            if matches_schema_string(candidate, schema):
                return candidate
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            drawn = self._from_regex(pattern, min_len, max_len)
            if drawn is not None:
                return drawn
        return ("bf" + unique + "x" * min_len)[: max(min_len, min(max_len, 24))]

    @staticmethod
    def _from_regex(pattern: str, min_len: int, max_len: int) -> str | None:
        """A deterministic string matching ``pattern`` (Hypothesis, derandomized)."""
        try:
            from hypothesis import HealthCheck, find, settings
            from hypothesis import strategies as st

            return find(
                st.from_regex(pattern),
                lambda s: min_len <= len(s) <= max_len,
                settings=settings(
                    derandomize=True,
                    database=None,
                    max_examples=200,
                    suppress_health_check=list(HealthCheck),
                ),
            )
        except Exception:  # noqa: BLE001 - any failure means "no value", handled by the caller
            return None

    # -- everything ----------------------------------------------------------

    def value(self, schema: dict[str, Any], hint: str = "", *, full: bool = False) -> Any:
        """A valid value for ``schema``.

        Args:
            schema: A resolved JSON schema.
            hint: The property name, used to pick formats (``email``, ``url``, ...).
            full: Fill optional object properties too, not only required ones.
        """
        schema = _choose(schema)
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if schema.get("enum"):
            return copy.deepcopy(schema["enum"][0])
        types = [t for t in schema_types(schema) if t != "null"] or (
            ["null"] if schema_types(schema) == ["null"] else []
        )
        kind = types[0] if types else "string"
        if kind == "string":
            return self.string(schema, hint)
        if kind in ("integer", "number"):
            return self.number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        if kind == "array":
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            count = max(int(schema.get("minItems", 0)), 1 if full else 0)
            count = min(count, int(schema.get("maxItems", count)))
            return [self.value(items or {}, hint.rstrip("s"), full=full) for _ in range(count)]
        if kind == "object":
            return self.object(schema, full=full)
        return self.string({}, hint)

    @staticmethod
    def number(schema: dict[str, Any], *, integer: bool) -> int | float:
        """The smallest comfortable number within the schema's bounds (1 when unbounded)."""
        low = schema.get("minimum")
        exclusive = schema.get("exclusiveMinimum")
        if isinstance(exclusive, (int, float)) and not isinstance(exclusive, bool):
            low = exclusive + 1
        elif exclusive is True and low is not None:
            low = low + 1
        value = low if low is not None else 1
        high = schema.get("maximum")
        if high is not None and value > high:
            value = high
        return int(value) if integer else float(value)

    def object(self, schema: dict[str, Any], *, full: bool = False) -> dict[str, Any]:
        """An object with the required properties (all of them when ``full``)."""
        schema = _choose(schema)
        props: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        result: dict[str, Any] = {}
        for name, prop in props.items():
            if not isinstance(prop, dict) or prop.get("readOnly"):
                continue
            if name in required or full:
                result[name] = self.value(prop, name, full=full)
        return result

    def body_from_example(self, example: Any, schema: dict[str, Any] | None) -> Any:
        """A quickstart or extension example made unique and completed from the schema."""
        body = copy.deepcopy(example)
        if not isinstance(body, dict):
            return body
        props = (_choose(schema).get("properties") or {}) if schema else {}
        for name, value in list(body.items()):
            prop = props.get(name) if isinstance(props.get(name), dict) else {}
            if isinstance(value, str):
                unique = self.token()
                if _URLISH.match(value):
                    candidates = [f"{value}{'&' if '?' in value else '?'}bf={unique}"]
                else:
                    candidates = [
                        f"{value} {unique}",
                        f"{value}_{unique}",
                        f"{value}-{unique}",
                        f"{value}{unique}",
                    ]
                for candidate in candidates:
                    if matches_schema_string(candidate, prop or {}):
                        body[name] = candidate
                        break
        if schema:
            for name, value in self.object(schema).items():
                body.setdefault(name, value)
        return body
