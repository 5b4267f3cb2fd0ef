"""The /_mock control API: reset, state, request log, projects, vector overwrite, faults."""

import asyncio
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import mock_cloud.cloud as cloud_module
from mock_cloud.server import running_server
from mock_cloud.settings import Settings
from mock_cloud.store import vector_checksum
from protocol import StoredDocument, decode_artifact
from tests.mock_cloud.conftest import PROJECTS, Cloud, assert_error, make_docs


def test_control_calls_need_the_control_key(cloud: Cloud) -> None:
    for method, path in [("GET", "/state"), ("POST", "/reset"), ("GET", "/requests"),
                         ("POST", "/projects"), ("POST", "/faults"),
                         ("POST", "/settle")]:
        assert_error(cloud.http.request(method, f"/_mock{path}"), 403, "X-Control-Key")
        assert_error(cloud.http.request(method, f"/_mock{path}",
                                        headers={"X-Control-Key": "wrong"}), 403)


def test_control_api_is_absent_without_a_key(tmp_path: Path) -> None:
    with running_server(Settings(tmp_path, dict(PROJECTS))) as server:
        reply = httpx.get(f"{server.base_url}/_mock/state",
                          headers={"X-Control-Key": "anything"})
        assert_error(reply, 404)


def test_state_lists_models_ids_and_vector_checksums(cloud: Cloud) -> None:
    docs = make_docs(3)
    cloud.push("idx", docs)
    cloud.push("other", make_docs(1, dim=2), project="beta", model_id="moss-minilm")
    state = cloud.state()["projects"]
    entry = state["alpha"]["indexes"]["idx"]
    assert entry["model_id"] == "custom" and entry["dimension"] == 4
    assert entry["doc_ids"] == ["d0", "d1", "d2"]
    assert entry["checksums"]["d1"] == vector_checksum(
        np.array(docs[1]["embedding"], "<f4").tobytes())
    assert entry["updated_at"] == cloud.call("GET", "/index/idx").json()["updated_at"]
    assert state["beta"]["indexes"]["other"]["model_id"] == "moss-minilm"


def test_settle_waits_for_work_after_a_change(cloud: Cloud) -> None:
    done = threading.Event()
    cloud.server.app.state.cloud.background.submit("slow", lambda: (time.sleep(0.3), done.set()))
    assert cloud.control("POST", "/settle", params={"timeout_s": 60}).json() == {"idle": True}
    assert done.is_set()
    cloud.push("idx", make_docs(50))
    cloud.control("POST", "/settle")
    built = sorted(p.name for p in (cloud.server.settings.data_dir / "cache").rglob("*.*"))
    assert [name.split(".", 1)[1] for name in built] == ["docs.json", "index.moss"]
    assert_error(cloud.control("POST", "/settle", params={"timeout_s": -1}), (400, 422),
                 "timeout_s")


