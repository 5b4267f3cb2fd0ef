"""A helper process that parses a push body's embeddings beside the server, on another core.

simdjson holds the GIL while it parses, so in the server's own process no byte of the body is
read meanwhile. The published SDK serializes its whole body before it sends any of it (82 MB
for 10k documents in 0.66 s, then 0.06 s on the wire) and then waits, so every second the
server spends is added to the push. With a helper the two cores share the work: the server
reads the body and finds the rows (:class:`protocol.push.PushReader`), the helper parses them,
and at the end the server parses itself the batches the helper has not reached.

The body and the matrix are memory files shared by both processes: a batch is sent as byte
offsets, and the helper writes its rows where the server reads them. Nothing big is copied
between the processes, and any failure (a row that is not what the fast path expects, a helper
that died) only means the push is decoded without it.

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
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle

import numpy as np
import simdjson

from protocol.buffers import SHARED_BUFFERS, FillBuffer
from protocol.floats import parse_spans
from protocol.vectors import Matrix

log = logging.getLogger("protocol.rowhelper")

Spans = list[tuple[int, int]]
# Batches sent and not answered: one parsing and one waiting keeps the helper busy, and the
# rest stay with the server, which parses them itself if the body ends first.
_IN_FLIGHT = 2
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
            if self.closed or (self._process is not None and self._process.poll() is None):
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
        if body_bytes < MIN_BYTES or not SHARED_BUFFERS or self.closed:
            return None
        if not self._lock.acquire(blocking=False):
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

    def close(self) -> None:
        """Stop the process; pushes after this parse in the server."""
        with self._lock, self._start_lock:
            self.closed = True
            self._stop_process()


class Lease:
    """The helper's part in one push: :meth:`buffer` holds the body, :meth:`submit` hands
    over each batch of rows, :meth:`rows` waits for them all; :meth:`release` always."""

    def __init__(self, helper: RowHelper, conn: Connection, pid: int, body_bytes: int) -> None:
        self._helper, self._conn, self._pid = helper, conn, pid
        self._body_bytes = body_bytes
        self._body: FillBuffer | None = None
        self._out: Matrix | None = None
        self._out_map: mmap.mmap | None = None
        self._queue: deque[tuple[int, Spans]] = deque()  # batches not sent
        self._in_flight = 0
        self._next_row = 0
        self._failed = False
        self._broken = False  # the helper must be started again
        self._released = False
        self._parser: simdjson.Parser | None = None
        self.batches = 0  # submitted
        self.helped = 0  # of those, parsed by the helper

    def buffer(self, size: int) -> FillBuffer:
        """The buffer to read the body into: one the helper can map."""
        self._body = FillBuffer(size, shared=True)
        return self._body

    def submit(self, spans: Spans) -> None:
        """Rows ``body[start:stop]`` for each span, the next ones of the matrix."""
        if self._failed or not spans:
            return
        if self._out is None and not self._open(spans[0]):
            return
        assert self._out is not None
        if self._next_row + len(spans) > len(self._out):
            self._failed = True
            return
        self._queue.append((self._next_row, spans))
        self.batches += 1
        self._next_row += len(spans)
        self._pump()

    def rows(self) -> Matrix | None:
        """Every row submitted, once parsed; ``None`` if any was not a row of finite numbers
        of the first one's dimension (or the helper failed)."""
        if self._out is None or self._failed:
            return None
        assert self._body is not None
        while self._queue and not self._failed:
            self._collect(wait=False)
            if self._in_flight < _IN_FLIGHT:
                self._send(*self._queue.popleft())
                continue
            # The helper is busy: parse from the other end, so the two meet in the middle.
            first, spans = self._queue.pop()
            self._parser = self._parser or simdjson.Parser()
            if not parse_spans(self._body.map, spans, self._out[first:first + len(spans)],
                               self._parser):
                self._failed = True
        while self._in_flight and not self._failed:
            self._collect(wait=True)
        return None if self._failed else self._out[: self._next_row]

    def release(self) -> None:
        """Give the helper back, whatever happened; the matrix stays valid."""
        if self._released:
            return
        self._released = True
        try:
            while self._in_flight and not self._broken:
                self._collect(wait=True)
            if not self._broken and self._out is not None:
                self._conn.send(("close",))
        except OSError:
            self._broken = True
        if self._body is not None:
            self._body.close_fd()
        self._helper._returned(self._broken)

    # --- the exchange ------------------------------------------------------------------------
    def _open(self, first: tuple[int, int]) -> bool:
        """Size the matrix from the first row and send the helper both memory files."""
        if self._body is None or self._body.fd is None:  # the body is not in buffer()
            self._failed = True
            return False
        start, stop = first
        dimension = bytes(self._body.map[start:stop]).count(b",") + 1
        if stop - start <= 2:  # "[]": the exact path words the error
            self._failed = True
            return False
        # A row takes at least two bytes a number ("0,"), so this many rows fit in the body.
        rows = max(self._body_bytes // (2 * dimension), 1)
        out_fd = os.memfd_create("sessionspec-rows", os.MFD_CLOEXEC)
        try:
            os.ftruncate(out_fd, rows * dimension * 4)
            self._out_map = mmap.mmap(out_fd, rows * dimension * 4)
            self._out = np.frombuffer(self._out_map, dtype=np.float32).reshape(rows, dimension)
            self._conn.send(("open", len(self._body.map), rows, dimension))
            send_handle(self._conn, self._body.fd, self._pid)
            send_handle(self._conn, out_fd, self._pid)
        except OSError as exc:
            self._fail_broken(exc)
            return False
        finally:
            os.close(out_fd)
        return True

    def _pump(self) -> None:
        self._collect(wait=False)
        while self._queue and self._in_flight < _IN_FLIGHT and not self._failed:
            self._send(*self._queue.popleft())

    def _send(self, first: int, spans: Spans) -> None:
        try:
            self._conn.send(("rows", first, spans))
        except OSError as exc:
            self._fail_broken(exc)
            return
        self._in_flight += 1

    def _collect(self, *, wait: bool) -> None:
        try:
            while self._in_flight:
                if not self._conn.poll(_REPLY_TIMEOUT_S if wait else 0):
                    if wait:
                        raise TimeoutError("no answer from the row helper")
                    return
                ok = self._conn.recv()
                self._in_flight -= 1
                if not ok:
                    self._failed = True
                self.helped += 1
                self._helper.batches_parsed += 1
                if wait:
                    return
        except (OSError, EOFError) as exc:
            self._fail_broken(exc)

    def _fail_broken(self, exc: BaseException) -> None:
        log.warning("row helper failed (%s); parsing in the server", exc)
        self._failed = self._broken = True
        self._in_flight = 0


# --- the helper's side ------------------------------------------------------------------------
def serve(conn: Connection) -> None:
    """Answer batches until the server closes its end."""
    parser = simdjson.Parser()
    body: mmap.mmap | None = None
    out_map: mmap.mmap | None = None
    out: Matrix | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "open":
            _, size, rows, dimension = message
            body_fd, out_fd = recv_handle(conn), recv_handle(conn)
            try:
                body = mmap.mmap(body_fd, size, prot=mmap.PROT_READ)
                out_map = mmap.mmap(out_fd, rows * dimension * 4)
            finally:
                os.close(body_fd)
                os.close(out_fd)
            out = np.frombuffer(out_map, dtype=np.float32).reshape(rows, dimension)
        elif message[0] == "rows":
            _, first, spans = message
            ok = (body is not None and out is not None
                  and parse_spans(body, spans, out[first:first + len(spans)], parser))
            conn.send(ok)
        elif message[0] == "close":
            out = None
            for held in (body, out_map):
                if held is not None:
                    held.close()
            body = out_map = None


if __name__ == "__main__":
    # It stops when the server's end closes; Ctrl-C in the server's terminal is the server's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Connection(int(sys.argv[1])))
