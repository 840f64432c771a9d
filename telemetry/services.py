"""Instrumenting a worker's ``Services``: every model it resolves is traced and counted."""

from __future__ import annotations

import dataclasses

from activities.models import ModelResolver
from activities.services import Services
from telemetry.genai import traced_model

__all__ = ["instrument_services"]


def instrument_services(services: Services) -> Services:
    """``services`` with ``traced_model`` as the last model wrapper (once, however often called).

    Last, so that a span is the call the provider sees (after any wrapper a test adds).
    """
    wrappers = services.models.wrappers
    if traced_model in wrappers:
        return services
    return dataclasses.replace(services, models=ModelResolver(wrappers=[*wrappers, traced_model]))
