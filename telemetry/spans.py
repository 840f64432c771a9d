"""Spans around the work activities do: tool calls, sandboxed runs, git pushes.

Each helper records only fields known to be safe (names, counts, exit codes, a remote
URL without its credentials); error descriptions are scrubbed here and again by the
exporter (``telemetry.redact``). The sandbox and the push also count themselves in
the metrics (``telemetry.metrics``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AnyValue

from telemetry import metrics
from telemetry.redact import redact, redact_url
from telemetry.tracing import tracer

__all__ = ["SandboxSpan", "ToolSpan", "push_span", "tool_span"]

_MAX_ARGV_SHOWN = 3
_MAX_ARG_CHARS = 80


class _ToolResult(Protocol):
    is_error: bool


class _CommandResult(Protocol):
    exit_code: int
    timed_out: bool
    duration_s: float
    output_bytes: int
    isolation: list[str]
    warnings: list[str]


class ToolSpan:
    """The span of one tool call; ``record`` notes what the tool answered."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def record(self, result: _ToolResult) -> None:
        """Mark the call as failed when the tool answered with an error."""
        if result.is_error:
            self.span.set_attribute("error.type", "tool_error")
            self.span.set_status(Status(StatusCode.ERROR, "the tool answered with an error"))


@contextmanager
def tool_span(name: str, *, call_id: str | None = None) -> Iterator[ToolSpan]:
    """One tool call (GenAI ``execute_tool``), e.g. around ``toolbox.execute(call)``.

    Args:
        name: The tool's name (``write_file``, ``run_tests``...).
        call_id: The model's id for the call.
    """
    attributes: dict[str, str] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.type": "function",
    }
    if call_id:
        attributes["gen_ai.tool.call.id"] = call_id
    with tracer().start_as_current_span(
        f"execute_tool {name}", kind=SpanKind.INTERNAL, attributes=attributes
    ) as span:
        yield ToolSpan(span)


def _shown_argv(argv: Sequence[str]) -> list[str]:
    shown = [a if len(a) <= _MAX_ARG_CHARS else a[:_MAX_ARG_CHARS] + "…" for a in argv]
    return [redact(a) for a in shown[:_MAX_ARGV_SHOWN]]


class SandboxSpan:
    """One sandboxed run, from launch to ``close``: one span and its metrics.

    Not a context manager because a run may outlive the call that starts it (a
    service stays up while it is validated); ``end`` is idempotent.
    """

    def __init__(self, argv: Sequence[str], *, timeout_s: float, network: bool) -> None:
        self._started = time.monotonic()
        self._ended = False
        self.span = tracer().start_span(
            f"sandbox.run {argv[0] if argv else ''}".strip(),
            kind=SpanKind.INTERNAL,
            attributes={
                "process.command_args": _shown_argv(argv),
                "backforge.sandbox.argc": len(argv),
                "backforge.sandbox.timeout_s": float(timeout_s),
                "backforge.sandbox.network": network,
            },
        )

    def end(self, result: _CommandResult | None = None, error: BaseException | None = None) -> None:
        """Close the span with what the run did (or the error that stopped it)."""
        if self._ended:
            return
        self._ended = True
        seconds = time.monotonic() - self._started
        if result is not None:
            outcome = (
                "timeout" if result.timed_out else ("ok" if result.exit_code == 0 else "failed")
            )
            self.span.set_attributes(
                {
                    "process.exit.code": result.exit_code,
                    "backforge.sandbox.timed_out": result.timed_out,
                    "backforge.sandbox.output_bytes": result.output_bytes,
                    "backforge.sandbox.isolation": list(result.isolation),
                    "backforge.sandbox.warnings": len(result.warnings),
                }
            )
            if result.timed_out:
                self.span.set_attribute("error.type", "timeout")
                self.span.set_status(Status(StatusCode.ERROR, "the run hit its timeout"))
        else:
            outcome = "error"
            kind = type(error).__name__ if error is not None else "unknown"
            self.span.set_attribute("error.type", kind)
            self.span.set_status(Status(StatusCode.ERROR, redact(f"{kind}: {error}")[:300]))
        metrics.record_sandbox_run(outcome, seconds)
        self.span.end()


@contextmanager
def push_span(remote_url: str, refs: Sequence[str]) -> Iterator[Span]:
    """One ``git push`` of ``refs`` to ``remote_url`` (credentials never recorded)."""
    attributes: dict[str, AnyValue] = {
        "backforge.git.remote": redact_url(remote_url),
        "backforge.git.refs": list(refs),
        "backforge.git.ref_count": len(refs),
    }
    with tracer().start_as_current_span(
        "git.push",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as err:
            kind = type(err).__name__
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, redact(f"{kind}: {err}")[:300]))
            metrics.record_push("rejected" if kind == "PushRejected" else "error")
            raise
        metrics.record_push("ok")
