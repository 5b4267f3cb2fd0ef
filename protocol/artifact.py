"""The index artifact served at ``indexUrl``.

Layout: ``b"MOSS"`` + u32le version (1) + u32le payload length + payload, where the payload is
compact UTF-8 JSON ``{"name", "version", "model": {"id", "version"}, "dimension",
"embeddings", "docIds"}`` (plus ``"envelope"`` for built-in models), masked by
:func:`protocol._xor.xor_mask`.
"""

import struct
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import orjson

from protocol._xor import xor_mask, xor_mask_view
from protocol.floats import parse_matrix
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
        # Top-level values stay raw JSON: the embeddings are parsed a slice of rows at a time
        # below, so a 100k x 384 index never exists as 38M Python floats at once.
        body = _top_level.decode(xor_mask_view(memoryview(data)[_HEADER.size :]))
        fields = {k: v for k, v in body.items() if k != "embeddings"}
        values = {k: orjson.loads(bytes(v)) for k, v in fields.items()}
        dimension = int(values.pop("dimension"))
        model = values.pop("model")
        doc_ids = values.pop("docIds")
        return IndexArtifact(
            name=values.pop("name"),
            version=str(values.pop("version")),
            model_id=model["id"],
            model_version=str(model.get("version", "1")),
            dimension=dimension,
            embeddings=_embeddings(body["embeddings"], len(doc_ids), dimension),
            doc_ids=doc_ids,
            envelope=values.pop("envelope", None),
            extra=values,
        )
    except (msgspec.DecodeError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"index artifact: malformed payload ({exc!r})") from None


_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
_SLICE_BYTES = 8 << 20


def _embeddings(raw: msgspec.Raw, rows: int, dimension: int) -> Matrix:
    """Parse ``[[f, ...], ...]`` into a float32 matrix, about 8 MB of text at a time."""
    fast = parse_matrix(raw, rows, dimension)
    if fast is not None:
        return fast
    # The exact path: slower, and it says what is wrong with the text.
    inner = bytes(raw).strip()
    if not (inner.startswith(b"[") and inner.endswith(b"]")):
        raise ValueError("index artifact: embeddings: expected a list of vectors")
    inner = inner[1:-1].strip()
    out = np.empty((rows, dimension), dtype=np.float32)
    filled, pos = 0, 0
    while pos < len(inner):
        cut = inner.find(b"],", pos + _SLICE_BYTES)
        end = len(inner) if cut < 0 else cut + 1
        part = as_matrix(
            orjson.loads(b"[" + inner[pos:end] + b"]"), dimension=dimension, field="embeddings"
        )
        if filled + len(part) > rows:
            raise ValueError(f"index artifact: more embeddings than the {rows} docIds")
        out[filled : filled + len(part)] = part
        filled += len(part)
        pos = end + 1  # past the comma between rows
    if filled != rows:
        raise ValueError(f"index artifact: {filled} embeddings for {rows} docIds")
    return out
