"""Process-wide, lazily loaded embedders, one per model id."""

import threading
from collections.abc import Callable
from typing import NamedTuple

from . import mediumlm, minilm
from .embedder import Embedder


class _Model(NamedTuple):
    dimension: int
    load: Callable[[], Embedder]


_MODELS: dict[str, _Model] = {
    minilm.MODEL_ID: _Model(minilm.DIMENSION, minilm.load),
    mediumlm.MODEL_ID: _Model(mediumlm.DIMENSION, mediumlm.load),
}

KNOWN_MODELS: tuple[str, ...] = tuple(_MODELS)

_embedders: dict[str, Embedder] = {}
# One lock per model, made up front (so creating them needs no guard): a slow first load of
# one model (moss-mediumlm converts itself once) must not hold up loading another.
_locks: dict[str, threading.Lock] = {model_id: threading.Lock() for model_id in _MODELS}


def _model(model_id: str) -> _Model:
    model = _MODELS.get(model_id)
    if model is None:
        raise ValueError(
            f"unknown embedding model {model_id!r}; known models: {', '.join(KNOWN_MODELS)}"
        )
    return model


def model_dimension(model_id: str) -> int:
    """The vector size of ``model_id``, without loading the model."""
    return _model(model_id).dimension


def get_embedder(model_id: str) -> Embedder:
    """The embedder for ``model_id``, loaded on first use and shared by the whole process."""
    embedder = _embedders.get(model_id)
    if embedder is not None:
        return embedder
    model = _model(model_id)
    with _locks[model_id]:
        embedder = _embedders.get(model_id)
        if embedder is None:
            embedder = model.load()
            _embedders[model_id] = embedder
    return embedder


def model_calls() -> int:
    """``embed`` calls that ran a model, summed over every embedder loaded in this process."""
    return sum(e.calls for e in list(_embedders.values()))
