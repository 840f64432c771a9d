"""What the Anthropic and OpenAI adapters share: one streamed call, classified errors.

Each adapter builds its wire parameters (``_params``), streams one response
(``_stream``, heartbeating per chunk) and may drop an optional field a model
rejected (``_adapt``). This base turns that into ``request()``: a per-call
timeout, up to three resends after such a rejection, every SDK exception
classified into a Temporal error with secrets scrubbed, and usage priced.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from temporalio.exceptions import ApplicationError

from activities.models import pricing
from activities.models.base import ModelRequest, ModelResponse
from activities.models.errors import ModelErrorType, from_exception

__all__ = ["StreamingProvider"]

log = logging.getLogger(__name__)


class StreamingProvider:
    """Base of the SDK adapters; subclasses set the attributes and three methods below."""

    #: The SDK's 400 error class, the only one ``_adapt`` may recover from.
    bad_request_error: ClassVar[type[Exception]]
    model_id: str
    key_env: str
    base_url_env: str
    _secrets: tuple[str, ...]
    _client: Any

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def _stream(self, params: dict[str, Any]) -> ModelResponse:
        raise NotImplementedError

    def _adapt(self, err: Any, params: dict[str, Any]) -> bool:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the SDK client's connection pool (the agent does this when a run ends)."""
        await self._client.close()

    async def request(self, request: ModelRequest) -> ModelResponse:
        """Send one request (streamed) and return the complete response.

        Raises:
            ApplicationError: Classified failures (see :mod:`.errors`).
        """
        started = time.monotonic()
        try:
            async with asyncio.timeout(request.settings.timeout_s):
                for _ in range(3):
                    params = self._params(request)
                    try:
                        response = await self._stream(params)
                        break
                    except self.bad_request_error as err:
                        if not self._adapt(err, params):
                            raise
                else:  # pragma: no cover - three adaptations in a row
                    raise ApplicationError(
                        f"{self.model_id} kept rejecting the request",
                        type=ModelErrorType.BAD_REQUEST,
                        non_retryable=True,
                    )
        except Exception as exc:
            error = from_exception(
                exc,
                model_id=self.model_id,
                key_env=self.key_env,
                base_url_env=self.base_url_env,
                secrets=self._secrets,
            )
            if error is None:
                raise
            log.info("model call failed: %s", error)
            raise error from None
        response.usage.model_seconds = round(time.monotonic() - started, 6)
        response.usage.cost_usd = pricing.cost_usd(self.model_id, response.usage)
        return response
