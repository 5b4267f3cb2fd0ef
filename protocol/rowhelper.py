"""A helper process that parses a push body's embeddings beside the server, on another core.

simdjson holds the GIL while it parses, so in the server's own process no byte of the body is
read meanwhile. The published SDK serializes its whole body before it sends any of it (82 MB
for 10k documents in 0.66 s, then 0.06 s on the wire) and then waits, so every second the
server spends is added to the push. With a helper the two cores share the work: the server
reads the body and finds the rows (:class:`protocol.push.PushReader`), the helper parses them,
and at the end the server parses itself the batches the helper has not reached.

Each batch goes into a slot of a small memory file that both processes map (the server writes
rows straight into a free slot, so each row is copied once), and the helper writes the rows into
the matrix, another such file, where the server reads them. The helper also
checks that the batch's text can be printed again from its rows (:func:`canonical`) and decode
to the same values (:func:`protocol.floats.parse_rows_exactly`), so the server need not keep
it, nor the body. Any failure (a row that is not what the fast path expects, a helper that
died) only means the push is decoded without it.

Run as ``python -m protocol.rowhelper FD``, FD being its end of a socket pair.
"""

import logging
import mmap
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle

import numpy as np
import orjson
import simdjson

from protocol.buffers import keep_freed_memory
from protocol.floats import parse_rows_exactly, parse_rows_into
from protocol.vectors import Matrix

SHARED_MEMORY = hasattr(os, "memfd_create")
"""Whether the helper can run here (Linux: memory files shared by file descriptor)."""

log = logging.getLogger("protocol.rowhelper")

# Batches sent and not answered, each in a slot of its own: one parsing and the others waiting
# keep the helper busy, and the rest stay with the server, which parses them itself if the body
# ends first.
_SLOTS = 3
SLOT_BYTES = 4 << 20
# A batch of 1 MB parses in a few ms: a helper this late is stuck.
_REPLY_TIMEOUT_S = 60.0
# Below this a push parses in the server at once: a helper is not worth a round trip.
MIN_BYTES = 4 << 20


