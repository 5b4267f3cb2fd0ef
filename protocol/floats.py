"""Fast parsing of JSON vectors, the bulk of every push body and index artifact.

A 100k x 384 index is 38M numbers, 470-820 MB of JSON text. Decoding that into Python floats
first (orjson, msgspec) costs 7-15 s; simdjson parses the numbers straight into a C buffer of
doubles in about a third of that. The fast path only answers when the text is certainly a
rectangular array of finite numbers; on anything else it returns ``None`` and the caller's exact
path (Python floats, :func:`protocol.vectors.as_matrix`) parses again and names the problem.
"""

from collections.abc import Sequence

import msgspec
import numpy as np
import simdjson

from protocol.vectors import Matrix

_SLICE_BYTES = 8 << 20
"""Parse this much text at a time: simdjson's tape takes about 2.5x the text it holds."""
Buffer = bytes | bytearray | memoryview | msgspec.Raw


def parse_rows(rows: Sequence[bytes], dimension: int) -> Matrix | None:
    """``rows[i]`` is the JSON text of vector ``i`` (``[f, ...]``): a float32 matrix, or ``None``
    when a row is not a flat list of ``dimension`` finite numbers."""
    out = np.empty((len(rows), dimension), dtype=np.float32)
    parser = simdjson.Parser()
    start = 0
    while start < len(rows):
        stop, size = start, 0
        while stop < len(rows) and (size < _SLICE_BYTES or stop == start):
            size += len(rows[stop])
            stop += 1
        text = b"[" + b",".join(rows[start:stop]) + b"]"
        if not _fill(parser, text, out[start:stop], text.count(b"[")):
            return None
        start = stop
    return out


def parse_row_run(
    text: Buffer,
    dimension: int | None = None,
    into: Matrix | None = None,
    parser: simdjson.Parser | None = None,
) -> Matrix | None:
    """``text`` is ``[f, ...],[f, ...]``, whole rows without the outer brackets: their float32
    matrix, or ``None`` unless every row is a flat list of ``dimension`` finite numbers (by
    default the first row's length). With ``into``, the rows are written to its first rows and
    that view is returned (``None`` if they do not fit). A ``parser`` kept across calls keeps
    its buffers (a tenth of the time on 1 MB runs)."""
    chunk = b"".join((b"[", text, b"]"))  # the one copy of the text
    return _parse_array(chunk, chunk.count(b"[") - 1, dimension, into, parser)


def _parse_array(
    chunk: bytes,
    rows: int,
    dimension: int | None,
    into: Matrix | None,
    parser: simdjson.Parser | None,
) -> Matrix | None:
    """``parse_row_run`` of ``chunk``, the rows with their outer brackets, which holds
    ``rows + 1`` lists (see :func:`_fill`)."""
    if dimension is None:
        dimension = into.shape[1] if into is not None else (
            chunk.count(b",", 0, max(chunk.find(b"]"), 0)) + 1
        )
    if into is None:
        out = np.empty((rows, dimension), dtype=np.float32)
    elif into.shape[1] == dimension and rows <= len(into):
        out = into[:rows]
    else:
        return None
    return out if _fill(parser or simdjson.Parser(), chunk, out, rows + 1) else None


def parse_rows_into(text: bytes, into: Matrix, parser: simdjson.Parser) -> bool:
    """Parse ``[[f, ...], ...]``, ``len(into)`` rows each cut at the first ``]`` after its
    ``[`` (as :meth:`RowSink.take` with ``rows`` takes them), into ``into``; False unless each
    is a flat list of ``into.shape[1]`` finite numbers."""
    return _parse_array(text, len(into), into.shape[1], into, parser) is not None


