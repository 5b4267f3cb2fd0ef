"""Work done after a change has been answered: building the new version's download files and
checkpointing the SQLite WAL, one task at a time on a single thread.

A real cloud builds an index after a push too (the ``building`` job state); doing it here
means a client that resumes right after pushing finds the files (nearly) ready, and a push
is not slowed by copying its WAL pages into the database file.
"""

import logging
import queue
import threading
from collections.abc import Callable, Hashable

log = logging.getLogger("mock_cloud")


class Background:
    def __init__(self) -> None:
        self._queue: queue.Queue[Hashable | None] = queue.Queue()
        self._tasks: dict[Hashable, Callable[[], object]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="mock-cloud-background",
                                        daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, task: Callable[[], object]) -> None:
        """Run ``task`` soon; a task still queued under the same key is replaced by it."""
        with self._lock:
            queued = key in self._tasks
            self._tasks[key] = task
            self._idle.clear()
        if not queued:
            self._queue.put(key)

    def _run(self) -> None:
        while (key := self._queue.get()) is not None:
            with self._lock:
                task = self._tasks.pop(key, None)
            try:
                if task is not None:
                    task()
            except Exception:  # a failed build is rebuilt on demand at download time
                log.debug("background task %r failed", key, exc_info=True)
            with self._lock:
                if not self._tasks:
                    self._idle.set()

    def drain(self, timeout_s: float | None = None) -> bool:
        """Drop queued tasks and wait for the running one, if any."""
        with self._lock:
            self._tasks.clear()
        return self.wait_idle(timeout_s)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        return self._idle.wait(timeout_s)

    def close(self, timeout_s: float = 60) -> None:
        with self._lock:
            self._tasks.clear()
        self._queue.put(None)
        self._thread.join(timeout_s)
