"""SQLite storage of projects, indexes, documents and jobs. Knows nothing of HTTP.

One file (``index.sqlite3``) in WAL mode. Every connection belongs to one thread (uvicorn runs
handlers in a thread pool); writers are serialised by a lock and each change is one transaction,
so a reader sees an index as it was before a change or after it, never a mix, and a change that
fails leaves everything as it was. Vectors are little-endian float32 BLOBs, so what was pushed
comes back bit for bit.

A pushed index is stored packed: one row holding all its documents, and its matrix in parts
of 1 MB, the way it is read back (whole, to build the download files). Its first change by
document (add, delete, a vector overwritten) unpacks it into a row per document, in that
change's transaction. Writing a row per document took 0.1 s of a 10k push that took 0.45 s
in the server. A matrix in one BLOB is written twice, as zeros first (bound whole, SQLite would
copy it first); data dirs written before hold such BLOBs, which still read.
"""

import hashlib
import math
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson

from protocol.documents import StoredDocument
from protocol.names import validate_index_name
from protocol.vectors import Matrix, as_matrix

DB_FILE = "index.sqlite3"
CUSTOM_MODEL = "custom"
_F32 = np.dtype("<f4")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS indexes (
    iid INTEGER PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    model_id TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    doc_count INTEGER NOT NULL,
    version INTEGER NOT NULL,
    stamp INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (project, name)
);
CREATE TABLE IF NOT EXISTS documents (
    iid INTEGER NOT NULL REFERENCES indexes(iid) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT,
    payload TEXT,
    vector BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_by_id ON documents (iid, id);
CREATE UNIQUE INDEX IF NOT EXISTS documents_by_position ON documents (iid, position);
CREATE TABLE IF NOT EXISTS packed (
    iid INTEGER PRIMARY KEY REFERENCES indexes(iid) ON DELETE CASCADE,
    docs BLOB NOT NULL,
    vectors BLOB NOT NULL  -- empty: the matrix is in packed_vectors (written before: here)
);
CREATE TABLE IF NOT EXISTS packed_vectors (
    iid INTEGER NOT NULL REFERENCES packed(iid) ON DELETE CASCADE,
    part INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (iid, part)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    index_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL,
    phase TEXT,
    error TEXT,
    model_id TEXT,
    doc_count INTEGER,
    dimension INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT
);
"""


class NotFound(LookupError):
    """No such index, document or job (in this project)."""


@dataclass(frozen=True, slots=True)
class IndexRecord:
    project: str
    name: str
    model_id: str
    dimension: int
    doc_count: int
    version: int
    # Microseconds since the epoch of the last change, unique across the store: it orders
    # changes and keys the download cache.
    stamp: int
    created_at: str
    updated_at: str
    iid: int


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    record: IndexRecord
    docs: list[StoredDocument]
    vectors: Matrix


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    project: str
    index_name: str
    kind: str
    status: str
    progress: float
    created_at: str
    updated_at: str
    phase: str | None = None
    error: str | None = None
    completed_at: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def iso(stamp_us: int) -> str:
    """ISO-8601 UTC with microseconds, e.g. ``2025-01-01T00:00:00.000001Z``."""
    moment = datetime.fromtimestamp(stamp_us / 1e6, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def vector_checksum(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


# Bigger indexes are stored a row per document: SQLite refuses values over 1e9 bytes.
PACKED_MAX_BYTES = 256 << 20
# SQLite copies each part it is given: parts below the 4 MB from which the server's allocations
# are fresh maps (protocol.buffers.keep_freed_memory) reuse the same memory.
_PART_BYTES = 1 << 20


# Documents packed as one JSON array of [id, text, metadata, payload]: msgspec writes and reads
# StoredDocument so in C (100k documents: packed in 10 ms and read in 44 ms, against 44 and
# 118 ms through tuples and orjson, which wrote the same bytes).
_pack = msgspec.json.Encoder().encode
_unpack_docs = msgspec.json.Decoder(list[StoredDocument]).decode


def _matrix(data: bytes, rows: int, dimension: int) -> Matrix:
    """Stored vectors (little-endian float32) as a float32 matrix, without a copy here."""
    flat = np.frombuffer(data, dtype=_F32)
    return flat.reshape(rows, dimension).astype(np.float32, copy=False)


def _write_parts(conn: sqlite3.Connection, iid: int, rows: Matrix) -> None:
    flat = memoryview(np.ascontiguousarray(rows, dtype=_F32)).cast("B")
    conn.executemany("INSERT INTO packed_vectors (iid, part, data) VALUES (?, ?, ?)",
                     ((iid, part, flat[start : start + _PART_BYTES])
                      for part, start in enumerate(range(0, len(flat), _PART_BYTES))))


def _read_parts(conn: sqlite3.Connection, iid: int, rows: int, dimension: int) -> Matrix:
    """A matrix stored in parts, read into one array (one part at a time in memory besides)."""
    matrix = np.empty((rows, dimension), dtype=_F32)
    flat = memoryview(matrix).cast("B")
    filled = 0
    for (data,) in conn.execute("SELECT data FROM packed_vectors WHERE iid = ? ORDER BY part",
                                (iid,)):
        flat[filled : filled + len(data)] = data
        filled += len(data)
    if filled != len(flat):
        raise RuntimeError(f"index {iid}: {filled} bytes of vectors stored, {len(flat)} expected")
    return matrix.astype(np.float32, copy=False)


def _check_ids(ids: Iterable[str], field_name: str = "docs") -> None:
    ids = list(ids)
    # The common case in one pass of C loops (a 100k-document push checks 100k ids); the loop
    # below finds and names the first bad one.
    if all(type(doc_id) is str and doc_id for doc_id in ids) and len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    for i, doc_id in enumerate(ids):
        if not isinstance(doc_id, str) or not doc_id:
            raise ValueError(f"{field_name}[{i}].id: must be a non-empty string")
        if doc_id in seen:
            raise ValueError(f"{field_name}[{i}].id: duplicate id {doc_id!r}")
        seen.add(doc_id)


def _check_metadata(docs: Sequence[StoredDocument], field_name: str = "docs") -> None:
    for i, doc in enumerate(docs):
        if doc.metadata is None:
            continue
        if not isinstance(doc.metadata, dict):
            raise ValueError(f"{field_name}[{i}].metadata: expected an object or null")
        for key, value in doc.metadata.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{field_name}[{i}].metadata.{key}: numbers must be finite")


def check_documents(docs: Sequence[StoredDocument], field_name: str = "docs") -> None:
    """Ids unique and non-empty, metadata an object of finite values; else ``ValueError``."""
    _check_ids((d.id for d in docs), field_name)
    _check_metadata(docs, field_name)


def _insert_rows(conn: sqlite3.Connection, iid: int, docs: Sequence[StoredDocument],
                 rows: Matrix) -> None:
    """Store ``docs`` with ``rows`` as their vectors, a row each, positions from 0."""
    vectors = np.ascontiguousarray(rows, dtype=_F32)
    conn.executemany(
        "INSERT INTO documents (iid, position, id, text, metadata, payload, vector)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((iid, i, d.id, d.text, _dumps(d.metadata), _dumps(d.payload), vectors[i].tobytes())
         for i, d in enumerate(docs)))


def _row_of(record: sqlite3.Row | tuple[Any, ...]) -> IndexRecord:
    (iid, project, name, model_id, dimension, doc_count, version, stamp,
     created_at, updated_at) = record
    return IndexRecord(project, name, model_id, dimension, doc_count, version, stamp,
                       created_at, updated_at, iid)


_INDEX_COLUMNS = ("iid, project, name, model_id, dimension, doc_count, version, stamp, "
                  "created_at, updated_at")
_JOB_COLUMNS = ("id, project, index_name, kind, status, progress, created_at, updated_at, "
                "phase, error, completed_at, model_id, doc_count, dimension")


def _job_of(row: tuple[Any, ...]) -> JobRecord:
    *head, model_id, doc_count, dimension = row
    params = {"model_id": model_id, "doc_count": doc_count, "dimension": dimension}
    return JobRecord(*head, params={k: v for k, v in params.items() if v is not None})


class Store:
    """Thread-safe access to one SQLite file under ``data_dir``."""

    def __init__(self, data_dir: Path, auto_checkpoint: bool = True) -> None:
        """``auto_checkpoint=False`` leaves WAL checkpoints to the caller (:meth:`checkpoint`),
        so that a commit never pays for copying its pages into the database file."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self._auto_checkpoint = auto_checkpoint
        self.path = data_dir / DB_FILE
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        # Only a new file takes it. A commit writes each changed page to the WAL with its own
        # call: 10k documents of 384 dimensions committed in 0.13 s with 4 KB pages and in
        # 0.013 s with 64 KB ones.
        conn.execute("PRAGMA page_size=65536")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        self._projects: dict[str, str] = dict(conn.execute("SELECT id, key FROM projects"))

    # --- connections and transactions ---------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError("store is closed")
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=60)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Each thread's connection has a page cache of its own, and pages the cache has not
        # held before are fresh memory, slow to touch on a VM. The first store of a 100k push
        # touched 21k such pages with 64 MB (192-492 ms), 7k with 8 MB (225-228 ms); stores
        # after it took about the same (a 10k one 21-29 ms against 15-21 ms).
        conn.execute("PRAGMA cache_size=-8192")
        if not self._auto_checkpoint:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every SELECT in it sees the same snapshot."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file (without blocking anyone)."""
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _next_stamp(self, conn: sqlite3.Connection) -> int:
        """A microsecond timestamp later than every one issued before, even across restarts
        and within one microsecond, so two quick changes still get different ``updated_at``."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'stamp'").fetchone()
        stamp = max(time.time_ns() // 1000, (row[0] if row else 0) + 1)
        conn.execute("INSERT INTO meta (key, value) VALUES ('stamp', ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (stamp,))
        return stamp

    # --- projects -----------------------------------------------------------------------
    def upsert_project(self, project_id: str, key: str) -> None:
        validate_index_name(project_id, field="projectId")
        if not key:
            raise ValueError("projectKey: must not be empty")
        with self._write() as conn:
            conn.execute("INSERT INTO projects (id, key) VALUES (?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET key = excluded.key", (project_id, key))
        self._projects[project_id] = key

    def project_key(self, project_id: str) -> str | None:
        return self._projects.get(project_id)

    def projects(self) -> dict[str, str]:
        return dict(self._projects)

    # --- indexes ------------------------------------------------------------------------
    def _find(self, conn: sqlite3.Connection, project: str, name: str) -> IndexRecord | None:
        row = conn.execute(f"SELECT {_INDEX_COLUMNS} FROM indexes WHERE project = ? AND name = ?",
                           (project, name)).fetchone()
        return _row_of(row) if row else None

    def _require(self, conn: sqlite3.Connection, project: str, name: str) -> IndexRecord:
        record = self._find(conn, project, name)
        if record is None:
            raise NotFound(f"index {name!r} not found")
        return record

    def _bump(self, conn: sqlite3.Connection, record: IndexRecord, **changes: Any) -> IndexRecord:
        stamp = self._next_stamp(conn)
        values = {"version": record.version + 1, "stamp": stamp, "updated_at": iso(stamp),
                  **changes}
        sets = ", ".join(f"{column} = ?" for column in values)
        conn.execute(f"UPDATE indexes SET {sets} WHERE iid = ?", (*values.values(), record.iid))
        return self._require(conn, record.project, record.name)

    def replace_index(self, project: str, name: str, model_id: str | None,
                      docs: Sequence[StoredDocument], vectors: Matrix,
                      *, checked: bool = False) -> IndexRecord:
        """Create ``name`` or replace all of it, in one transaction. ``checked``: the documents
        and vectors were checked already, as a decoded push's are (:mod:`protocol.push`), and
        are not checked again (at 100k documents that took 0.3 s of the push)."""
        validate_index_name(name)
        model = model_id or CUSTOM_MODEL
        if not docs:
            raise ValueError("docs: an index needs at least one document")
        if not checked:
            check_documents(docs)
        matrix = vectors if checked else as_matrix(vectors, field="docs[].embedding")
        if matrix.shape[0] != len(docs):
            raise ValueError(f"docs: {len(docs)} documents but {matrix.shape[0]} embeddings")
        if matrix.shape[1] == 0:
            raise ValueError("docs[].embedding: must not be empty")
        rows = np.ascontiguousarray(matrix, dtype=_F32)
        packed = _pack(docs) if rows.nbytes <= PACKED_MAX_BYTES else None
        with self._write() as conn:
            if project not in self._projects:
                raise NotFound(f"project {project!r} not found")
            old = self._find(conn, project, name)
            stamp = self._next_stamp(conn)
            if old is None:
                cursor = conn.execute(
                    "INSERT INTO indexes (project, name, model_id, dimension, doc_count, version,"
                    " stamp, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                    (project, name, model, rows.shape[1], len(docs), stamp, iso(stamp),
                     iso(stamp)))
                iid = cursor.lastrowid
            else:
                iid = old.iid
                conn.execute("DELETE FROM documents WHERE iid = ?", (iid,))
                conn.execute("DELETE FROM packed WHERE iid = ?", (iid,))
                conn.execute(
                    "UPDATE indexes SET model_id = ?, dimension = ?, doc_count = ?,"
                    " version = version + 1, stamp = ?, updated_at = ? WHERE iid = ?",
                    (model, rows.shape[1], len(docs), stamp, iso(stamp), iid))
            if packed is not None and len(packed) <= PACKED_MAX_BYTES:
                conn.execute("INSERT INTO packed (iid, docs, vectors) VALUES (?, ?, x'')",
                             (iid, packed))
                _write_parts(conn, iid, rows)
            else:
                _insert_rows(conn, iid, docs, rows)
            return self._require(conn, project, name)

    def get_index_info(self, project: str, name: str) -> IndexRecord | None:
        return self._find(self._conn(), project, name)

    def list_indexes(self, project: str) -> list[IndexRecord]:
        rows = self._conn().execute(
            f"SELECT {_INDEX_COLUMNS} FROM indexes WHERE project = ? ORDER BY name", (project,))
        return [_row_of(row) for row in rows]

    def delete_index(self, project: str, name: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM indexes WHERE project = ? AND name = ?",
                                  (project, name))
            return cursor.rowcount > 0

    def get_docs(self, project: str, name: str,
                 ids: Sequence[str] | None = None) -> list[StoredDocument]:
        """Documents in stored order; with ``ids``, only those (unknown ids are skipped)."""
        with self._read() as conn:
            record = self._require(conn, project, name)
            packed = self._packed_docs(conn, record)
            if packed is not None:
                wanted = None if ids is None else set(ids)
                return [d for d in packed if wanted is None or d.id in wanted]
            if ids is None:
                rows = conn.execute("SELECT id, text, metadata, payload FROM documents"
                                    " WHERE iid = ? ORDER BY position", (record.iid,))
            else:
                # One lookup by the (iid, id) index each, not a scan of the whole index. Ids
                # bound one by one: SQLite's JSON functions cut a string at a NUL.
                found = []
                for doc_id in dict.fromkeys(ids):
                    row = conn.execute("SELECT position, id, text, metadata, payload FROM"
                                       " documents WHERE iid = ? AND id = ?",
                                       (record.iid, doc_id)).fetchone()
                    if row is not None:
                        found.append(row)
                rows = [row[1:] for row in sorted(found)]
            return [StoredDocument(doc_id, text, _loads(meta), _loads(payload))
                    for doc_id, text, meta, payload in rows]

    def add_docs(self, project: str, name: str, docs: Sequence[StoredDocument],
                 vectors: Sequence[Sequence[float] | None], upsert: bool = True,
                 ) -> tuple[IndexRecord, int, int]:
        """Append new documents and (with ``upsert``) replace stored ones in place.

        Returns the index after the change and ``(added, updated)``. Every document needs an
        embedding of the index's dimension: the mock cloud never computes one.
        """
        if len(vectors) != len(docs):
            raise ValueError(f"docs: {len(docs)} documents but {len(vectors)} embeddings")
        if not docs:
            raise ValueError("docs: must contain at least one document")
        check_documents(docs)
        with self._write() as conn:
            record = self._require(conn, project, name)
            self._unpack(conn, record)
            for i, vector in enumerate(vectors):
                if vector is None:
                    raise ValueError(
                        f"docs[{i}].embedding: required: index {name!r} uses model "
                        f"{record.model_id!r} and the mock cloud never computes embeddings")
            matrix = as_matrix(list(vectors), dimension=record.dimension, field="docs[].embedding")
            rows = np.ascontiguousarray(matrix, dtype=_F32)
            known = dict(conn.execute("SELECT id, position FROM documents WHERE iid = ?",
                                      (record.iid,)))
            (last,) = conn.execute("SELECT COALESCE(MAX(position), -1) FROM documents"
                                   " WHERE iid = ?", (record.iid,)).fetchone()
            added = updated = 0
            for i, doc in enumerate(docs):
                columns = (doc.text, _dumps(doc.metadata), _dumps(doc.payload), rows[i].tobytes())
                if doc.id in known:
                    if not upsert:
                        continue
                    conn.execute("UPDATE documents SET text = ?, metadata = ?, payload = ?,"
                                 " vector = ? WHERE iid = ? AND id = ?",
                                 (*columns, record.iid, doc.id))
                    updated += 1
                else:
                    last += 1
                    conn.execute("INSERT INTO documents (iid, position, id, text, metadata,"
                                 " payload, vector) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (record.iid, last, doc.id, *columns))
                    added += 1
            if added or updated:
                record = self._bump(conn, record, doc_count=record.doc_count + added)
            return record, added, updated

    def delete_docs(self, project: str, name: str,
                    ids: Sequence[str]) -> tuple[IndexRecord, int]:
        """Remove documents by id (unknown ids are ignored); returns the index and the count."""
        with self._write() as conn:
            record = self._require(conn, project, name)
            self._unpack(conn, record)
            removed = 0
            for doc_id in dict.fromkeys(ids):
                removed += conn.execute("DELETE FROM documents WHERE iid = ? AND id = ?",
                                        (record.iid, doc_id)).rowcount
            if removed:
                record = self._bump(conn, record, doc_count=record.doc_count - removed)
            return record, removed

    def _packed_docs(self, conn: sqlite3.Connection, record: IndexRecord
                     ) -> list[StoredDocument] | None:
        """The documents of a packed index, without reading its vectors; ``None`` if it has a
        row per document."""
        row = conn.execute("SELECT docs FROM packed WHERE iid = ?", (record.iid,)).fetchone()
        return None if row is None else _unpack_docs(row[0])

    def _packed(self, conn: sqlite3.Connection, record: IndexRecord
                ) -> tuple[list[StoredDocument], Matrix] | None:
        """The documents and vectors of a packed index; ``None`` if it has a row per document."""
        docs = self._packed_docs(conn, record)
        if docs is None:
            return None
        (vectors,) = conn.execute("SELECT vectors FROM packed WHERE iid = ?",
                                  (record.iid,)).fetchone()
        if vectors:  # one BLOB, as written before the parts
            return docs, _matrix(vectors, len(docs), record.dimension)
        return docs, _read_parts(conn, record.iid, len(docs), record.dimension)

    def _unpack(self, conn: sqlite3.Connection, record: IndexRecord) -> None:
        """Store a packed index a row per document, within the caller's transaction."""
        packed = self._packed(conn, record)
        if packed is not None:
            conn.execute("DELETE FROM packed WHERE iid = ?", (record.iid,))
            _insert_rows(conn, record.iid, *packed)

    def _vectors(self, conn: sqlite3.Connection, record: IndexRecord) -> tuple[list[str], Matrix]:
        packed = self._packed(conn, record)
        if packed is not None:
            return [d.id for d in packed[0]], packed[1]
        ids: list[str] = []
        blobs: list[bytes] = []
        for doc_id, blob in conn.execute("SELECT id, vector FROM documents WHERE iid = ?"
                                         " ORDER BY position", (record.iid,)):
            ids.append(doc_id)
            blobs.append(blob)
        return ids, _matrix(b"".join(blobs), len(ids), record.dimension)

    def load_vectors(self, project: str, name: str) -> tuple[list[str], Matrix]:
        """Doc ids in stored order and their vectors as one float32 matrix."""
        with self._read() as conn:
            return self._vectors(conn, self._require(conn, project, name))

    def snapshot(self, project: str, name: str) -> IndexSnapshot:
        """An index's record, documents and vectors, all from one consistent read."""
        with self._read() as conn:
            record = self._require(conn, project, name)
            packed = self._packed(conn, record)
            if packed is not None:
                return IndexSnapshot(record, *packed)
            docs: list[StoredDocument] = []
            blobs: list[bytes] = []
            for doc_id, text, meta, payload, blob in conn.execute(
                    "SELECT id, text, metadata, payload, vector FROM documents WHERE iid = ?"
                    " ORDER BY position", (record.iid,)):
                docs.append(StoredDocument(doc_id, text, _loads(meta), _loads(payload)))
                blobs.append(blob)
        vectors = b"".join(blobs)
        del blobs
        return IndexSnapshot(record, docs, _matrix(vectors, len(docs), record.dimension))

    def overwrite_vector(self, project: str, name: str, doc_id: str,
                         vector: Sequence[float]) -> IndexRecord:
        with self._write() as conn:
            record = self._require(conn, project, name)
            row = as_matrix([vector], dimension=record.dimension, field="embedding")
            self._unpack(conn, record)
            cursor = conn.execute("UPDATE documents SET vector = ? WHERE iid = ? AND id = ?",
                                  (row[0].astype(_F32).tobytes(), record.iid, doc_id))
            if not cursor.rowcount:
                raise NotFound(f"document {doc_id!r} not found in index {name!r}")
            return self._bump(conn, record)

    def state(self) -> dict[str, Any]:
        """Everything stored, for the control API: per project, per index, its model,
        dimension, doc ids in order and the sha256 of each vector's float32 LE bytes."""
        with self._read() as conn:
            projects: dict[str, Any] = {pid: {"indexes": {}}
                                        for (pid,) in conn.execute("SELECT id FROM projects")}
            for row in conn.execute(f"SELECT {_INDEX_COLUMNS} FROM indexes ORDER BY project, name"):
                record = _row_of(row)
                ids, vectors = self._vectors(conn, record)
                rows = np.ascontiguousarray(vectors, dtype=_F32)
                checksums = {doc_id: vector_checksum(rows[i].tobytes())
                             for i, doc_id in enumerate(ids)}
                projects[record.project]["indexes"][record.name] = {
                    "model_id": record.model_id,
                    "dimension": record.dimension,
                    "doc_count": record.doc_count,
                    "version": record.version,
                    "created_at": record.created_at,
                    "updated_at": record.updated_at,
                    "doc_ids": ids,
                    "checksums": checksums,
                }
            return {"projects": projects}

    def reset(self, projects: dict[str, str]) -> None:
        """Drop every index and job, and make the project list exactly ``projects``."""
        with self._write() as conn:
            conn.execute("DELETE FROM documents")
            conn.execute("DELETE FROM packed")
            conn.execute("DELETE FROM indexes")
            conn.execute("DELETE FROM jobs")
            conn.execute("DELETE FROM projects")
            conn.executemany("INSERT INTO projects (id, key) VALUES (?, ?)", projects.items())
        self._projects = dict(projects)

    # --- jobs ---------------------------------------------------------------------------
    def create_job(self, project: str, index_name: str, kind: str, status: str,
                   **params: Any) -> JobRecord:
        job_id = "job_" + secrets.token_hex(12)
        with self._write() as conn:
            now = iso(self._next_stamp(conn))
            done = now if status in ("completed", "failed") else None
            conn.execute(
                "INSERT INTO jobs (id, project, index_name, kind, status, progress, phase, error,"
                " model_id, doc_count, dimension, created_at, updated_at, completed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, project, index_name, kind, status, 1.0 if done else 0.0,
                 params.get("error"), params.get("model_id"), params.get("doc_count"),
                 params.get("dimension"), now, now, done))
        return self._get_job(project, job_id)

    def update_job(self, project: str, job_id: str, status: str, *,
                   error: str | None = None, phase: str | None = None) -> JobRecord:
        with self._write() as conn:
            now = iso(self._next_stamp(conn))
            done = now if status in ("completed", "failed") else None
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, progress = ?, error = ?, phase = ?, updated_at = ?,"
                " completed_at = ? WHERE project = ? AND id = ?",
                (status, 1.0 if done else 0.0, error, phase, now, done, project, job_id))
            if not cursor.rowcount:
                raise NotFound(f"job {job_id!r} not found")
        return self._get_job(project, job_id)

    def _get_job(self, project: str, job_id: str) -> JobRecord:
        job = self.get_job(project, job_id)
        if job is None:
            raise NotFound(f"job {job_id!r} not found")
        return job

    def get_job(self, project: str | None, job_id: str) -> JobRecord | None:
        """A job of ``project`` (of any project when None: presigned uploads carry no auth)."""
        row = self._conn().execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ? AND (? IS NULL OR project = ?)",
            (job_id, project, project)).fetchone()
        return _job_of(row) if row else None