class RowSink:
    """The rows of one matrix, parsed a run of rows at a time (:func:`parse_row_run`) into one
    array sized for the most rows ``text_bytes`` of JSON can hold (a row takes at least 2 bytes
    a number). Only the pages written are ever backed by memory, and the rows end up in one
    array without a copy. Where that much cannot be reserved, nothing is taken."""

    def __init__(self, text_bytes: int) -> None:
        self._text_bytes = text_bytes
        self._rows: Matrix | None = None
        self._count = 0
        self._parser = simdjson.Parser()

    def take(self, text: Buffer, *, rows: int | None = None) -> bool:
        """Parse the rows of ``text`` after those taken so far; False (nothing taken) unless
        they are rows of finite numbers of the same dimension as the first.

        ``text`` is whole rows, ``[f, ...],[f, ...]``. With ``rows`` it is instead one JSON
        array of that many rows, ``[[f, ...],[f, ...]]``, in which the text of each row holds
        one ``]``, its last byte (as when each was cut at the first ``]`` after its ``[``):
        its ``]`` are then known to be ``rows + 1``, and a successful parse (balanced, and no
        strings, which could hide brackets) proves its ``[`` are too, so they are not counted
        (a pass over the whole text)."""
        chunk = b"".join((b"[", text, b"]")) if rows is None else text
        if rows is None:
            rows = chunk.count(b"[") - 1
        if self._rows is None:
            first = _parse_array(chunk, rows, None, None, self._parser)
            if first is None:
                return False
            most = max(self._text_bytes // (2 * first.shape[1]), len(first))
            try:
                self._rows = np.empty((most, first.shape[1]), dtype=np.float32)
            except (MemoryError, ValueError):
                # Refused where memory is not overcommitted (vm.overcommit_memory=2): the
                # caller's exact path sizes its array exactly.
                return False
            self._rows[: len(first)] = first
            self._count = len(first)
            return True
        parsed = _parse_array(chunk, rows, None, self._rows[self._count :], self._parser)
        if parsed is None:
            return False
        self._count += len(parsed)
        return True

    def rows(self) -> Matrix | None:
        """The rows taken, or ``None`` before any."""
        return None if self._rows is None else self._rows[: self._count]


def _values(parser: simdjson.Parser, text: bytes | memoryview, shape: tuple[int, int],
            lists: int) -> np.ndarray | None:
    """The numbers of ``[[f, ...], ...]``, in which ``text`` holds ``lists`` lists, as float64 in
    order; ``None`` unless it is rows of numbers of exactly ``shape``."""
    # simdjson's as_buffer flattens nested lists and raises on strings, objects and booleans,
    # so with no strings in the text every "[" opens a list: one per row plus the outer one
    # proves that no row hides a nested list.
    if lists != shape[0] + 1:
        return None
    try:
        doc = parser.parse(text)
        if not isinstance(doc, simdjson.Array) or len(doc) != shape[0]:
            return None
        if any(len(row) != shape[1] for row in doc):
            return None
        values = np.frombuffer(doc.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, TypeError, RuntimeError):  # RuntimeError: integers beyond 64 bits
        return None
    finally:
        doc = None  # the parser refuses to parse again while a document is alive
    return values if values.size == shape[0] * shape[1] else None


def _fill(parser: simdjson.Parser, text: bytes, out: Matrix, lists: int) -> bool:
    """Parse ``[[f, ...], ...]``, in which ``text`` holds ``lists`` lists, into ``out``; False
    unless it has exactly ``out``'s shape and its numbers are finite in float32."""
    values = _values(parser, text, out.shape, lists)
    return values is not None and _store(values, out)


def _store(values: np.ndarray, out: Matrix) -> bool:
    with np.errstate(over="ignore"):
        out[...] = values.reshape(out.shape)
    return bool(np.isfinite(out).all())


def parse_rows_exactly(text: bytes | memoryview, into: Matrix, parser: simdjson.Parser
                       ) -> tuple[bool, bool]:
    """:func:`parse_rows_into`, and whether ``text`` could be printed again from the rows
    without changing what it decodes to: each number is written as a float (with a ``.``,
    so no JSON decoder takes it for an integer) whose value float32 holds exactly.

    A pass over the text and one over the numbers parsed: printing the rows to compare with
    the text would take as long as parsing them."""
    values = _values(parser, text, into.shape, len(into) + 1)
    if values is None or not _store(values, into):
        return False, False
    # A valid JSON number holds at most one ".", and the parse found exactly into.size numbers
    # and nothing else that could hold one.
    floats = np.count_nonzero(np.frombuffer(text, dtype=np.uint8) == ord(".")) == into.size
    return True, floats and bool((into.reshape(-1) == values).all())
