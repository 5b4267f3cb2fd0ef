"""A corpus remembers the masks of filters used since its last change, and only those."""

from __future__ import annotations

from collections import OrderedDict
from unittest import mock

import numpy as np
import pytest

from protocol import StoredDocument
from reference import corpus as corpus_module
from reference.corpus import Corpus

EQ_A = {"field": "k", "condition": {"$eq": "a"}}


def _corpus(kinds: list[str]) -> Corpus:
    c = Corpus()
    c.upsert([StoredDocument(f"d{i}", "t", {"k": k}) for i, k in enumerate(kinds)],
             np.eye(len(kinds), 4, dtype=np.float32))
    return c


def _ids(c: Corpus, flt: dict) -> list[str]:
    q = np.ones(4, dtype=np.float32)
    return sorted(d.id for d, _ in c.search(q, "", top_k=10, alpha=1.0, filter=flt))


def test_a_repeated_filter_is_compiled_once_until_the_corpus_changes() -> None:
    c = _corpus(["a", "b", "a"])
    with mock.patch.object(corpus_module, "compile_filter",
                           wraps=corpus_module.compile_filter) as compiled:
        assert _ids(c, EQ_A) == ["d0", "d2"]
        assert _ids(c, {"field": "k", "condition": {"$eq": "a"}}) == ["d0", "d2"]  # a copy
        assert compiled.call_count == 1
        c.upsert([StoredDocument("d3", "t", {"k": "a"})], np.ones((1, 4), dtype=np.float32))
        assert _ids(c, EQ_A) == ["d0", "d2", "d3"]
        c.upsert([StoredDocument("d0", "t", {"k": "b"})], np.ones((1, 4), dtype=np.float32))
        assert _ids(c, EQ_A) == ["d2", "d3"]
        c.delete(["d2"])
        assert _ids(c, EQ_A) == ["d3"]
        assert compiled.call_count == 4


def test_only_the_latest_filters_are_kept() -> None:
    c = _corpus(["a", "b"])
    kept = corpus_module._MASKS_KEPT
    flts = [{"field": "k", "condition": {"$ne": str(i)}} for i in range(kept + 1)]
    for flt in flts:
        _ids(c, flt)
    assert len(c._masks) == kept
    with mock.patch.object(corpus_module, "compile_filter",
                           wraps=corpus_module.compile_filter) as compiled:
        _ids(c, flts[-1])
        assert compiled.call_count == 0
        _ids(c, flts[0])  # the oldest, dropped
        assert compiled.call_count == 1


def test_a_filter_without_a_key_is_compiled_every_time() -> None:
    c = _corpus(["a", "b"])
    # Not a dict (an OrderedDict): no key, so never remembered, yet a valid filter.
    odd = OrderedDict(field="k", condition={"$eq": "a"})
    bad = {"field": "k", "condition": {"$in": ("a",)}}  # a tuple: no key, and an error
    with mock.patch.object(corpus_module, "compile_filter",
                           wraps=corpus_module.compile_filter) as compiled:
        assert _ids(c, odd) == _ids(c, odd) == ["d0"]
        for _ in range(2):
            with pytest.raises(TypeError, match=r"\$in: value must be a list"):
                _ids(c, bad)
        assert compiled.call_count == 4
