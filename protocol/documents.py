"""The documents file served at ``dataUrl``: a JSON array of ``{"id", "metadata", "payload",
"text"}`` in the artifact's ``docIds`` order.

It is written with sorted keys and ``", "`` / ``": "`` separators, the layout of the files the
published SDK was observed to accept, so decoding and re-encoding a stored file gives its bytes.
orjson encodes every value; only the separators are laid out here.
"""

from typing import Any

import msgspec
import orjson


class StoredDocument(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """A document as an index holds it, without its embedding.

    Made by the hundred thousand (a push, a resume), so it is built in C, three times as fast
    as a frozen dataclass, and not tracked by the cycle collector, whose full collections would
    otherwise walk every document of every index held. That is safe as long as it is never part
    of a cycle: its fields hold text and JSON values, and nothing refers back to a document
    (a payload that did would never be freed). msgspec writes it as the array
    ``[id, text, metadata, payload]`` (the mock cloud stores documents so)."""

    id: str
    text: str
    metadata: dict[str, Any] | None = None
    payload: Any = None


def _spaced(value: Any) -> bytes:
    if isinstance(value, dict):
        items = sorted(value.items())
        return b"{" + b", ".join(orjson.dumps(k) + b": " + _spaced(v) for k, v in items) + b"}"
    if isinstance(value, list):
        return b"[" + b", ".join(_spaced(v) for v in value) + b"]"
    return orjson.dumps(value)


def encode_documents(docs: list[StoredDocument]) -> bytes:
    dumps = orjson.dumps
    parts = [
        b'{"id": '
        + dumps(d.id)
        + b', "metadata": '
        + _spaced(d.metadata)
        + b', "payload": '
        + _spaced(d.payload)
        + b', "text": '
        + dumps(d.text)
        + b"}"
        for d in docs
    ]
    return b"[" + b", ".join(parts) + b"]"


def decode_documents(data: bytes) -> list[StoredDocument]:
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"documents file: malformed JSON ({exc})") from None
    if not isinstance(rows, list):
        raise ValueError("documents file: expected a JSON array")
    try:
        return [
            StoredDocument(r["id"], r["text"], r.get("metadata"), r.get("payload")) for r in rows
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"documents file: each entry needs 'id' and 'text' ({exc!r})") from None
