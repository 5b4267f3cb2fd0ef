"""The body of ``POST I/push``: every document of a session with its embedding.

Bodies reach about 820 MB for 100k documents of 384 dimensions, so they are decoded by msgspec
straight into typed structs (no intermediate dicts) with each embedding left as raw JSON, whose
numbers :mod:`protocol.floats` parses in bulk. When that fast path declines, the body is decoded
again with every embedding as a list of floats, which names the bad field exactly. The rules are
those of :class:`protocol.models.PushRequest`, which documents the body in the OpenAPI schema.
"""

import mmap
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
import numpy as np
import orjson

from protocol.buffers import FillBuffer
from protocol.documents import StoredDocument
from protocol.floats import RowSink, parse_rows
from protocol.names import validate_index_name
from protocol.rowhelper import RowHelper
from protocol.vectors import Matrix, as_matrix

MetadataValue = str | int | float | bool
Body = bytearray | mmap.mmap  # a push body as the server holds it while it arrives
E = TypeVar("E", list[float], msgspec.Raw, int)


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
_numbered_decoder = msgspec.json.Decoder(_WireBody[int])  # see PushReader.finish


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


class PushReader:
    """Decodes a push body while it uploads, so that parsing overlaps the transfer (the
    published SDK sends 820 MB for 100k documents).

    The server keeps filling one buffer with the body; :meth:`scan` finds the embeddings
    complete so far in the layout the published SDK writes (sorted keys, so every document
    starts ``{"embedding":[``), and :meth:`parse` parses those found, about 1 MB at a time.
    :meth:`finish` then decodes the rest of the body with each embedding replaced by its
    number, which proves that the parsed spans were exactly the documents' embeddings, in
    order. On any other layout or any doubt it decodes the whole body with
    :func:`decode_push`, which also words the errors.

    Given a :class:`~protocol.rowhelper.RowHelper` that is free, the body goes into memory
    the helper process maps, and the batches are parsed there while this process reads on
    (see :mod:`protocol.rowhelper`). :meth:`close` must follow, decoded or not.
    """

    _KEY = b'{"embedding":['
    # Parsing holds the GIL, so the server reads nothing meanwhile and the client can only get
    # as far ahead as the socket buffer (a few MB on loopback). With batches of 8 MB a 100k
    # push from the published SDK took 7.0 s to read and parse, with 1 MB 6.2 s.
    BATCH_BYTES = 1 << 20

    def __init__(self, expected_bytes: int, helper: RowHelper | None = None) -> None:
        self._sink = RowSink(expected_bytes)
        # Parsing on another core (see protocol.rowhelper), when a helper is free for it.
        self._lease = helper.lease(expected_bytes) if helper is not None else None
        self._declined = expected_bytes <= 0  # no length given: nothing to size the rows by
        self._spans: list[tuple[int, int]] = []  # [start, stop) of each embedding, in order
        self._parsed = 0  # spans parsed so far
        self._waiting = 0  # bytes in spans found and not parsed
        self._searched = 0

    def scan(self, body: Body, filled: int) -> bool:
        """Find the embeddings complete in ``body[:filled]``; True when enough of them wait
        for :meth:`parse`."""
        if self._declined:
            return False
        key, at = self._KEY, self._searched
        while True:
            found = body.find(key, at, filled)
            if found < 0:
                self._searched = max(at, filled - len(key) + 1)
                break
            start = found + len(key) - 1
            # Rows of numbers hold no "]": the first one closes the embedding (else the parse
            # fails and the exact path decides).
            close = body.find(b"]", start, filled)
            if close < 0:
                self._searched = found
                break
            self._spans.append((start, close + 1))
            self._waiting += close + 1 - start
            at = close + 1
        return self._waiting >= self.BATCH_BYTES

    def parse(self, body: Body) -> None:
        """Parse the embeddings found and not parsed yet."""
        if self._declined or self._parsed == len(self._spans):
            return
        spans = self._spans[self._parsed :]
        if self._lease is not None:
            self._lease.submit(spans)
        else:
            with memoryview(body) as view:
                pieces: list[bytes | memoryview] = [b","] * (2 * len(spans) + 1)
                pieces[0], pieces[-1] = b"[", b"]"
                pieces[1::2] = [view[s:e] for s, e in spans]
                text = b"".join(pieces)  # the one copy: [[...],[...]]
                del pieces
            # Each span runs from a "[" to the first "]" after it (see scan), as take(rows=)
            # needs.
            self._declined = not self._sink.take(text, rows=len(spans))
        self._parsed, self._waiting = len(self._spans), 0

    def buffer(self, size: int) -> FillBuffer:
        """The buffer for a body of ``size`` bytes (see :func:`mock_cloud.bodies.read_body`):
        one the helper can read, when there is one."""
        return self._lease.buffer(size) if self._lease is not None else FillBuffer(size)

    def close(self) -> None:
        """Done with the body, decoded or not: give the helper back."""
        if self._lease is not None:
            self._lease.release()

    @property
    def helped(self) -> str:
        """Who parsed the rows, for the server's log."""
        if self._lease is None:
            return "the server"
        return f"the helper ({self._lease.helped} of {self._lease.batches} batches)"

    def finish(self, body: Body) -> PushBody:
        """The push, once ``body`` holds all of it; raises ``ValueError`` as
        :func:`decode_push` does."""
        self.scan(body, len(body))
        self.parse(body)
        if self._declined:
            rows = None
        elif self._lease is not None:
            rows = self._lease.rows()
            self._lease.release()
        else:
            rows = self._sink.rows()
        if rows is not None and len(rows) == len(self._spans):
            try:
                wire = _numbered_decoder.decode(self._numbered(body))
            except msgspec.MsgspecError:
                wire = None
            # Document i's embedding decoded as i, for every i: each parsed span was exactly
            # one document's embedding value, in order, and no document kept another.
            if wire is not None and len(wire.docs) == len(rows) and all(
                doc.embedding == i for i, doc in enumerate(wire.docs)
            ):
                return PushBody(wire.indexName, wire.modelId, _documents(wire), rows)
        return decode_push(body)

    def _numbered(self, body: Body) -> bytes:
        """``body`` with embedding ``i`` replaced by the number ``i``: a few MB."""
        with memoryview(body) as view:
            pieces: list[bytes | memoryview] = []
            last = 0
            for i, (start, stop) in enumerate(self._spans):
                pieces += (view[last:start], b"%d" % i)
                last = stop
            pieces.append(view[last:])
            out = b"".join(pieces)
            del pieces
        return out
