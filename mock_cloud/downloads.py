"""The files served at ``indexUrl`` and ``dataUrl``, built once per index version.

Encoding a 100k-document index takes seconds and hundreds of MB, so each version is encoded
once, from one consistent snapshot, into ``data_dir/cache`` and then streamed from disk to every
client that downloads it. Building a version deletes the files of older ones.
"""

import hashlib
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Literal

from mock_cloud.store import IndexRecord, NotFound, Store
from protocol.artifact import IndexArtifact, artifact_header, artifact_payload
from protocol.documents import StoredDocument, encode_documents
from protocol.vectors import Matrix

log = logging.getLogger("mock_cloud")
Kind = Literal["index", "data"]
_SUFFIX: dict[str, str] = {"index": "index.moss", "data": "docs.json"}


class DownloadCache:
    def __init__(self, root: Path, store: Store) -> None:
        self.root = root
        self.store = store
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _dir(self, project: str, name: str) -> Path:
        # Hashed so that any index name (or project id) is a safe directory name.
        digest = hashlib.sha256(f"{project}\x00{name}".encode()).hexdigest()[:40]
        return self.root / digest

    def path(self, project: str, name: str, stamp: int, kind: Kind) -> Path:
        return self._dir(project, name) / f"{stamp}.{_SUFFIX[kind]}"

    def _lock(self, folder: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(folder, threading.Lock())

    def _built(self, project: str, name: str, stamp: int) -> bool:
        return all(self.path(project, name, stamp, kind).exists() for kind in _SUFFIX)

    def ensure(self, project: str, name: str, wait_s: float | None = None) -> int:
        """Build the current version's files unless they exist; return that version's stamp.

        With ``wait_s``, give up waiting for a build already under way after that long and
        return the current stamp anyway: the download itself will wait for the rest, and
        each request gets its own client timeout (about 30 s in the published SDK).
        Raises ``NotFound`` when there is no such index.
        """
        lock = self._lock(self._dir(project, name))
        if not lock.acquire(timeout=-1 if wait_s is None else wait_s):
            record = self.store.get_index_info(project, name)
            if record is None:
                raise NotFound(f"index {name!r} not found")
            return record.stamp
        try:
            record = self.store.get_index_info(project, name)
            if record is None:
                raise NotFound(f"index {name!r} not found")
            if not self._built(project, name, record.stamp):
                snapshot = self.store.snapshot(project, name)
                record = snapshot.record
                self._write(record, snapshot.docs, snapshot.vectors)
            return record.stamp
        finally:
            lock.release()

    def install(self, record: IndexRecord, docs: Sequence[StoredDocument],
                vectors: Matrix) -> None:
        """Build the files of ``record``'s version from the data just stored in it, which
        saves reading it back; nothing is done if the index has changed again since."""
        with self._lock(self._dir(record.project, record.name)):
            current = self.store.get_index_info(record.project, record.name)
            if current is None or current.stamp != record.stamp:
                return
            if not self._built(record.project, record.name, record.stamp):
                self._write(record, docs, vectors)

    def _write(self, record: IndexRecord, docs: Sequence[StoredDocument],
               vectors: Matrix) -> None:
        folder = self._dir(record.project, record.name)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        artifact = IndexArtifact(name=record.name, model_id=record.model_id,
                                 dimension=record.dimension, embeddings=vectors,
                                 doc_ids=[d.id for d in docs], version=str(record.version))
        with _atomic_file(self.path(record.project, record.name, record.stamp, "index")) as out:
            out.write(artifact_header(0))  # rewritten below, once the length is known
            length = 0
            with _WritingThread(out) as writer:
                for piece in artifact_payload(artifact):
                    writer.write(piece)
                    length += len(piece)
            out.seek(0)
            out.write(artifact_header(length))
        del artifact
        with _atomic_file(self.path(record.project, record.name, record.stamp, "data")) as out:
            out.write(encode_documents(list(docs)))
        self._evict_older(folder, record.stamp)
        log.debug("built downloads of %r v%d (%d docs) in %.2fs", record.name, record.version,
                  len(docs), time.monotonic() - started)

    def file(self, project: str, name: str, stamp: int, kind: Kind) -> Path | None:
        """The file of one version, built on demand if it is still the current one; None when
        that version is gone (the index changed or was deleted since the URL was issued)."""
        target = self.path(project, name, stamp, kind)
        if target.exists():
            return target
        record = self.store.get_index_info(project, name)
        if record is None or record.stamp != stamp:
            return None
        try:
            built = self.ensure(project, name)
        except NotFound:
            return None
        return target if built == stamp and target.exists() else None

    @staticmethod
    def _evict_older(folder: Path, stamp: int) -> None:
        for stale in folder.iterdir():
            head = stale.name.partition(".")[0]
            if head.isdigit() and int(head) < stamp:
                stale.unlink(missing_ok=True)

    def forget(self, project: str, name: str) -> None:
        folder = self._dir(project, name)
        with self._lock(folder):
            shutil.rmtree(folder, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: a reader never sees a half-written file, as it is
    written beside ``path`` and renamed over it once complete (and removed on error)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _WritingThread:
    """Writes pieces to a file on a thread of its own while the caller makes the next ones:
    writing releases the GIL and encoding does not, and at 100k documents each took about 2 s
    (this machine's disk takes 420 MB at about 250 MB/s)."""

    def __init__(self, out: BinaryIO, depth: int = 4) -> None:
        self._out = out
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mock-cloud-writer", daemon=True)

    def __enter__(self) -> "_WritingThread":
        self._thread.start()
        return self

    def write(self, piece: object) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(piece)

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._out.write(piece)  # type: ignore[arg-type]
                except BaseException as exc:  # handed to the caller by write() or __exit__
                    self._error = exc

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error
