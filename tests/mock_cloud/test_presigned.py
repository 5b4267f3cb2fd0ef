"""Download and upload URLs: no auth header needed, but signed, unguessable and expiring."""

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from mock_cloud.server import ServerThread, running_server
from mock_cloud.signing import encode_blob_id
from tests.mock_cloud.conftest import Cloud, assert_error, make_docs, sample, settings_for


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v != ""}
    return parts._replace(query=urlencode(query)).geturl()


def test_tampered_download_urls_are_refused(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(2))
    cloud.push("other", make_docs(2, seed=9))
    url = cloud.call("GET", "/index/idx/url").json()["indexUrl"]
    assert httpx.get(url).status_code == 200
    exp = parse_qs(urlsplit(url).query)["exp"][0]
    assert_error(httpx.get(with_query(url, sig="A" * 43)), 403, "signature")
    assert_error(httpx.get(with_query(url, exp=str(int(exp) + 1000))), 403, "signature")
    assert_error(httpx.get(with_query(url, sig="")), 403)
    assert_error(httpx.get(url.split("?")[0]), 403)
    # the same signature on another path (another index, or the data file) is no good
    other_blob = encode_blob_id("alpha", "other", "1")
    blob = urlsplit(url).path.rsplit("/", 1)[1]
    assert_error(httpx.get(url.replace(blob, other_blob)), 403)
    assert_error(httpx.get(url.replace("/_blobs/index/", "/_blobs/data/")), 403)
    # and another project's index cannot be reached through a forged id
    assert_error(httpx.get(url.replace(blob, encode_blob_id("beta", "idx", "1"))), 403)


def test_tampered_upload_urls_are_refused(cloud: Cloud) -> None:
    init = cloud.call("POST", "/index/init", json={
        "indexName": "up", "modelId": "custom", "docCount": 2, "dimension": 4}).json()
    blob = sample("create_index_upload_mg.bin")
    url = init["presignedUrl"]
    assert_error(httpx.put(with_query(url, sig="x" * 43), content=blob), 403)
    other = cloud.call("POST", "/index/init", json={
        "indexName": "up2", "modelId": "custom", "docCount": 2, "dimension": 4}).json()
    assert_error(httpx.put(url.replace(init["jobId"], other["jobId"]), content=blob), 403)
    assert httpx.put(url, content=blob).status_code == 200


@pytest.fixture(scope="module")
def short_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    settings = settings_for(Path(tmp_path_factory.mktemp("urls")), url_ttl_s=1.5)
    with running_server(settings) as running:
        yield running


def test_presigned_urls_expire(short_urls: ServerThread) -> None:
    cloud = Cloud(short_urls)
    try:
        cloud.push("idx", make_docs(2))
        urls = cloud.call("GET", "/index/idx/url").json()
        init = cloud.call("POST", "/index/init", json={
            "indexName": "up", "modelId": "custom", "docCount": 2, "dimension": 4}).json()
        assert httpx.get(urls["dataUrl"]).status_code == 200
        time.sleep(1.6)
        assert_error(httpx.get(urls["indexUrl"]), 403, "expired")
        assert_error(httpx.get(urls["dataUrl"]), 403, "expired")
        assert_error(httpx.put(init["presignedUrl"], content=sample(
            "create_index_upload_mg.bin")), 403, "expired")
        fresh = cloud.call("GET", "/index/idx/url").json()
        assert httpx.get(fresh["indexUrl"]).status_code == 200
    finally:
        cloud.close()
