"""Injected faults: the next N calls of a route fail with a status, or are delayed."""

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Fault:
    route: str  # a route template (/index/{name}/url) or a concrete path (/index/demo/url)
    method: str | None
    remaining: int
    status: int | None  # None: only delay, then serve normally
    delay_s: float

    def matches(self, method: str, route: str | None, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.route in (route, path)


class Faults:
    def __init__(self) -> None:
        self._pending: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(fault)

    def take(self, method: str, route: str | None, path: str) -> Fault | None:
        """The first pending fault for this call, used up by one."""
        with self._lock:
            for fault in self._pending:
                if fault.matches(method, route, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._pending.remove(fault)
                    return fault
            return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._pending]

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
