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

import functools
import os
from collections.abc import Callable, Iterable, MutableSequence, Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Real
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from protocol.vectors import as_matrix
from reference.bm25 import BM25, tokenize
from reference.embeddings.runtime import available_cpus
from reference.int8_scan import Int8Cache, Int8Scan

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
_Seq = npt.NDArray[np.int64]


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
        self._in_order: bool | None = True  # None: unknown since a delete moved a row
        self._int8 = Int8Cache()

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

    def int8_scan(self) -> Int8Scan | None:
        """The 8-bit copy of the live rows that bounds query products, once it is built.

        Asking counts as a query: a matrix asked twice without a change starts building it
        in the background (see :class:`~reference.int8_scan.Int8Cache`).
        """
        return self._int8.get(self.view(), self.norms())

    def sequence(self) -> npt.NDArray[np.int64]:
        """For each row, when its document was first inserted (smaller is earlier)."""
        out = self._seq[: len(self._ids)]
        out.flags.writeable = False
        return out

    def in_insertion_order(self) -> bool:
        """Whether :meth:`sequence` increases down the rows (so until a delete moves a row)."""
        if self._in_order is None:
            seq = self.sequence()
            self._in_order = bool((seq[1:] > seq[:-1]).all())
        return self._in_order

    # --- updates ----------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: object, *, adopt: bool = False) -> _Rows:
        """Add or replace the vector of each id; return the row of each id, in order.

        A repeated id keeps its last vector. Raises ``ValueError`` for a dimension other than
        the matrix's, ragged or non-finite vectors, or ids and vectors of different lengths.
        With ``adopt``, an empty matrix takes a float32 C-contiguous ``vectors`` over as its
        storage instead of copying it, and the caller must not use the array afterwards: a
        resumed index is 150 MB of vectors at 100k documents, and copying them into fresh
        memory took a tenth of the resume.
        """
        if adopt and not self._ids:
            self._adopt(vectors, len(ids))
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
        self._int8.changed()
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
        if not (isinstance(target, slice) and _same_memory(self._data[target], source)):
            self._data[target] = source  # (an adopted array is its own storage already)
        # Summed in float64: squares of large float32 components overflow float32.
        self._norms[target] = np.sqrt(np.einsum("ij,ij->i", source, source, dtype=np.float64))
        return rows

    def _adopt(self, vectors: object, count: int) -> None:
        if (
            isinstance(vectors, np.ndarray)
            and vectors.dtype == np.float32
            and vectors.ndim == 2
            and vectors.flags.c_contiguous
            and vectors.flags.writeable
            and 0 < len(vectors) == count
            and self._dimension in (None, vectors.shape[1])
        ):
            self._dimension = vectors.shape[1]
            self._int8.changed()
            self._data, self._capacity = vectors, len(vectors)
            self._norms = np.zeros(len(vectors), dtype=np.float32)
            self._seq = np.zeros(len(vectors), dtype=np.int64)

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
            self._int8.changed()
            last = len(self._ids) - 1
            if row != last:
                assert self._data is not None
                self._in_order = None  # the moved row may sit before older ones, or fix them
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


def _same_memory(a: _F32, b: _F32) -> bool:
    return a.shape == b.shape and a.ctypes.data == b.ctypes.data and a.strides == b.strides


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
# 11 ms against 0.8 ms). Above it the ranking is therefore einsum's single-threaded product, and
# stays so to the bit: _Dots only avoids computing it for rows that cannot rank.
_BLAS_ROWS = 2048


def _matvec(vectors: _F32, q: _F32) -> npt.NDArray[np.float32]:
    if len(vectors) <= _BLAS_ROWS:
        return vectors @ q
    return np.einsum("ij,j->i", vectors, q)


def _einsum_rows(vectors: _F32, q: _F32) -> npt.NDArray[np.float32]:
    # einsum sums each row on its own, in an order fixed by the dimension alone: a row's
    # product is the same bits whichever rows are multiplied with it (tests check this).
    return np.einsum("ij,j->i", vectors, q)


