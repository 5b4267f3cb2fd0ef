"""The vector matrix of one session and the ranking of a query over it.

Ranking follows what the published SDK (``moss`` 1.21.0) was observed to do:

- ``alpha == 1``: rank by the inner product of the query and document vectors (cosine for
  unit vectors, which built-in models produce; custom vectors are ranked as given).
- ``alpha == 0``: only documents sharing a term with the query, ranked by BM25.
- in between: weighted reciprocal rank fusion. Each side keeps its best ``2 * top_k``
  candidates (the SDK's documented default ``candidate_depth``); a document in either list
  scores ``alpha / (30 + semantic_rank) + (1 - alpha) / (30 + keyword_rank)`` with 1-based
  ranks, a side it is missing from adding nothing. Scores are float32, as in the SDK, so
  near-equal keyword scores tie the way they do there.

Equal scores keep insertion order (an upsert keeps a document's place, a delete and re-add
moves it last), so results are deterministic. The score returned with each hit is the cosine
clamped to [0, 1] whatever ``alpha`` is, and 0 when the query ran without a vector or with
``alpha == 0``: the published SDK documents its score as "vector similarity alone, so alpha
and rank never change it".
"""

from __future__ import annotations

from collections.abc import Iterable, MutableSequence, Sequence
from numbers import Real
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from protocol.vectors import as_matrix
from reference.bm25 import BM25, tokenize

__all__ = ["DEPTH_PER_TOP_K", "RRF_K", "Hit", "VectorMatrix", "follow_deletes", "search"]

# Fitted on the published SDK: with k = 30, depth 2 * top_k and float32 arithmetic, 504 of
# 504 probe rankings came out identical; the textbook k = 60 matched a quarter of them.
RRF_K = 30
DEPTH_PER_TOP_K = 2
Hit = tuple[int, float]
"""A result: the row in the matrix and the score to report."""

T = TypeVar("T")
_Rows = npt.NDArray[np.intp]
_F32 = npt.NDArray[np.float32]


