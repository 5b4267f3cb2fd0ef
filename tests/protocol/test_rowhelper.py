"""Parsing a push's rows in the helper process gives exactly what the server alone gives; the
body's text is dropped only where it can be printed again; nothing that goes wrong in the helper
loses or changes a push."""

import os
import re
import signal
from collections.abc import Iterator
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_push_reader import DOC, bodies, same, same_answer

import protocol.push as push_module
import protocol.rowhelper as rowhelper_module
from protocol.push import PushBody, PushReader, decode_push
from protocol.rowhelper import RowHelper, canonical

pytestmark = pytest.mark.skipif(not rowhelper_module.SHARED_MEMORY,
                                reason="shared memory files (memfd) are Linux only")


@pytest.fixture(scope="module")
def helper() -> Iterator[RowHelper]:
    running = RowHelper()
    running.start()
    # Any body gets the helper, so that small examples use it.
    with mock.patch.object(rowhelper_module, "MIN_BYTES", 0):
        yield running
    running.close()


@pytest.fixture(autouse=True)
def helper_returned(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test gives the helper back, even one that fails half way; a leak is a failure."""
    yield
    if "helper" in request.fixturenames:
        running: RowHelper = request.getfixturevalue("helper")
        if running._lock.locked():
            running._lock.release()
            pytest.fail("the test left the helper leased")


def finished(reader: PushReader) -> PushBody:
    try:
        return reader.finish()
    finally:
        reader.close()


def reader_fed(body: bytes, helper: RowHelper | None, cuts: list[int],
               batch: int = 64) -> PushReader:
    """As the server does: the reader is fed the body as it arrives, cut anywhere."""
    reader = PushReader(len(body), helper)
    with mock.patch.object(PushReader, "BATCH_BYTES", batch):
        last = 0
        for cut in sorted({c % (len(body) + 1) for c in cuts} | {len(body)}):
            reader.feed(body[last:cut])
            last = cut
        reader._close_batch()  # with this batch size, as finish() would
    return reader


def read(body: bytes, helper: RowHelper | None, cuts: list[int], batch: int = 64) -> PushBody:
    return finished(reader_fed(body, helper, cuts, batch))


def body_of(docs: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"docs": docs, "indexName": "n"}, option=orjson.OPT_SORT_KEYS)


# No deadline: each example is a round trip to another process, which a busy machine delays.
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies(), st.lists(st.integers(0, 10_000), max_size=6), st.sampled_from([1, 64, 4096]))
def test_the_helper_reads_any_split_as_the_whole_body(
    helper: RowHelper, case: tuple[bytes, list[dict[str, Any]]], cuts: list[int], batch: int
) -> None:
    body, _ = case
    reader = reader_fed(body, helper, cuts, batch)
    with mock.patch.object(push_module, "decode_push", side_effect=AssertionError("exact")):
        got = finished(reader)
    same(got, decode_push(body))


# Payloads holding what looks like an embedding: the rows the reader finds are then not all
# embeddings, so it must decode the body it rebuilds, which must be the body sent.
decoy = st.fixed_dictionaries({"embedding": st.lists(st.integers(-3, 3) | st.floats(
    width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=3)})


# No deadline: each example is a round trip to another process, which a busy machine delays.
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies(), st.lists(decoy, min_size=1, max_size=3), st.lists(st.integers(0, 10_000),
       max_size=4), st.sampled_from([1, 64]))
def test_a_body_the_reader_doubts_is_rebuilt_byte_for_byte(
    helper: RowHelper, case: tuple[bytes, list[dict[str, Any]]],
    decoys: list[dict[str, Any]], cuts: list[int], batch: int
) -> None:
    _, docs = case
    for doc, payload in zip(docs, decoys, strict=False):
        doc["payload"] = payload
    body = body_of(docs)
    reader = reader_fed(body, helper, cuts, batch)
    same_answer(body, lambda: finished(reader))
    assert reader._rebuilt()[0] == body


@pytest.mark.parametrize("number", [b"2", b"2.0000001", b"20e-1"])
def test_text_that_would_decode_otherwise_printed_again_is_kept(
    helper: RowHelper, number: bytes
) -> None:
    # An integer, a value float32 does not hold, a float written without a ".".
    body = body_of([{**DOC, "id": f"d{i}"} for i in range(40)]).replace(b"2.0]", number + b"]")
    reader = reader_fed(body, helper, [333], batch=64)
    got = finished(reader)
    same(got, decode_push(body))
    assert reader.kept_text_bytes > 0
    assert reader._rebuilt()[0] == body


@pytest.mark.parametrize("decoy", [[3, 4], [0.1, 0.2]])
def test_a_decoy_rebuilt_keeps_its_numbers_as_sent(helper: RowHelper, decoy: list[Any]) -> None:
    # A payload holding an embedding-like list is in a batch; the body is then decoded whole,
    # rebuilt. Printed again from float32 rows, 3 would come back 3.0 and 0.1 as
    # 0.10000000149011612.
    docs = [{**DOC, "id": f"d{i}"} for i in range(30)]
    docs[10]["payload"] = {"embedding": decoy}
    body = body_of(docs)
    got = read(body, helper, [], batch=64)
    payload = got.docs[10].payload
    assert payload == {"embedding": decoy}
    assert [type(x) for x in payload["embedding"]] == [type(x) for x in decoy]


def _written(x: float, form: int) -> bytes:
    """A float written so that it decodes to exactly ``x``, in one of several lengths."""
    if form == 0:
        return orjson.dumps(x)
    if form == 1:
        return f"{x:.16e}".encode()  # 17 digits: longer than the shortest
    shortest = next(p for p in range(1, 17) if float(f"{x:.{p}e}") == x)
    return f"{x:.{shortest}e}".encode()  # 1.5e+05 for 150000.0: shorter than "150000.0"


@st.composite
def rewritten_bodies(draw: st.DrawFn) -> bytes:
    """A body whose embeddings are float32 values written in various exact forms, most of
    them not as the published SDK writes them, with one byte inserted somewhere."""
    dim = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False),
                                  min_size=dim, max_size=dim), min_size=1, max_size=30))
    docs = []
    for i, row in enumerate(rows):
        numbers = b",".join(_written(x, draw(st.integers(0, 2))) for x in row)
        docs.append(b'{"embedding":[%s],"id":"d%d","metadata":null,"payload":null,"text":"t"}'
                    % (numbers, i))
    body = b'{"docs":[' + b",".join(docs) + b'],"indexName":"n"}'
    at = draw(st.integers(0, len(body)))
    return body[:at] + draw(st.sampled_from([b"x", b",", b"]", b"}", b" ", b"0"])) + body[at:]


# No deadline: each example is a round trip to another process, which a busy machine delays.
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rewritten_bodies(), st.sampled_from([1, 64]))
def test_rows_printed_again_give_the_answer_and_error_offsets_of_the_body_sent(
    helper: RowHelper, body: bytes, batch: int
) -> None:
    same_answer(body, lambda: read(body, helper, [len(body) // 2], batch=batch))


def test_an_error_after_rows_printed_again_names_its_offset_in_the_body_sent(
    helper: RowHelper,
) -> None:
    long = b"[%s]" % b",".join(_written(x, 1) for x in [0.5, -0.25, 3.0])
    rows = [long] * 40
    docs = [b'{"embedding":%s,"id":"d%d","text":"t"}' % (row, i) for i, row in enumerate(rows)]
    body = b'{"docs":[' + b",".join(docs) + b'],"indexName":"n",}'
    reader = reader_fed(body, helper, [], batch=64)
    with pytest.raises(ValueError) as error:
        finished(reader)
    assert reader.kept_text_bytes < len(rows) * len(long)  # some were printed again
    rebuilt, _ = reader._rebuilt()
    assert len(rebuilt) < len(body)
    assert str(error.value) == f"body: malformed JSON (JSON is malformed: " \
        f"trailing comma in object (byte {len(body) - 1}))"


def test_the_helper_parses_most_batches_of_a_large_body(helper: RowHelper) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    body = body_of([{"embedding": vectors[i].tolist(), "id": f"d{i}", "metadata": None,
                     "payload": None, "text": "t"} for i in range(3000)])
    before = helper.batches_parsed
    reader = PushReader(len(body), helper)
    for start in range(0, len(body), 1 << 16):
        reader.feed(body[start:start + (1 << 16)])
    # While the helper parsed, the documents were decoded as their text came.
    assert reader._docs is not None and len(reader._docs) > 1000
    got = finished(reader)
    assert got.embeddings.tobytes() == vectors.tobytes()
    helped = re.fullmatch(r"the helper \((\d+) of (\d+) batches\)", reader.helped)
    assert helped is not None and int(helped.group(1)) >= 1, reader.helped
    assert helper.batches_parsed > before
    # The helper found its batches printed as orjson prints float32 values, so their text was
    # dropped; the server keeps only the text of those it parsed itself, at the end.
    assert reader.kept_text_bytes < len(body) / 2


def test_rows_go_straight_into_a_free_slot(helper: RowHelper) -> None:
    rows = np.random.default_rng(4).standard_normal((300, 2)).astype(np.float32)
    body = body_of([{**DOC, "id": f"d{i}", "embedding": rows[i].tolist()} for i in range(300)])
    reader = PushReader(len(body), helper)
    with (mock.patch.object(PushReader, "BATCH_BYTES", 64),
          mock.patch.object(rowhelper_module.Lease, "submit_in_slot", autospec=True,
                            side_effect=rowhelper_module.Lease.submit_in_slot) as in_slot):
        for start in range(0, len(body), 500):
            reader.feed(body[start : start + 500])
            lease = reader._lease
            assert lease is not None
            while lease._sent:  # as when the body arrives no faster than the helper parses
                lease._collect(wait=True)
        got = finished(reader)
    same(got, decode_push(body))
    assert in_slot.call_count == len(reader._batches) > 10
    assert reader.kept_text_bytes == 0


def test_batches_too_big_for_a_slot_are_parsed_in_the_server(helper: RowHelper) -> None:
    # Rows of 80 to 400 bytes in batches of at least 200: some fit a slot, some not.
    body = body_of([{**DOC, "id": f"d{i}", "embedding": [i / 7 if i % 5 == 0 else 1.0] * 20}
                    for i in range(60)])
    before = helper.batches_parsed
    with mock.patch.object(rowhelper_module, "SLOT_BYTES", 300):
        reader = reader_fed(body, helper, [], batch=200)
        got = finished(reader)
    same(got, decode_push(body))
    helped = re.fullmatch(r"the helper \((\d+) of (\d+) batches\)", reader.helped)
    assert helped is not None and 0 < int(helped.group(1)) < int(helped.group(2))
    assert helper.batches_parsed > before


@pytest.mark.parametrize("embedding", [[1.0, "2"], [1.0], [1.0, 1e39], [[1.0], [2.0]]])
def test_a_bad_row_in_the_helper_falls_back_to_the_exact_answer(
    helper: RowHelper, embedding: list[Any]
) -> None:
    docs = [{**DOC, "id": f"d{i}"} for i in range(20)] + [{**DOC, "id": "c",
                                                          "embedding": embedding}]
    body = body_of(docs)
    same_answer(body, lambda: read(body, helper, [40, 90], batch=1))


def test_a_helper_that_dies_loses_no_push_and_is_started_again(helper: RowHelper) -> None:
    body = body_of([{**DOC, "id": f"d{i}", "embedding": [float(i), 0.5]} for i in range(200)])
    want = decode_push(body)
    reader = PushReader(len(body), helper)
    with mock.patch.object(PushReader, "BATCH_BYTES", 64):
        reader.feed(body[: len(body) // 2])
        assert helper._process is not None
        os.kill(helper._process.pid, signal.SIGKILL)
        helper._process.wait()
        reader.feed(body[len(body) // 2 :])
        same(finished(reader), want)
    starts = helper.starts
    before = helper.batches_parsed
    same(read(body, helper, [100]), want)
    assert helper.starts == starts + 1
    assert helper.batches_parsed > before


def test_an_abandoned_push_leaves_the_helper_ready_for_the_next(helper: RowHelper) -> None:
    body = body_of([{**DOC, "id": f"d{i}", "embedding": [float(i), 1.5]} for i in range(100)])
    reader = PushReader(len(body), helper)
    with mock.patch.object(PushReader, "BATCH_BYTES", 64):
        reader.feed(body[: len(body) // 2])
    reader.close()  # the client went away: batches may still be on their way back
    starts = helper.starts
    same(read(body, helper, [50, 300]), decode_push(body))
    assert helper.starts == starts


def test_one_push_at_a_time_has_the_helper(helper: RowHelper) -> None:
    first = helper.lease(1 << 20)
    assert first is not None
    try:
        assert helper.lease(1 << 20) is None  # the second push parses in the server
        reader = PushReader(len(body_of([DOC])), helper)
        assert reader.helped == "the server"
        reader.close()
    finally:
        first.release()
    again = helper.lease(1 << 20)
    assert again is not None
    again.release()


def test_small_pushes_and_a_closed_helper_parse_in_the_server() -> None:
    helper = RowHelper()
    assert helper.lease(rowhelper_module.MIN_BYTES - 1) is None
    assert helper.starts == 0  # nothing was started for it
    helper.close()
    assert helper.lease(rowhelper_module.MIN_BYTES) is None


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1,
                max_size=8))
def test_canonical_text_is_what_json_decoding_gives_back_exactly(row: list[float]) -> None:
    matrix = np.array([row], dtype=np.float32)
    text = canonical(matrix)
    assert np.array(orjson.loads(text), dtype=np.float32).tobytes() == matrix.tobytes()
    assert text == orjson.dumps([row])  # the float32 values, printed as Python floats


@pytest.mark.parametrize("layout", [
    b'{"modelId":"m","docs":[%s],"indexName":"n"}',  # a key before the documents
    b'{"docs" : [%s],"indexName":"n","modelId":"m"}',
    b'{"docs":[%s],"indexName":"n","modelId":"m","docs":[]}',  # the documents twice
])
def test_documents_decoded_early_only_where_the_whole_body_agrees(
    helper: RowHelper, layout: bytes
) -> None:
    docs = b",".join(orjson.dumps({**DOC, "id": f"d{i}", "embedding": [float(i), 2.5]},
                                  option=orjson.OPT_SORT_KEYS) for i in range(60))
    body = layout % docs
    same_answer(body, lambda: read(body, helper, [100, 900], batch=64))


@pytest.mark.parametrize(("at", "change"), [
    (50, lambda doc: {**doc, "id": "d0"}),  # a duplicate of a document decoded early
    (5, lambda doc: {**doc, "id": "d55"}),  # the same, the other way round
    (55, lambda doc: {**doc, "id": ""}),
    (3, lambda doc: {**doc, "id": ""}),
    (20, lambda doc: {**doc, "metadata": {"k": "1e999"}}),
])
@pytest.mark.parametrize("model", ["m", " "])
def test_documents_checked_early_are_refused_as_the_whole_body_is(
    helper: RowHelper, at: int, change: Any, model: str
) -> None:
    docs = [{**DOC, "id": f"d{i}", "embedding": [float(i), 2.5]} for i in range(60)]
    docs[at] = change(docs[at])
    body = orjson.dumps({"docs": docs, "indexName": "n", "modelId": model},
                        option=orjson.OPT_SORT_KEYS).replace(b'"1e999"', b"1e999")
    with pytest.raises(ValueError):
        decode_push(body)
    same_answer(body, lambda: read(body, helper, [333], batch=64))


def test_closing_waits_only_so_long_for_a_push_that_has_the_helper() -> None:
    helper = RowHelper()
    with mock.patch.object(rowhelper_module, "MIN_BYTES", 0):
        lease = helper.lease(1 << 20)
        assert lease is not None
        process = helper._process
        helper.close(wait_s=0.1)
        assert helper._process is None and process is not None and process.poll() is not None
        lease.release()  # the push ends afterwards: nothing breaks
        assert helper.lease(1 << 20) is None


def test_where_memory_files_are_missing_no_helper_is_started() -> None:
    helper = RowHelper()
    with mock.patch.object(rowhelper_module, "SHARED_MEMORY", False):
        helper.start()
        assert helper.lease(rowhelper_module.MIN_BYTES) is None
    assert helper.starts == 0 and helper._process is None
    helper.close()
