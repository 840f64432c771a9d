"""Model interface, providers, the scripted test double and the run store."""

from activities.models.base import (
    CallOrigin,
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
from activities.models.registry import ModelResolver, ModelWrapper, validate_model_id
from activities.models.run_store import RecordingModel, RunStore

__all__ = [
    "CallOrigin",
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
    "ModelResolver",
    "ModelWrapper",
    "validate_model_id",
    "RecordingModel",
    "RunStore",
]
