"""SessionIndex: an in-memory index that mutates and queries locally and pushes to the cloud."""

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from protocol import StoredDocument
from protocol.push import PushBody
from reference.corpus import Corpus
from reference.embeddings import get_embedder, model_dimension
from reference.errors import InvalidArgumentError, ModelMismatchError
from reference.filters import compile_filter
from reference.transport import CloudTransport
from reference.types import (
    DocumentInfo,
    GetDocumentsOptions,
    MutationOptions,
    PushIndexResult,
    QueryOptions,
    QueryResultDocumentInfo,
    SearchResult,
)

CUSTOM = "custom"
DEFAULT_MODEL = "moss-minilm"
BUILTIN_MODELS = ("moss-minilm", "moss-mediumlm")


def _check_model_id(model_id: object) -> str:
    if model_id == CUSTOM or model_id in BUILTIN_MODELS:
        return model_id  # type: ignore[return-value]
    known = ", ".join(repr(m) for m in (*BUILTIN_MODELS, CUSTOM))
    raise InvalidArgumentError(f"model_id: unknown model {model_id!r}; expected one of {known}")


class SessionIndex:
    """Create one with ``Client.session(index_name, model_id=None)``."""

    def __init__(self, transport: CloudTransport | None, name: str, model_id: str) -> None:
        self._transport = transport
        self._name = name
        self._model_id = model_id
        self._corpus = Corpus()

    # --- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, transport: CloudTransport, name: str, model_id: str | None) -> "SessionIndex":
        if model_id is not None:
            _check_model_id(model_id)
        info = transport.index_info(name)
        if info is None:
            return cls(transport, name, model_id or DEFAULT_MODEL)
        if model_id is not None and model_id != info.model_id:
            raise ModelMismatchError(name, info.model_id, model_id)
        session = cls(transport, name, info.model_id)
        session._fill(transport, name, info)
        return session

    @classmethod
    def load(cls, transport: CloudTransport, name: str) -> "SessionIndex":
        session = cls(transport, name, CUSTOM)
        session._fill(transport, name, None)
        return session

    def _fill(self, transport: CloudTransport, name: str, info: Any) -> None:
        # The stored vectors are used as they are: resuming never runs the model.
        downloaded = transport.download(name, info)
        self._model_id = downloaded.info.model_id
        self._corpus.replace_all(downloaded.documents, downloaded.artifact.embeddings)

    # --- properties -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def doc_count(self) -> int:
        return len(self._corpus)

    @property
    def dimension(self) -> int | None:
        return self._corpus.dimension

    # --- mutation ---------------------------------------------------------------------------
    def add_docs(
        self, docs: Sequence[DocumentInfo], options: MutationOptions | None = None
    ) -> tuple[int, int]:
        """Add documents, embedding those without a vector; returns ``(added, updated)``.

        Upserts by default; ``MutationOptions(upsert=False)`` leaves existing ids alone. The
        whole call is checked before anything changes."""
        upsert = True if options is None or options.upsert is None else bool(options.upsert)
        rows = _check_documents(docs)
        if not upsert:
            rows = [r for r in rows if r[0].id not in self._corpus]
        if not rows:
            return 0, 0
        vectors = self._vectors_for(rows)
        added = sum(1 for stored, _ in rows if stored.id not in self._corpus)
        self._corpus.upsert([stored for stored, _ in rows], vectors)
        return added, len(rows) - added

    def _vectors_for(self, rows: list[tuple[StoredDocument, np.ndarray | None]]) -> np.ndarray:
        missing = [stored.id for stored, vector in rows if vector is None]
        if self._model_id == CUSTOM and missing:
            raise InvalidArgumentError(
                f"docs: model_id 'custom' needs an embedding on every document; missing on "
                f"{_list_ids(missing)}"
            )
        expected = self._corpus.dimension
        if self._model_id != CUSTOM:
            expected = model_dimension(self._model_id)
        given = [(stored.id, v) for stored, v in rows if v is not None]
        if given and expected is None:
            expected = len(given[0][1])
        for doc_id, vector in given:
            if len(vector) != expected:
                raise InvalidArgumentError(
                    f"docs[{doc_id!r}].embedding: expected dimension {expected}, got {len(vector)}"
                )
        matrix = np.empty((len(rows), expected or 0), dtype=np.float32)
        if missing:
            texts = [stored.text for stored, v in rows if v is None]
            embedded = iter(get_embedder(self._model_id).embed(texts))
        for i, (_, vector) in enumerate(rows):
            matrix[i] = vector if vector is not None else next(embedded)
        return matrix

    def delete_docs(self, doc_ids: Iterable[str]) -> int:
        """Delete by id; unknown ids are ignored. Returns how many were deleted."""
        ids = _check_ids(doc_ids, "doc_ids")
        return self._corpus.delete(ids)

    def get_docs(self, options: GetDocumentsOptions | None = None) -> list[DocumentInfo]:
        """Documents without embeddings: all of them, or ``doc_ids`` in the order asked."""
        options = options or GetDocumentsOptions()
        if options.doc_ids is not None:
            stored = self._corpus.get(_check_ids(options.doc_ids, "options.doc_ids"))
        else:
            stored = self._corpus.all()
        if options.filter is not None:
            keep = compile_filter(options.filter)
            stored = [d for d in stored if keep(d.metadata)]
        return [DocumentInfo(d.id, d.text, d.metadata, None, d.payload) for d in stored]

    # --- query ------------------------------------------------------------------------------
    def query(self, query: str, options: QueryOptions | None = None) -> SearchResult:
        """Hybrid search in memory: cosine on the vectors blended with BM25 by ``alpha``."""
        started = time.perf_counter()
        options = options or QueryOptions()
        if not isinstance(query, str):
            raise InvalidArgumentError(f"query: expected a string, got {type(query).__name__}")
        top_k = _check_top_k(5 if options.top_k is None else options.top_k)
        alpha = _check_alpha(0.8 if options.alpha is None else options.alpha)
        vector = self._query_vector(query, options)
        hits = self._corpus.search(vector, query, top_k=top_k, alpha=alpha, filter=options.filter)
        docs = [
            QueryResultDocumentInfo(d.id, d.text, d.metadata, score, d.payload) for d, score in hits
        ]
        elapsed = (time.perf_counter() - started) * 1000
        return SearchResult(docs, query, self._name, elapsed)

    def _query_vector(self, query: str, options: QueryOptions) -> np.ndarray | None:
        if options.embedding is not None:
            vector = _check_vector(options.embedding, "options.embedding")
            expected = self._corpus.dimension
            if self._model_id != CUSTOM:
                expected = model_dimension(self._model_id)
            if expected is not None and vector.shape[0] != expected:
                raise InvalidArgumentError(
                    f"options.embedding: expected dimension {expected}, got {vector.shape[0]}"
                )
            return vector
        if self._model_id == CUSTOM:
            raise InvalidArgumentError(
                "options.embedding: model_id 'custom' needs QueryOptions(embedding=...) on "
                "every query"
            )
        if len(self._corpus) == 0:
            return None
        return get_embedder(self._model_id).embed([query])[0]

    # --- persistence ------------------------------------------------------------------------
    def push_index(self) -> PushIndexResult:
        """Upload every document with its vector, creating or replacing the cloud index."""
        if len(self._corpus) == 0:
            raise InvalidArgumentError(f"push_index: session {self._name!r} has no documents")
        if self._transport is None:
            raise InvalidArgumentError("push_index: this index is not connected to a cloud")
        docs, vectors = self._corpus.snapshot()
        model = None if self._model_id == CUSTOM else self._model_id
        reply = self._transport.push(PushBody(self._name, model, docs, vectors))
        return PushIndexResult(reply.jobId, self._name, len(docs), reply.status)


