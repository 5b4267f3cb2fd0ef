"""The body of ``POST I/push``: every document of a session with its embedding.

Bodies reach about 820 MB for 100k documents of 384 dimensions, so they are decoded by msgspec
straight into typed structs (no intermediate dicts) with each embedding left as raw JSON, whose
numbers :mod:`protocol.floats` parses in bulk. When that fast path declines, the body is decoded
again with every embedding as a list of floats, which names the bad field exactly. The rules are
those of :class:`protocol.models.PushRequest`, which documents the body in the OpenAPI schema.
"""

import bisect
import math
import re
from array import array
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
import numpy as np
import orjson

from protocol.documents import StoredDocument
from protocol.floats import RowSink, parse_rows
from protocol.names import validate_index_name
from protocol.rowhelper import Batch, RowHelper, canonical
from protocol.vectors import Matrix, as_matrix

MetadataValue = str | int | float | bool
E = TypeVar("E", list[float], msgspec.Raw, int)


class _WireDoc(msgspec.Struct, Generic[E], gc=False):  # holds no cycle: see StoredDocument
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
_numbered_docs_decoder = msgspec.json.Decoder(list[_WireDoc[int]])  # see PushReader._decode_docs
_START = b'{"docs":[{"embedding":'  # how the published SDK's body begins, to the first row
_NEXT = b',{"embedding":'  # and what ends the text after each row but the last


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


_MALFORMED = "body: malformed JSON "
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
        raise ValueError(f"{_MALFORMED}({exc})") from None


def _documents(body: _WireBody[E]) -> list[StoredDocument]:
    """Check everything but the embeddings; the stored form of each document."""
    _check_top(body)
    return _checked_docs(body.docs, 0, set())


def _check_top(body: _WireBody[E]) -> None:
    validate_index_name(body.indexName)
    if body.modelId is not None and not body.modelId.strip():
        raise ValueError("modelId: must not be blank")


def _checked_docs(rows: list[_WireDoc[E]], first: int, seen: set[str]) -> list[StoredDocument]:
    """The stored form of documents ``first`` on; ``seen`` holds the ids before them."""
    # The common case in a few C loops over the batch (a 10k push spent 20 ms here document by
    # document); any doubt and the loop finds and names the first bad document.
    ids = [row.id for row in rows]
    floats = [value for row in rows if row.metadata for value in row.metadata.values()
              if type(value) is float]
    if not (all(ids) and len(set(ids)) == len(ids) and seen.isdisjoint(ids)
            and all(map(math.isfinite, floats))):
        for i, row in enumerate(rows, first):
            if not row.id:
                raise ValueError(f"docs[{i}].id: must not be empty")
            if row.id in seen:
                raise ValueError(f"docs[{i}].id: duplicate id {row.id!r}")
            seen.add(row.id)
            for key, value in (row.metadata or {}).items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"docs[{i}].metadata.{key}: numbers must be finite")
    seen.update(ids)
    return [StoredDocument(row.id, row.text, row.metadata, row.payload) for row in rows]


def _numbered(pieces: list[bytes | int]) -> bytes:
    """Body text with embedding ``i`` written as the number ``i``."""
    return b"".join(p if isinstance(p, bytes) else b"%d" % p for p in pieces)


