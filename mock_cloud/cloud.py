"""One mock cloud's state: the store, the download cache, signatures, the request log,
telemetry and injected faults (moto's "backend": no HTTP here)."""

import shutil
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_cloud.background import Background
from mock_cloud.downloads import DownloadCache
from mock_cloud.faults import Faults
from mock_cloud.requestlog import RequestLog
from mock_cloud.settings import Settings
from mock_cloud.signing import Signer
from mock_cloud.store import IndexRecord, Store
from protocol.documents import StoredDocument
from protocol.rowhelper import RowHelper
from protocol.vectors import Matrix

# A build waits at most this long for the answer to go out (a client that hangs up never
# gets it), then starts anyway.
ANSWER_WAIT_S = 10.0


@dataclass
class Telemetry:
    """Events the SDKs post to ``I/telemetry``: kept so tests can see them, never acted on."""

    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, project: str, events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.events.extend({"project": project, "event": e} for e in events)

    def list(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    def clear(self) -> None:
        with self.lock:
            self.events.clear()


class MockCloud:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.data_dir, auto_checkpoint=False)
        self.background = Background()
        for project, key in settings.projects.items():
            self.store.upsert_project(project, key)
        self.signer = Signer(settings.secret)
        self.downloads = DownloadCache(settings.data_dir / "cache", self.store)
        self.uploads_dir: Path = settings.data_dir / "uploads"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.log = RequestLog()
        self.faults = Faults()
        self.telemetry = Telemetry()
        # Started by the first large push, or at once by start_helpers().
        self.row_helper = RowHelper()

    def start_helpers(self) -> None:
        """Start the push parser's helper process now rather than on the first large push."""
        self.row_helper.start()

    def upload_path(self, job_id: str) -> Path:
        return self.uploads_dir / f"{job_id}.bin"

    def changed(self, project: str, name: str,
                stored: tuple[IndexRecord, Sequence[StoredDocument], Matrix] | None = None,
                after: threading.Event | None = None) -> None:
        """An index changed (or appeared): checkpoint, and prepare its download files, from
        ``stored`` (the record, documents and vectors just written) when given.

        The work is queued at once (so ``/_mock/settle`` waits for it) but starts only once
        ``after`` is set, by the change's answer having been sent: encoding holds the GIL for
        seconds at 100k documents, and the answer would wait for it.
        """
        def build() -> None:
            if after is not None:
                after.wait(ANSWER_WAIT_S)
            if stored is None:
                self.downloads.ensure(project, name)
            else:
                self.downloads.install(*stored)

        if self.settings.prebuild_downloads:
            self.background.submit(("build", project, name), build)
        self.background.submit("checkpoint", self.store.checkpoint)

    def reset(self) -> None:
        """Back to the state at start: no indexes, jobs, logs or faults; the projects that
        the settings name (and only those)."""
        self.background.drain()
        self.store.reset(dict(self.settings.projects))
        self.downloads.clear()
        shutil.rmtree(self.uploads_dir, ignore_errors=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.log.clear()
        self.faults.clear()
        self.telemetry.clear()

    def close(self) -> None:
        self.row_helper.close()
        self.background.close()
        self.store.close()
