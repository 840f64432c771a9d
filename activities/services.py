"""What a worker hands to its activities: model resolution and workspaces.

Activities are methods of small classes built with a ``Services`` (the Temporal
idiom for dependency injection): the worker decides which models and which
scratch area its activities use, and tests pass their own (fault-injecting model
wrappers, a private scratch directory) without any module-level state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from activities.models import ModelResolver
from activities.workspace import Workspaces
from telemetry.genai import traced_model

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    """The worker's services, shared by every activity it runs."""

    models: ModelResolver = field(default_factory=ModelResolver)
    workspaces: Workspaces = field(default_factory=Workspaces)

    def traced(self) -> Services:
        """These services with every model traced and counted (``traced_model`` last).

        Last, so that a span is the call the provider sees (after any wrapper a test
        adds); applying it twice changes nothing.
        """
        wrappers = self.models.wrappers
        if traced_model in wrappers:
            return self
        return dataclasses.replace(self, models=ModelResolver(wrappers=[*wrappers, traced_model]))
