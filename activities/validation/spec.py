"""Reading spec.md: requirements with their strength, and stated performance targets.

The syntax parsed (one bullet per requirement, continuation lines indented)::

    - **FR-001** [HARD]: System MUST refuse requests without a user (401).
    - **FR-002** [SOFT]: Lists SHOULD be sorted oldest first.
    - **FR-003** [INFERRED]: Titles are at most 200 characters.
    - **FR-004**: Users MUST be able to delete a note.      (unclassified: HARD)
    - **SC-003** [HARD]: p95 under 200 ms at 50 requests/s.

The strength may also be written inside the bold (``**FR-001 [HARD]**:``), in
parentheses (``(HARD)``) or right after the colon (``: [HARD] System ...``).
Ids are ``FR``, ``NFR``, ``SC`` or ``SLA`` followed by digits. A requirement with
no strength is HARD, so the demo transcript's ``- **FR-001**: ...`` lines are all
HARD; success criteria (``SC-``) follow the same rule.

A performance target is a sentence in a requirement that names a latency bound in
ms or seconds (``under``, ``below``, ``within``, ``at most``, ``<``, ``<=``) together
with a percentile (``p95``, ``95th percentile``, ``median``) or a latency word
(``latency``, ``respond``, ``answer``), optionally a rate (``at 50 requests/s``,
``50 rps``) and an error bound (``error rate below 1%``). A bound with no
percentile is read as p95 and the report says so. A stated data volume or
setting (``with 10,000 bookmarks``) is kept as the target's precondition: the
bounded load does not reproduce it, and the report and confidence say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from activities.validation.models import Requirement, SlaTarget, Strength

__all__ = ["SpecDocument", "parse_spec", "parse_spec_text", "expand_requirement_refs", "parse_slas"]

_ID = r"(?:FR|NFR|SC|SLA)-\d{2,4}"
_STRENGTH = r"HARD|SOFT|INFERRED"
_BULLET = re.compile(
    rf"^(?P<indent>\s*)[-*+]\s+\*\*(?P<id>{_ID})(?:\s*[\[(](?P<s1>{_STRENGTH})[\])])?\*\*"
    rf"(?:\s*[\[(](?P<s2>{_STRENGTH})[\])])?\s*:?\s*(?:[\[(](?P<s3>{_STRENGTH})[\])])?\s*(?P<text>.*)$",
    re.IGNORECASE,
)
_NEW_BLOCK = re.compile(r"^\s*(?:[-*+]\s|#|\d+\.\s|\|)")
_REF_RANGE = re.compile(
    r"\b(FR|NFR|SC|SLA)-(\d{2,4})\s*(?:to|through|thru|–|—|\.\.|-)\s*(?:(?:FR|NFR|SC|SLA)-)?(\d{2,4})\b"
)
_REF = re.compile(r"\b(?:FR|NFR|SC|SLA)-\d{2,4}\b")

_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"
_LATENCY = re.compile(
    rf"(?:under|below|less than|within|at most|no more than|<=|<|≤)\s*{_NUMBER}\s*"
    r"(ms|milliseconds?|msec|s|secs?|seconds?)\b",
    re.IGNORECASE,
)
_PERCENTILE = re.compile(
    r"\bp(50|90|95|99)\b|\b(50|90|95|99)(?:th|%)?[\s-]*percentile\b|\b(median)\b", re.IGNORECASE
)
_RATE = re.compile(
    rf"{_NUMBER}\s*(?:requests?|reqs?|calls?)\s*(?:/|per)\s*(?:s|sec|second)\b|{_NUMBER}\s*(?:rps|req/s)\b",
    re.IGNORECASE,
)
_ERRORS = re.compile(
    rf"error[- ]rate\b[^.;%]{{0,30}}?(?:under|below|less than|at most|no more than|<=|<|≤)\s*{_NUMBER}\s*%",
    re.IGNORECASE,
)
_PRECONDITION = re.compile(
    r"\b(?:with|for|over|across|given)\s+(?:up to\s+|at least\s+)?(\d[\d,]*(?:\.\d+)?\s*(?:k|m|thousand|million)?\s+"
    r"(?!ms\b|milliseconds?\b|s\b|secs?\b|seconds?\b|minutes?\b|requests?\b|rps\b|percent\b|%)[a-z][a-z-]*"
    r"(?:\s+(?!for\b|per\b|at\b|in\b|on\b|and\b|with\b|the\b|a\b|each\b|every\b)[a-z][a-z-]*)?)",
    re.IGNORECASE,
)
_LATENCY_WORDS = re.compile(r"latenc|respon|answer|percentile|\bp\d\d\b|median", re.IGNORECASE)


@dataclass
class SpecDocument:
    """What the checker takes from spec.md."""

    requirements: list[Requirement] = field(default_factory=list)
    slas: list[SlaTarget] = field(default_factory=list)

    def get(self, requirement_id: str) -> Requirement | None:
        """The requirement with this id, if spec.md has it."""
        for requirement in self.requirements:
            if requirement.id == requirement_id:
                return requirement
        return None

    def strength_of(self, ids: list[str]) -> Strength | None:
        """The strongest strength among ``ids`` that spec.md defines (HARD > SOFT > INFERRED)."""
        found = {r.strength for r in self.requirements if r.id in ids}
        for strength in (Strength.HARD, Strength.SOFT, Strength.INFERRED):
            if strength in found:
                return strength
        return None


def expand_requirement_refs(text: str) -> list[str]:
    """Requirement ids mentioned in ``text``, ranges expanded, in first-seen order.

    ``"FR-002 to FR-005, FR-011"`` gives ``FR-002, FR-003, FR-004, FR-005, FR-011``.
    """
    spans: list[tuple[int, int]] = []
    mentions: list[tuple[int, list[str]]] = []
    for match in _REF_RANGE.finditer(text):
        prefix, start, end = match.group(1), int(match.group(2)), int(match.group(3))
        width = len(match.group(2))
        if 0 <= end - start <= 200:
            mentions.append(
                (match.start(), [f"{prefix}-{n:0{width}d}" for n in range(start, end + 1)])
            )
            spans.append(match.span())
    for match in _REF.finditer(text):
        if not any(a <= match.start() < b for a, b in spans):
            mentions.append((match.start(), [match.group(0)]))
    found: list[str] = []
    for _, refs in sorted(mentions, key=lambda m: m[0]):
        found.extend(r for r in refs if r not in found)
    return found


def _number(value: str) -> float:
    return float(value.replace(",", ""))


def parse_slas(text: str, *, requirement: str | None, strength: Strength) -> list[SlaTarget]:
    """Performance targets stated in one requirement's text (see the module docstring)."""
    targets: list[SlaTarget] = []
    for sentence in re.split(r"(?<=\.)\s+", text):
        latency = _LATENCY.search(sentence)
        errors = _ERRORS.search(sentence)
        if latency is not None and not _LATENCY_WORDS.search(sentence):
            latency = None
        if latency is None and errors is None:
            continue
        target = SlaTarget(text=sentence.strip()[:300], requirement=requirement, strength=strength)
        if latency is not None:
            value = _number(latency.group(1))
            unit = latency.group(2).lower()
            target.latency_ms = value if unit.startswith("m") else value * 1000.0
            percentile = _PERCENTILE.search(sentence)
            if percentile is None:
                target.percentile = 95
            elif percentile.group(3):
                target.percentile = 50
            else:
                target.percentile = int(percentile.group(1) or percentile.group(2))
        rate = _RATE.search(sentence)
        if rate is not None:
            target.rate_per_s = _number(rate.group(1) or rate.group(2))
        if errors is not None:
            target.max_error_rate = _number(errors.group(1)) / 100.0
        precondition = _PRECONDITION.search(sentence)
        if precondition is not None:
            target.precondition = precondition.group(1)
        targets.append(target)
    return targets


