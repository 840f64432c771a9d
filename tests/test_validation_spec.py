"""spec.md parsing: requirement strengths, continuation lines, references and SLAs."""

from __future__ import annotations

import pytest

from activities.validation.models import Strength
from activities.validation.spec import expand_requirement_refs, parse_slas, parse_spec_text

SPEC = """
# Feature Specification

## Requirements

- **FR-001** [HARD]: System MUST refuse requests without a token (401).
- **FR-002** [SOFT]: Lists SHOULD be sorted
  oldest first, across
  several lines.
- **FR-003** [INFERRED]: Titles are at most 200 characters.
- **FR-004**: Users MUST be able to delete a note.
- **FR-005 [soft]**: Inside the bold, lower case.
- **FR-006** (HARD): In parentheses.
- **FR-007**: [INFERRED] After the colon.
  - a nested bullet is not part of FR-007's text
- **SC-001** [HARD]: Listing answers with p95 under 200 ms at 50 requests/s.

Not a requirement: **FR-099** mentioned in prose.
"""


def test_strengths_in_every_accepted_form() -> None:
    doc = parse_spec_text(SPEC)
    got = {r.id: (r.strength, r.classified) for r in doc.requirements}
    assert got == {
        "FR-001": (Strength.HARD, True),
        "FR-002": (Strength.SOFT, True),
        "FR-003": (Strength.INFERRED, True),
        "FR-004": (Strength.HARD, False),
        "FR-005": (Strength.SOFT, True),
        "FR-006": (Strength.HARD, True),
        "FR-007": (Strength.INFERRED, True),
        "SC-001": (Strength.HARD, True),
    }


def test_continuation_lines_join_and_nested_bullets_do_not() -> None:
    doc = parse_spec_text(SPEC)
    assert doc.get("FR-002") is not None
    assert doc.get("FR-002").text == "Lists SHOULD be sorted oldest first, across several lines."  # type: ignore[union-attr]
    assert doc.get("FR-007").text == "After the colon."  # type: ignore[union-attr]


def test_strongest_strength_wins() -> None:
    doc = parse_spec_text(SPEC)
    assert doc.strength_of(["FR-002", "FR-003"]) is Strength.SOFT
    assert doc.strength_of(["FR-003", "FR-001"]) is Strength.HARD
    assert doc.strength_of(["FR-999"]) is None


def test_sla_from_a_success_criterion() -> None:
    (sla,) = parse_spec_text(SPEC).slas
    assert (sla.requirement, sla.percentile, sla.latency_ms, sla.rate_per_s, sla.strength) == (
        "SC-001",
        95,
        200.0,
        50.0,
        Strength.HARD,
    )


@pytest.mark.parametrize(
    ("text", "percentile", "latency_ms", "rate", "errors"),
    [
        ("p95 under 200 ms at 50 requests/s.", 95, 200.0, 50.0, None),
        ("Every operation answers in under 100 ms at the 95th percentile.", 95, 100.0, None, None),
        ("Median latency below 0.5 s.", 50, 500.0, None, None),
        ("p99 < 1 second at 1,000 rps; error rate below 1%.", 99, 1000.0, 1000.0, 0.01),
        ("Responds within 300 ms.", 95, 300.0, None, None),
        ("The error rate stays below 0.5% under load.", None, None, None, 0.005),
    ],
)
def test_sla_sentences(
    text: str,
    percentile: int | None,
    latency_ms: float | None,
    rate: float | None,
    errors: float | None,
) -> None:
    (sla,) = parse_slas(text, requirement="FR-1", strength=Strength.SOFT)
    assert (sla.percentile, sla.latency_ms, sla.rate_per_s, sla.max_error_rate) == (
        percentile,
        latency_ms,
        rate,
        errors,
    )


@pytest.mark.parametrize(
    ("text", "precondition"),
    [
        (
            "With 10,000 bookmarks for one user, every operation answers in under 100 ms at the 95th percentile.",
            "10,000 bookmarks",
        ),
        (
            "Listing answers in under 100 ms at p95 with 100 concurrent users.",
            "100 concurrent users",
        ),
        ("p95 under 200 ms at 50 requests/s.", None),
    ],
)
def test_sla_preconditions_are_kept(text: str, precondition: str | None) -> None:
    (sla,) = parse_slas(text, requirement=None, strength=Strength.HARD)
    assert sla.precondition == precondition


@pytest.mark.parametrize(
    "text",
    [
        "A new user can save a bookmark following the quickstart in under five minutes.",
        "Titles are under 200 characters.",
        "Deleting a collection never deletes a bookmark.",
    ],
)
def test_not_an_sla(text: str) -> None:
    assert parse_slas(text, requirement=None, strength=Strength.HARD) == []


def test_requirement_references_and_ranges() -> None:
    assert expand_requirement_refs("Save (FR-002 to FR-005, FR-011) and FR-001–FR-002; SC-001") == [
        "FR-002",
        "FR-003",
        "FR-004",
        "FR-005",
        "FR-011",
        "FR-001",
        "SC-001",
    ]
    assert expand_requirement_refs("User Story 1 (FR-001 to FR-010)")[-1] == "FR-010"
    assert expand_requirement_refs("nothing here") == []
