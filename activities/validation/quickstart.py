"""Reading quickstart.md: the curl calls a person would make, as seed data for the checker.

Only what is useful and safe to reuse is taken: each ``curl`` command's method,
path, headers (shell variables such as ``ALICE='X-User-Id: alice'`` defined in the
same file are expanded), basic-auth user (``-u``) and JSON body (``-d``). The
checker uses them for identity values (which header carries the user, what a
user id looks like) and for valid example bodies of create operations.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["QuickstartCall", "Quickstart", "parse_quickstart", "parse_quickstart_text"]

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.+?)\s*$")


@dataclass
class QuickstartCall:
    """One curl command from quickstart.md."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    basic_auth: tuple[str, str] | None = None


@dataclass
class Quickstart:
    """All curl commands of quickstart.md, in order."""

    calls: list[QuickstartCall] = field(default_factory=list)

    def header_values(self, name: str) -> list[str]:
        """Distinct values the quickstart sends in header ``name`` (case-insensitive)."""
        values: list[str] = []
        for call in self.calls:
            for key, value in call.headers.items():
                if key.lower() == name.lower() and value not in values:
                    values.append(value)
        return values

    def bodies_for(self, method: str, template: str) -> list[Any]:
        """JSON bodies sent to ``method`` on a path matching the contract's ``template``."""
        pattern = re.compile("^" + re.sub(r"\\\{[^}/]+\\\}", r"[^/]+", re.escape(template)) + "$")
        return [
            c.body
            for c in self.calls
            if c.method == method.upper() and c.body is not None and pattern.match(c.path)
        ]


def _commands(text: str) -> list[str]:
    """Shell command lines, with backslash continuations joined."""
    joined: list[str] = []
    buffer = ""
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        joined.append(buffer + stripped)
        buffer = ""
    if buffer:
        joined.append(buffer)
    return joined


def _expand(value: str, variables: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        return variables.get(match.group(1) or match.group(2), match.group(0))

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, value)


def _parse_curl(tokens: list[str], variables: dict[str, str]) -> QuickstartCall | None:
    method: str | None = None
    url: str | None = None
    headers: dict[str, str] = {}
    body: Any = None
    basic: tuple[str, str] | None = None
    index = 1
    while index < len(tokens):
        token = tokens[index]
        nxt = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in ("-X", "--request"):
            method, index = nxt.upper(), index + 2
        elif token in ("-H", "--header"):
            name, _, value = _expand(nxt, variables).partition(":")
            if name.strip() and value.strip():
                headers[name.strip()] = value.strip()
            index += 2
        elif token in ("-d", "--data", "--data-raw", "--data-binary", "--json"):
            raw = _expand(nxt, variables)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            index += 2
        elif token in ("-u", "--user"):
            user, _, password = _expand(nxt, variables).partition(":")
            basic = (user, password)
            index += 2
        elif token in ("-o", "-w", "--output", "--write-out", "-A", "-e", "-b", "-c", "-m"):
            index += 2
        elif token.startswith("-"):
            index += 1
        else:
            url = _expand(token, variables)
            index += 1
    if url is None:
        return None
    parts = urlsplit(
        url if "://" in url else "http://host" + (url if url.startswith("/") else "/" + url)
    )
    path = parts.path or "/"
    if method is None:
        method = "POST" if body is not None else "GET"
    return QuickstartCall(method=method, path=path, headers=headers, body=body, basic_auth=basic)


def parse_quickstart_text(text: str) -> Quickstart:
    """Parse the curl commands of a quickstart (see the module docstring)."""
    quickstart = Quickstart()
    variables: dict[str, str] = {}
    for command in _commands(text):
        assign = _ASSIGN.match(command)
        if assign and "curl" not in command:
            try:
                parts = shlex.split(assign.group(2))
            except ValueError:
                continue
            if parts:
                variables[assign.group(1)] = parts[0]
            continue
        start = command.find("curl ")
        if start < 0:
            continue
        snippet = command[start:].split(" # ", 1)[0]
        try:
            tokens = shlex.split(snippet)
        except ValueError:
            continue
        call = _parse_curl(tokens, variables)
        if call is not None:
            quickstart.calls.append(call)
    return quickstart


def parse_quickstart(path: Path | None) -> Quickstart:
    """Parse quickstart.md at ``path``; an absent file gives no calls."""
    if path is None or not path.is_file():
        return Quickstart()
    return parse_quickstart_text(path.read_text(encoding="utf-8", errors="replace"))
