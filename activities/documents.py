"""Parts of the feature's documents: outlines, sections, requirement lines, contract digests.

A phase's context holds what its prompt names and no more. Where a whole document is
not needed, the model gets a digest (its outline with line numbers, so ``view_file``
can fetch any part) or the parts that concern it (a user story, the requirements a
task cites, the contract's operations on a path, a data-model entity). Everything
here is pure text in, text out: the same documents give the same context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

__all__ = [
    "Heading",
    "headings",
    "outline",
    "section",
    "requirement_ids",
    "requirement_lines",
    "story_section",
    "contract_operations",
    "entity_sections",
    "entity_digest",
]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_REQ_ID = re.compile(r"\b((?:FR|SC|NFR)-\d{3,})\b")
_REQ_RANGE = re.compile(
    r"\b(FR|SC|NFR)-(\d{3,})\s*(?:to|through|–|—|-|\.\.)\s*(?:(?:FR|SC|NFR)-)?(\d{3,})\b"
)
_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


@dataclass(frozen=True)
class Heading:
    line: int  # 1-based
    level: int
    title: str


def headings(text: str) -> list[Heading]:
    """Markdown headings outside fenced code blocks."""
    out: list[Heading] = []
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced and (m := _HEADING.match(line)):
            out.append(Heading(n, len(m.group(1)), m.group(2)))
    return out


def outline(text: str, *, max_level: int = 3, limit: int = 40) -> str:
    """``L12 ## Requirements`` lines (what ``view_file`` ranges can fetch).

    Left out, as the path or a neighbour already fetches them: the document's title (a
    level-1 heading on line 1); a heading whose sub-headings start within two lines
    (``## Requirements`` before ``### Functional Requirements``); and a lone
    sub-heading right under its parent (``### Session ...`` under ``## Clarifications``).
    """
    found = [h for h in headings(text) if h.level <= max_level]
    drop: set[int] = set()
    for i, h in enumerate(found):
        if h.line == 1 and h.level == 1:
            drop.add(i)
            continue
        children = []
        for j in range(i + 1, len(found)):
            if found[j].level <= h.level:
                break
            children.append(j)
        if not children or found[children[0]].line - h.line > 2:
            continue
        direct = [j for j in children if found[j].level == found[children[0]].level]
        drop.add(children[0] if len(direct) == 1 else i)
    items = [h for i, h in enumerate(found) if i not in drop]
    lines = [f"L{h.line} {'#' * h.level} {h.title}" for h in items[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more headings")
    return "\n".join(lines)


def section(text: str, title: str | re.Pattern[str]) -> str | None:
    """The section under the first heading matching ``title`` (a prefix, or a pattern),
    up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    found = headings(text)
    for i, h in enumerate(found):
        hit = (
            title.search(h.title)
            if isinstance(title, re.Pattern)
            else h.title.lower().startswith(title.lower())
        )
        if not hit:
            continue
        end = next((n.line - 1 for n in found[i + 1 :] if n.level <= h.level), len(lines))
        return "\n".join(lines[h.line - 1 : end]).strip()
    return None


def requirement_ids(text: str) -> list[str]:
    """``FR-001``-style ids a text cites, ranges (``FR-001 to FR-010``) expanded, in order."""
    ids: list[str] = []
    for m in _REQ_RANGE.finditer(text):
        prefix, start, end = m.group(1), int(m.group(2)), int(m.group(3))
        width = len(m.group(2))
        if start <= end and end - start <= 100:
            ids += [f"{prefix}-{n:0{width}d}" for n in range(start, end + 1)]
    ids += _REQ_ID.findall(text)
    return list(dict.fromkeys(ids))


def requirement_lines(spec: str, ids: list[str]) -> list[str]:
    """The spec's definitions of ``ids`` (a bullet or row starting with the id), whole: a
    bullet's wrapped continuation lines are joined to it."""
    wanted = set(ids)
    lines = spec.splitlines()
    out = []
    for n, line in enumerate(lines):
        stripped = line.strip().lstrip("-*|").strip().lstrip("*").strip()
        m = _REQ_ID.match(stripped)
        if not (m and m.group(1) in wanted):
            continue
        parts = [line.strip()]
        if line.lstrip().startswith(("-", "*")):
            indent = len(line) - len(line.lstrip())
            for nxt in lines[n + 1 :]:
                body = nxt.strip()
                if not body or len(nxt) - len(nxt.lstrip()) <= indent or _HEADING.match(body):
                    break
                parts.append(body)
        out.append(" ".join(parts))
    return out


def story_section(spec: str, story: str) -> str | None:
    """``### User Story 1 - ...`` for ``US1``."""
    number = story.removeprefix("US")
    return section(spec, re.compile(rf"^User Story {re.escape(number)}\b", re.I))


def contract_operations(contract: str, *, paths: list[str] | None = None, limit: int = 60) -> str:
    """One line per operation: ``POST /bookmarks (L40): Save a bookmark -> 201, 401, 422``.

    Args:
        contract: The OpenAPI document's text.
        paths: Only paths under these prefixes (``/bookmarks`` also matches
            ``/bookmarks/{id}``); all paths when None.
        limit: Most operations listed.
    """
    try:
        doc = yaml.safe_load(contract)
    except yaml.YAMLError as err:
        return f"(the contract is not valid YAML: {str(err).splitlines()[0]})"
    items = doc.get("paths") if isinstance(doc, dict) else None
    if not isinstance(items, dict):
        return "(the contract lists no paths yet)"
    line_of: dict[str, int] = {}
    for n, line in enumerate(contract.splitlines(), 1):
        m = re.match(r"^\s{1,4}(/[^:]*):\s*$", line) or re.match(
            r"^\s{1,4}['\"](/[^'\"]*)['\"]:", line
        )
        if m:
            line_of.setdefault(m.group(1), n)
    out: list[str] = []
    for path, ops in items.items():
        if paths is not None and not any(_under(str(path), p) for p in paths):
            continue
        if not isinstance(ops, dict):
            continue
        for method in _METHODS:
            op = ops.get(method)
            if not isinstance(op, dict):
                continue
            codes = ", ".join(str(c) for c in (op.get("responses") or {}))
            summary = str(op.get("summary") or op.get("operationId") or "").strip()
            where = f" (L{line_of[path]})" if path in line_of else ""
            out.append(
                f"{method.upper()} {path}{where}: {summary} -> {codes}".replace(":  ->", " ->")
            )
    if len(out) > limit:
        out = [*out[:limit], f"... and {len(out) - limit} more operations"]
    return "\n".join(out) or "(no operations under these paths)"


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/") or "/"
    return path == prefix or path.startswith(prefix + "/")


def entity_sections(data_model: str, names: list[str], *, limit: int = 3000) -> str:
    """The data model's sections for the entities ``names`` mentions (case-insensitive)."""
    blocks = []
    wanted = {n.lower() for n in names}
    for h in headings(data_model):
        title = re.sub(r"[`*]", "", h.title).strip()
        first = re.split(r"[\s(:—-]", title, maxsplit=1)[0].lower()
        if h.level >= 2 and first in wanted:
            body = section(data_model, h.title)
            if body and body not in blocks:
                blocks.append(body)
    text = "\n\n".join(blocks)
    return text if len(text) <= limit else text[:limit].rsplit("\n", 1)[0] + "\n..."


def entity_digest(data_model: str, names: list[str]) -> str:
    """Where the data model's sections for ``names`` are: ``Bookmark L7-25, Tag L42-47``."""
    wanted = {n.lower() for n in names}
    lines = data_model.splitlines()
    found = headings(data_model)
    out = []
    for i, h in enumerate(found):
        title = re.sub(r"[`*]", "", h.title).strip()
        first = re.split(r"[\s(:—-]", title, maxsplit=1)[0].lower()
        if h.level >= 2 and first in wanted:
            end = next((n.line - 1 for n in found[i + 1 :] if n.level <= h.level), len(lines))
            while end > h.line and not lines[end - 1].strip():
                end -= 1
            out.append(f"{title} L{h.line}-{end}")
    return ", ".join(out)
