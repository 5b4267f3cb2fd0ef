"""The per-version download files, without HTTP."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mock_cloud.downloads as downloads_module
import protocol.artifact as artifact_module
from mock_cloud.downloads import DownloadCache
from mock_cloud.store import IndexRecord, NotFound, Store
from protocol import IndexArtifact, StoredDocument, decode_artifact, decode_documents
from protocol.artifact import encode_artifact


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


def test_the_built_artifact_is_the_encoded_one_byte_for_byte(
    cache: DownloadCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Written in batches of rows by a thread of its own; the bytes are encode_artifact's.
    monkeypatch.setattr(artifact_module, "_BATCH_ROWS", 4)
    record, docs, vectors = put(cache, 11)
    cache.ensure("alpha", "idx")
    built = cache.path("alpha", "idx", record.stamp, "index").read_bytes()
    want = encode_artifact(IndexArtifact("idx", "custom", 3, vectors, [d.id for d in docs]))
    assert built == bytes(want)


def test_a_failed_write_leaves_no_file_behind(
    cache: DownloadCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, _, _ = put(cache, 5)

    def broken(*args: object, **kwargs: object) -> Iterator[bytes]:
        yield b"x" * 10
        raise OSError("disk full")

    monkeypatch.setattr(downloads_module, "artifact_payload", broken)
    with pytest.raises(OSError, match="disk full"):
        cache.ensure("alpha", "idx")
    folder = cache.path("alpha", "idx", record.stamp, "index").parent
    assert list(folder.iterdir()) == []


def test_the_writing_thread_hands_its_error_to_the_caller() -> None:
    class Full:
        def write(self, piece: object) -> None:
            raise OSError("disk full")

    # Raised by a later write or on leaving the block, whichever comes first.
    with (
        pytest.raises(OSError, match="disk full"),
        downloads_module._WritingThread(Full()) as writer,  # type: ignore[arg-type]
    ):
        for _ in range(10):
            writer.write(b"x")
