"""Which model providers an environment can serve: the API keys a model id needs (used by
the worker at start and by the CLI before it starts a feature).

Keys are read by the worker inside its activities, from the worker's own
environment (the terminal or service that runs ``worker.py``), never from the
CLI's or from workflow input. So the CLI can only say what *its* environment
lacks: ``start`` warns, the ``demo`` (whose worker is the CLI's own process)
refuses, and ``worker.py`` names the providers it can serve when it starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["PROVIDER_KEYS", "missing_key", "servable"]

#: Provider -> (key variable, variable that makes the key optional, e.g. a local server).
PROVIDER_KEYS: dict[str, tuple[str, str | None]] = {
    "anthropic": ("ANTHROPIC_API_KEY", None),
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
}


def missing_key(model_id: str, env: Mapping[str, str] | None = None) -> str | None:
    """The variable ``model_id`` needs that ``env`` (default: this process's) lacks."""
    environment = os.environ if env is None else env
    provider = model_id.split(":", 1)[0]
    if provider not in PROVIDER_KEYS:
        return None  # scripted: needs nothing
    key, instead = PROVIDER_KEYS[provider]
    if environment.get(key) or (instead and environment.get(instead)):
        return None
    return key


def servable(env: Mapping[str, str] | None = None) -> list[str]:
    """The providers ``env`` has keys for (``scripted`` always)."""
    return ["scripted"] + [p for p in PROVIDER_KEYS if missing_key(f"{p}:x", env) is None]
