"""Parsing a push's rows in the helper process gives exactly what the server alone gives, and
nothing that goes wrong in the helper loses or changes a push."""

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
from test_push_reader import DOC, bodies, same

import protocol.push as push_module
import protocol.rowhelper as rowhelper_module
from protocol.push import PushBody, PushReader, decode_push
from protocol.rowhelper import RowHelper

pytestmark = pytest.mark.skipif(not rowhelper_module.SHARED_BUFFERS,
                                reason="shared memory files (memfd) are Linux only")


@pytest.fixture(scope="module")
def helper() -> Iterator[RowHelper]:
    running = RowHelper()
    # Any body gets the helper, and batches are small, so that small examples use it.
    with mock.patch.object(rowhelper_module, "MIN_BYTES", 0):
        yield running
    running.close()


def read(body: bytes, helper: RowHelper | None, cuts: list[int], batch: int = 64) -> PushBody:
    """As the server does: the body fills the reader's buffer piece by piece."""
    reader = PushReader(len(body), helper)
    with mock.patch.object(PushReader, "BATCH_BYTES", batch):
        buf = reader.buffer(len(body)).map if len(body) else bytearray()
        last = 0
        try:
            for cut in sorted({c % (len(body) + 1) for c in cuts} | {len(body)}):
                buf[last:cut] = body[last:cut]
                last = cut
                if reader.scan(buf, cut):
                    reader.parse(buf)
            return reader.finish(buf)
        finally:
            reader.close()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies(), st.lists(st.integers(0, 10_000), max_size=6), st.sampled_from([1, 64, 4096]))
def test_the_helper_reads_any_split_as_the_whole_body(
    helper: RowHelper, case: tuple[bytes, list[dict[str, Any]]], cuts: list[int], batch: int
) -> None:
    body, _ = case
    with mock.patch.object(push_module, "decode_push", side_effect=AssertionError("exact")):
        got = read(body, helper, cuts, batch)
    same(got, decode_push(body))


def test_the_helper_parses_most_batches_of_a_large_body(helper: RowHelper) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    docs = [{"embedding": vectors[i].tolist(), "id": f"d{i}", "metadata": None,
             "payload": None, "text": "t"} for i in range(3000)]
    body = orjson.dumps({"docs": docs, "indexName": "n"}, option=orjson.OPT_SORT_KEYS)
    before = helper.batches_parsed
    reader = PushReader(len(body), helper)
    buf = reader.buffer(len(body)).map
    for start in range(0, len(body), 1 << 16):
        buf[start:start + (1 << 16)] = body[start:start + (1 << 16)]
        if reader.scan(buf, min(start + (1 << 16), len(body))):
            reader.parse(buf)
    got = reader.finish(buf)
    reader.close()
    assert got.embeddings.tobytes() == vectors.tobytes()
    helped = re.fullmatch(r"the helper \((\d+) of (\d+) batches\)", reader.helped)
    assert helped is not None and int(helped.group(1)) >= 1, reader.helped
    assert helper.batches_parsed > before


@pytest.mark.parametrize("embedding", [[1.0, "2"], [1.0], [1.0, 1e39], [[1.0], [2.0]]])
def test_a_bad_row_in_the_helper_falls_back_to_the_exact_answer(
    helper: RowHelper, embedding: list[Any]
) -> None:
    docs = [DOC, {**DOC, "id": "b"}, {**DOC, "id": "c", "embedding": embedding}]
    body = orjson.dumps({"docs": docs, "indexName": "n"}, option=orjson.OPT_SORT_KEYS)
    try:
        want: PushBody | str = decode_push(body)
    except ValueError as exc:
        want = str(exc)
    try:
        got: PushBody | str = read(body, helper, [40, 90], batch=1)
    except ValueError as exc:
        got = str(exc)
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
    else:
        same(got, want)


def test_a_helper_that_dies_loses_no_push_and_is_started_again(helper: RowHelper) -> None:
    docs = [{**DOC, "id": f"d{i}", "embedding": [float(i), 0.5]} for i in range(200)]
    body = orjson.dumps({"docs": docs, "indexName": "n"}, option=orjson.OPT_SORT_KEYS)
    want = decode_push(body)
    reader = PushReader(len(body), helper)
    buf = reader.buffer(len(body)).map
    buf[: len(body) // 2] = body[: len(body) // 2]
    with mock.patch.object(PushReader, "BATCH_BYTES", 64):
        assert reader.scan(buf, len(body) // 2)
        reader.parse(buf)
        assert helper._process is not None
        os.kill(helper._process.pid, signal.SIGKILL)
        helper._process.wait()
        buf[len(body) // 2 :] = body[len(body) // 2 :]
        same(reader.finish(buf), want)
    reader.close()
    starts = helper.starts
    before = helper.batches_parsed
    same(read(body, helper, [100]), want)
    assert helper.starts == starts + 1
    assert helper.batches_parsed > before


def test_an_abandoned_push_leaves_the_helper_ready_for_the_next(helper: RowHelper) -> None:
    docs = [{**DOC, "id": f"d{i}", "embedding": [float(i), 1.5]} for i in range(100)]
    body = orjson.dumps({"docs": docs, "indexName": "n"}, option=orjson.OPT_SORT_KEYS)
    reader = PushReader(len(body), helper)
    buf = reader.buffer(len(body)).map
    buf[: len(body) // 2] = body[: len(body) // 2]
    with mock.patch.object(PushReader, "BATCH_BYTES", 64):
        reader.scan(buf, len(body) // 2)
        reader.parse(buf)
    reader.close()  # the client went away: batches may still be on their way back
    starts = helper.starts
    same(read(body, helper, [50, 300]), decode_push(body))
    assert helper.starts == starts


def test_one_push_at_a_time_has_the_helper(helper: RowHelper) -> None:
    first = helper.lease(1 << 20)
    assert first is not None
    try:
        assert helper.lease(1 << 20) is None  # the second push parses in the server
        body = orjson.dumps({"docs": [DOC], "indexName": "n"}, option=orjson.OPT_SORT_KEYS)
        reader = PushReader(len(body), helper)
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
