"""The bulk vector parser agrees with the exact path, or declines and leaves it the input."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import StoredDocument, decode_artifact, floats
from protocol.artifact import IndexArtifact, encode_artifact
from protocol.floats import RowSink, parse_row_run, parse_rows
from protocol.push import PushBody, PushReader, decode_push, encode_push
from protocol.vectors import as_matrix

finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
# Anything a JSON vector might wrongly hold, beside plain numbers.
oddities = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # float64: some overflow float32
    st.just(1e39),
    st.text(max_size=3),
    st.booleans(),
    st.none(),
    st.lists(finite32, max_size=2),
    st.dictionaries(st.text(max_size=2), finite32, max_size=1),
)
rows_of = st.lists(st.lists(st.one_of(finite32, oddities), max_size=4), min_size=1, max_size=6)


def exact(rows: list[object], dimension: int) -> np.ndarray | None:
    try:
        return as_matrix(rows, dimension=dimension)
    except ValueError:
        return None


@given(st.integers(1, 6).flatmap(lambda d: st.lists(st.lists(finite32, min_size=d, max_size=d))))
def test_numbers_parse_bit_for_bit(rows: list[list[float]]) -> None:
    dimension = len(rows[0]) if rows else 3
    want = np.array(rows, dtype=np.float32).reshape(len(rows), dimension)
    text = orjson.dumps(want, option=orjson.OPT_SERIALIZE_NUMPY)
    got = parse_row_run(memoryview(text)[1:-1], dimension)
    assert got is not None and got.tobytes() == want.tobytes()
    got_rows = parse_rows([orjson.dumps(r) for r in want.tolist()], dimension)
    assert got_rows is not None and got_rows.tobytes() == want.tobytes()


@contextmanager
def slices_of(size: int) -> Iterator[None]:
    saved, floats._SLICE_BYTES = floats._SLICE_BYTES, size
    try:
        yield
    finally:
        floats._SLICE_BYTES = saved


@given(rows_of, st.sampled_from(["", " ", "\n "]), st.sampled_from([8, 16, 8 << 20]))
def test_anything_else_is_declined_or_agrees(
    rows: list[list[object]], space: str, slice_bytes: int
) -> None:
    dimension = len(rows[0])
    text = json.dumps(rows, separators=("," + space, ":")).encode()
    want = exact(rows, dimension)
    got = parse_row_run(memoryview(text)[1:-1], dimension)
    if want is None:
        assert got is None
    elif got is not None:  # declining is always allowed; a wrong answer never is
        assert got.tobytes() == want.tobytes()
    with slices_of(slice_bytes):
        got_rows = parse_rows([json.dumps(r).encode() for r in rows], dimension)
    if want is None:
        assert got_rows is None
    elif got_rows is not None:
        assert got_rows.tobytes() == want.tobytes()


@pytest.mark.parametrize(
    "text",
    [
        b"[[1,[2]],[3,[4]]]",  # a one-element nested list flattens to the right count
        b"[[1,2],[3]]",
        b"[[1,2],[3,4,5]]",
        b'[[1,"2"],[3,4]]',
        b"[[1,2],[3,1e400]]",
        b"[[1,2],[3,1e39]]",  # finite double, infinite float32
        b"[[1,2],[3,true]]",
        b'[[1,{"a":2}],[3,4]]',
    ],
)
def test_declines_what_is_not_rows_of_two_finite_numbers(text: bytes) -> None:
    assert parse_row_run(text[1:-1], 2) is None
    assert parse_rows([row.encode() for row in _rows_text(text)], 2) is None


def _rows_text(text: bytes) -> list[str]:
    """The rows of these two-row samples, split after the first row."""
    first, _, second = text[1:-1].decode().partition("],")
    return [first + "]", second]


def test_row_groups_meet_at_row_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(floats, "_SLICE_BYTES", 16)
    want = np.arange(60, dtype=np.float32).reshape(20, 3) / 7
    rows = [orjson.dumps(r) for r in want.tolist()]
    assert parse_rows(rows, 3).tobytes() == want.tobytes()


@pytest.mark.parametrize(
    ("embedding", "field"),
    [
        ("[1,[2]]", "docs[1].embedding"),
        ("[1,2,3]", "docs[1].embedding: expected dimension 2, got 3"),
        ('[1,"x"]', "docs[1].embedding[1]"),
        ("[1,1e39]", "docs[].embedding[1]: values must be finite"),
    ],
)
def test_push_falls_back_to_the_exact_path_that_names_the_field(
    embedding: str, field: str
) -> None:
    body = (
        '{"indexName":"n","docs":[{"id":"a","text":"","embedding":[0.5,1]},'
        f'{{"id":"b","text":"","embedding":{embedding}}}]}}'
    ).encode()
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        decode_push(body)


def test_a_row_sink_that_cannot_reserve_its_room_takes_nothing() -> None:
    # Where memory is not overcommitted the reservation can be refused: the readers then
    # decline and decode on their exact paths instead of failing.
    text = b"[1.5,2.5],[3.5,4.5]"
    sink = RowSink(len(text))
    assert sink.take(text)
    assert sink.rows().tolist() == [[1.5, 2.5], [3.5, 4.5]]
    huge = RowSink(2**62)  # beyond any machine's address space: numpy refuses it
    assert huge.take(text) is False and huge.rows() is None


def test_readers_decode_exactly_when_their_row_sink_takes_nothing() -> None:
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    docs = [StoredDocument(f"d{i}", "t") for i in range(4)]
    body = encode_push(PushBody("n", None, docs, vectors))
    data = encode_artifact(IndexArtifact("n", "custom", 3, vectors, [d.id for d in docs]))
    with mock.patch.object(RowSink, "take", return_value=False):
        reader = PushReader(len(body))
        reader.feed(body)
        assert reader.finish().embeddings.tobytes() == vectors.tobytes()
        assert decode_artifact(data).embeddings.tobytes() == vectors.tobytes()


# Row texts as PushReader cuts them: from a "[" to the first "]" after it, whatever lies
# between (nested lists, strings holding brackets, objects, commas out of place).
cut_rows = st.lists(
    st.one_of(
        st.lists(finite32, min_size=2, max_size=2).map(lambda r: orjson.dumps(r)),
        st.text(alphabet='0123456789.,-e[{}":a ', max_size=8).map(lambda t: f"[{t}]".encode()),
    ),
    min_size=1,
    max_size=5,
)


@given(cut_rows)
def test_rows_vouched_for_by_the_caller_parse_as_when_their_lists_are_counted(
    rows: list[bytes],
) -> None:
    # take(rows=) skips counting the lists, relying on every row text holding one "]", last.
    counted, vouched = RowSink(1 << 10), RowSink(1 << 10)
    want = counted.take(b",".join(rows))
    got = vouched.take(b"[" + b",".join(rows) + b"]", rows=len(rows))
    assert got == want
    if want:
        assert vouched.rows().tobytes() == counted.rows().tobytes()