# --- the semantic side ------------------------------------------------------------------------
# einsum's loop above _BLAS_ROWS adds into one SIMD accumulator, so it runs at the latency of
# float32 addition (~110 ns a 384-d row: 1.1 ms at 10k rows, 11 ms at 100k) rather than at memory
# speed. The ranking must stay einsum's to the bit, so every row is first scanned with a faster
# product whose rounding differs, and einsum is then run on the few rows that rounding could
# move into the ranking. The faster product is the matrix's 8-bit copy once it has one (see
# reference.int8_scan: a quarter of the bytes to read), else np.vecdot (one BLAS dot per row,
# never threaded by BLAS).
_SCAN = getattr(np, "vecdot", None)  # numpy >= 2.0; without it einsum scans every row
_U32 = 2.0**-24  # unit roundoff of float32
_MAX_PRODUCT = 1e30  # norms whose product stays below this cannot overflow float32 on the way
_SHORTLIST_SHARE = 8  # a shortlist longer than 1/8 of the rows saves too little to pay for
# Gathering a filter's survivors out of the float32 matrix costs about 16 times as much per
# row as multiplying a row of the 8-bit copy (measured at 100k rows: 2.4 ms for 10k
# survivors, 1.5 ms for every row of the copy).
_GATHER_SHARE = 16


# The scan is spread over the machine's cores in blocks of rows that idle threads take in turn.
# The calling thread takes blocks too and never waits for a block nobody has started, so on a busy
# machine the scan is no slower than on one thread (measured under three busy processes on two
# cores: 12 ms against 16 ms at 100k rows), where BLAS's own threads wait on each other.
_PARALLEL_ROWS = 8192  # below this, handing blocks to another thread costs what it saves
_BLOCK_ROWS = 2048
# pid, then the helper count and pool (None on one core): a forked child has no threads.
_pool: tuple[int, tuple[int, ThreadPoolExecutor] | None] | None = None