class RowHelper:
    """One helper process, lent to one push at a time (:meth:`lease`); started on first use
    (or by :meth:`start`) and again if it dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held by the lease's push
        self._start_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self.closed = False
        self.batches_parsed = 0  # by the helper, over all pushes
        self.starts = 0

    def start(self) -> None:
        """Start the process now, so that the first push does not wait for it."""
        with self._start_lock:
            if not SHARED_MEMORY or self.closed or (
                self._process is not None and self._process.poll() is None
            ):
                return
            self._stop_process()
            ours, theirs = socket.socketpair()
            with ours, theirs:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "protocol.rowhelper", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
                self._conn = Connection(ours.detach())
            self.starts += 1

    def lease(self, body_bytes: int) -> "Lease | None":
        """The helper for one push of ``body_bytes``, or ``None``: the push is small, another
        push has the helper, or it cannot run here."""
        if body_bytes < MIN_BYTES or not SHARED_MEMORY or self.closed:
            return None
        if not self._lock.acquire(blocking=False):
            return None
        if self.closed:  # closed while this push waited for the lock
            self._lock.release()
            return None
        try:
            self.start()
        except OSError as exc:
            log.warning("row helper: cannot start (%s); parsing in the server", exc)
            self._lock.release()
            return None
        assert self._process is not None and self._conn is not None
        return Lease(self, self._conn, self._process.pid, body_bytes)

    def _returned(self, broken: bool) -> None:
        if broken:
            with self._start_lock:
                self._stop_process()
        self._lock.release()

    def _stop_process(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            # Its end of the socket closed, it exits on its own; a stuck one is killed.
            try:
                self._process.wait(2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def close(self, wait_s: float = 30.0) -> None:
        """Stop the process; pushes after this parse in the server. A push that has the helper
        is given ``wait_s`` to finish with it, then loses it (and parses in the server)."""
        self.closed = True
        leased = not self._lock.acquire(timeout=wait_s)
        try:
            with self._start_lock:
                self._stop_process()
        finally:
            if not leased:
                self._lock.release()


@dataclass
class Batch:
    """Rows ``first`` to ``first + rows`` of the matrix: their JSON text ``[[...],[...]]``
    until it is known that printing the rows again (:func:`canonical`) decodes to the same
    values (then ``None``). Text written straight into a slot is a view of it until the
    helper answers, then copied out if it is kept."""

    first: int
    rows: int
    text: bytes | bytearray | memoryview | None


def canonical(rows: Matrix) -> bytes:
    """``rows`` as the published SDK prints them: each float32 widened to float64 and written
    in its shortest form, always with a ``.`` or an exponent (a test checks this against its
    bodies)."""
    return orjson.dumps(rows.astype(np.float64), option=orjson.OPT_SERIALIZE_NUMPY)


class Lease:
    """The helper's part in one push: :meth:`submit` hands over each batch of rows, :meth:`rows`
    waits for them all; :meth:`release` always.

    A batch is written into one of a few slots of a memory file both processes map (straight
    away, :meth:`reserve`; or copied in once a slot is free), and the helper writes its rows
    into the matrix, another such file. A batch that can be printed
    again loses its text (``Batch.text = None``): that is what lets the server drop the body as
    it goes."""

    def __init__(self, helper: RowHelper, conn: Connection, pid: int, body_bytes: int) -> None:
        self._helper, self._conn, self._pid = helper, conn, pid
        self._body_bytes = body_bytes
        self._out: Matrix | None = None
        self._slots: mmap.mmap | None = None
        self._slot_bytes = SLOT_BYTES
        self._free: list[int] = list(range(_SLOTS))
        self._queue: deque[Batch] = deque()  # batches not sent
        self._local: list[Batch] = []  # batches too big for a slot
        self._sent: deque[tuple[Batch, int]] = deque()  # and their slots, in order
        self._failed = False
        self._broken = False  # the helper must be started again
        self._released = False
        self._parser: simdjson.Parser | None = None
        self.batches = 0  # submitted
        self.helped = 0  # of those, parsed by the helper

    def submit(self, batch: Batch, first_row: bytes) -> None:
        """The next batch; ``first_row`` is the text of its first row (the matrix is sized
        from the first batch's)."""
        if self._failed:
            return
        if self._out is None and not self._open(first_row):
            return
        assert self._out is not None
        if batch.first + batch.rows > len(self._out):
            self._failed = True
            return
        if batch.text is not None and len(batch.text) > self._slot_bytes:
            self._local.append(batch)  # rows of megabytes: parsed here, at the end
        else:
            self._queue.append(batch)
        self.batches += 1
        self._pump()

    def reserve(self, first_row: bytes) -> tuple[int, memoryview] | None:
        """A free slot to write the next batch into, and a view of it; ``None`` when every
        slot is taken (or the helper failed). :meth:`submit_in_slot` or :meth:`unreserve`
        must follow."""
        if self._failed or (self._out is None and not self._open(first_row)):
            return None
        self._collect(wait=False)
        if not self._free or self._slots is None:
            return None
        slot = self._free.pop()
        at = slot * self._slot_bytes
        with memoryview(self._slots) as slots:
            return slot, slots[at : at + self._slot_bytes]

    def unreserve(self, slot: int) -> None:
        self._free.append(slot)

    def submit_in_slot(self, batch: Batch, slot: int) -> None:
        """The next batch, written into ``slot`` (``batch.text`` is a view of it)."""
        assert isinstance(batch.text, memoryview) and self._out is not None
        if self._failed or batch.first + batch.rows > len(self._out):
            self._failed = True
            self._copy_out(batch, slot)
            return
        self.batches += 1
        self._dispatch(batch, slot)
        self._pump()

    def _copy_out(self, batch: Batch, slot: int) -> None:
        """Keep the text of a batch written into ``slot``, and free the slot."""
        if isinstance(batch.text, memoryview):
            batch.text = bytes(batch.text)
        self._free.append(slot)

    @property
    def matrix(self) -> Matrix | None:
        """The matrix the rows go to: valid for each batch parsed without a failure."""
        return self._out

    def rows(self, count: int) -> Matrix | None:
        """The first ``count`` rows, once all are parsed; ``None`` if any batch was not rows
        of finite numbers of the first row's dimension (or the helper failed)."""
        if self._out is None or self._failed:
            return None
        while (self._queue or self._local) and not self._failed:
            self._collect(wait=False)
            if self._queue and self._free:
                self._send(self._queue.popleft())
                continue
            # The helper is busy: parse from the other end, so the two meet in the middle.
            batch = self._local.pop() if self._local else self._queue.pop()
            assert batch.text is not None
            self._parser = self._parser or simdjson.Parser()
            rows = self._out[batch.first : batch.first + batch.rows]
            if not parse_rows_into(batch.text, rows, self._parser):
                self._failed = True
        while self._sent and not self._failed:
            self._collect(wait=True)
        return None if self._failed or count > len(self._out) else self._out[:count]

    def release(self) -> None:
        """Give the helper back, whatever happened; the matrix stays valid."""
        if self._released:
            return
        self._released = True
        try:
            while self._sent and not self._broken:
                self._collect(wait=True)
            if not self._broken and self._out is not None:
                self._conn.send(("close",))
        except OSError:
            self._broken = True
        self._helper._returned(self._broken)

    # --- the exchange ------------------------------------------------------------------------
    def _open(self, first_row: bytes) -> bool:
        """Size the matrix from the first row; send the helper it and the slots."""
        if len(first_row) <= 2:  # "[]": the exact path words the error
            self._failed = True
            return False
        dimension = first_row.count(b",") + 1
        # A row takes at least two bytes a number ("0,"), so this many rows fit in the body.
        rows = max(self._body_bytes // (2 * dimension), 1)
        out_fd = os.memfd_create("sessionspec-rows", os.MFD_CLOEXEC)
        slots_fd = os.memfd_create("sessionspec-batches", os.MFD_CLOEXEC)
        try:
            os.ftruncate(out_fd, rows * dimension * 4)
            os.ftruncate(slots_fd, _SLOTS * self._slot_bytes)
            out_map = mmap.mmap(out_fd, rows * dimension * 4)
            self._out = np.frombuffer(out_map, dtype=np.float32).reshape(rows, dimension)
            self._slots = mmap.mmap(slots_fd, _SLOTS * self._slot_bytes)
            self._conn.send(("open", rows, dimension, self._slot_bytes))
            send_handle(self._conn, out_fd, self._pid)
            send_handle(self._conn, slots_fd, self._pid)
        except OSError as exc:
            self._fail_broken(exc)
            return False
        finally:
            os.close(out_fd)
            os.close(slots_fd)
        return True

    def _pump(self) -> None:
        self._collect(wait=False)
        while self._queue and self._free and not self._failed:
            self._send(self._queue.popleft())

    def _send(self, batch: Batch) -> None:
        assert batch.text is not None and self._slots is not None
        slot = self._free.pop()
        at = slot * self._slot_bytes
        self._slots[at : at + len(batch.text)] = batch.text
        self._dispatch(batch, slot)

    def _dispatch(self, batch: Batch, slot: int) -> None:
        """Ask the helper to parse ``batch``, which is in ``slot``."""
        assert batch.text is not None
        try:
            self._conn.send(("rows", slot, len(batch.text), batch.first, batch.rows))
        except OSError as exc:
            self._copy_out(batch, slot)
            self._fail_broken(exc)
            return
        self._sent.append((batch, slot))

    def _collect(self, *, wait: bool) -> None:
        try:
            while self._sent:
                if not self._conn.poll(_REPLY_TIMEOUT_S if wait else 0):
                    if wait:
                        raise TimeoutError("no answer from the row helper")
                    return
                ok, reprintable = self._conn.recv()
                batch, slot = self._sent.popleft()
                if not ok:
                    self._failed = True
                elif reprintable:
                    batch.text = None
                self._copy_out(batch, slot)
                self.helped += 1
                self._helper.batches_parsed += 1
                if wait:
                    return
        except (OSError, EOFError) as exc:
            self._fail_broken(exc)

    def _fail_broken(self, exc: BaseException) -> None:
        log.warning("row helper failed (%s); parsing in the server", exc)
        self._failed = self._broken = True
        while self._sent:
            self._copy_out(*self._sent.popleft())


# --- the helper's side ------------------------------------------------------------------------


def serve(conn: Connection) -> None:
    """Answer batches until the server closes its end."""
    parser = simdjson.Parser()
    slots: mmap.mmap | None = None
    out_map: mmap.mmap | None = None
    out: Matrix | None = None
    slot_bytes = 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "open":
            _, rows, dimension, slot_bytes = message
            out_fd, slots_fd = recv_handle(conn), recv_handle(conn)
            try:
                out_map = mmap.mmap(out_fd, rows * dimension * 4)
                slots = mmap.mmap(slots_fd, _SLOTS * slot_bytes)
            finally:
                os.close(out_fd)
                os.close(slots_fd)
            out = np.frombuffer(out_map, dtype=np.float32).reshape(rows, dimension)
        elif message[0] == "rows":
            _, slot, length, first, count = message
            answer = (False, False)
            if slots is not None and out is not None and first + count <= len(out):
                # Parsed where it lies (a copy added 7% to a batch's parse); the view is
                # released before the slots can be closed.
                at = slot * slot_bytes
                with memoryview(slots) as view, view[at : at + length] as text:
                    answer = parse_rows_exactly(text, out[first : first + count], parser)
            conn.send(answer)
        elif message[0] == "close":
            out = None
            for held in (slots, out_map):
                if held is not None:
                    held.close()
            slots = out_map = None


if __name__ == "__main__":
    # It stops when the server's end closes; Ctrl-C in the server's terminal is the server's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    serve(Connection(int(sys.argv[1])))
