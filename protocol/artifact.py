"""The index artifact served at ``indexUrl``.

Layout: ``b"MOSS"`` + u32le version (1) + u32le payload length + payload, where the payload is
compact UTF-8 JSON ``{"name", "version", "model": {"id", "version"}, "dimension",
"embeddings", "docIds"}`` (plus ``"envelope"`` for built-in models), masked by
:func:`protocol._xor.xor_mask`.
"""

import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from protocol._xor import xor_into
from protocol.buffers import FillBuffer
from protocol.floats import RowSink
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


def _body(artifact: IndexArtifact, embeddings: object) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": artifact.name,
        "version": artifact.version,
        "model": {"id": artifact.model_id, "version": artifact.model_version},
        "dimension": artifact.dimension,
        "embeddings": embeddings,
        "docIds": artifact.doc_ids,
    }
    if artifact.envelope is not None:
        body["envelope"] = artifact.envelope
    body.update(artifact.extra)
    return body


def encode_artifact(artifact: IndexArtifact) -> bytearray:
    embeddings = np.ascontiguousarray(artifact.embeddings, dtype=np.float32)
    payload = orjson.dumps(_body(artifact, embeddings), option=orjson.OPT_SERIALIZE_NUMPY)
    # Masked straight into the output: a 100k-document payload is 420 MB, and every copy shows.
    out = bytearray(_HEADER.size + len(payload))
    _HEADER.pack_into(out, 0, MAGIC, FORMAT_VERSION, len(payload))
    xor_into(payload, np.frombuffer(out, dtype=np.uint8)[_HEADER.size :], 0)
    return out


def artifact_header(payload_bytes: int) -> bytes:
    """The 12 bytes before a payload of that length."""
    return _HEADER.pack(MAGIC, FORMAT_VERSION, payload_bytes)


_BATCH_ROWS = 1024


def artifact_payload(artifact: IndexArtifact) -> Iterator[npt.NDArray[np.uint8]]:
    """The masked payload of :func:`encode_artifact`, byte for byte, in pieces of a few MB (a
    batch of rows each), for writing to a file: the whole payload never exists at once, and
    a writer can write one piece while the next is encoded. The caller adds the header
    (:func:`artifact_header`) once it knows the length."""
    embeddings = np.ascontiguousarray(artifact.embeddings, dtype=np.float32)
    # Everything but the embeddings, with a token no other value holds in their place: the
    # text before and after it brackets the rows, which orjson writes the same way batch by
    # batch as all at once.
    token = "embeddings-" + secrets.token_hex(16)
    text = orjson.dumps(_body(artifact, token), option=orjson.OPT_SERIALIZE_NUMPY)
    quoted = orjson.dumps(token)
    at = text.find(quoted)
    if at < 0 or text.find(quoted, at + 1) >= 0:  # cannot happen, short of a chosen token
        yield np.frombuffer(encode_artifact(artifact), dtype=np.uint8)[_HEADER.size :]
        return
    offset = 0

    def masked(data: bytes) -> npt.NDArray[np.uint8]:
        nonlocal offset
        out = np.empty(len(data), dtype=np.uint8)
        xor_into(data, out, offset)
        offset += len(data)
        return out

    yield masked(text[:at] + b"[")
    for start in range(0, len(embeddings), _BATCH_ROWS):
        rows = orjson.dumps(embeddings[start : start + _BATCH_ROWS],
                            option=orjson.OPT_SERIALIZE_NUMPY)
        yield masked((b"," if start else b"") + rows[1:-1])
    yield masked(b"]" + text[at + len(quoted) :])


def decode_artifact(data: bytes | memoryview) -> IndexArtifact:
    reader = ArtifactReader()
    reader.feed(data)
    return reader.finish()


