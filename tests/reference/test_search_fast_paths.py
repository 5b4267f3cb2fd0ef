"""The fast paths of the ranking against a straightforward implementation, bit for bit.

``search`` scans large matrices with a product that rounds differently from the one that ranks
and recomputes the exact one only for a shortlist, picks the best without sorting everything,
and reads BM25 postings instead of scoring every row. Each of these must give the same rows
and the same score bits as the plain computation: the dense product of the old code, BM25
over all rows, and Python sorts. The data is built to be hard for them: duplicated and
near-duplicated vectors (ties, and products that differ only in the last bits between the two
summation orders), a tiny vocabulary (keyword ties), deletes and re-adds (rows out of
insertion order) and filters.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import search as S
from reference.bm25 import BM25, tokenize
from reference.search import RRF_K, VectorMatrix, follow_deletes, search

WORDS = ["apple", "banana", "cherry"]


# --- the straightforward implementation -----------------------------------------------------------
def slow_search(
    matrix: VectorMatrix,
    bm25: BM25,
    q: np.ndarray | None,
    text: str,
    top_k: int,
    alpha: float,
    mask: np.ndarray | None,
) -> list[tuple[int, float]]:
    """The documented ranking over every candidate row, one document at a time."""
    n = len(matrix)
    rows = np.arange(n) if mask is None else np.flatnonzero(mask)
    if top_k == 0 or len(rows) == 0:
        return []
    seq = matrix.sequence().tolist()
    dots = None
    if q is not None and alpha > 0:
        vectors = matrix.view()
        # The product the ranking is defined by: over all rows unless few survive a filter.
        if mask is None or 2 * len(rows) >= n:
            dots = S._matvec(vectors, q)[rows]
        else:
            dots = S._matvec(vectors[rows], q)
    keyword = None
    if alpha < 1 and tokenize(text):
        keyword = bm25.scores(text)[rows].astype(np.float32)
        if not keyword.any():
            keyword = None
    if dots is None and keyword is None:
        return []

    def ranked(values: np.ndarray, positions: list[int]) -> list[int]:
        return sorted(positions, key=lambda i: (-float(values[i]), seq[rows[i]]))

    everyone = list(range(len(rows)))
    if dots is None:
        assert keyword is not None
        best = ranked(keyword, [i for i in everyone if keyword[i] > 0])[:top_k]
        return [(int(rows[i]), 0.0) for i in best]
    if keyword is None:
        best = ranked(dots, everyone)[:top_k]
    else:
        depth = 2 * top_k
        f32 = np.float32
        fused: dict[int, Any] = {}
        for rank, i in enumerate(ranked(dots, everyone)[:depth], 1):
            fused[i] = f32(0) + f32(alpha) * (f32(1) / (f32(RRF_K) + f32(rank)))
        matched = [i for i in everyone if keyword[i] > 0]
        for rank, i in enumerate(ranked(keyword, matched)[:depth], 1):
            share = (f32(1) - f32(alpha)) * (f32(1) / (f32(RRF_K) + f32(rank)))
            fused[i] = fused.get(i, f32(0)) + share
        best = sorted(fused, key=lambda i: (-float(fused[i]), seq[rows[i]]))[:top_k]
    q_norm = np.float32(np.linalg.norm(q))
    out = []
    for i in best:
        row = int(rows[i])
        denom = matrix.norms()[row] * q_norm
        cos = dots[i] / denom if denom > 0 else np.float32(0)
        out.append((row, float(np.clip(cos, 0.0, 1.0))))
    return out


# --- generated collections --------------------------------------------------------------------
@dataclass
class Collection:
    matrix: VectorMatrix
    bm25: BM25
    vectors: np.ndarray  # the pool queries are drawn near


def build(rng: np.random.Generator, n: int, dim: int, kind: str, churn: float) -> Collection:
    vectors = _vectors(rng, n, dim, kind)
    texts = [" ".join(rng.choice(WORDS, rng.integers(0, 4))) for _ in range(n)]
    metas = [{"bucket": str(i % 3)} if rng.random() < 0.5 else None for i in range(n)]
    ids = [f"d{i}" for i in range(n)]
    matrix, bm25 = VectorMatrix(), BM25()
    bm25.upsert(matrix.upsert(ids, vectors), texts, metas)
    if churn:
        gone = rng.choice(n, size=int(churn * n), replace=False)
        bm25.delete(matrix.delete([ids[i] for i in gone]))
        # Re-adding moves a document last; upserting a live one keeps its place.
        again = [int(i) for i in gone[: len(gone) // 2]] + [int(i) for i in rng.choice(n, 5)]
        rows = matrix.upsert([ids[i] for i in again], vectors[again])
        bm25.upsert(rows, [texts[i] for i in again], [metas[i] for i in again])
    return Collection(matrix, bm25, vectors)


def _vectors(rng: np.random.Generator, n: int, dim: int, kind: str) -> np.ndarray:
    if kind == "gaussian":
        return rng.standard_normal((n, dim)).astype(np.float32)
    if kind == "duplicates":  # exact ties, whatever the summation order
        pool = rng.standard_normal((7, dim)).astype(np.float32)
        return pool[rng.integers(7, size=n)]
    if kind == "near-duplicates":  # products a few ulps apart: the two orders may disagree
        pool = rng.standard_normal((5, dim)).astype(np.float32)
        noise = 1 + rng.integers(-3, 4, size=(n, dim)) * np.float32(2**-23)
        return (pool[rng.integers(5, size=n)] * noise).astype(np.float32)
    if kind == "integers":  # exact arithmetic: many exact ties
        return rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    assert kind == "scaled"  # unit vectors at very different lengths, some zero
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v *= rng.choice([0.0, 1e-3, 1.0, 1e3], size=(n, 1)).astype(np.float32)
    return v


def query_vector(rng: np.random.Generator, c: Collection, kind: str) -> np.ndarray | None:
    dim = c.vectors.shape[1]
    if kind == "none":
        return None
    if kind == "zero":
        return np.zeros(dim, dtype=np.float32)
    if kind == "stored":  # exactly a stored vector: its duplicates tie at the top
        return c.vectors[rng.integers(len(c.vectors))].copy()
    if kind == "integers":
        return rng.integers(-2, 3, size=dim).astype(np.float32)
    return rng.standard_normal(dim).astype(np.float32)


@contextmanager
def small_thresholds():
    """Every fast path at sizes Hypothesis can afford to try by the hundred."""
    with mock.patch.multiple(S, _BLAS_ROWS=8, _FEW=4, _GROUPS=4, _PARALLEL_ROWS=12, _BLOCK_ROWS=5):
        yield


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "dim": st.sampled_from([1, 3, 8, 17]),
        "kind": st.sampled_from(
            ["gaussian", "duplicates", "near-duplicates", "integers", "scaled"]
        ),
        "churn": st.sampled_from([0.0, 0.0, 0.1, 0.4]),
        "queries": st.lists(
            st.tuples(
                st.sampled_from(["gaussian", "stored", "integers", "zero", "none"]),
                st.lists(st.sampled_from([*WORDS, "bucket", "1", "zzz"]), max_size=3).map(" ".join),
                st.sampled_from([0, 1, 2, 5, 10, 40]),
                st.sampled_from([0.0, 0.3, 0.8, 1.0]),
                st.sampled_from([None, 0.03, 0.3, 0.7, 1.0]),
            ),
            min_size=1,
            max_size=6,
        ),
    }
)


def check(case: dict[str, Any], n: int) -> None:
    rng = np.random.default_rng(case["seed"])
    c = build(rng, n, case["dim"], case["kind"], case["churn"])
    for q_kind, text, top_k, alpha, share in case["queries"]:
        q = query_vector(rng, c, q_kind)
        mask = None if share is None else rng.random(len(c.matrix)) < share
        got = search(c.matrix, c.bm25, q, text, top_k, alpha, mask)
        want = slow_search(c.matrix, c.bm25, q, text, top_k, alpha, mask)
        assert [r for r, _ in got] == [r for r, _ in want], (q_kind, text, top_k, alpha, share)
        # Score bits, not approximately: the same float32 products divided the same way.
        assert bits([s for _, s in got]) == bits([s for _, s in want])


def bits(scores: list[float]) -> bytes:
    return np.array(scores, dtype=np.float64).tobytes()


@settings(max_examples=300, deadline=None)
@given(case=cases, n=st.integers(1, 300))
def test_fast_paths_agree_with_the_plain_ranking_at_small_thresholds(
    case: dict[str, Any], n: int
) -> None:
    with small_thresholds():
        check(case, n)


@settings(max_examples=12, deadline=None)
@given(case=cases, n=st.integers(S._BLAS_ROWS + 1, 4 * S._BLAS_ROWS))
def test_fast_paths_agree_with_the_plain_ranking_at_real_sizes(
    case: dict[str, Any], n: int
) -> None:
    check(case, n)


def adversarial_scan(seed: int) -> Any:
    """A scan that is off the exact product by anything up to the rounding gap, per row.

    The shortlist may only assume that much of the scan; noise that large also moves rows
    across ties and near-ties, which a too narrow cut would drop.
    """
    rng = np.random.default_rng(seed)

    def scan(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
        exact = np.einsum("ij,j->i", vectors, q).astype(np.float64)
        norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
        gap = S._rounding_gap(len(q), float(norms.max()), float(np.linalg.norm(q)))
        assert gap is not None
        out = (exact + rng.uniform(-0.95, 0.95, len(exact)) * gap).astype(np.float32)
        off = np.abs(out.astype(np.float64) - exact) > gap  # float32 rounding overshot
        out[off] = exact[off]
        return out

    return scan


@settings(max_examples=150, deadline=None)
@given(case=cases, n=st.integers(1, 300))
def test_a_scan_anywhere_within_the_rounding_gap_ranks_the_same(
    case: dict[str, Any], n: int
) -> None:
    with small_thresholds(), mock.patch.object(S, "_SCAN", adversarial_scan(case["seed"])):
        check(case, n)


def test_the_shortlist_is_what_ranks_a_large_matrix() -> None:
    # Guards the tests above against a fast path that quietly never runs.
    rng = np.random.default_rng(3)
    c = build(rng, 3 * S._BLAS_ROWS, 16, "gaussian", 0.0)
    q = rng.standard_normal(16).astype(np.float32)
    with mock.patch.object(S._Dots, "_exact", side_effect=AssertionError("full product")):
        got = search(c.matrix, c.bm25, q, "apple", 5, 0.8)
    assert got == slow_search(c.matrix, c.bm25, q, "apple", 5, 0.8, None)


# --- the pieces -------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 200), block=st.integers(1, 64))
def test_the_threaded_scan_is_the_plain_scan_bit_for_bit(seed: int, rows: int, block: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((rows, 24)).astype(np.float32)
    q = rng.standard_normal(24).astype(np.float32)
    with mock.patch.multiple(S, _PARALLEL_ROWS=1, _BLOCK_ROWS=block):
        got = S._scan(v, q)
    assert got.tobytes() == np.vecdot(v, q).tobytes()


def test_the_scan_never_waits_for_a_helper_that_has_not_started() -> None:
    # On a busy machine the helper threads may not run for a while: the caller scans the
    # blocks they have not taken rather than wait, and leaves them nothing to do.
    blocked, caller, release = ThreadPoolExecutor(1), ThreadPoolExecutor(1), threading.Event()
    blocked.submit(release.wait)
    rng = np.random.default_rng(5)
    v = rng.standard_normal((50, 8)).astype(np.float32)
    q = rng.standard_normal(8).astype(np.float32)
    try:
        with (
            mock.patch.multiple(S, _PARALLEL_ROWS=1, _BLOCK_ROWS=7),
            mock.patch.object(S, "_helpers", return_value=(1, blocked)),
        ):
            got = caller.submit(S._scan, v, q).result(timeout=10)
        assert got.tobytes() == np.vecdot(v, q).tobytes()
    finally:
        release.set()  # lets a scan that did wait finish, so that the test fails, not hangs
        blocked.shutdown()
        caller.shutdown()


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dim=st.integers(1, 70),
    rows=st.integers(1, 40),
)
def test_einsum_gives_a_row_the_same_bits_whatever_rows_come_with_it(
    seed: int, dim: int, rows: int
) -> None:
    # What the shortlist relies on: recomputing a few rows reproduces the full product.
    rng = np.random.default_rng(seed)
    v = (rng.standard_normal((rows, dim)) * rng.choice([1e-3, 1, 1e3], (rows, 1))).astype(
        np.float32
    )
    q = rng.standard_normal(dim).astype(np.float32)
    full = np.einsum("ij,j->i", v, q)
    pick = rng.permutation(rows)[: rng.integers(1, rows + 1)]
    assert full[pick].tobytes() == np.einsum("ij,j->i", v[pick], q).tobytes()
    assert full[pick[:1]].tobytes() == np.einsum("ij,j->i", v[pick[0]][None], q).tobytes()


values_and_k = st.tuples(
    st.lists(
        st.sampled_from([0.0, -0.0, 1.0, 2.5, -1.0, np.inf, -np.inf]) | st.floats(-3, 3),
        min_size=1,
        max_size=120,
    ),
    st.integers(1, 130),  # search never asks for none
    st.integers(0, 2**32 - 1),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(case=values_and_k, small=st.booleans())
def test_best_is_a_sort_by_value_then_insertion(case: Any, small: bool) -> None:
    values_list, k, seed, in_order = case
    rng = np.random.default_rng(seed)
    values = np.array(values_list, dtype=np.float32)
    n = len(values)
    seq = np.arange(3 * n, dtype=np.int64)
    at = np.sort(rng.choice(3 * n, n, replace=False))  # ascending: seq grows with position
    if not in_order:
        at = rng.permutation(at)
    want = sorted(range(n), key=lambda i: (-float(values[i]), int(seq[at[i]])))[:k]
    with small_thresholds() if small else nullcontext():
        got = S._best(values, seq, k, at=at, in_order=in_order)
    assert got.tolist() == want


# Rare words make queries whose postings are few beside the rows (merged sparsely), common
# ones queries that touch most rows (summed densely).
TERMS = [*WORDS, "date", *(f"rare{j}" for j in range(12))]


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(st.lists(st.sampled_from(TERMS), max_size=4), min_size=1, max_size=60),
    deletes=st.lists(st.integers(0, 59), max_size=30),
    queries=st.lists(st.lists(st.sampled_from([*TERMS, "zzz"]), max_size=4), max_size=5),
)
def test_bm25_matches_are_its_scores_without_the_zeros(
    texts: list[list[str]], deletes: list[int], queries: list[list[str]]
) -> None:
    matrix, bm25 = VectorMatrix(), BM25()
    ids = [f"d{i}" for i in range(len(texts))]
    live = [" ".join(t) for t in texts]  # text of each row
    bm25.upsert(matrix.upsert(ids, np.ones((len(ids), 2))), live)
    for query in [" ".join(q) for q in queries]:
        # Fill the caches, so that the changes below must clear them.
        bm25.matches_float32(query)
        bm25.dense_float32(query)
    steps = matrix.delete([ids[i] for i in deletes if i < len(ids)])
    bm25.delete(steps)
    follow_deletes(live, steps)
    again = [ids[i] for i in deletes[:5] if i < len(ids)]
    rows = matrix.upsert(again, np.ones((len(again), 2)))
    bm25.upsert(rows, ["apple date"] * len(again))
    for row in rows.tolist():
        if row == len(live):
            live.append("apple date")  # re-added: appended
        else:
            live[row] = "apple date"
    fresh = BM25()
    fresh.upsert(range(len(live)), live)
    for query in [" ".join(q) for q in queries]:
        rows, scores = bm25.matches(query)
        dense = fresh.scores(query)
        assert rows.tolist() == np.flatnonzero(dense).tolist()
        assert scores.tobytes() == dense[rows].tobytes()
        assert bm25.scores(query).tobytes() == dense.tobytes()
        rows32, scores32 = bm25.matches_float32(query)
        want32 = dense.astype(np.float32)
        assert rows32.tolist() == np.flatnonzero(want32 > 0).tolist()
        assert scores32.tobytes() == want32[want32 > 0].tobytes()
        spread = bm25.dense_float32(query)
        held = {t for t in query.split() if any(t in text.split() for text in live)}
        one_common_term = len(held) == 1 and 8 * len(rows32) >= len(live)
        assert (spread is not None) == one_common_term, query
        if spread is not None:
            assert spread.tobytes() == np.where(want32 > 0, want32, 0).astype(np.float32).tobytes()


def test_insertion_order_is_tracked_through_deletes() -> None:
    matrix = VectorMatrix()
    matrix.upsert([f"d{i}" for i in range(6)], np.ones((6, 2)))
    assert matrix.in_insertion_order()
    matrix.delete(["d5"])  # the last row: nothing moves
    assert matrix.in_insertion_order()
    matrix.delete(["d1"])  # d4 moves into row 1
    assert not matrix.in_insertion_order()
    matrix.upsert(["d9"], np.ones((1, 2)))
    assert not matrix.in_insertion_order()
    matrix.delete(["d2", "d4", "d9"])  # d9 moves, then d3 moves in front of it, then it goes
    assert list(matrix.ids) == ["d0", "d3"]
    assert matrix.in_insertion_order()


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    depth=st.integers(1, 30),
    alpha=st.sampled_from([0.8, 0.5, 0.25, 0.1]) | st.floats(0.01, 0.99),
    top_k=st.integers(1, 30),
)
def test_fusion_adds_in_float32(seed: int, depth: int, alpha: float, top_k: int) -> None:
    # Sums of two shares tie with single shares only in float32 (0.8/32 == 0.8/40 + 0.2/40),
    # and then insertion order decides; in float64 they would not tie.
    rng = np.random.default_rng(seed)
    semantic = rng.permutation(2 * depth)[:depth]
    lexical = rng.permutation(2 * depth)[: rng.integers(1, depth + 1)]
    seq = rng.permutation(2 * depth).astype(np.int64)
    f32 = np.float32
    fused: dict[int, Any] = {}
    for rank, row in enumerate(semantic.tolist(), 1):
        fused[row] = f32(0) + f32(alpha) * (f32(1) / (f32(RRF_K) + f32(rank)))
    for rank, row in enumerate(lexical.tolist(), 1):
        share = (f32(1) - f32(alpha)) * (f32(1) / (f32(RRF_K) + f32(rank)))
        fused[row] = fused.get(row, f32(0)) + share
    want = sorted(fused, key=lambda r: (-float(fused[r]), int(seq[r])))[:top_k]
    assert S._fuse(alpha, semantic, lexical, seq, top_k).tolist() == want


def test_bm25_cached_scores_follow_every_change() -> None:
    def same_as_fresh(bm25: BM25, texts: list[str]) -> None:
        fresh = BM25()
        fresh.upsert(range(len(texts)), texts)
        for query in ["apple", "cherry", "apple cherry"]:
            for got, want in [
                (bm25.matches, fresh.matches),
                (bm25.matches_float32, fresh.matches_float32),
            ]:
                (got_rows, got_scores), (want_rows, want_scores) = got(query), want(query)
                assert got_rows.tolist() == want_rows.tolist(), query
                assert got_scores.tobytes() == want_scores.tobytes(), query

    texts = ["apple banana", "apple", "banana cherry", "cherry"]
    bm25 = BM25()
    bm25.upsert(range(4), texts)
    same_as_fresh(bm25, texts)
    # Same document count and total length: only the changed terms' caches may go stale.
    texts[1] = "cherry"
    bm25.upsert([1], ["cherry"])
    same_as_fresh(bm25, texts)
    # A document with none of the query terms still moves idf and the average length.
    texts.append("banana banana")
    bm25.upsert([4], ["banana banana"])
    same_as_fresh(bm25, texts)