# --- argument checks ------------------------------------------------------------------------
def _list_ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _check_top_k(top_k: object) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidArgumentError(f"options.top_k: expected an int >= 1, got {top_k!r}")
    return top_k


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise InvalidArgumentError(f"options.alpha: expected a number in [0, 1], got {alpha!r}")
    return float(alpha)


def _check_ids(ids: object, field: str) -> list[str]:
    if isinstance(ids, str) or not isinstance(ids, Iterable):
        raise InvalidArgumentError(f"{field}: expected a list of ids, got {type(ids).__name__}")
    out = list(ids)
    for i, doc_id in enumerate(out):
        if not isinstance(doc_id, str):
            raise InvalidArgumentError(
                f"{field}[{i}]: expected a string id, got {type(doc_id).__name__}"
            )
    return out


def _check_vector(values: object, field: str) -> np.ndarray:
    try:
        vector = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{field}: expected a list of numbers") from None
    if vector.ndim != 1 or vector.size == 0:
        raise InvalidArgumentError(f"{field}: expected a non-empty list of numbers")
    if not np.isfinite(vector).all():
        raise InvalidArgumentError(f"{field}: values must be finite (no NaN or infinity)")
    return vector


def _check_metadata(metadata: object, field: str) -> dict[str, Any] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError(
            f"{field}: expected a dict or None, got {type(metadata).__name__}"
        )
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(f"{field}: keys must be strings, got {key!r}")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidArgumentError(
                f"{field}[{key!r}]: values must be str, int or float, got {type(value).__name__}"
            )
        if isinstance(value, float) and not np.isfinite(value):
            raise InvalidArgumentError(f"{field}[{key!r}]: numbers must be finite")
    return dict(metadata)


def _check_documents(
    docs: object,
) -> list[tuple[StoredDocument, np.ndarray | None]]:
    if isinstance(docs, str | bytes | Mapping) or not isinstance(docs, Iterable):
        raise InvalidArgumentError(
            f"docs: expected a list of DocumentInfo, got {type(docs).__name__}"
        )
    rows: list[tuple[StoredDocument, np.ndarray | None]] = []
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        doc_id = getattr(doc, "id", None)
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidArgumentError(f"docs[{i}].id: expected a non-empty string, got {doc_id!r}")
        if doc_id in seen:
            raise InvalidArgumentError(f"docs[{i}].id: {doc_id!r} appears twice in one call")
        seen.add(doc_id)
        text = getattr(doc, "text", None)
        if not isinstance(text, str):
            raise InvalidArgumentError(
                f"docs[{doc_id!r}].text: expected a string, got {type(text).__name__}"
            )
        metadata = _check_metadata(getattr(doc, "metadata", None), f"docs[{doc_id!r}].metadata")
        raw = getattr(doc, "embedding", None)
        vector = None if raw is None else _check_vector(raw, f"docs[{doc_id!r}].embedding")
        rows.append((StoredDocument(doc_id, text, metadata, getattr(doc, "payload", None)), vector))
    return rows
