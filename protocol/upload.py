"""The upload blob a client PUTs to the presigned URL from ``POST I/init``.

Layout: ``b"MOSS"`` + u32le 1 + u32le docCount + u32le dimension + u32le jsonLen + compact JSON
array of ``{"id", "text"}`` (``metadata`` and ``payload`` only when set) + docCount x dimension
float32 little-endian.
"""

import struct
from dataclasses import dataclass

import numpy as np
import orjson

from protocol.documents import StoredDocument
from protocol.vectors import Matrix, as_matrix

MAGIC = b"MOSS"
_HEADER = struct.Struct("<4sIIII")


@dataclass
class UploadBlob:
    docs: list[StoredDocument]
    embeddings: Matrix

    @property
    def dimension(self) -> int:
        return int(self.embeddings.shape[1])


def encode_upload(blob: UploadBlob) -> bytes:
    rows = []
    for d in blob.docs:
        row: dict[str, object] = {"id": d.id, "text": d.text}
        if d.metadata is not None:
            row["metadata"] = d.metadata
        if d.payload is not None:
            row["payload"] = d.payload
        rows.append(row)
    meta = orjson.dumps(rows)
    vectors = np.ascontiguousarray(blob.embeddings, dtype="<f4")
    header = _HEADER.pack(MAGIC, 1, len(blob.docs), blob.dimension, len(meta))
    return header + meta + vectors.tobytes()


def decode_upload(data: bytes) -> UploadBlob:
    if len(data) < _HEADER.size:
        raise ValueError(f"upload blob: {len(data)} bytes is shorter than its header")
    magic, version, count, dimension, meta_len = _HEADER.unpack_from(data)
    if magic != MAGIC or version != 1:
        raise ValueError(f"upload blob: bad magic or version ({magic!r}, {version})")
    start = _HEADER.size
    expected = start + meta_len + count * dimension * 4
    if len(data) != expected:
        raise ValueError(f"upload blob: expected {expected} bytes, got {len(data)}")
    try:
        rows = orjson.loads(data[start : start + meta_len])
        docs = [
            StoredDocument(r["id"], r["text"], r.get("metadata"), r.get("payload")) for r in rows
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"upload blob: malformed document list ({exc!r})") from None
    if len(docs) != count:
        raise ValueError(f"upload blob: header says {count} documents, JSON has {len(docs)}")
    raw = np.frombuffer(data, dtype="<f4", count=count * dimension, offset=start + meta_len)
    return UploadBlob(
        docs, as_matrix(raw.reshape(count, dimension).astype(np.float32), field="upload vectors")
    )
