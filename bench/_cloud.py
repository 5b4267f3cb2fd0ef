"""A throwaway mock cloud for benchmarks: a child process on 127.0.0.1 with one project."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mock_cloud.server import ServerProcess, running_server_process
from mock_cloud.settings import Settings

PROJECT, KEY = "bench", "bench-key"


@contextmanager
def bench_cloud() -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory(prefix="sessionspec-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["HOME"] = str(home)  # the published SDK writes under $HOME/.moss
        with running_server_process(Settings(Path(tmp) / "data", {PROJECT: KEY}, None)) as server:
            os.environ["MOSS_AUTH_URL"] = server.auth_url
            os.environ["MOSS_INDEX_URL"] = server.index_url
            yield server


def machine() -> dict[str, object]:
    import platform

    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count()}
