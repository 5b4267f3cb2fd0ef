"""The Embedder: tokenizer + ONNX transformer + masked mean pooling + L2 normalisation."""

import threading
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

DEFAULT_BATCH_SIZE = 64
# Upper bound on batch x sequence length per model run (see _embed_chunk). On 2 CPUs, a
# 64 x 256 batch of long texts ran 3-4x slower per text than batches capped near 2048 tokens.
DEFAULT_MAX_BATCH_TOKENS = 2048
_TOKENIZE_CHUNK = 2048


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
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        source: str = "",
    ) -> None:
        self.model_id = model_id
        self.dimension = dimension
        # Which weights the model id runs on here (moss-minilm has an int8 fallback), for
        # reports and tests.
        self.source = source
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
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
        # Tokenizing in chunks bounds the padded id matrices for very large calls.
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            chunk = list(texts[start : start + _TOKENIZE_CHUNK])
            out[start : start + len(chunk)] = self._embed_chunk(chunk)
        return out

    def _embed_chunk(self, texts: list[str]) -> np.ndarray:
        # The tokenizer pads to the longest text of the chunk; each batch below is then cut to
        # its own longest text, so padding is per batch (right padding makes the cut exact).
        encodings = self._tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        lengths = attention_mask.sum(axis=1)
        # Longest first, so batches hold texts of nearly equal length and little padding.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        start = 0
        while start < len(order):
            # Attention memory grows with batch x length^2: long texts go in smaller batches.
            size = max(1, min(self.batch_size, self.max_batch_tokens // int(lengths[order[start]])))
            rows = order[start : start + size]
            width = int(lengths[rows[0]])
            out[rows] = self._run(input_ids[rows, :width], attention_mask[rows, :width])
            start += size
        return out

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
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
