"""What a worker hands to its activities: model resolution and workspaces.

Activities are methods of small classes built with a ``Services`` (the Temporal
idiom for dependency injection): the worker decides which models and which
scratch area its activities use, and tests pass their own (fault-injecting model
wrappers, a private scratch directory) without any module-level state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.models import ModelResolver
from activities.workspace import Workspaces

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    """The worker's services, shared by every activity it runs."""

    models: ModelResolver = field(default_factory=ModelResolver)
    workspaces: Workspaces = field(default_factory=Workspaces)
