"""BM25 keyword scores over documents, kept in row order beside a ``VectorMatrix``.

Rows are the matrix's rows: give :meth:`BM25.upsert` the rows that ``VectorMatrix.upsert``
returned and :meth:`BM25.delete` the steps that ``VectorMatrix.delete`` returned, and the two
stay in step without either knowing about document ids.

A document's terms are its text's plus its metadata keys' and values', as in the published
SDK, where a query for a metadata value finds the document and metadata counts towards the
document length.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from reference.filters import metadata_text

__all__ = ["BM25", "document_terms", "tokenize"]

_WORD = re.compile(r"\w+")
_T = TypeVar("_T", bound=np.generic)


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of Unicode word characters (letters, digits, underscore)."""
    return _WORD.findall(text.lower())


def document_terms(text: str, metadata: Mapping[str, object] | None = None) -> Counter[str]:
    """Term frequencies of a document: its text, then each metadata key and value."""
    if metadata:
        parts = [text]
        for key, value in metadata.items():
            parts.append(key)
            value_text = metadata_text(value) if value is not None else None
            if value_text is not None:
                parts.append(value_text)
        # One pass over one string: a space never joins two words.
        text = " ".join(parts)
    return Counter(tokenize(text))


class BM25:
    """Okapi BM25 with Lucene's non-negative IDF, updated one document at a time.

    ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))`` and a term scores
    ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``; each distinct query
    term counts once. Statistics cover every live document, whatever subset is scored.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._terms: list[Counter[str] | None] = []  # per row
        self._lengths = np.zeros(16, dtype=np.float64)
        self._postings: dict[str, dict[int, int]] = {}  # term -> row -> term frequency
        # Array copies of postings, rebuilt on the first query after that term changes.
        self._arrays: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]] = {}
        # Each term's scores over its postings, valid while its postings and the collection
        # statistics they were computed with stay the same: a term common to most documents
        # costs a pass over all of them otherwise, on every query.
        self._scored: dict[str, npt.NDArray[np.float64]] = {}
        self._scored_stats = (0, 0)
        # The same rounded to float32 (what rankings compare), zeros dropped; same lifetime.
        self._rounded: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]] = {}
        # And spread over every row, for terms most rows hold (see dense_float32).
        self._spread: dict[str, npt.NDArray[np.float32]] = {}
        self._total_length = 0
        self._live = 0

    def __len__(self) -> int:
        return self._live

    @property
    def rows(self) -> int:
        """How many rows are tracked, including ones with no text."""
        return len(self._terms)

    # --- updates ----------------------------------------------------------------------------
    def upsert(
        self,
        rows: Iterable[int],
        texts: Iterable[str],
        metadatas: Iterable[Mapping[str, object] | None] | None = None,
    ) -> None:
        """Set the text (and metadata) of each row; a row past the end extends the table."""
        rows, texts = list(rows), list(texts)
        metas = [None] * len(rows) if metadatas is None else list(metadatas)
        for row, text, metadata in zip(rows, texts, metas, strict=True):
            if row >= len(self._terms):
                self._grow(row + 1)
            self._clear(row)
            self._set(row, document_terms(text, metadata))

    def delete(self, steps: Sequence[tuple[int, int]]) -> None:
        """Follow the ``(vacated_row, last_row)`` steps of ``VectorMatrix.delete``."""
        for row, last in steps:
            self._clear(row)
            if last != row:
                self._move(last, row)
            self._terms.pop()

    def _grow(self, size: int) -> None:
        self._terms.extend([None] * (size - len(self._terms)))
        if size > len(self._lengths):
            lengths = np.zeros(max(size, 2 * len(self._lengths)), dtype=np.float64)
            lengths[: len(self._lengths)] = self._lengths
            self._lengths = lengths

    def _set(self, row: int, counts: Counter[str]) -> None:
        self._terms[row] = counts
        length = sum(counts.values())
        self._lengths[row] = length
        self._total_length += length
        self._live += 1
        postings, arrays = self._postings, self._arrays
        for term, tf in counts.items():
            posting = postings.get(term)
            if posting is None:
                postings[term] = {row: tf}
            else:
                posting[row] = tf
                if arrays:
                    self._forget(term)

    def _clear(self, row: int) -> None:
        counts = self._terms[row]
        if counts is None:
            return
        self._terms[row] = None
        self._total_length -= int(self._lengths[row])
        self._lengths[row] = 0
        self._live -= 1
        for term in counts:
            posting = self._postings[term]
            del posting[row]
            if not posting:
                del self._postings[term]
            self._forget(term)

    def _move(self, src: int, dst: int) -> None:
        counts = self._terms[src]
        self._terms[src] = None
        self._terms[dst] = counts
        self._lengths[dst] = self._lengths[src]
        self._lengths[src] = 0
        if counts is None:
            return
        for term in counts:
            posting = self._postings[term]
            posting[dst] = posting.pop(src)
            self._forget(term)

    def _forget(self, term: str) -> None:
        self._arrays.pop(term, None)
        self._scored.pop(term, None)
        self._rounded.pop(term, None)
        self._spread.pop(term, None)

    # --- scoring ----------------------------------------------------------------------------
    def _posting_arrays(self, term: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        arrays = self._arrays.get(term)
        if arrays is None:
            posting = self._postings[term]
            rows = np.fromiter(posting.keys(), dtype=np.intp, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            # Ascending rows: callers merge and filter postings without sorting them again.
            order = np.argsort(rows, kind="stable")
            arrays = self._arrays[term] = (_frozen(rows[order]), _frozen(tfs[order]))
        return arrays

    def _query_terms(self, query: str) -> list[str]:
        return [t for t in dict.fromkeys(tokenize(query)) if t in self._postings]

    def _term_scores(self, term: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The rows holding ``term`` (ascending) and the term's share of their score."""
        stats = (self._live, self._total_length)
        if stats != self._scored_stats:
            # idf and the average length moved: every cached share did
            self._scored.clear()
            self._rounded.clear()
            self._spread.clear()
            self._scored_stats = stats
        hit_rows, tfs = self._posting_arrays(term)
        scored = self._scored.get(term)
        if scored is None:
            n = self._live
            avg = self._total_length / n
            k1, b = self.k1, self.b
            df = len(hit_rows)
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            norm = k1 * (1.0 - b + b * self._lengths[hit_rows] / avg) if avg else k1
            scored = self._scored[term] = _frozen(idf * tfs * (k1 + 1.0) / (tfs + norm))
        return hit_rows, scored

    def matches(self, query: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The rows sharing a term with ``query``, ascending, and their BM25 scores.

        The scores are those :meth:`scores` gives, bit for bit, without a pass over the rows
        that match nothing. The arrays may be shared with the index: read them, never change
        them.
        """
        terms = self._query_terms(query) if self._live else []
        if not terms:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64)
        parts = [self._term_scores(term) for term in terms]
        if len(parts) == 1:
            return parts[0]
        if 4 * sum(len(rows) for rows, _ in parts) >= len(self._terms):
            dense = self._dense(parts)
            rows = np.flatnonzero(dense)  # every share is positive
            return rows, dense[rows]
        rows = np.unique(np.concatenate([rows for rows, _ in parts]))
        out = np.zeros(len(rows), dtype=np.float64)
        for hit_rows, scored in parts:
            # Terms added in query order, as in the dense sum, so the floats round alike.
            out[np.searchsorted(rows, hit_rows)] += scored
        return rows, out

    def matches_float32(self, query: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
        """:meth:`matches` rounded to float32, the precision rankings compare scores in, less
        any row whose score rounds to 0. Kept between queries for one-term queries, whose
        postings can cover every row."""
        terms = self._query_terms(query) if self._live else []
        if len(terms) != 1:
            return _positive_float32(*self.matches(query))
        hit_rows, scored = self._term_scores(terms[0])  # first: it may clear the caches
        rounded = self._rounded.get(terms[0])
        if rounded is None:
            rounded = self._rounded[terms[0]] = _positive_float32(hit_rows, scored)
        return rounded

    def dense_float32(self, query: str) -> npt.NDArray[np.float32] | None:
        """:meth:`matches_float32` as one score per row (0 where it has none), or ``None``
        unless ``query`` is one term that at least an eighth of the rows hold. Kept between
        queries like it: a filtered query reads its survivors' scores here rather than look
        for each of the term's rows among them (0.5 ms at 100k rows)."""
        terms = self._query_terms(query) if self._live else []
        if len(terms) != 1:
            return None
        rows, scores = self.matches_float32(query)  # first: it may clear the caches
        if _SPREAD_SHARE * len(rows) < self.rows:
            return None
        spread = self._spread.get(terms[0])
        if spread is None or len(spread) != self.rows:
            spread = np.zeros(self.rows, dtype=np.float32)
            spread[rows] = scores
            spread = self._spread[terms[0]] = _frozen(spread)
        return spread

    def _dense(
        self, parts: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]]
    ) -> npt.NDArray[np.float64]:
        out = np.zeros(len(self._terms), dtype=np.float64)
        for hit_rows, scored in parts:
            # Rows are unique within one term's postings, so += on a fancy index is safe.
            out[hit_rows] += scored
        return out

    def scores(
        self, query: str, rows: npt.NDArray[np.intp] | None = None
    ) -> npt.NDArray[np.float64]:
        """BM25 of ``query`` for every row (``rows=None``) or for the given rows, in order.

        Cost follows the postings of the query's terms, not the number of rows.
        """
        terms = self._query_terms(query) if self._live else []
        out = self._dense([self._term_scores(term) for term in terms])
        return out if rows is None else out[rows]


_SPREAD_SHARE = 8


def _positive_float32(
    rows: npt.NDArray[np.intp], scores: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    rounded = scores.astype(np.float32)
    if len(rounded) and not rounded.min() > 0:  # a float64 score too small for float32
        keep = rounded > 0
        rows, rounded = rows[keep], rounded[keep]
    return rows, _frozen(rounded)


def _frozen(a: npt.NDArray[_T]) -> npt.NDArray[_T]:
    a.flags.writeable = False
    return a
