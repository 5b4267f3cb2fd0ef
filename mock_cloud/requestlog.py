"""The in-memory log of requests served, read back through ``GET /_mock/requests``."""

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    time: float  # time.monotonic() when the request arrived
    method: str
    route: str  # the matched route template, e.g. /index/{name}/url; the path if none matched
    path: str
    project: str | None
    status: int
    body_bytes: int
    response_bytes: int
    duration_ms: float


class RequestLog:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()
        # Sequence numbers keep growing across clear() so a reader's `since` stays meaningful.
        self._seq = 0

    def record(self, *, started: float, method: str, route: str, path: str,
               project: str | None, status: int, body_bytes: int,
               response_bytes: int = 0) -> LogEntry:
        with self._lock:
            self._seq += 1
            entry = LogEntry(self._seq, started, method, route, path, project, status,
                             body_bytes, response_bytes,
                             round((time.monotonic() - started) * 1000, 3))
            self._entries.append(entry)
            return entry

    def entries(self, since: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self._entries if since is None or e.seq > since]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
