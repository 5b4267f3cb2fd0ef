"""Local sentence embeddings for the reference SDK (onnxruntime + tokenizers, no torch).

``get_embedder(model_id)`` returns the process-wide :class:`Embedder` for a built-in model;
``model_calls()`` lets tests prove that a code path (e.g. resuming a session) embedded nothing.
"""

from .embedder import Embedder
from .errors import ModelFallbackWarning, ModelUnavailableError
from .registry import KNOWN_MODELS, get_embedder, model_calls, model_dimension

__all__ = [
    "KNOWN_MODELS",
    "Embedder",
    "ModelFallbackWarning",
    "ModelUnavailableError",
    "get_embedder",
    "model_calls",
    "model_dimension",
]
