"""The Embedder: tokenizer + ONNX transformer + masked mean pooling + L2 normalisation."""

import threading
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

DEFAULT_BATCH_SIZE = 64


class Embedder:
    """Turns texts into unit-length float32 vectors with one sentence-embedding model.

    Instances are made by :func:`reference.embeddings.get_embedder`, one per model per process.
    ``embed`` may be called from several threads at once.
    """

    def __init__(
        self,
        model_id: str,
        dimension: int,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.batch_size = batch_size
        self._session = session
        self._tokenizer = tokenizer
        # Only feed the inputs the graph declares: mpnet-style models take no token_type_ids.
        self._input_names = frozenset(i.name for i in session.get_inputs())
        self._output_name = session.get_outputs()[0].name
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def calls(self) -> int:
        """Number of ``embed`` calls that ran the model (empty input does not count)."""
        return self._calls

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns a C-contiguous float32 array of shape (len(texts), dimension)
        whose rows have unit L2 norm, in the order of ``texts``."""
        if isinstance(texts, str):
            # A bare string is a Sequence[str] of characters; embedding each letter is never meant.
            raise TypeError("embed() takes a sequence of texts, not a single str")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        with self._calls_lock:
            self._calls += 1
        # Batches of similar length need little padding; character length is a cheap proxy for
        # token length and avoids tokenizing everything twice.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._embed_batch([texts[i] for i in rows])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self._session.run([self._output_name], feeds)[0]
        return mean_pool_normalize(hidden, attention_mask)


def mean_pool_normalize(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average the token vectors that are not padding, then scale each row to unit length."""
    mask = attention_mask.astype(np.float32)[:, :, None]
    summed = (hidden * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    pooled = summed / counts
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)
