"""Span trees for assertions: finished SDK spans indexed by id, parent and name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["SpanTree"]


class SpanTree:
    """The spans of one trace, with the walks the assertions need."""

    def __init__(self, spans: Iterable[ReadableSpan]) -> None:
        self.spans = list(spans)
        self.by_id = {s.context.span_id: s for s in self.spans if s.context is not None}

    @classmethod
    def of_trace(cls, spans: Sequence[ReadableSpan], root_name: str) -> SpanTree:
        """The trace whose root span is named ``root_name`` (exactly one must exist)."""
        roots = [s for s in spans if s.name == root_name and s.parent is None]
        assert len(roots) == 1, [s.name for s in spans if s.parent is None][:20]
        trace_id = roots[0].context.trace_id if roots[0].context else None
        return cls(s for s in spans if s.context is not None and s.context.trace_id == trace_id)

    def root(self) -> ReadableSpan:
        (root,) = [s for s in self.spans if s.parent is None]
        return root

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return self.by_id.get(span.parent.span_id) if span.parent is not None else None

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name.startswith(prefix)]

    def ancestors(self, span: ReadableSpan) -> list[ReadableSpan]:
        found = []
        current = self.parent(span)
        while current is not None and len(found) < 100:
            found.append(current)
            current = self.parent(current)
        return found

    def nearest(self, span: ReadableSpan, prefix: str) -> ReadableSpan | None:
        """The closest ancestor whose name starts with ``prefix``."""
        return next((a for a in self.ancestors(span) if a.name.startswith(prefix)), None)

    def orphans(self) -> list[ReadableSpan]:
        """Spans whose parent is not in the trace (the root excepted)."""
        return [
            s for s in self.spans if s.parent is not None and s.parent.span_id not in self.by_id
        ]

    def counts(self) -> Counter[str]:
        return Counter(s.name.split(" ")[0].split(":")[0] for s in self.spans)