def _helpers() -> tuple[int, ThreadPoolExecutor] | None:
    """The scan's helper threads and how many there are; ``None`` on one core."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        workers = min(available_cpus(), 4) - 1
        helpers = None
        if workers >= 1:
            helpers = (workers, ThreadPoolExecutor(workers, thread_name_prefix="sessionspec-scan"))
        _pool = (os.getpid(), helpers)
    return _pool[1]


def _run_blocks(count: int, work: Callable[[int], None]) -> None:
    """``work(i)`` for every ``i`` in ``range(count)``, on the caller and the helper threads."""
    helpers = _helpers() if count > 1 else None
    if helpers is None:
        for block in range(count):
            work(block)
        return
    workers, pool = helpers
    taken = iter(range(count))  # next() on it is atomic under the GIL: each block runs once

    def take() -> None:
        for block in taken:
            work(block)

    others = [pool.submit(take) for _ in range(min(workers, count - 1))]
    try:
        take()
    finally:
        for other in others:
            if not other.cancel():  # started: it may still be writing its last block
                other.result()


def _scan(vectors: _F32, q: _F32) -> _F32:
    """``_SCAN(vectors, q)``, on several threads for a large matrix."""
    assert _SCAN is not None
    if len(vectors) < _PARALLEL_ROWS:
        return _SCAN(vectors, q)
    out = np.empty(len(vectors), dtype=np.float32)

    def work(block: int) -> None:
        rows = slice(block * _BLOCK_ROWS, (block + 1) * _BLOCK_ROWS)
        out[rows] = _SCAN(vectors[rows], q)

    _run_blocks(-(-len(vectors) // _BLOCK_ROWS), work)
    return out


def _rounding_gap(dimension: int, max_norm: float, q_norm: float) -> float | None:
    """How far apart two float32 sums of the same inner product can come out, at most.

    Any summation order (SIMD lanes, FMA, blocks) computes ``a . q`` within
    ``gamma_d * sum|a_i q_i| <= gamma_d * |a| |q|`` of the exact value, ``gamma_d = d u /
    (1 - d u)`` (Higham, Accuracy and Stability of Numerical Algorithms, 3.1), so two orders
    differ by at most twice that. ``None`` when the bound is of no use (overflow possible).
    """
    if dimension * _U32 >= 0.5 or not max_norm * q_norm < _MAX_PRODUCT:
        return None
    gamma = dimension * _U32 / (1.0 - dimension * _U32)
    # 1% covers the rounding of the stored norms; the last term, products that underflow.
    return 2.0 * gamma * max_norm * q_norm * 1.01 + dimension * 2.0**-120


class _Dots:
    """The query's inner products with the ranked rows (all rows, or a filter's survivors).

    Values are those of :func:`_matvec` over the matrix the ranking multiplies, bit for bit:
    BLAS's up to ``_BLAS_ROWS`` rows (computed as before), einsum's above, where they are
    only computed exactly for the rows that can matter (see the comment above ``_SCAN``).
    """

    def __init__(self, matrix: VectorMatrix, q: _F32, rows: _Rows | None) -> None:
        self._matrix, self._q, self._rows = matrix, q, rows
        vectors = matrix.view()
        n = len(vectors)
        self._count = n if rows is None else len(rows)
        # Which product ranks: the one over all rows when most of them are asked for
        # (gathering them costs more than multiplying the rest), else over the survivors.
        whole = rows is None or 2 * len(rows) >= n
        self._all: _F32 | None = None
        if (n if whole else self._count) <= _BLAS_ROWS:
            dots = _matvec(vectors, q) if whole else _matvec(vectors[rows], q)
            self._all = dots if rows is None or not whole else dots[rows]

    def _rows_of(self, positions: _Rows) -> _Rows:
        return positions if self._rows is None else self._rows[positions]

    def _exact(self) -> _F32:
        if self._all is None:
            vectors = self._matrix.view()
            whole = self._rows is None or 2 * len(self._rows) >= len(vectors)
            dots = _einsum_rows(vectors if whole else vectors[self._rows], self._q)
            self._all = dots[self._rows] if whole and self._rows is not None else dots
        return self._all

    def best(self, k: int, seq: npt.NDArray[np.int64], in_order: bool) -> _Rows:
        """Matrix rows of the ``k`` largest products, best first, ties by insertion."""
        if self._all is None and k < self._count:
            near = self._shortlist(k)
            if near is not None:
                near_rows = self._rows_of(near)
                exact = _einsum_rows(self._matrix.view()[near_rows], self._q)
                return near_rows[_best(exact, seq, k, at=near_rows, in_order=in_order)]
        positions = _best(self._exact(), seq, k, at=self._rows, in_order=in_order)
        return self._rows_of(positions)

    def _shortlist(self, k: int) -> _Rows | None:
        """Positions holding every one of the ``k`` best, or ``None`` if not worth it."""
        near = self._int8_shortlist(k)  # bounds of its own, so before the scan's gap
        if near is not None:
            return near
        if _SCAN is None:
            return None
        norms = self._matrix.norms()
        q64 = self._q.astype(np.float64)
        q_norm = float(np.sqrt(q64 @ q64))
        gap = _rounding_gap(len(self._q), float(norms.max()), q_norm)
        if gap is None:
            return None
        vectors = self._matrix.view()
        if self._rows is None:
            scan = _scan(vectors, self._q)
        elif 2 * len(self._rows) >= len(vectors):
            scan = _scan(vectors, self._q)[self._rows]
        else:
            scan = _scan(vectors[self._rows], self._q)
        bounds = _kth_floor(scan, k)
        if bounds is None:
            return None
        floor = bounds[0]
        # The k best scanned rows are all >= floor, so their exact products are >= floor - gap,
        # so the k-th largest exact product is, and any row reaching it scanned >= floor - 2 gap.
        # Rounded down into float32 so that the comparison cannot drop a row at the edge.
        cut = np.nextafter(np.float32(float(floor) - 2.0 * gap), np.float32(-np.inf))
        near = np.flatnonzero(scan >= cut)
        return near if _SHORTLIST_SHARE * len(near) <= len(scan) else None

    def _int8_shortlist(self, k: int) -> _Rows | None:
        """:meth:`_shortlist` from the matrix's 8-bit copy, if it has one (see
        :mod:`reference.int8_scan`): it reads a quarter of the bytes."""
        if self._rows is not None and _GATHER_SHARE * len(self._rows) < len(self._matrix):
            return None  # few survivors: gathering them costs less than reading every row
        scan = self._matrix.int8_scan()
        near = None if scan is None else scan.shortlist(self._q, k, _floor_of, self._rows)
        if near is None or _SHORTLIST_SHARE * len(near) > self._count:
            return None
        return near

    def cosines(self, rows: _Rows) -> _F32:
        """Cosine of the query with each of ``rows`` (matrix rows); 0 for a zero vector."""
        if self._all is not None:
            positions = rows if self._rows is None else np.searchsorted(self._rows, rows)
            dots = self._all[positions]
        else:
            dots = _einsum_rows(self._matrix.view()[rows], self._q)
        denom = self._matrix.norms()[rows] * np.float32(np.linalg.norm(self._q))
        # A zero vector on either side has no direction: similarity 0.
        return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


# --- choosing the best ------------------------------------------------------------------------
_GROUPS = 64
_FEW = 64  # up to this many values, sorting Python floats beats a dozen numpy calls


def _ordered(values: npt.NDArray[np.floating], seq: npt.NDArray[np.int64]) -> _Rows:
    """Positions sorted by value descending, then insertion ascending."""
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    if len(ranked) > 1 and bool((ranked[1:] == ranked[:-1]).any()):
        order = np.lexsort((seq, -values))
    return order


def _kth_floor(values: npt.NDArray[np.floating], k: int) -> tuple[np.floating, np.floating] | None:
    """A value no larger than the ``k``-th largest, from the maxima of groups of values, and
    the largest value.

    ``k`` disjoint groups whose maxima reach the result hold ``k`` values that do. Groups are
    strided (one column each of a ``(_GROUPS, m)`` view) so that one SIMD pass over rows
    takes all the maxima. ``None`` when there are fewer than ``k`` groups, or a NaN.
    """
    width = len(values) // _GROUPS
    if width + len(values) % _GROUPS < k:
        return None
    whole = width * _GROUPS
    maxima = values[:whole].reshape(_GROUPS, width).max(axis=0)
    pooled = np.concatenate([maxima, values[whole:]])
    top = pooled.max()
    if np.isnan(top):
        return None  # NaN would sort as the largest here, and last in the ranking
    return np.partition(pooled, len(pooled) - k)[len(pooled) - k], top


def _floor_of(values: npt.NDArray[np.floating], k: int) -> np.floating | None:
    """A value no larger than the ``k``-th largest of ``values`` (see :func:`_kth_floor`)."""
    bounds = _kth_floor(values, k)
    return None if bounds is None else bounds[0]


def _best(
    values: npt.NDArray[np.floating],
    seq: npt.NDArray[np.int64],
    k: int,
    *,
    at: _Rows | None = None,
    in_order: bool = False,
) -> _Rows:
    """The ``k`` (at least 1) best positions of ``values``, in order (value descending, then
    insertion).

    ``seq[at[i]]`` (``seq[i]`` without ``at``) is when the document of value ``i`` was
    inserted; ``in_order`` says that it grows with ``i``, which spares sorting ties.
    """
    if len(values) <= _FEW or k >= len(values):
        all_seq = seq[: len(values)] if at is None else seq[at]
        few = _best_few(values, all_seq, k) if len(values) <= _FEW else None
        if few is not None:
            return few
        if k >= len(values):
            return _ordered(values, all_seq)
    bounds = _kth_floor(values, k)
    if bounds is None:
        # NaN (only from overflowing products) sorts last here, as it always has.
        kth = values[np.argpartition(-values, k - 1)[k - 1]]
        above, tied = np.flatnonzero(values > kth), np.flatnonzero(values == kth)
    else:
        reach = values >= bounds[0]  # every one of the k best, and a few more
        if in_order and bounds[0] == bounds[1]:
            # Everything reaching the top ties (thousands of equal keyword scores, say), so
            # insertion order alone ranks them, and it is position order.
            return _first_true(reach, k)
        near = np.flatnonzero(reach)
        if len(near) <= _FEW:
            few = _best_few(values[near], _seq_of(seq, at, near), k)
            assert few is not None  # no NaN: _kth_floor checked
            return near[few]
        above, tied = _split_at_kth(values, near, *bounds, k)
    need = k - len(above)
    if len(tied) > need:
        if in_order and not len(above):
            return tied[:need]  # one value, so insertion order alone: already in order
        tied = tied[:need] if in_order else _earliest(tied, _seq_of(seq, at, tied), need)
    chosen = np.concatenate([above, tied])
    chosen_values, chosen_seq = values[chosen], _seq_of(seq, at, chosen)
    few = _best_few(chosen_values, chosen_seq, k) if k <= _FEW else None
    return chosen[_ordered(chosen_values, chosen_seq) if few is None else few]


def _split_at_kth(
    values: npt.NDArray[np.floating], near: _Rows, floor: np.floating, top: np.floating, k: int
) -> tuple[_Rows, _Rows]:
    """Positions above the ``k``-th largest value and equal to it, ascending, given those of
    every value from ``floor`` (which is at most the ``k``-th largest) up."""
    if floor == top:
        return near[:0], near  # thousands of keyword scores tie at the top: no partition
    candidates = values[near]
    kth = np.partition(candidates, len(near) - k)[len(near) - k]
    return near[candidates > kth], near[candidates == kth]


def _first_true(mask: npt.NDArray[np.bool_], k: int) -> _Rows:
    """The first ``k`` positions where ``mask`` holds (it must hold at ``k`` or more)."""
    size = max(_FEW, 8 * k)
    while True:
        found = np.flatnonzero(mask[:size])
        if len(found) >= k or size >= len(mask):
            return found[:k]
        size *= 4


def _best_few(
    values: npt.NDArray[np.floating], seqs: npt.NDArray[np.int64], k: int
) -> _Rows | None:
    """:func:`_best` by a Python sort; ``None`` if a value is NaN (it would not sort)."""
    v, s = values.tolist(), seqs.tolist()
    if any(x != x for x in v):
        return None
    order = sorted(range(len(v)), key=lambda i: (-v[i], s[i]))
    return np.array(order[:k], dtype=np.intp)


def _seq_of(seq: _Seq, at: _Rows | None, positions: _Rows) -> _Seq:
    return seq[positions] if at is None else seq[at[positions]]


def _earliest(tied: _Rows, tied_seq: npt.NDArray[np.int64], need: int) -> _Rows:
    """The ``need`` positions of ``tied`` inserted first (in no particular order)."""
    if need == 0:
        return tied[:0]
    return tied[np.argpartition(tied_seq, need - 1)[:need]]


# --- the keyword side and fusion --------------------------------------------------------------
def _keyword(
    bm25: BM25,
    query_text: str,
    mask: npt.NDArray[np.bool_] | None,
    survivors: _Rows | None = None,
) -> tuple[_Rows, _F32] | None:
    """Rows (ascending) that share a term with the query and pass ``mask`` (whose rows are
    ``survivors``), with their BM25.

    float32 like the SDK: documents whose float64 scores differ only in the last bits tie, and
    then insertion order decides.
    """
    spread = None
    if mask is not None and survivors is not None:
        spread = bm25.dense_float32(query_text)
    if spread is not None:
        assert survivors is not None
        scores = spread[survivors]
        keep = scores > 0  # the rows matches_float32 gives: a hit, and not rounded to 0
        rows, scores = survivors[keep], scores[keep]
    else:
        rows, scores = bm25.matches_float32(query_text)
        if mask is not None:
            keep = mask[rows]
            rows, scores = rows[keep], scores[keep]
    return (rows, scores) if len(rows) else None


@functools.lru_cache(maxsize=64)
def _rrf_shares(alpha: float, depth: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """What ranks 1..depth add to the fused score on the semantic and on the keyword side
    (float32 values, held as Python floats)."""
    k = np.float32(RRF_K)
    w_semantic = np.float32(alpha)
    w_keyword = np.float32(1.0) - w_semantic
    ranks = np.arange(1, depth + 1, dtype=np.float32)
    # weight * (1 / (k + rank)), not weight / (k + rank): the two round differently in
    # float32, and exact ties (0.8/32 against 0.8/40 + 0.2/40) fall the SDK's way only so.
    reciprocal = np.float32(1.0) / (k + ranks)
    return tuple((w_semantic * reciprocal).tolist()), tuple((w_keyword * reciprocal).tolist())


def _fuse(
    alpha: float, semantic: _Rows, lexical: _Rows, seq: npt.NDArray[np.int64], top_k: int
) -> _Rows:
    """Weighted reciprocal rank fusion of two rankings of rows: the best ``top_k`` rows.

    A few dozen rows at most, so plain Python: numpy's per-call cost would dominate.
    """
    s_shares, k_shares = _rrf_shares(alpha, max(len(semantic), len(lexical)))
    fused = dict(zip(semantic.tolist(), s_shares, strict=False))  # 0 + share: exact
    for row, share in zip(lexical.tolist(), k_shares, strict=False):
        # In both lists: added in float32, as the SDK does, not in Python's float64.
        fused[row] = float(np.float32(fused[row]) + np.float32(share)) if row in fused else share
    rows = list(fused)
    seqs = seq[rows].tolist()
    order = sorted(range(len(rows)), key=lambda i: (-fused[rows[i]], seqs[i]))
    return np.array([rows[i] for i in order[:top_k]], dtype=np.intp)


def search(
    matrix: VectorMatrix,
    bm25: BM25,
    query_vector: npt.ArrayLike | None,
    query_text: str,
    top_k: int,
    alpha: float,
    candidates: npt.NDArray[np.bool_] | None = None,
    survivors: _Rows | None = None,
) -> list[Hit]:
    """The ``top_k`` best rows for a query, best first, as ``(row, score)``.

    ``candidates`` is a bool mask over the matrix rows (a metadata filter's survivors); only
    those rows are scored and ranked, so a filtered query costs no more than an unfiltered
    one. ``survivors`` may give ``np.flatnonzero(candidates)``, kept by a caller that reuses
    the mask. ``bm25`` must be in step with ``matrix`` (see :mod:`reference.bm25`). ``top_k`` 0
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
    mask = None
    if candidates is not None:
        mask = np.asarray(candidates)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ValueError(
                f"candidates: expected a bool mask of shape ({n},), got {mask.dtype} {mask.shape}"
            )
        rows = np.flatnonzero(mask) if survivors is None else survivors
    count = n if rows is None else len(rows)
    if top_k == 0 or count == 0:
        return []

    dots = _Dots(matrix, q, rows) if q is not None and alpha > 0.0 else None
    keyword = None
    if alpha < 1.0 and tokenize(query_text):
        # None: nothing matched, it ranks nobody
        keyword = _keyword(bm25, query_text, mask, rows)
    if dots is None and keyword is None:
        return []

    seq, in_order = matrix.sequence(), matrix.in_insertion_order()
    if dots is None:
        assert keyword is not None
        hit, scores = keyword
        best = hit[_best(scores, seq, top_k, at=hit, in_order=in_order)]
        return [(r, 0.0) for r in best.tolist()]
    if keyword is None:
        best = dots.best(top_k, seq, in_order)
    else:
        depth = DEPTH_PER_TOP_K * top_k
        hit, scores = keyword
        lexical = hit[_best(scores, seq, depth, at=hit, in_order=in_order)]
        best = _fuse(alpha, dots.best(depth, seq, in_order), lexical, seq, top_k)
    cosines = np.clip(dots.cosines(best), 0.0, 1.0)
    return list(zip(best.tolist(), cosines.tolist(), strict=True))
