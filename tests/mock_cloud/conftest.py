"""Shared fixtures: a real uvicorn server on 127.0.0.1 with a real SQLite file, and helpers
to call it as a client would (token, headers, push bodies) and as a test would (/_mock)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from mock_cloud.server import ServerThread, running_server
from mock_cloud.settings import Settings

PROJECTS = {"alpha": "alpha-key", "beta": "beta-key"}
CONTROL_KEY = "test-control-key"
SAMPLES = Path(__file__).resolve().parent.parent / "data"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def make_docs(n: int, dim: int = 4, seed: int = 0, prefix: str = "d") -> list[dict[str, Any]]:
    """Documents with float32-exact embeddings (they survive JSON and float32 storage)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return [{"id": f"{prefix}{i}", "text": f"text {i}", "metadata": {"k": str(i)},
             "payload": None, "embedding": [float(x) for x in vectors[i]]} for i in range(n)]


def push_body(name: str, docs: list[dict[str, Any]], model_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"indexName": name, "docs": docs}
    if model_id is not None:
        body["modelId"] = model_id
    return orjson.dumps(body)


class Cloud:
    """A test's handle on one running mock cloud."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=60)
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    # as a client
    def token(self, project: str = "alpha", key: str | None = None) -> str:
        if key is None and project in self._tokens:
            return self._tokens[project]
        reply = self.http.post("/auth/token", json={
            "projectId": project, "projectKey": key or PROJECTS[project]})
        assert reply.status_code == 200, reply.text
        token: str = reply.json()["token"]
        if key is None:
            self._tokens[project] = token
        return token

    def headers(self, project: str = "alpha") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(project)}", "X-Project-Id": project}

    def call(self, method: str, path: str, project: str = "alpha", **kwargs: Any,
             ) -> httpx.Response:
        headers = {**self.headers(project), **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def push(self, name: str, docs: list[dict[str, Any]], project: str = "alpha",
             model_id: str | None = None) -> httpx.Response:
        return self.call("POST", "/index/push", project, content=push_body(name, docs, model_id))

    # as a test
    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Control-Key": CONTROL_KEY, **kwargs.pop("headers", {})}
        return self.http.request(method, f"/_mock{path}", headers=headers, **kwargs)

    def state(self) -> dict[str, Any]:
        reply = self.control("GET", "/state")
        assert reply.status_code == 200, reply.text
        state: dict[str, Any] = reply.json()
        return state

    def requests(self, since: int | None = None) -> list[dict[str, Any]]:
        params = {} if since is None else {"since": since}
        entries: list[dict[str, Any]] = self.control("GET", "/requests", params=params).json()
        return entries

    def last_seq(self) -> int:
        entries = self.requests()
        return entries[-1]["seq"] if entries else 0

    def reset(self) -> None:
        assert self.control("POST", "/reset").status_code == 200


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {"projects": dict(PROJECTS), "control_key": CONTROL_KEY}
    fields.update(overrides)
    return Settings(data_dir, **fields)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with running_server(settings_for(tmp_path_factory.mktemp("cloud"))) as running:
        yield running


@pytest.fixture
def cloud(server: ServerThread) -> Iterator[Cloud]:
    """The module's server, reset to its starting state for this test."""
    handle = Cloud(server)
    handle.reset()
    yield handle
    handle.close()


def assert_error(reply: httpx.Response, status: int | tuple[int, ...], *fragments: str) -> None:
    """A JSON ``{"error": ...}`` reply with that status whose message names ``fragments``."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert reply.status_code in statuses, (reply.status_code, reply.text)
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    body = reply.json()
    assert set(body) == {"error"}, body
    for fragment in fragments:
        assert fragment in body["error"], (fragment, body["error"])
