"""Model calls as OpenTelemetry GenAI spans, through the ``ModelResolver`` wrapper seam.

``traced_model`` wraps every model the resolver builds (``ModelResolver(wrappers=
[traced_model])``), so each call paid for becomes one ``chat {model}`` span with the
GenAI semantic conventions' attributes, derived from ``ModelRequest``/``ModelResponse``
alone (no provider is touched). Calls replayed from the run store by a retried attempt
never reach the wrapped model, so they have no span: a span is a call paid for.
Prompt and completion text are not recorded (the conventions make content opt-in, and
it lives in the run store).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from telemetry import metrics
from telemetry.redact import redact
from telemetry.tracing import tracer

if TYPE_CHECKING:
    from activities.models.base import Model, ModelRequest, ModelResponse

__all__ = ["FINISH_REASONS", "PROVIDER_NAMES", "TracedModel", "traced_model"]

#: ``ModelResponse.stop_reason`` as the conventions' ``gen_ai.response.finish_reasons``.
FINISH_REASONS = {
    "end_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
    "other": "other",
}
#: Backforge's provider prefix as ``gen_ai.provider.name`` (and the older ``gen_ai.system``).
PROVIDER_NAMES = {"anthropic": "anthropic", "openai": "openai", "scripted": "backforge.scripted"}


def _request_attributes(provider: str, model: str, request: ModelRequest) -> dict[str, Any]:
    origin = request.origin
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": request.settings.max_tokens,
        "backforge.model.tools": len(request.tools),
        "backforge.model.messages": len(request.messages),
        "backforge.invocation": origin.invocation,
    }
    if request.settings.temperature is not None:
        attributes["gen_ai.request.temperature"] = request.settings.temperature
    if origin.phase:
        attributes["backforge.phase"] = origin.phase
    if origin.task_id:
        attributes["backforge.task_id"] = origin.task_id
    return attributes


def _response_attributes(response: ModelResponse) -> dict[str, Any]:
    usage = response.usage
    attributes: dict[str, Any] = {
        "gen_ai.response.finish_reasons": [FINISH_REASONS.get(response.stop_reason, "other")],
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "backforge.model.tool_calls": len(response.tool_calls),
        "backforge.cost_usd": usage.cost_usd,
    }
    if response.model:
        attributes["gen_ai.response.model"] = response.model
    if usage.cache_read_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
    return attributes


class TracedModel:
    """A model whose every call is a GenAI client span and counts in the model metrics.

    Args:
        inner: The model to call (``inner`` is also how ``RecordingModel.aclose`` finds
            the provider's connections).
    """

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        prefix, _, self.model_name = inner.model_id.partition(":")
        self.provider = PROVIDER_NAMES.get(prefix, prefix)

    async def request(self, request: ModelRequest) -> ModelResponse:
        phase = request.origin.phase or ""
        started = time.monotonic()
        with tracer().start_as_current_span(
            f"chat {self.model_name}",
            kind=SpanKind.CLIENT,
            attributes=_request_attributes(self.provider, self.model_name, request),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await self.inner.request(request)
            except BaseException as err:
                kind = type(err).__name__
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR, redact(f"{kind}: {err}")[:500]))
                metrics.record_model_call(
                    provider=self.provider,
                    model=self.model_name,
                    phase=phase,
                    outcome="error",
                    seconds=time.monotonic() - started,
                    usage=None,
                )
                raise
            span.set_attributes(_response_attributes(response))
        metrics.record_model_call(
            provider=self.provider,
            model=self.model_name,
            phase=phase,
            outcome=FINISH_REASONS.get(response.stop_reason, "other"),
            seconds=time.monotonic() - started,
            usage=response.usage,
        )
        return response


def traced_model(model: Model) -> Model:
    """The ``ModelWrapper`` that traces ``model`` (for ``ModelResolver(wrappers=[...])``)."""
    return TracedModel(model)
