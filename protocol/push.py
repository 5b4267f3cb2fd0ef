"""The body of ``POST I/push``: every document of a session with its embedding.

Bodies reach about 820 MB for 100k documents of 384 dimensions, so they are decoded by msgspec
straight into typed structs (no intermediate dicts) with each embedding left as raw JSON, whose
numbers :mod:`protocol.floats` parses in bulk. When that fast path declines, the body is decoded
again with every embedding as a list of floats, which names the bad field exactly. The rules are
those of :class:`protocol.models.PushRequest`, which documents the body in the OpenAPI schema.
"""

import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
import numpy as np
import orjson

from protocol.documents import StoredDocument
from protocol.floats import parse_rows
from protocol.names import validate_index_name
from protocol.vectors import Matrix, as_matrix

MetadataValue = str | int | float | bool
E = TypeVar("E", list[float], msgspec.Raw)


class _WireDoc(msgspec.Struct, Generic[E]):
    id: str
    text: str
    embedding: E
    metadata: dict[str, MetadataValue] | None = None
    payload: Any = None


class _WireBody(msgspec.Struct, Generic[E]):
    indexName: str
    docs: list[_WireDoc[E]]
    modelId: str | None = None


_raw_decoder = msgspec.json.Decoder(_WireBody[msgspec.Raw])
_exact_decoder = msgspec.json.Decoder(_WireBody[list[float]])


@dataclass
class PushBody:
    index_name: str
    model_id: str | None
    docs: list[StoredDocument]
    embeddings: Matrix


def encode_push(body: PushBody) -> bytes:
    """Compact JSON with sorted keys, the layout the published SDK sends."""
    vectors = np.ascontiguousarray(body.embeddings, dtype=np.float32)
    rows = [
        {
            "id": d.id,
            "text": d.text,
            "metadata": d.metadata,
            "payload": d.payload,
            "embedding": vectors[i],
        }
        for i, d in enumerate(body.docs)
    ]
    out: dict[str, Any] = {"indexName": body.index_name, "docs": rows}
    if body.model_id is not None:
        out["modelId"] = body.model_id
    return orjson.dumps(out, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)


_MISSING = re.compile(r"missing required field `([^`]*)`")


def _describe(error: msgspec.ValidationError) -> str:
    """Turn msgspec's "<why> - at `$.docs[0]`" into "docs[0].<field>: <why>"."""
    why, _, at = str(error).partition(" - at `$")
    path = at.rstrip("`").lstrip(".")
    missing = _MISSING.search(why)
    if missing:
        path = f"{path}.{missing.group(1)}" if path else missing.group(1)
        why = "required"
    return f"{path or 'body'}: {why}"


def decode_push(data: bytes) -> PushBody:
    """Parse and check a push body; raise ``ValueError`` naming the first bad field."""
    body = _decode(_raw_decoder, data)
    docs = _documents(body)
    if body.docs:
        raws = [row.embedding for row in body.docs]
        first = raws[0]
        dimension = bytes(first).count(b",") + 1 if bytes(first).strip() != b"[]" else 0
        matrix = parse_rows(raws, dimension) if dimension else None
        if matrix is not None:
            return PushBody(body.indexName, body.modelId, docs, matrix)
    return _decode_exact(data)


def _decode_exact(data: bytes) -> PushBody:
    body = _decode(_exact_decoder, data)
    docs = _documents(body)
    dimension = len(body.docs[0].embedding) if body.docs else 0
    for i, row in enumerate(body.docs):
        if len(row.embedding) != dimension or not dimension:
            raise ValueError(
                f"docs[{i}].embedding: expected dimension {dimension or '>= 1'}, "
                f"got {len(row.embedding)}"
            )
    matrix = as_matrix(
        [row.embedding for row in body.docs], dimension=dimension, field="docs[].embedding"
    )
    return PushBody(body.indexName, body.modelId, docs, matrix)


def _decode(decoder: msgspec.json.Decoder[_WireBody[E]], data: bytes) -> _WireBody[E]:
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ValueError(_describe(exc)) from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"body: malformed JSON ({exc})") from None


def _documents(body: _WireBody[E]) -> list[StoredDocument]:
    """Check everything but the embeddings; the stored form of each document."""
    validate_index_name(body.indexName)
    if body.modelId is not None and not body.modelId.strip():
        raise ValueError("modelId: must not be blank")
    docs: list[StoredDocument] = []
    seen: set[str] = set()
    for i, row in enumerate(body.docs):
        if not row.id:
            raise ValueError(f"docs[{i}].id: must not be empty")
        if row.id in seen:
            raise ValueError(f"docs[{i}].id: duplicate id {row.id!r}")
        seen.add(row.id)
        if row.metadata:
            for key, value in row.metadata.items():
                if isinstance(value, float) and not np.isfinite(value):
                    raise ValueError(f"docs[{i}].metadata.{key}: numbers must be finite")
        docs.append(StoredDocument(row.id, row.text, row.metadata, row.payload))
    return docs