def parse_spec_text(text: str) -> SpecDocument:
    """Parse spec.md's text (see the module docstring for the syntax)."""
    doc = SpecDocument()
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _BULLET.match(lines[index])
        index += 1
        if match is None:
            continue
        parts = [match.group("text").strip()]
        indent = len(match.group("indent"))
        while index < len(lines):
            line = lines[index]
            if (
                not line.strip()
                or _NEW_BLOCK.match(line)
                or len(line) - len(line.lstrip()) <= indent
            ):
                break
            parts.append(line.strip())
            index += 1
        marker = match.group("s1") or match.group("s2") or match.group("s3")
        strength = Strength(marker.upper()) if marker else Strength.HARD
        requirement_id = match.group("id").upper()
        body = " ".join(p for p in parts if p)
        if doc.get(requirement_id) is not None:
            continue
        doc.requirements.append(
            Requirement(id=requirement_id, strength=strength, classified=bool(marker), text=body)
        )
        doc.slas.extend(parse_slas(body, requirement=requirement_id, strength=strength))
    return doc


def parse_spec(path: Path | None) -> SpecDocument:
    """Parse spec.md at ``path``; an absent file gives an empty document."""
    if path is None or not path.is_file():
        return SpecDocument()
    return parse_spec_text(path.read_text(encoding="utf-8", errors="replace"))
