"""The 8-bit copy that shortlists rows for large matrices: exact bounds, same rankings, and
when it is built."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import int8_scan as I
from reference import search as S
from reference.int8_scan import Int8Cache, Int8Scan, kernel_is_exact
from reference.search import VectorMatrix, search
from tests.reference.test_search_fast_paths import (
    build,
    cases,
    check,
    slow_search,
    small_thresholds,
)


def test_the_kernel_multiplies_exactly_at_the_code_bounds() -> None:
    # Without this the copy is never used; on this machine (AVX2) it must hold.
    assert kernel_is_exact()


def _matrix(rng: np.random.Generator, n: int, dim: int, kind: str) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    if kind == "scaled":  # rows from subnormal to huge, some zero, with zero components
        v *= rng.choice([0.0, 1e-44, 1e-38, 1e-30, 1e-3, 1.0, 1e12], size=(n, 1)).astype(
            np.float32)
        v[rng.random(v.shape) < 0.2] = 0.0
    elif kind == "spiky":  # one large component per row: most codes round to 0
        v[np.arange(n), rng.integers(dim, size=n)] *= 1e4
    elif kind == "duplicates":
        v = v[rng.integers(max(1, n // 4), size=n)]
    elif kind == "integers":
        v = rng.integers(-3, 4, size=(n, dim)).astype(np.float32)
    return v


def _query(rng: np.random.Generator, v: np.ndarray, kind: str) -> np.ndarray:
    dim = v.shape[1]
    if kind == "zero":
        return np.zeros(dim, dtype=np.float32)
    if kind == "stored":
        return v[rng.integers(len(v))].copy()
    if kind == "tiny":
        return (rng.standard_normal(dim) * 1e-30).astype(np.float32)
    if kind == "subnormal":  # its step underflows
        return (rng.standard_normal(dim) * 1e-44).astype(np.float32)
    return rng.standard_normal(dim).astype(np.float32)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 120),
    dim=st.sampled_from([1, 2, 7, 32, 384]),
    kind=st.sampled_from(["gaussian", "scaled", "spiky", "duplicates", "integers"]),
    q_kind=st.sampled_from(["gaussian", "zero", "stored", "tiny", "subnormal"]),
    k=st.integers(1, 12),
    subset=st.booleans(),
)
def test_the_shortlist_holds_every_row_that_can_rank(
    seed: int, n: int, dim: int, kind: str, q_kind: str, k: int, subset: bool
) -> None:
    rng = np.random.default_rng(seed)
    v = _matrix(rng, n, dim, kind)
    q = _query(rng, v, q_kind)
    norms = np.sqrt(np.einsum("ij,ij->i", v, v, dtype=np.float64)).astype(np.float32)
    with mock.patch.object(I, "CHUNK_ROWS", 16):  # several chunks
        scan = Int8Scan.build(v, norms)
    assert scan is not None
    rows = np.flatnonzero(rng.random(n) < 0.6) if subset else None
    candidates = np.arange(n) if rows is None else rows
    if len(candidates) < k:
        return
    near = scan.shortlist(q, k, S._floor_of, rows)
    if near is None:
        # Only where products could overflow float32 (the 1e12 rows), or the floor gives up
        # (fewer groups of values than k).
        assert kind == "scaled" or S._floor_of(np.zeros(len(candidates)), k) is None
        return
    # Every row whose product reaches the k-th best, in either summation order the ranking
    # or the float32 scan uses, is on the shortlist.
    for product in (np.einsum("ij,j->i", v[candidates], q), np.vecdot(v[candidates], q)):
        kth = np.sort(product)[-k]
        assert set(np.flatnonzero(product >= kth)) <= set(near.tolist())


def test_a_cancelled_build_gives_nothing() -> None:
    v = np.ones((40, 4), dtype=np.float32)
    calls = iter([False, True])
    with mock.patch.object(I, "CHUNK_ROWS", 16):
        built = Int8Scan.build(v, np.full(40, 2.0, np.float32), cancelled=lambda: next(calls))
    assert built is None


# --- rankings ---------------------------------------------------------------------------------
@contextmanager
def int8_at_small_sizes() -> Iterator[None]:
    """Every matrix gets its 8-bit copy at the first query, built in the calling thread."""
    with (
        small_thresholds(),
        mock.patch.multiple(Int8Cache, MIN_ROWS=1, FIRST_THRESHOLD=1),
        mock.patch.object(S, "Int8Cache", functools.partial(Int8Cache, background=False)),
    ):
        yield


@settings(max_examples=300, deadline=None)
@given(case=cases, n=st.integers(1, 300))
def test_rankings_through_the_8_bit_copy_are_the_plain_ones(case: dict[str, Any], n: int) -> None:
    with int8_at_small_sizes():
        check(case, n)


def test_the_8_bit_copy_is_what_shortlists_once_built() -> None:
    # Guards the test above against a copy that quietly never serves.
    rng = np.random.default_rng(4)
    with int8_at_small_sizes():
        c = build(rng, 2000, 16, "gaussian", 0.1)
        q = rng.standard_normal(16).astype(np.float32)
        with mock.patch.object(S, "_scan", side_effect=AssertionError("float32 scan")):
            for mask in (None, rng.random(len(c.matrix)) < 0.5):
                got = search(c.matrix, c.bm25, q, "apple", 5, 0.8, mask)
                assert got == slow_search(c.matrix, c.bm25, q, "apple", 5, 0.8, mask)


def test_a_filter_with_few_survivors_gathers_them_instead() -> None:
    rng = np.random.default_rng(6)
    with int8_at_small_sizes():
        c = build(rng, 320, 8, "gaussian", 0.0)
        q = rng.standard_normal(8).astype(np.float32)
        mask = np.zeros(len(c.matrix), dtype=bool)
        mask[::40] = True  # 8 of 320: under 1/_GATHER_SHARE
        with mock.patch.object(Int8Scan, "shortlist", side_effect=AssertionError("int8")):
            got = search(c.matrix, c.bm25, q, "", 3, 1.0, mask)
        assert got == slow_search(c.matrix, c.bm25, q, "", 3, 1.0, mask)


# --- when the copy is built -------------------------------------------------------------------
def _big(n: int = 64, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    v = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
    return v, np.linalg.norm(v, axis=1).astype(np.float32)


@pytest.fixture
def small_min_rows() -> Iterator[None]:
    with mock.patch.object(Int8Cache, "MIN_ROWS", 16):
        yield


def test_built_at_the_second_query_without_a_change(small_min_rows: None) -> None:
    cache, (v, norms) = Int8Cache(background=False), _big()
    assert cache.get(v, norms) is None  # one query says nothing yet
    scan = cache.get(v, norms)
    assert scan is not None and scan.rows == len(v)
    assert cache.get(v, norms) is scan and cache.builds_started == 1
    cache.changed()
    assert cache.get(v, norms) is None  # a change drops it, and the count starts again
    assert cache.get(v, norms) is not None and cache.builds_started == 2


def test_never_built_for_a_small_matrix(small_min_rows: None) -> None:
    cache, (v, norms) = Int8Cache(background=False), _big(15)
    assert all(cache.get(v, norms) is None for _ in range(5))
    assert cache.builds_started == 0


def test_a_copy_dropped_unused_doubles_the_streak_a_build_waits_for(small_min_rows: None) -> None:
    cache, (v, norms) = Int8Cache(background=False), _big()
    cache.get(v, norms)
    cache.get(v, norms)  # built and used
    cache.changed()
    assert cache.threshold == 2
    # Outrun: the matrix changes while the copy is being built.
    real_build = Int8Scan.build

    def changing_build(*args: Any, **kwargs: Any) -> Int8Scan | None:
        cache.changed()
        return real_build(*args, **kwargs)

    with mock.patch.object(Int8Scan, "build", side_effect=changing_build):
        cache.get(v, norms)
        assert cache.get(v, norms) is None
    assert cache.threshold == 4
    assert [cache.get(v, norms) for _ in range(3)] == [None] * 3 and cache.builds_started == 2
    assert cache.get(v, norms) is not None  # the fourth query in a row builds it
    cache.changed()
    assert cache.threshold == 2  # it was used: back to building soon


def test_the_background_build_serves_later_queries_and_a_change_cancels_it(
    small_min_rows: None,
) -> None:
    cache, (v, norms) = Int8Cache(), _big(5000, 16)
    started, release = threading.Event(), threading.Event()
    real_build = Int8Scan.build

    def slow_build(*args: Any, **kwargs: Any) -> Int8Scan | None:
        started.set()
        release.wait(10)
        return real_build(*args, **kwargs)

    with mock.patch.object(Int8Scan, "build", side_effect=slow_build):
        cache.get(v, norms)
        assert cache.get(v, norms) is None  # building: the query does not wait for it
        assert started.wait(10)
        cache.changed()
        release.set()
        _wait_until(lambda: not cache._building)
    assert cache.get(v, norms) is None and cache.threshold == 4  # outrun, so dropped
    for _ in range(3):
        cache.get(v, norms)
    _wait_until(lambda: not cache._building)
    scan = cache.get(v, norms)
    assert scan is not None and scan.rows == 5000


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_matrix_drops_its_copy_on_every_kind_of_change() -> None:
    rng = np.random.default_rng(2)
    with int8_at_small_sizes():
        m = VectorMatrix()
        m.upsert([f"d{i}" for i in range(30)], rng.standard_normal((30, 4)).astype(np.float32))
        changes = [
            lambda: m.upsert(["d1"], rng.standard_normal((1, 4)).astype(np.float32)),
            lambda: m.upsert(["new"], rng.standard_normal((1, 4)).astype(np.float32)),
            lambda: m.delete(["d3"]),
        ]
        for change in changes:
            before = m.int8_scan()
            assert before is not None and before.rows == len(m)
            change()
            after = m.int8_scan()
            assert after is not None and after is not before and after.rows == len(m)
        m.delete(["unknown"])  # no change, so the copy stays
        assert m.int8_scan() is after


@pytest.mark.parametrize("seed", range(5))
def test_the_margin_is_not_more_than_needed_somewhere(seed: int) -> None:
    # Rows whose rounding error lies along the query, so Cauchy-Schwarz is tight: the
    # best row's centre can sit almost two margins below the best centre. A shortlist cut
    # any closer than the bound allows drops it (the test above cannot see that: random
    # data stays far inside the bound).
    rng = np.random.default_rng(seed)
    n = 4000
    v = np.stack([rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.45, n)], axis=1).astype(np.float32)
    q = np.array([0.0, 1.0], dtype=np.float32)
    norms = np.linalg.norm(v, axis=1).astype(np.float32)
    scan = Int8Scan.build(v, norms)
    assert scan is not None
    product = np.einsum("ij,j->i", v, q)
    near = scan.shortlist(q, 1, S._floor_of)
    assert near is not None and int(np.argmax(product)) in near.tolist()


def test_a_forked_child_builds_its_own_copy(small_min_rows: None) -> None:
    # onnxruntime's threads do not survive a fork, nor does a build under way.
    cache, (v, norms) = Int8Cache(background=False), _big()
    cache.get(v, norms)
    parent = cache.get(v, norms)
    assert parent is not None
    with mock.patch.object(I.os, "getpid", return_value=I.os.getpid() + 1):
        assert cache.get(v, norms) is None  # dropped, and the count starts again
        child = cache.get(v, norms)
    assert child is not None and child is not parent and cache.builds_started == 2


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dim=st.sampled_from([1, 3, 64]),
       scale=st.sampled_from([1e-45, 1e-40, 1e-38, 1e-20, 1.0, 1e30, 3e38]))
def test_each_row_is_within_its_bound_of_its_codes(seed: int, dim: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    v = (rng.uniform(-1, 1, (20, dim)) * scale).astype(np.float32)
    v[rng.random(v.shape) < 0.3] = 0.0  # zero components beside a tiny peak
    codes, scales, bound = I._quantize(v)
    assert np.isfinite(scales).all() and np.isfinite(bound).all()
    # In float64 these are exact: float32 values, and codes of at most 127 times a float32.
    lost = v.astype(np.float64) - codes.astype(np.float64) * scales.astype(np.float64)[:, None]
    assert (np.sqrt((lost**2).sum(axis=1)) <= bound).all()