class VectorMatrix:
    """Document vectors as rows of one float32 matrix, with the doc id of every row.

    Capacity doubles as rows are added. Vectors are stored as given (after conversion to
    float32) so that a push uploads exactly what was added; norms are kept beside them for
    cosine. Each row also carries the sequence number of its document's first insertion,
    which orders ties. Deleting moves the last row into the hole, so row numbers are not
    stable across a delete: :meth:`delete` returns the moves so that row-ordered side tables
    can follow.
    """

    def __init__(self, dimension: int | None = None, capacity: int = 16) -> None:
        if dimension is not None and dimension < 1:
            raise ValueError(f"dimension: must be at least 1, got {dimension}")
        self._dimension = dimension
        self._capacity = max(1, capacity)
        self._data: _F32 | None = None
        self._norms = np.zeros(self._capacity, dtype=np.float32)
        self._seq = np.zeros(self._capacity, dtype=np.int64)
        self._next_seq = 0
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._rows

    @property
    def dimension(self) -> int | None:
        """Fixed by the first vectors added (or the constructor); ``None`` until then."""
        return self._dimension

    @property
    def ids(self) -> Sequence[str]:
        """The doc id of each row, in row order. Read it, never change it."""
        return self._ids

    def row_of(self, doc_id: str) -> int | None:
        return self._rows.get(doc_id)

    def view(self) -> _F32:
        """The live rows, shape ``(len(self), dimension)``, read-only, no copy."""
        if self._data is None:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        out = self._data[: len(self._ids)]
        out.flags.writeable = False
        return out

    def norms(self) -> _F32:
        """The L2 norm of each live row, read-only, no copy."""
        out = self._norms[: len(self._ids)]
        out.flags.writeable = False
        return out

    def sequence(self) -> npt.NDArray[np.int64]:
        """For each row, when its document was first inserted (smaller is earlier)."""
        out = self._seq[: len(self._ids)]
        out.flags.writeable = False
        return out

    # --- updates ----------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: object) -> _Rows:
        """Add or replace the vector of each id; return the row of each id, in order.

        A repeated id keeps its last vector. Raises ``ValueError`` for a dimension other than
        the matrix's, ragged or non-finite vectors, or ids and vectors of different lengths.
        """
        if isinstance(ids, str):
            raise TypeError("ids: expected a sequence of str, got one str")
        for i, doc_id in enumerate(ids):
            if not isinstance(doc_id, str):
                raise TypeError(f"ids[{i}]: expected str, got {type(doc_id).__name__}")
        matrix = as_matrix(vectors, field="vectors")
        if matrix.shape[0] != len(ids):
            raise ValueError(
                f"vectors: expected {len(ids)} vectors (one per id), got {matrix.shape[0]}"
            )
        if not ids:
            return np.zeros(0, dtype=np.intp)
        if self._dimension is not None and matrix.shape[1] != self._dimension:
            raise ValueError(
                f"vectors: expected dimension {self._dimension}, got {matrix.shape[1]}"
            )
        self._dimension = matrix.shape[1]
        self._reserve(len(self._ids) + len(ids))
        assert self._data is not None

        first_new = len(self._ids)
        known, order = self._rows, self._ids
        found: list[int] = []
        for doc_id in ids:
            row = known.get(doc_id)
            if row is None:
                row = known[doc_id] = len(order)
                order.append(doc_id)
            found.append(row)
        rows = np.array(found, dtype=np.intp)
        added = len(order) - first_new
        # New rows are appended in first-seen order, so their sequence numbers are a range.
        self._seq[first_new : len(order)] = np.arange(
            self._next_seq, self._next_seq + added, dtype=np.int64
        )
        self._next_seq += added
        if added == len(rows):
            # All new, hence all distinct and appended in order: plain slices, no gathering.
            target: slice | _Rows = slice(first_new, len(order))
            source = matrix
        else:
            # Keep the last occurrence of a repeated id: fancy assignment with repeated
            # indices does not promise which value lands.
            _, last_first = np.unique(rows[::-1], return_index=True)
            keep = len(rows) - 1 - last_first
            target, source = rows[keep], matrix[keep]
        self._data[target] = source
        # Summed in float64: squares of large float32 components overflow float32.
        self._norms[target] = np.sqrt(np.einsum("ij,ij->i", source, source, dtype=np.float64))
        return rows

    def delete(self, ids: Iterable[str]) -> list[tuple[int, int]]:
        """Remove the rows of ``ids`` (unknown ids are ignored).

        Returns one ``(vacated_row, last_row)`` step per removed document, in the order
        applied: the document at ``last_row`` moved to ``vacated_row`` (nothing moved when
        they are equal) and the table shrank by one. :func:`follow_deletes` replays them.
        """
        steps: list[tuple[int, int]] = []
        for doc_id in ids:
            row = self._rows.pop(doc_id, None)
            if row is None:
                continue
            last = len(self._ids) - 1
            if row != last:
                assert self._data is not None
                moved = self._ids[last]
                self._data[row] = self._data[last]
                self._norms[row] = self._norms[last]
                self._seq[row] = self._seq[last]
                self._ids[row] = moved
                self._rows[moved] = row
            self._ids.pop()
            steps.append((row, last))
        return steps

    def _reserve(self, size: int) -> None:
        if self._data is not None and size <= self._capacity:
            return
        capacity = self._capacity
        while capacity < size:
            capacity *= 2
        data = np.zeros((capacity, self._dimension or 0), dtype=np.float32)
        norms = np.zeros(capacity, dtype=np.float32)
        seq = np.zeros(capacity, dtype=np.int64)
        n = len(self._ids)
        if self._data is not None:
            data[:n] = self._data[:n]
        norms[:n] = self._norms[:n]
        seq[:n] = self._seq[:n]
        self._data, self._norms, self._seq, self._capacity = data, norms, seq, capacity


