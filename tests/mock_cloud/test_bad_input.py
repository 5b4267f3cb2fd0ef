"""Bad input gets a 4xx JSON error naming the field, and stored data stays exactly as it was."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from mock_cloud.server import ServerThread, running_server
from protocol import StoredDocument, UploadBlob, encode_upload
from tests.mock_cloud.conftest import Cloud, assert_error, make_docs, settings_for


def doc(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "n0", "text": "t", "metadata": None, "payload": None,
                            "embedding": [0.5, 0.25, 0.0, 1.0]}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def push(name: Any = "idx", docs: Any = None, **extra: Any) -> bytes:
    body = {"indexName": name, "docs": [doc()] if docs is None else docs, **extra}
    return orjson.dumps({k: v for k, v in body.items() if v is not ...})


@pytest.fixture
def seeded(cloud: Cloud) -> Iterator[Cloud]:
    """A cloud holding one index (3 docs, dimension 4), and a check that it is unchanged."""
    assert cloud.push("idx", make_docs(3)).status_code == 200
    before = cloud.state()
    yield cloud
    assert cloud.state() == before


PUSH_CASES = [
    (b'{"indexName": "idx", "docs": [', "JSON"),
    (b"[]", "body"),
    (b"", "JSON"),
    (push(name=...), "indexName"),
    (push(docs=...), "docs"),
    (push(docs={}), "docs"),
    (push(docs=[]), "docs"),
    (push(name=""), "indexName"),
    (push(name="   "), "indexName"),
    (push(name="a/b"), "indexName"),
    (push(name="tab\there"), "indexName"),
    (push(name="x" * 257), "indexName"),
    (push(name="é" * 129), "indexName"),
    (push(name=5), "indexName"),
    (push(modelId=""), "modelId"),
    (push(modelId=7), "modelId"),
    (push(docs=[doc(id=...)]), "docs[0]"),
    (push(docs=[doc(id="")]), "docs[0].id"),
    (push(docs=[doc(id=3)]), "docs[0].id"),
    (push(docs=[doc(text=...)]), "text"),
    (push(docs=[doc(text=["t"])]), "docs[0].text"),
    (push(docs=[doc(embedding=...)]), "embedding"),
    (push(docs=[doc(embedding="0.1,0.2")]), "docs[0].embedding"),
    (push(docs=[doc(embedding=[])]), "embedding"),
    (push(docs=[doc(embedding=[0.1, "0.2", 0.3, 0.4])]), "docs[0].embedding[1]"),
    (push(docs=[doc(embedding=[0.1, None, 0.3, 0.4])]), "docs[0].embedding[1]"),
    (b'{"indexName":"idx","docs":[{"id":"a","text":"t","embedding":[NaN,1,1,1]}]}', "JSON"),
    (b'{"indexName":"idx","docs":[{"id":"a","text":"t","embedding":[1e999,1,1,1]}]}',
     "embedding"),
    (push(docs=[doc(embedding=[1e39, 0, 0, 0])]), "finite"),
    (push(docs=[doc(), doc(id="n1", embedding=[1, 2, 3])]), "docs[1].embedding"),
    (push(docs=[doc(), doc()]), "docs[1].id"),
    (push(docs=[doc(metadata=["k"])]), "docs[0].metadata"),
    (push(docs=[doc(metadata={"k": {"nested": 1}})]), "docs[0].metadata"),
    (push(docs=[doc(metadata={"k": [1]})]), "docs[0].metadata"),
]


@pytest.mark.parametrize("body, field", PUSH_CASES)
def test_bad_push(seeded: Cloud, body: bytes, field: str) -> None:
    reply = seeded.call("POST", "/index/push", content=body)
    assert_error(reply, 400, field)


ADD_CASES = [
    (b"{not json", 400, "JSON"),
    (b"[]", 400, "body"),
    (orjson.dumps({}), 400, "docs"),
    (orjson.dumps({"docs": {}}), 400, "docs"),
    (orjson.dumps({"docs": []}), 400, "docs"),
    (orjson.dumps({"docs": [doc(embedding=...)]}), 400, "docs[0].embedding"),
    (orjson.dumps({"docs": [doc(embedding=None)]}), 400, "docs[0].embedding"),
    (orjson.dumps({"docs": [doc(embedding=[1, 2])]}), 400, "dimension 4"),
    (orjson.dumps({"docs": [doc(embedding=[1, 2, "3", 4])]}), 400, "docs[0].embedding"),
    (orjson.dumps({"docs": [doc(embedding=[1e39, 2, 3, 4])]}), 400, "finite"),
    (b'{"docs":[{"id":"a","text":"t","embedding":[1e999,1,1,1]}]}', 400, "JSON"),
    (orjson.dumps({"docs": [doc(), doc()]}), 400, "docs[1].id"),
    (orjson.dumps({"docs": [doc(id="")]}), 400, "docs[0].id"),
    (orjson.dumps({"docs": [doc(text=1)]}), 400, "docs[0].text"),
    (orjson.dumps({"docs": [doc(metadata={"k": {"a": 1}})]}), 400, "docs[0].metadata"),
    (orjson.dumps({"docs": ["just a string"]}), 400, "docs[0]"),
    (orjson.dumps({"docs": [doc()], "upsert": "yes"}), 400, "upsert"),
]


@pytest.mark.parametrize("body, status, field", ADD_CASES)
def test_bad_add_docs(seeded: Cloud, body: bytes, status: int, field: str) -> None:
    assert_error(seeded.call("POST", "/index/idx/docs", content=body), status, field)


def test_add_docs_to_a_missing_index(seeded: Cloud) -> None:
    assert_error(seeded.call("POST", "/index/nope/docs", json={"docs": [doc()]}), 404, "nope")


@pytest.mark.parametrize("body, field", [
    ({}, "docIds"),
    ({"docIds": "d0"}, "docIds"),
    ({"docIds": [1]}, "docIds[0]"),
    (None, "body"),
])
def test_bad_delete_docs(seeded: Cloud, body: Any, field: str) -> None:
    kwargs = {"content": b"{oops"} if body is None else {"json": body}
    assert_error(seeded.call("DELETE", "/index/idx/docs", **kwargs), 400, field)


@pytest.mark.parametrize("path", ["/index/%01ctl", "/index/%20%20", "/index/" + "x" * 300])
def test_bad_names_in_paths(seeded: Cloud, path: str) -> None:
    for suffix in ("", "/docs", "/url"):
        assert_error(seeded.call("GET", path + suffix), 400, "name")
    assert_error(seeded.call("DELETE", path), 400, "name")


@pytest.mark.parametrize("body, field", [
    ({"modelId": "custom", "docCount": 1, "dimension": 4}, "indexName"),
    ({"indexName": "a/b", "modelId": "custom", "docCount": 1, "dimension": 4}, "indexName"),
    ({"indexName": "n", "docCount": 1, "dimension": 4}, "modelId"),
    ({"indexName": "n", "modelId": "custom", "docCount": -1, "dimension": 4}, "docCount"),
    ({"indexName": "n", "modelId": "custom", "docCount": 0, "dimension": 4}, "docCount"),
    ({"indexName": "n", "modelId": "custom", "docCount": "2", "dimension": 4}, "docCount"),
    ({"indexName": "n", "modelId": "custom", "docCount": 1, "dimension": -4}, "dimension"),
])
def test_bad_init(seeded: Cloud, body: dict[str, Any], field: str) -> None:
    assert_error(seeded.call("POST", "/index/init", json=body), 400, field)


def test_bad_uploads_leave_the_job_waiting(seeded: Cloud) -> None:
    init = seeded.call("POST", "/index/init", json={
        "indexName": "idx", "modelId": "custom", "docCount": 2, "dimension": 4}).json()
    url = init["presignedUrl"]
    assert_error(httpx.put(url, content=b"not a blob"), 400, "upload blob")
    three = encode_upload(UploadBlob([StoredDocument(f"m{i}", "t") for i in range(3)],
                                     np.ones((3, 4), np.float32)))
    assert_error(httpx.put(url, content=three), 400, "docCount=2")
    dup = encode_upload(UploadBlob([StoredDocument("m", "t"), StoredDocument("m", "u")],
                                   np.ones((2, 4), np.float32)))
    assert_error(httpx.put(url, content=dup), 400, "duplicate")
    nan = encode_upload(UploadBlob([StoredDocument("a", "t"), StoredDocument("b", "u")],
                                   np.full((2, 4), np.nan, np.float32)))
    assert_error(httpx.put(url, content=nan), 400, "finite")
    status = seeded.call("GET", f"/index/{init['jobId']}/status").json()
    assert status["status"] == "pending_upload"
    assert_error(seeded.call("POST", f"/index/{init['jobId']}/confirm"), 409)


@pytest.fixture(scope="module")
def small_bodies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    settings = settings_for(Path(tmp_path_factory.mktemp("small")), max_body_bytes=64 * 1024)
    with running_server(settings) as running:
        yield running


def test_bodies_over_the_limit_get_413(small_bodies: ServerThread) -> None:
    cloud = Cloud(small_bodies)
    try:
        cloud.reset()
        assert cloud.push("idx", make_docs(3)).status_code == 200
        before = cloud.state()
        big = push(docs=[doc(id=f"b{i}") for i in range(1000)])
        assert len(big) > 64 * 1024
        assert_error(cloud.call("POST", "/index/push", content=big), 413, "body")

        def chunks() -> Iterator[bytes]:  # no Content-Length: caught while streaming
            for start in range(0, len(big), 4096):
                yield big[start:start + 4096]

        assert_error(cloud.call("POST", "/index/push", content=chunks()), 413, "body")
        add = orjson.dumps({"docs": [doc(id=f"b{i}") for i in range(1000)]})
        assert_error(cloud.call("POST", "/index/idx/docs", content=add), 413)
        assert_error(cloud.call("DELETE", "/index/idx/docs",
                                json={"docIds": ["x" * 100] * 1000}), 413)
        assert_error(cloud.call("POST", "/index/telemetry", json=[{"a": "b" * 70_000}]), 413)
        init = cloud.call("POST", "/index/init", json={
            "indexName": "up", "modelId": "custom", "docCount": 1, "dimension": 4}).json()
        assert_error(httpx.put(init["presignedUrl"], content=b"\0" * 70_000), 413)
        assert cloud.state() == before
        assert cloud.push("idx", make_docs(2)).status_code == 200  # still serving
    finally:
        cloud.close()
