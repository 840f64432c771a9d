"""Model interface, providers, the scripted test double and the run store."""

from activities.models.base import (
    Message,
    Model,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from activities.models.registry import MODEL_WRAPPERS, resolve_model, validate_model_id
from activities.models.run_store import RecordingModel, RunStore

__all__ = [
    "Message",
    "Model",
    "ModelError",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "ToolSpec",
    "MODEL_WRAPPERS",
    "resolve_model",
    "validate_model_id",
    "RecordingModel",
    "RunStore",
]
