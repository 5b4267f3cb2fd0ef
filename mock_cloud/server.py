"""The mock cloud on a real socket: in a background thread, or in a child process.

The published SDK ``moss`` makes some blocking HTTP calls from native code without releasing
the GIL (``MossClient.session()`` is one), so it can never be answered by a server thread in
its own process: run it against a :class:`ServerProcess`. Python clients that release the
GIL while they wait (httpx, the reference SDK) work with either.
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import uvicorn
from fastapi import FastAPI

from mock_cloud.app import create_app
from mock_cloud.settings import Settings


class _Server:
    """What both kinds of server expose: where they listen, and start/stop as a context."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/auth/token"

    @property
    def index_url(self) -> str:
        return f"{self.base_url}/index"

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ServerThread(_Server):
    """uvicorn serving ``create_app(settings)`` on ``host``; ``port=0`` picks a free port.

    ``start()`` returns once the server accepts connections; ``stop()`` shuts it down and
    closes the store, so another server can open the same data dir afterwards.
    """

    def __init__(
        self, settings: Settings, host: str = "127.0.0.1", port: int = 0, app: FastAPI | None = None
    ) -> None:
        self.settings = settings
        self.app = app if app is not None else create_app(settings)
        self.host = host
        # Bound here, not by uvicorn, so that the port is known before the thread starts.
        self._socket = socket.create_server((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, name=f"mock-cloud:{self.port}", daemon=True
        )
        self._error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start(), which waits on this thread
            self._error = exc

    def start(self, timeout_s: float = 30) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"mock cloud failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"mock cloud not ready after {timeout_s} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()
        self.app.state.cloud.close()


@contextmanager
def running_server(
    settings: Settings, host: str = "127.0.0.1", port: int = 0
) -> Iterator[ServerThread]:
    """A started :class:`ServerThread`, stopped on exit."""
    with ServerThread(settings, host, port) as server:
        yield server


class ServerProcess(_Server):
    """``python -m mock_cloud.serve`` for ``settings`` in a child process, with the same
    ``base_url`` / ``auth_url`` / ``index_url`` / ``start`` / ``stop`` as ServerThread.

    The child's request log (one line per request) goes to ``log_path`` (default:
    ``server.log`` in the data dir).
    """

    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        program: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        # How to start the server: `sessionspec serve` works too (the bench uses it).
        self.program = list(program or [sys.executable, "-m", "mock_cloud.serve"])
        self.extra_args = list(extra_args)
        self.host = host
        self.port = port
        self.log_path = log_path or settings.data_dir / "server.log"
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def command(self) -> list[str]:
        s = self.settings
        args = [
            *self.program,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(s.data_dir),
            "--max-body-bytes",
            str(s.max_body_bytes),
            "--token-ttl",
            str(s.token_ttl_s),
            "--url-ttl",
            str(s.url_ttl_s),
        ]
        # "--option=value": a value starting with "-" (one random key in 64) is still a value.
        args += [f"--project={project}:{key}" for project, key in s.projects.items()]
        if s.control_key:
            args.append(f"--control-key={s.control_key}")
        return args + self.extra_args

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def start(self, timeout_s: float = 60) -> Self:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise TimeoutError(f"mock cloud process not ready after {timeout_s} s") from None
            if line is None:
                self.stop()
                raise RuntimeError(f"mock cloud process exited; see {self.log_path}")
            if line.startswith("export MOSS_INDEX_URL="):
                address = line.strip().removeprefix("export MOSS_INDEX_URL=http://")
                self.port = int(address.removesuffix("/index").rpartition(":")[2])
            if line.startswith("# mock cloud on"):
                return self

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM, then SIGKILL if it has not stopped in ``timeout_s``; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def running_server_process(
    settings: Settings, host: str = "127.0.0.1", port: int = 0
) -> Iterator[ServerProcess]:
    """A started :class:`ServerProcess`, stopped on exit."""
    with ServerProcess(settings, host, port) as server:
        yield server