class PushReader:
    """Decodes a push body while it uploads, without keeping it whole (the published SDK sends
    820 MB for 100k documents).

    :meth:`feed` takes the body a piece at a time and finds the embeddings in the layout the
    published SDK writes (sorted keys, so every document starts ``{"embedding":[``). They are
    parsed in batches of about 1 MB while the text around them is kept. :meth:`finish` then
    decodes that text with embedding ``i`` replaced by the number ``i``, which proves that the
    batches held exactly the documents' embeddings, in order.

    A batch's text is dropped once it is known that its rows printed again
    (:func:`protocol.rowhelper.canonical`) decode to the same values, which the helper process
    checks. On any other layout or any doubt, :meth:`finish` rebuilds the body and decodes it
    whole with :func:`decode_push`, which also words the errors; an error's byte offset is then
    mapped back to the body sent, as rows printed again may differ from it in length.

    Not keeping the body saves more than its memory: on a VM whose host backs memory on first
    touch, touching 820 MB took seconds. Given a :class:`~protocol.rowhelper.RowHelper` that
    is free, the batches are parsed in its process while this one reads on; without one they
    are parsed here and their text kept. :meth:`close` must follow, decoded or not.
    """

    _KEY = b'{"embedding":['
    # Parsing holds the GIL, so without a helper the server reads nothing meanwhile, and the
    # client can only get as far ahead as the socket buffer (a few MB on loopback). With batches
    # of 8 MB a 100k push from the published SDK took 7.0 s to read and parse, with 1 MB 6.2 s.
    BATCH_BYTES = 1 << 20

    def __init__(self, expected_bytes: int, helper: RowHelper | None = None) -> None:
        self._sink = RowSink(expected_bytes)
        # Parsing on another core (see protocol.rowhelper), when a helper is free for it.
        self._lease = helper.lease(expected_bytes) if helper is not None else None
        # With no length given nothing sizes the rows: the body is kept as it comes.
        self._whole: list[bytes] | None = [] if expected_bytes <= 0 else None
        self._failed = False  # a batch was refused: finish() decodes the rebuilt body
        self._window = bytearray()  # bytes fed and not yet moved to _pieces or a batch
        self._searched = 0  # where in the window to look for the next embedding
        self._pieces: list[bytes | int] = []  # the body: its text, and embedding i as i
        self._batches: list[Batch] = []
        self._batch = bytearray()  # the batch being gathered: "[" row "," row ...
        # Or the helper's slot it is gathered in, straight from the window, and its length.
        self._slot: tuple[int, memoryview] | None = None
        self._fill = 0
        self._rows = 0  # embeddings found
        self._row_bytes = array("L")  # the length of each one's text, for _rebuilt()
        self._first_row: bytes | None = None
        # Documents decoded and checked so far, while the body arrives; None once the layout
        # is not the expected one or a document is refused (finish() then decodes them all).
        self._docs: list[StoredDocument] | None = []
        self._seen: set[str] = set()  # their ids

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """The next bytes of the body."""
        if self._whole is not None:
            self._whole.append(bytes(chunk))
            return
        window = self._window
        window += chunk
        key, at, consumed = self._KEY, self._searched, 0
        # Slices of a memoryview copy nothing: each row is copied once, into its batch. The
        # view is released before the window is resized, which an export would forbid.
        with memoryview(window) as view:
            while True:
                found = window.find(key, at)
                if found < 0:
                    at = max(at, len(window) - len(key) + 1)
                    break
                start = found + len(key) - 1
                # Rows of numbers hold no "]": the first one closes the embedding (else the
                # parse fails and the exact path decides).
                close = window.find(b"]", start)
                if close < 0:
                    at = found
                    break
                stop = close + 1
                self._pieces += (bytes(view[consumed:start]), self._rows)
                self._row_bytes.append(stop - start)
                if self._first_row is None:
                    self._first_row = bytes(view[start:stop])
                self._append(view[start:stop])
                self._rows += 1
                consumed = at = stop
                if self._fill >= self.BATCH_BYTES or len(self._batch) >= self.BATCH_BYTES:
                    self._close_batch()
        del window[:consumed]
        self._searched = max(at - consumed, 0)

    def finish(self) -> PushBody:
        """The push, once :meth:`feed` has had all of it; raises ``ValueError`` as
        :func:`decode_push` does."""
        if self._whole is not None:
            return decode_push(b"".join(self._whole))
        self._close_batch()
        self._pieces.append(bytes(self._window))
        self._window = bytearray()
        rows = None
        if not self._failed:
            rows = self._lease.rows(self._rows) if self._lease is not None else self._sink.rows()
        if rows is not None and len(rows) == self._rows:
            # The documents not decoded yet, and the rest of the body: the body as it would
            # be without the documents before them.
            done = self._docs or []
            first = len(done)
            rest = self._pieces[2 * first + 1 :] if first else self._pieces
            numbered = _numbered(rest)
            try:
                wire = _numbered_decoder.decode(_START + numbered if first else numbered)
            except msgspec.MsgspecError:
                wire = None
            # Document i's embedding decoded as i, for every i: each batch row was exactly
            # one document's embedding value, in order, and no document kept another.
            if wire is not None and first + len(wire.docs) == len(rows) and all(
                doc.embedding == first + i for i, doc in enumerate(wire.docs)
            ):
                # Raises as decode_push would: documents before `first` passed their checks.
                _check_top(wire)
                docs = done + _checked_docs(wire.docs, first, self._seen if first else set())
                return PushBody(wire.indexName, wire.modelId, docs, rows)
        body, offsets = self._rebuilt()
        try:
            return decode_push(body)
        except ValueError as exc:
            raise ValueError(offsets.map(str(exc))) from None

    def close(self) -> None:
        """Done with the body, decoded or not: give the helper back."""
        if self._lease is not None:
            self._lease.release()

    @property
    def kept_text_bytes(self) -> int:
        """Bytes of embedding text still held (dropped once known to be printable again)."""
        kept = sum(len(b.text) for b in self._batches if b.text is not None)
        return kept + len(self._batch) + self._fill

    @property
    def helped(self) -> str:
        """Who parsed the rows, for the server's log."""
        if self._lease is None:
            return "the server"
        return f"the helper ({self._lease.helped} of {self._lease.batches} batches)"

    def _append(self, row: memoryview) -> None:
        """Add a row to the batch: into a slot of the helper's when one is free, so that it is
        copied once and into memory used again, else into memory of this process."""
        if self._slot is None and not self._batch and self._lease is not None:
            assert self._first_row is not None
            self._slot = self._lease.reserve(self._first_row)
        if self._slot is not None:
            slot, into = self._slot
            at = self._fill
            end = at + 1 + len(row)
            if end < len(into):  # room for the row and the closing "]"
                into[at] = ord(",") if at else ord("[")
                into[at + 1 : end] = row
                self._fill = end
                return
            if at:  # the slot is full: this row starts the next batch
                self._close_batch()
                self._append(row)
                return
            self._lease.unreserve(slot)  # rows of megabytes: parsed here, at the end
            self._slot = None
        self._batch += b"," if self._batch else b"["
        self._batch += row

    def _close_batch(self) -> None:
        first = self._batches[-1].first + self._batches[-1].rows if self._batches else 0
        if self._slot is not None:  # it holds a row at least: see _append
            assert self._lease is not None and self._fill
            (slot, into), self._slot = self._slot, None
            into[self._fill] = ord("]")
            batch = Batch(first, self._rows - first, into[: self._fill + 1])
            self._fill = 0
            self._batches.append(batch)
            self._lease.submit_in_slot(batch, slot)
            self._decode_docs()
            return
        if not self._batch:
            return
        self._batch += b"]"
        # The batch keeps the bytearray itself, which spares a copy of its text.
        batch = Batch(first, self._rows - first, self._batch)
        self._batch = bytearray()
        self._batches.append(batch)
        if self._failed:
            return
        if self._lease is not None:
            assert self._first_row is not None
            self._lease.submit(batch, self._first_row)
            # While the helper parses, this process has time to decode the documents.
            self._decode_docs()
        else:
            # Each row runs from a "[" to the first "]" after it, as take(rows=) needs.
            self._failed = not self._sink.take(batch.text, rows=batch.rows)

    def _decode_docs(self) -> None:
        """Decode the documents whose text is complete, all but the last row's, as a JSON
        array of documents with embedding i as i.

        They would decode the same in the whole body: it began ``{"docs":[`` and the text
        after each one's embedding ran to ``,{"embedding":``, so these documents were array
        items in a row, and JSON array items are separated by commas alone. Any other layout
        stops this, and finish() decodes the rest."""
        docs, pieces = self._docs, self._pieces
        if docs is None or self._rows < 2:
            return
        first, last = len(docs), self._rows - 2  # pieces[2i + 1] is i, pieces[2i + 2] after it
        if last < first:
            return
        if first == 0 and pieces[0] != _START:
            self._docs = None
            return
        tail = pieces[2 * last + 2]
        assert isinstance(tail, bytes)
        if not tail.endswith(_NEXT):
            self._docs = None
            return
        parts = _numbered(pieces[2 * first + 1 : 2 * last + 2])
        text = b"".join([b'[{"embedding":', parts, tail[: -len(_NEXT)], b"]"])
        try:
            found = _numbered_docs_decoder.decode(text)
        except msgspec.MsgspecError:
            self._docs = None
            return
        if len(found) != last + 1 - first or any(
            doc.embedding != first + i for i, doc in enumerate(found)
        ):
            self._docs = None
            return
        try:
            docs += _checked_docs(found, first, self._seen)
        except ValueError:  # finish() finds it again, after whatever decode_push finds first
            self._docs = None

    def _rebuilt(self) -> "tuple[bytes, _Offsets]":
        """The body as it was sent, but for batches whose text was dropped, which are printed
        again; and how offsets in it map to offsets in the body sent."""
        texts: list[bytes] = []
        reprinted: list[bool] = []
        matrix = self._lease.matrix if self._lease is not None else None
        for batch in self._batches:
            text = bytes(batch.text) if isinstance(batch.text, memoryview) else batch.text
            if text is None:
                assert matrix is not None
                text = canonical(matrix[batch.first : batch.first + batch.rows])
            rows = text[1:-1].split(b"],")  # each row holds one "]", its last byte
            texts += [row + b"]" for row in rows[:-1]]
            texts.append(rows[-1])
            reprinted += [batch.text is None] * batch.rows
        offsets = _Offsets()
        parts: list[bytes] = []
        at = 0
        for piece in self._pieces:
            if not isinstance(piece, bytes):
                row = texts[piece]
                if reprinted[piece]:
                    offsets.shift(at + len(row), self._row_bytes[piece] - len(row))
                piece = row
            parts.append(piece)
            at += len(piece)
        return b"".join(parts), offsets


class _Offsets:
    """Where each row printed again ends in a rebuilt body, and by how much the body sent
    differs from there on, to word a parse error as decoding the body sent would."""

    _AT = re.compile(r"\(byte (\d+)\)$")

    def __init__(self) -> None:
        self._ends: list[int] = []
        self._shifts: list[int] = []  # from each end on

    def shift(self, end: int, by: int) -> None:
        if by:
            self._ends.append(end)
            self._shifts.append((self._shifts[-1] if self._shifts else 0) + by)

    def map(self, message: str) -> str:
        """``message`` from decoding the rebuilt body, with its byte offset (msgspec ends a
        malformed-JSON message with one) as in the body sent."""
        found = self._AT.search(message.removesuffix(")"))
        if not message.startswith(_MALFORMED) or found is None or not self._ends:
            return message
        at = int(found.group(1))
        passed = bisect.bisect_right(self._ends, at)
        sent = at + (self._shifts[passed - 1] if passed else 0)
        return f"{message[: found.start(1)]}{sent}{message[found.end(1):]}"
