"""A throwaway mock cloud for benchmarks: a child process on 127.0.0.1 with one project."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mock_cloud.server import ServerProcess, running_server_process
from mock_cloud.settings import Settings

PROJECT, KEY = "bench", "bench-key"
CONTROL_KEY = "bench-control"


@contextmanager
def bench_cloud() -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory(prefix="sessionspec-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["HOME"] = str(home)  # the published SDK writes under $HOME/.moss
        settings = Settings(Path(tmp) / "data", {PROJECT: KEY}, CONTROL_KEY)
        with running_server_process(settings) as server:
            os.environ["MOSS_AUTH_URL"] = server.auth_url
            os.environ["MOSS_INDEX_URL"] = server.index_url
            yield server


def settle(server: ServerProcess) -> None:
    """Wait for the cloud's work after a push (building the download files), so that what
    follows times the client, not the cloud."""
    import httpx

    reply = httpx.post(f"{server.base_url}/_mock/settle", headers={"X-Control-Key": CONTROL_KEY},
                       params={"timeout_s": 600}, timeout=610)
    reply.raise_for_status()


def machine() -> dict[str, object]:
    import platform

    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count()}