def test_the_build_after_a_change_starts_once_the_answer_is_sent(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Encoding a large index holds the GIL for seconds; started before the answer went out, it
    # delayed a 100k push's answer by 1.6 s. Queued at once, so settling still waits for it.
    monkeypatch.setattr(cloud_module, "ANSWER_WAIT_S", 60)
    mock = cloud.server.app.state.cloud
    cache = cloud.server.settings.data_dir / "cache"

    def built() -> list[str]:
        return sorted(p.name.split(".", 1)[1] for p in cache.rglob("*.*"))

    mock.store.replace_index("alpha", "idx", None, [StoredDocument("a", "t")],
                             np.ones((1, 2), np.float32))
    answered = threading.Event()
    mock.changed("alpha", "idx", after=answered)
    assert not mock.background.wait_idle(0.3)  # queued, waiting for the answer
    assert built() == []
    answered.set()
    assert mock.background.wait_idle(30)
    assert built() == ["docs.json", "index.moss"]
    # Through HTTP, sending the answer is what lets the build start (well before 60 s).
    cloud.push("other", make_docs(3))
    assert mock.background.wait_idle(30)
    assert built() == ["docs.json", "docs.json", "index.moss", "index.moss"]


def test_reset_drops_indexes_jobs_and_logs_but_keeps_start_projects(cloud: Cloud) -> None:
    job = cloud.push("idx", make_docs(2)).json()["jobId"]
    cloud.control("POST", "/projects", json={"projectId": "gamma", "projectKey": "g"})
    cloud.control("POST", "/faults", json={"route": "/index/", "count": 5})
    cloud.reset()
    assert cloud.state() == {"projects": {p: {"indexes": {}} for p in PROJECTS}}
    assert cloud.requests() == []
    assert cloud.call("GET", "/index/").status_code == 200  # the fault is gone too
    assert_error(cloud.call("GET", f"/index/{job}/status"), 404)
    assert_error(cloud.http.post("/auth/token", json={"projectId": "gamma",
                                                      "projectKey": "g"}), 401)


def test_request_log(cloud: Cloud) -> None:
    cloud.token("alpha"), cloud.token("beta")
    start = cloud.last_seq()
    body = b'{"indexName": "idx", "docs": [{"id": "a", "text": "t", "embedding": [1.0]}]}'
    cloud.call("POST", "/index/push", content=body)
    cloud.call("GET", "/index/idx/url")
    cloud.call("GET", "/index/nope", project="beta")
    cloud.http.get("/index/idx", headers={"X-Project-Id": "alpha"})
    cloud.call("POST", "/index/telemetry", json={"eventType": "x"})
    entries = cloud.requests(start)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert all(e["seq"] > start for e in entries)
    summary = [(e["method"], e["route"], e["project"], e["status"]) for e in entries]
    assert summary[-5:] == [
        ("POST", "/index/push", "alpha", 200),
        ("GET", "/index/{name}/url", "alpha", 200),
        ("GET", "/index/{name}", "beta", 404),
        ("GET", "/index/{name}", "alpha", 401),
        ("POST", "/index/telemetry", "alpha", 200),
    ]
    push = next(e for e in entries if e["route"] == "/index/push")
    assert push["body_bytes"] == len(body) and push["path"] == "/index/push"
    assert isinstance(push["time"], float) and push["duration_ms"] >= 0
    # control calls themselves are not logged
    assert not any(e["path"].startswith("/_mock") for e in cloud.requests())
    assert cloud.requests(entries[-1]["seq"]) == []


def test_projects_added_at_run_time(cloud: Cloud) -> None:
    reply = cloud.control("POST", "/projects", json={"projectId": "gamma", "projectKey": "g"})
    assert reply.status_code == 200
    assert cloud.token("gamma", "g")
    assert_error(cloud.control("POST", "/projects", json={"projectId": "a/b",
                                                          "projectKey": "k"}), 400, "projectId")
    assert_error(cloud.control("POST", "/projects", json={"projectId": "x"}), 400, "projectKey")


def test_overwriting_a_vector_changes_what_clients_download(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(3))
    before = cloud.call("GET", "/index/idx").json()
    reply = cloud.control("PUT", "/indexes/alpha/idx/vectors/d1",
                          json={"embedding": [0.0, 0.0, 0.0, 2.5]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["updated_at"] > before["updated_at"]
    assert reply.json()["version"] == "2"
    state = cloud.state()["projects"]["alpha"]["indexes"]["idx"]
    assert state["checksums"]["d1"] == vector_checksum(np.array([0, 0, 0, 2.5], "<f4").tobytes())
    urls = cloud.call("GET", "/index/idx/url").json()
    artifact = decode_artifact(httpx.get(urls["indexUrl"]).content)
    assert artifact.embeddings[1].tolist() == [0.0, 0.0, 0.0, 2.5]
    assert_error(cloud.control("PUT", "/indexes/alpha/idx/vectors/zz",
                               json={"embedding": [1, 2, 3, 4]}), 404, "zz")
    assert_error(cloud.control("PUT", "/indexes/alpha/idx/vectors/d1",
                               json={"embedding": [1, 2]}), 400, "dimension")
    assert_error(cloud.control("PUT", "/indexes/beta/idx/vectors/d1",
                               json={"embedding": [1, 2, 3, 4]}), 404)


def test_faults_fail_the_next_calls_of_a_route(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(1))
    reply = cloud.control("POST", "/faults", json={"route": "/index/{name}/url", "count": 2,
                                                   "status": 503})
    assert reply.status_code == 200
    assert cloud.call("GET", "/index/idx").status_code == 200  # other routes unaffected
    assert_error(cloud.call("GET", "/index/idx/url"), 503, "injected")
    assert_error(cloud.call("GET", "/index/idx/url"), 503)
    assert cloud.call("GET", "/index/idx/url").status_code == 200
    log = [e for e in cloud.requests() if e["route"] == "/index/{name}/url"]
    assert [e["status"] for e in log] == [503, 503, 200]


def test_faults_by_path_and_method(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(1))
    cloud.control("POST", "/faults", json={"route": "/index/idx", "method": "delete",
                                           "status": 500})
    assert cloud.call("GET", "/index/idx").status_code == 200
    assert_error(cloud.call("DELETE", "/index/idx"), 500)
    assert cloud.call("DELETE", "/index/idx").status_code == 200
    cloud.control("POST", "/faults", json={"route": "/auth/token", "status": 401})
    assert_error(cloud.http.post("/auth/token", json={"projectId": "alpha",
                                                      "projectKey": "alpha-key"}), 401)


def test_faults_can_only_delay(cloud: Cloud) -> None:
    cloud.control("POST", "/faults", json={"route": "/index/", "status": None,
                                           "delay_s": 1.0})
    started = time.monotonic()
    assert cloud.call("GET", "/index/").status_code == 200
    assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    cloud.call("GET", "/index/")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("body, field", [
    ({"count": 1}, "route"),
    ({"route": "/x", "status": 200}, "status"),
    ({"route": "/x", "count": 0}, "count"),
    ({"route": "/x", "delay_s": -1}, "delay_s"),
    ({"route": "/x", "surprise": 1}, "surprise"),
])
def test_bad_fault_requests(cloud: Cloud, body: dict[str, object], field: str) -> None:
    assert_error(cloud.control("POST", "/faults", json=body), 400, field)


def test_query_validation_errors_are_json(cloud: Cloud) -> None:
    assert_error(cloud.control("GET", "/requests", params={"since": "soon"}), 400, "since")


def test_a_download_is_logged_before_its_client_has_all_of_it(cloud: Cloud) -> None:
    """A client that stops reading at Content-Length must find its request in the log: the
    suite marks the log right after a resume and counts what comes after as new calls."""
    cloud.push("idx", make_docs(300, dim=32))
    url = httpx.URL(cloud.call("GET", "/index/idx/url").json()["indexUrl"])
    app = cloud.server.app
    log = app.state.cloud.log
    mark = cloud.last_seq()
    seen: list[int] = []
    length = 0

    requested = False

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        nonlocal length
        if message["type"] == "http.response.start":
            length = int(dict(message["headers"])[b"content-length"])
        elif message["type"] == "http.response.body" and message.get("body"):
            seen.append(len(message["body"]))
            if sum(seen) >= length:  # what the client now holds is the whole file
                assert [e["route"] for e in log.entries(mark)] == ["/_blobs/{kind}/{blob_id}"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": url.path, "raw_path": url.raw_path,
             "query_string": url.query, "headers": [(b"host", url.host.encode())],
             "server": ("127.0.0.1", url.port), "client": ("127.0.0.1", 1), "root_path": ""}
    asyncio.run(app(scope, receive, send))
    assert sum(seen) == length > 0