def follow_deletes(table: MutableSequence[T], steps: Sequence[tuple[int, int]]) -> None:
    """Apply the steps returned by :meth:`VectorMatrix.delete` to a row-ordered list."""
    for row, last in steps:
        table[row] = table[last]
        table.pop()


# --- ranking ---------------------------------------------------------------------------------
def _check_top_k(top_k: object) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise ValueError(f"top_k: expected an int, got {type(top_k).__name__}")
    if top_k < 0:
        raise ValueError(f"top_k: must be 0 or more, got {top_k}")
    return top_k


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise ValueError(f"alpha: expected a number from 0 to 1, got {type(alpha).__name__}")
    value = float(alpha)
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"alpha: must be from 0 to 1, got {alpha!r}")
    return value


def _check_query_vector(vector: object, dimension: int | None) -> _F32:
    q = np.asarray(vector, dtype=np.float32)
    if q.ndim != 1:
        raise ValueError(f"query_vector: expected one vector, got an array of shape {q.shape}")
    if dimension is not None and q.shape[0] != dimension:
        raise ValueError(f"query_vector: expected dimension {dimension}, got {q.shape[0]}")
    if not np.isfinite(q).all():
        raise ValueError("query_vector: values must be finite (no NaN or infinity)")
    return q


# Above about this many rows OpenBLAS runs a matrix-vector product on several threads; on a
# busy machine those threads wait on each other and a 10k-row query took 10x longer (measured:
# 11 ms against 0.8 ms). The product is memory-bound, so numpy's single-threaded SIMD loop
# (einsum) is as fast when the machine is idle and far steadier when it is not.
_BLAS_ROWS = 2048


def _matvec(vectors: _F32, q: _F32) -> npt.NDArray[np.float32]:
    if len(vectors) <= _BLAS_ROWS:
        return vectors @ q
    return np.einsum("ij,j->i", vectors, q)


