"""Pick a model by id: ``scripted:<transcript>``, ``anthropic:<model>``, ``openai:<model>``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from activities.models.base import Model, ModelError
from activities.models.scripted import ScriptedModel, resolve_transcript

__all__ = ["ModelResolver", "ModelWrapper", "validate_model_id"]

#: Wraps every resolved model (a worker can add tracing; tests inject faults or count calls).
ModelWrapper = Callable[[Model], Model]

_PROVIDERS = ("scripted", "anthropic", "openai")


def _split(model_id: str) -> tuple[str, str]:
    provider, sep, name = model_id.partition(":")
    if not sep or not name.strip() or provider not in _PROVIDERS:
        raise ValueError(
            f"unknown model id {model_id!r}; use scripted:<transcript.yaml>, "
            "anthropic:<model> (e.g. anthropic:claude-sonnet-4-6) or openai:<model> "
            "(e.g. openai:gpt-5; OPENAI_BASE_URL selects an OpenAI-compatible server)"
        )
    return provider, name.strip()


def validate_model_id(model_id: str) -> None:
    """Raise ``ValueError`` for a model id that cannot be resolved (no network, no keys)."""
    provider, name = _split(model_id)
    if provider == "scripted":
        try:
            resolve_transcript(name)
        except ModelError as err:
            raise ValueError(str(err)) from err


class ModelResolver:
    """Builds the model for an id, inside an activity (keys come from the worker's env).

    Args:
        wrappers: Applied to every resolved model, in order.
    """

    def __init__(self, *, wrappers: Sequence[ModelWrapper] = ()) -> None:
        self.wrappers = tuple(wrappers)

    def __call__(self, model_id: str) -> Model:
        provider, name = _split(model_id)
        model: Model
        if provider == "scripted":
            model = ScriptedModel(name)
        elif provider == "anthropic":
            from activities.models.anthropic_provider import AnthropicModel

            model = AnthropicModel(name)
        else:
            from activities.models.openai_provider import OpenAIModel

            model = OpenAIModel(name)
        for wrap in self.wrappers:
            model = wrap(model)
        return model
