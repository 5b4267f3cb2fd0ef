"""The per-version download files, without HTTP."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mock_cloud.downloads import DownloadCache
from mock_cloud.store import IndexRecord, NotFound, Store
from protocol import StoredDocument, decode_artifact, decode_documents


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[DownloadCache]:
    store = Store(tmp_path / "db")
    store.upsert_project("alpha", "k")
    yield DownloadCache(tmp_path / "cache", store)
    store.close()


def put(cache: DownloadCache, n: int, seed: int = 0,
        ) -> tuple[IndexRecord, list[StoredDocument], np.ndarray]:
    docs = [StoredDocument(f"d{i}", f"t{i}", {"k": str(i)}) for i in range(n)]
    vectors = np.random.default_rng(seed).standard_normal((n, 3)).astype(np.float32)
    return cache.store.replace_index("alpha", "idx", None, docs, vectors), docs, vectors


def test_ensure_builds_once_and_evicts_older_versions(cache: DownloadCache) -> None:
    first, docs, vectors = put(cache, 3)
    assert cache.ensure("alpha", "idx") == first.stamp
    artifact = cache.path("alpha", "idx", first.stamp, "index")
    built = artifact.stat().st_mtime_ns
    assert cache.ensure("alpha", "idx") == first.stamp
    assert artifact.stat().st_mtime_ns == built
    decoded = decode_artifact(artifact.read_bytes())
    assert decoded.embeddings.tobytes() == vectors.tobytes() and decoded.version == "1"
    assert decode_documents(cache.path("alpha", "idx", first.stamp, "data").read_bytes()) == docs
    second, _, _ = put(cache, 2, seed=1)
    assert cache.ensure("alpha", "idx") == second.stamp
    assert not artifact.exists()
    assert cache.file("alpha", "idx", first.stamp, "index") is None
    with pytest.raises(NotFound):
        cache.ensure("alpha", "nope")


def test_install_uses_given_data_unless_the_index_moved_on(cache: DownloadCache) -> None:
    first, docs, vectors = put(cache, 3)
    second, docs2, vectors2 = put(cache, 2, seed=1)
    cache.install(first, docs, vectors)  # superseded: nothing written
    assert not cache.path("alpha", "idx", first.stamp, "index").exists()
    cache.install(second, docs2, vectors2)
    assert cache.path("alpha", "idx", second.stamp, "index").exists()


def test_url_issuing_does_not_wait_forever_for_a_running_build(cache: DownloadCache) -> None:
    record, _, _ = put(cache, 2)
    lock = cache._lock(cache._dir("alpha", "idx"))
    with lock:  # as if a long build were under way
        assert cache.ensure("alpha", "idx", wait_s=0.05) == record.stamp
    assert not cache.path("alpha", "idx", record.stamp, "index").exists()
    assert cache.file("alpha", "idx", record.stamp, "index") is not None
