"""The documents of one session or loaded index, kept in step with their vectors and BM25
postings, row for row."""

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from protocol import StoredDocument
from reference.bm25 import BM25
from reference.filters import BoolArray, MetadataColumns, compile_filter, filter_key
from reference.search import Hit as _Hit
from reference.search import VectorMatrix, follow_deletes, search

_MASKS_KEPT = 16


class Corpus:
    def __init__(self) -> None:
        self._matrix = VectorMatrix()
        # Built on the first query: resuming or filling a session that is only pushed never
        # pays for keyword postings (3-5 s at 100k documents).
        self._bm25: BM25 | None = None
        self._docs: list[StoredDocument] = []
        self._columns: MetadataColumns | None = None  # built on the first filtered query
        # The masks (and their rows) of the filters used since _columns was built, which
        # every change drops.
        self._masks: dict[Hashable, tuple[BoolArray, npt.NDArray[np.intp]]] = {}

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._matrix

    @property
    def dimension(self) -> int | None:
        return self._matrix.dimension

    def replace_all(self, docs: Sequence[StoredDocument], vectors: np.ndarray) -> None:
        """Hold exactly ``docs`` with ``vectors``, which may be taken over rather than copied:
        the caller must not use the array afterwards."""
        self._matrix, self._bm25, self._docs, self._columns = VectorMatrix(), None, [], None
        if docs:
            self.upsert(docs, vectors, adopt=True)

    def upsert(
        self, docs: Sequence[StoredDocument], vectors: np.ndarray, *, adopt: bool = False
    ) -> None:
        rows = self._matrix.upsert([d.id for d in docs], vectors, adopt=adopt)
        for row, doc in zip(rows.tolist(), docs, strict=True):
            if row == len(self._docs):
                self._docs.append(doc)
            else:
                self._docs[row] = doc
        if self._bm25 is not None:
            _index_terms(self._bm25, rows.tolist(), docs)
        self._columns = None

    def delete(self, ids: Sequence[str]) -> int:
        steps = self._matrix.delete(ids)
        if steps:
            follow_deletes(self._docs, steps)
            if self._bm25 is not None:
                self._bm25.delete(steps)
            self._columns = None
        return len(steps)

    def get(self, ids: Sequence[str]) -> list[StoredDocument]:
        """The documents of ``ids`` that exist, in the order asked."""
        rows = (self._matrix.row_of(i) for i in ids)
        return [self._docs[r] for r in rows if r is not None]

    def all(self) -> list[StoredDocument]:
        return list(self._docs)

    def search(
        self,
        vector: np.ndarray | None,
        text: str,
        *,
        top_k: int,
        alpha: float,
        filter: Mapping[str, object] | None,
    ) -> list[tuple[StoredDocument, float]]:
        candidates = survivors = None
        if filter is not None:
            candidates, survivors = self._mask(filter)
        if self._bm25 is None:
            self._bm25 = BM25()
            _index_terms(self._bm25, list(range(len(self._docs))), self._docs)
        hits: list[_Hit] = search(
            self._matrix, self._bm25, vector, text, top_k, alpha, candidates, survivors
        )
        return [(self._docs[row], score) for row, score in hits]

    def _mask(self, filter: Mapping[str, object]) -> tuple[BoolArray, npt.NDArray[np.intp]]:
        """Which documents pass ``filter``, as a mask and as rows. A filter used again before
        the next change reuses them: applications repeat a few filters (a tenant, a
        category), and at 1k documents compiling and applying one cost a filtered query more
        than scoring a tenth of the rows saved."""
        if self._columns is None:
            self._columns = MetadataColumns([d.metadata for d in self._docs])
            self._masks.clear()
        key = filter_key(filter)
        found = self._masks.get(key) if key is not None else None
        if found is None:
            mask = compile_filter(filter).mask(self._columns)
            rows = np.flatnonzero(mask)
            mask.flags.writeable = rows.flags.writeable = False
            found = (mask, rows)
            if key is not None:
                if len(self._masks) >= _MASKS_KEPT:
                    del self._masks[next(iter(self._masks))]  # the oldest
                self._masks[key] = found
        return found

    def snapshot(self) -> tuple[list[StoredDocument], np.ndarray]:
        """Documents and their vectors in row order, as pushed."""
        return list(self._docs), self._matrix.view()


def _index_terms(bm25: BM25, rows: list[int], docs: Sequence[StoredDocument]) -> None:
    # Metadata is indexed too: the published SDK's keyword side matches metadata values.
    bm25.upsert(rows, [d.text for d in docs], [d.metadata for d in docs])