def _similarities(
    matrix: VectorMatrix, q: _F32, rows: _Rows | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Inner products (what ranks) and cosines (what is reported) of the query with rows."""
    vectors, norms = matrix.view(), matrix.norms()
    if rows is None:
        dots = _matvec(vectors, q)
    elif 2 * len(rows) >= len(matrix):
        # Gathering most rows costs more memory traffic than one full product.
        dots = _matvec(vectors, q)[rows]
        norms = norms[rows]
    else:
        dots = _matvec(vectors[rows], q)
        norms = norms[rows]
    denom = norms * np.float32(np.linalg.norm(q))
    # A zero vector on either side has no direction: similarity 0.
    cos = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    return dots, cos


def _ordered(values: npt.NDArray[np.floating], seq: npt.NDArray[np.int64]) -> _Rows:
    """Positions sorted by value descending, then insertion ascending."""
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    if len(ranked) > 1 and bool((ranked[1:] == ranked[:-1]).any()):
        order = np.lexsort((seq, -values))
    return order


def _best(values: npt.NDArray[np.floating], seq: npt.NDArray[np.int64], k: int) -> _Rows:
    """The ``k`` best positions, in order (value descending, then insertion ascending)."""
    if k >= len(values):
        return _ordered(values, seq)
    kth = values[np.argpartition(-values, k - 1)[k - 1]]
    above = np.flatnonzero(values > kth)
    tied = np.flatnonzero(values == kth)
    need = k - len(above)
    if len(tied) > need:
        tied = tied[np.argpartition(seq[tied], need - 1)[:need]] if need else tied[:0]
    chosen = np.concatenate([above, tied])
    return chosen[_ordered(values[chosen], seq[chosen])]


def _rrf(
    alpha: float,
    dots: _F32,
    keyword: _F32,
    seq: npt.NDArray[np.int64],
    depth: int,
) -> tuple[_Rows, _F32]:
    """Fuse the top ``depth`` of each ranking: the pooled positions and their fused scores."""
    k = np.float32(RRF_K)
    w_semantic = np.float32(alpha)
    w_keyword = np.float32(1.0) - w_semantic
    semantic = _best(dots, seq, depth)
    matched = np.flatnonzero(keyword > 0)
    lexical = matched[_best(keyword[matched], seq[matched], depth)]
    pool = np.union1d(semantic, lexical)
    fused = np.zeros(len(dots), dtype=np.float32)
    ranks = np.arange(1, max(len(semantic), len(lexical)) + 1, dtype=np.float32)
    # weight * (1 / (k + rank)), not weight / (k + rank): the two round differently in
    # float32, and exact ties (0.8/32 against 0.8/40 + 0.2/40) fall the SDK's way only so.
    reciprocal = np.float32(1.0) / (k + ranks)
    fused[semantic] += w_semantic * reciprocal[: len(semantic)]
    fused[lexical] += w_keyword * reciprocal[: len(lexical)]
    return pool, fused[pool]


def search(
    matrix: VectorMatrix,
    bm25: BM25,
    query_vector: npt.ArrayLike | None,
    query_text: str,
    top_k: int,
    alpha: float,
    candidates: npt.NDArray[np.bool_] | None = None,
) -> list[Hit]:
    """The ``top_k`` best rows for a query, best first, as ``(row, score)``.

    ``candidates`` is a bool mask over the matrix rows (a metadata filter's survivors); only
    those rows are scored and ranked, so a filtered query costs no more than an unfiltered
    one. ``bm25`` must be in step with ``matrix`` (see :mod:`reference.bm25`). ``top_k`` 0
    returns nothing, as documented for the published SDK; a negative or non-int ``top_k``,
    an ``alpha`` outside [0, 1], or a query vector of another dimension raises
    ``ValueError``.
    """
    top_k = _check_top_k(top_k)
    alpha = _check_alpha(alpha)
    if not isinstance(query_text, str):
        raise ValueError(f"query_text: expected a str, got {type(query_text).__name__}")
    q = None if query_vector is None else _check_query_vector(query_vector, matrix.dimension)
    n = len(matrix)
    if bm25.rows != n:
        raise ValueError(f"bm25: tracks {bm25.rows} rows but the matrix has {n}")

    rows: _Rows | None = None
    if candidates is not None:
        mask = np.asarray(candidates)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ValueError(
                f"candidates: expected a bool mask of shape ({n},), got {mask.dtype} {mask.shape}"
            )
        rows = np.flatnonzero(mask)
    count = n if rows is None else len(rows)
    if top_k == 0 or count == 0:
        return []

    dots = cos = None
    if q is not None and alpha > 0.0:
        dots, cos = _similarities(matrix, q, rows)
    keyword = None
    if alpha < 1.0 and tokenize(query_text):
        # float32 like the SDK: documents whose float64 scores differ only in the last bits
        # tie, and then insertion order decides.
        keyword = bm25.scores(query_text, rows).astype(np.float32)
        if not keyword.any():
            keyword = None  # nothing matched: the keyword side ranks nobody
    if dots is None and keyword is None:
        return []

    seq = matrix.sequence() if rows is None else matrix.sequence()[rows]
    fused: npt.NDArray[np.floating]
    if dots is None:
        assert keyword is not None
        pool = np.flatnonzero(keyword > 0)
        fused = keyword[pool]
    elif keyword is None:
        pool = np.arange(count, dtype=np.intp)
        fused = dots
    else:
        pool, fused = _rrf(alpha, dots, keyword, seq, DEPTH_PER_TOP_K * top_k)
    best = pool[_best(fused, seq[pool], top_k)]
    out_rows = best if rows is None else rows[best]
    if cos is None:
        return [(int(r), 0.0) for r in out_rows]
    scores = np.clip(cos[best], 0.0, 1.0)
    return [(int(r), float(v)) for r, v in zip(out_rows, scores, strict=True)]
