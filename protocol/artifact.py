"""The index artifact served at ``indexUrl``.

Layout: ``b"MOSS"`` + u32le version (1) + u32le payload length + payload, where the payload is
compact UTF-8 JSON ``{"name", "version", "model": {"id", "version"}, "dimension",
"embeddings", "docIds"}`` (plus ``"envelope"`` for built-in models), masked by
:func:`protocol._xor.xor_mask`.
"""

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from protocol._xor import xor_mask
from protocol.vectors import Matrix, as_matrix

MAGIC = b"MOSS"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sII")


@dataclass
class IndexArtifact:
    name: str
    model_id: str
    dimension: int
    embeddings: Matrix
    doc_ids: list[str]
    version: str = "1"
    model_version: str = "1"
    envelope: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.doc_ids) != self.embeddings.shape[0]:
            raise ValueError(
                f"docIds: {len(self.doc_ids)} ids for {self.embeddings.shape[0]} embeddings"
            )


def encode_artifact(artifact: IndexArtifact) -> bytes:
    body: dict[str, Any] = {
        "name": artifact.name,
        "version": artifact.version,
        "model": {"id": artifact.model_id, "version": artifact.model_version},
        "dimension": artifact.dimension,
        "embeddings": np.ascontiguousarray(artifact.embeddings, dtype=np.float32),
        "docIds": artifact.doc_ids,
    }
    if artifact.envelope is not None:
        body["envelope"] = artifact.envelope
    body.update(artifact.extra)
    payload = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload)) + xor_mask(payload)


def decode_artifact(data: bytes) -> IndexArtifact:
    if len(data) < _HEADER.size:
        raise ValueError(f"index artifact: {len(data)} bytes is shorter than its header")
    magic, version, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"index artifact: bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise ValueError(f"index artifact: unsupported format version {version}")
    if len(data) - _HEADER.size != length:
        raise ValueError(
            f"index artifact: header says {length} payload bytes, found {len(data) - _HEADER.size}"
        )
    try:
        body = orjson.loads(xor_mask(data[_HEADER.size :]))
        dimension = int(body.pop("dimension"))
        model = body.pop("model")
        return IndexArtifact(
            name=body.pop("name"),
            version=str(body.pop("version")),
            model_id=model["id"],
            model_version=str(model.get("version", "1")),
            dimension=dimension,
            embeddings=as_matrix(body.pop("embeddings"), dimension=dimension, field="embeddings"),
            doc_ids=body.pop("docIds"),
            envelope=body.pop("envelope", None),
            extra=body,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"index artifact: malformed payload ({exc!r})") from None