class ArtifactReader:
    """Decodes an artifact while it downloads: :meth:`feed` it the bytes as they arrive, then
    :meth:`finish`. Rows of the ``"embeddings"`` value are parsed about 8 MB at a time as soon
    as they are complete, so parsing overlaps the transfer.

    That fast path expects the compact layout every known writer produces (the embeddings as
    ``"embeddings":[[...],...]``); on any other layout, or any doubt, :meth:`finish` decodes
    the whole payload again on the exact path, which also words the errors.
    """

    _KEY = b'"embeddings":['

    def __init__(self) -> None:
        self._head = b""
        self._fill: FillBuffer | None = None  # the unmasked payload, once the header is read
        self._length = 0
        self._filled = 0
        self._searched = 0  # where the search for the embeddings key resumes
        self._start = -1  # offset of the "[" opening the embeddings value
        self._next = -1  # offset of the next row not parsed yet
        self._end = -1  # offset just past the value's closing "]"
        self._rows: RowSink | None = None
        self._declined = False

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        if self._fill is None:
            need = _HEADER.size - len(self._head)
            self._head += bytes(view[:need])
            view = view[need:]
            if len(self._head) < _HEADER.size:
                return
            self._length = _check_header(self._head)
            # Anonymous memory, backed as it fills (a bytearray is zeroed first), and it can be
            # searched in place.
            self._fill = FillBuffer(self._length)
            self._rows = RowSink(self._length)
        if self._filled + len(view) > self._length:
            raise ValueError(
                f"index artifact: header says {self._length} payload bytes, found more"
            )
        self._fill.reserve(self._filled + len(view))
        target = np.frombuffer(self._fill.map, dtype=np.uint8)[self._filled :]
        xor_into(view, target, self._filled)
        self._filled += len(view)
        self._advance(final=False)

    def finish(self) -> IndexArtifact:
        if self._fill is None:
            raise ValueError(
                f"index artifact: {len(self._head)} bytes is shorter than its header"
            )
        if self._filled != self._length:
            raise ValueError(
                f"index artifact: header says {self._length} payload bytes, found {self._filled}"
            )
        payload = memoryview(self._fill.map)[: self._length]
        self._advance(final=True)
        parsed = None if self._rows is None else self._rows.rows()
        if not self._declined and self._end > 0 and parsed is not None:
            # Everything but the embeddings, with null in their place: small, and decoding it
            # proves the parsed span was the top-level embeddings value.
            rest = bytes(payload[: self._start]) + b"null" + bytes(payload[self._end :])
            try:
                return _decode_payload(rest, parsed)
            except ValueError:
                pass
        return _decode_payload(payload)

    def _advance(self, *, final: bool) -> None:
        if self._declined or self._end >= 0 or self._fill is None:
            return
        text, filled = self._fill.map, self._filled
        if self._start < 0:
            found = text.find(self._KEY, self._searched, filled)
            if found < 0:
                self._searched = max(0, filled - len(self._KEY))
                self._declined = final
                return
            self._start = found + len(self._KEY) - 1
            self._next = self._start + 1
        # Only whole slices are parsed before the end, so each byte is searched once. Rows end
        # in "]," but the last, which ends in "]]": that is only looked for when a cut at the
        # last "]," does not parse, near the end where other values follow, as looking in every
        # slice would read each byte once more.
        while final or filled - self._next >= _SLICE_BYTES:
            window = min(filled, self._next + _SLICE_BYTES + 1)
            cut = text.rfind(b"],", self._next, window)
            if cut >= 0 and self._take(self._next, cut + 1):
                self._next = cut + 2
                continue
            # No valid rows can hold "]]", so the first one closes the value, if anything does.
            close = text.find(b"]]", self._next, window)
            if close < 0 or not self._take(self._next, close + 1):
                self._declined = True  # a row longer than a slice, or bad rows: not this layout
            else:
                self._end = close + 2
            return

    def _take(self, start: int, stop: int) -> bool:
        """Parse the rows in ``payload[start:stop]`` after those parsed so far."""
        assert self._fill is not None and self._rows is not None
        return self._rows.take(memoryview(self._fill.map)[start:stop])


def _check_header(head: bytes) -> int:
    """The payload length the header announces, once its magic and version are right."""
    magic, version, length = _HEADER.unpack_from(head)
    if magic != MAGIC:
        raise ValueError(f"index artifact: bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise ValueError(f"index artifact: unsupported format version {version}")
    return int(length)


def _decode_payload(payload: bytes | memoryview, embeddings: Matrix | None = None) -> IndexArtifact:
    """The unmasked payload; ``embeddings`` when they were parsed already (the payload then
    holds ``null`` in their place)."""
    try:
        # Top-level values stay raw JSON: the embeddings are parsed a slice of rows at a time,
        # so a 100k x 384 index never exists as 38M Python floats at once.
        body = _top_level.decode(payload)
        values = {k: orjson.loads(bytes(v)) for k, v in body.items() if k != "embeddings"}
        dimension = int(values.pop("dimension"))
        model = values.pop("model")
        doc_ids = values.pop("docIds")
        if embeddings is None:
            embeddings = _embeddings(body["embeddings"], len(doc_ids), dimension)
        elif bytes(body["embeddings"]) != b"null" or embeddings.shape != (len(doc_ids), dimension):
            raise ValueError("index artifact: the embeddings parsed ahead do not fit")
        return IndexArtifact(
            name=values.pop("name"),
            version=str(values.pop("version")),
            model_id=model["id"],
            model_version=str(model.get("version", "1")),
            dimension=dimension,
            embeddings=embeddings,
            doc_ids=doc_ids,
            envelope=values.pop("envelope", None),
            extra=values,
        )
    except (msgspec.DecodeError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"index artifact: malformed payload ({exc!r})") from None


_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw])
_rows_decoder = msgspec.json.Decoder(list[list[float]])
_SLICE_BYTES = 8 << 20


def _embeddings(raw: msgspec.Raw, rows: int, dimension: int) -> Matrix:
    """Parse ``[[f, ...], ...]`` into a float32 matrix, about 8 MB of text at a time: the
    exact path, for what :class:`ArtifactReader` declined; slower, and it says what is wrong."""
    inner = bytes(raw).strip()
    if not (inner.startswith(b"[") and inner.endswith(b"]")):
        raise ValueError("index artifact: embeddings: expected a list of vectors")
    inner = inner[1:-1].strip()
    out = np.empty((rows, dimension), dtype=np.float32)
    filled, pos = 0, 0
    while pos < len(inner):
        cut = inner.find(b"],", pos + _SLICE_BYTES)
        end = len(inner) if cut < 0 else cut + 1
        try:
            values = _rows_decoder.decode(b"[" + inner[pos:end] + b"]")
        except msgspec.ValidationError as exc:
            raise ValueError(f"index artifact: embeddings: {exc}") from None
        part = as_matrix(values, dimension=dimension, field="embeddings")
        if filled + len(part) > rows:
            raise ValueError(f"index artifact: more embeddings than the {rows} docIds")
        out[filled : filled + len(part)] = part
        filled += len(part)
        pos = end + 1  # past the comma between rows
    if filled != rows:
        raise ValueError(f"index artifact: {filled} embeddings for {rows} docIds")
    return out
