"""The push body decoded while it uploads gives what the whole body decodes to, or its error."""

import json
import math
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocol.push as push_module
from protocol.push import PushBody, PushReader, decode_push

finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
# Values whose text looks like the layout's landmarks, in every place a string can go.
tricky = st.sampled_from(['{"embedding":[', "]", "],", '"', "\\", "}]", "x"]) | st.text(max_size=8)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[dict[str, Any]]]:
    """A push body in the published SDK's layout (sorted keys, compact)."""
    dim = draw(st.integers(1, 5))
    ids = draw(st.lists(tricky.filter(bool), unique=True, min_size=1, max_size=12))
    docs = [
        {
            "embedding": draw(st.lists(finite32, min_size=dim, max_size=dim)),
            "id": doc_id,
            "metadata": draw(st.none() | st.dictionaries(tricky.filter(bool), tricky, max_size=2)),
            "payload": draw(st.none() | st.dictionaries(tricky, tricky, max_size=2)),
            "text": draw(tricky),
        }
        for doc_id in ids
    ]
    return orjson.dumps({"docs": docs, "indexName": "n"}, option=orjson.OPT_SORT_KEYS), docs


def read_in_pieces(body: bytes, cuts: list[int], declared: int | None = None) -> PushBody:
    """As the server does: the reader is fed the body as it arrives, cut anywhere."""
    reader = PushReader(len(body) if declared is None else declared)
    last = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts} | {len(body)}):
        reader.feed(body[last:cut])
        last = cut
    try:
        return reader.finish()
    finally:
        reader.close()


def same_answer(body: bytes, read: Callable[[], PushBody]) -> None:
    """``read()`` gives what decode_push(body) gives: the same push, or the same error."""
    try:
        want: PushBody | str = decode_push(body)
    except ValueError as exc:
        want = str(exc)
    try:
        got: PushBody | str = read()
    except ValueError as exc:
        got = str(exc)
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
    else:
        same(got, want)


def same(got: PushBody, want: PushBody) -> None:
    assert (got.index_name, got.model_id, got.docs) == (want.index_name, want.model_id, want.docs)
    assert got.embeddings.tobytes() == want.embeddings.tobytes()
    assert got.embeddings.shape == want.embeddings.shape


@settings(max_examples=200)
@given(bodies(), st.lists(st.integers(0, 10_000), max_size=6), st.sampled_from([1, 64, 1 << 20]))
def test_any_split_of_the_upload_decodes_as_the_whole_body(
    case: tuple[bytes, list[dict[str, Any]]], cuts: list[int], batch: int
) -> None:
    body, _ = case
    with mock.patch.object(PushReader, "BATCH_BYTES", batch):
        got = read_in_pieces(body, cuts)
    same(got, decode_push(body))


@settings(max_examples=100)
@given(bodies(), st.lists(st.integers(0, 10_000), max_size=4))
def test_the_fast_path_reads_the_published_sdks_layout(
    case: tuple[bytes, list[dict[str, Any]]], cuts: list[int]
) -> None:
    # Guards the test above against a fast path that always declines.
    body, docs = case
    with (
        mock.patch.object(PushReader, "BATCH_BYTES", 64),
        mock.patch.object(push_module, "decode_push", side_effect=AssertionError("exact path")),
    ):
        got = read_in_pieces(body, cuts)
    want = np.array([d["embedding"] for d in docs], dtype=np.float32)
    assert got.embeddings.tobytes() == want.tobytes()
    assert [d.id for d in got.docs] == [d["id"] for d in docs]


DOC = {"embedding": [1.0, 2.0], "id": "a", "metadata": None, "payload": None, "text": "t"}


@pytest.mark.parametrize(
    "body",
    [
        # the embedding is not the first key, or no document has one where expected
        {"docs": [{"id": "a", "text": "t", "embedding": [1.0, 2.0]}], "indexName": "n"},
        # a decoy in the payload beside a document whose embedding is not a list
        {"docs": [{**DOC, "embedding": None, "payload": {"embedding": [3.0, 4.0]}}],
         "indexName": "n"},
        {"docs": [{**DOC, "payload": {"embedding": [3.0, 4.0]}}], "indexName": "n"},
        {"docs": [DOC, {**DOC, "id": "b", "embedding": [1.0, "2"]}], "indexName": "n"},
        {"docs": [DOC, {**DOC, "id": "b", "embedding": [1.0]}], "indexName": "n"},
        {"docs": [DOC, {**DOC, "id": "b", "embedding": [[1.0], [2.0]]}], "indexName": "n"},
        {"docs": [DOC, {**DOC, "id": "a"}], "indexName": "n"},
        {"docs": [DOC], "indexName": "a/b"},
        {"docs": [DOC], "indexName": "n", "extra": {"embedding": [5.0, 6.0]}},
        {"docs": [], "indexName": "n"},
    ],
)
@pytest.mark.parametrize("declared", [None, 0])
def test_other_layouts_and_bad_bodies_get_the_whole_body_answer(
    body: dict[str, Any], declared: int | None
) -> None:
    raw = json.dumps(body, separators=(",", ":")).encode()
    same_answer(raw, lambda: read_in_pieces(raw, [7, 30], declared))


def test_bad_json_after_the_embeddings_is_still_refused() -> None:
    raw = orjson.dumps({"docs": [DOC], "indexName": "n"})[:-1] + b",}"
    with pytest.raises(ValueError, match="malformed JSON"):
        read_in_pieces(raw, [10])


@st.composite
def checked_documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Documents whose ids repeat or are empty, and whose metadata may hold an infinite number
    among finite ones and other values."""
    values = st.sampled_from([math.inf, -math.inf, 1.5, 2, "x", True])
    return [
        {"embedding": [1.0, 2.0], "id": doc_id, "text": "t",
         "metadata": draw(st.none() | st.dictionaries(st.sampled_from("kl"), values, max_size=2))}
        for doc_id in draw(st.lists(st.sampled_from(["", "a", "b", "c", "d"]), max_size=6))
    ]


def first_refusal(docs: list[dict[str, Any]]) -> str | None:
    """What ``docs`` are refused for: the first bad document, checked one by one."""
    seen: set[str] = set()
    for i, doc in enumerate(docs):
        if not doc["id"]:
            return f"docs[{i}].id: must not be empty"
        if doc["id"] in seen:
            return f"docs[{i}].id: duplicate id {doc['id']!r}"
        seen.add(doc["id"])
        for key, value in (doc["metadata"] or {}).items():
            if value in (math.inf, -math.inf):
                return f"docs[{i}].metadata.{key}: numbers must be finite"
    return None


def refusal(read: Callable[[], object]) -> str | None:
    try:
        read()
    except ValueError as exc:
        return str(exc)
    return None


@settings(max_examples=300)
@given(checked_documents())
def test_the_first_bad_document_is_the_one_named(docs: list[dict[str, Any]]) -> None:
    wire = [push_module._WireDoc(d["id"], d["text"], 0, d["metadata"]) for d in docs]
    assert refusal(lambda: push_module._checked_docs(wire, 0, set())) == first_refusal(docs)
    # Through a body, without the infinite numbers: msgspec refuses 1e999 before our checks.
    finite = [d for d in docs
              if not any(v in (math.inf, -math.inf) for v in (d["metadata"] or {}).values())]
    body = orjson.dumps({"docs": finite, "indexName": "n"}, option=orjson.OPT_SORT_KEYS)
    want = first_refusal(finite)
    assert refusal(lambda: decode_push(body)) == want
    assert refusal(lambda: read_in_pieces(body, [40, 90])) == want
