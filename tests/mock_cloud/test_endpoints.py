"""Every endpoint of PROTOCOL.md over HTTP, against a real server and SQLite file."""

import httpx
import numpy as np
import orjson

from protocol import decode_artifact, decode_documents
from tests.mock_cloud.conftest import Cloud, assert_error, make_docs, sample


def test_push_then_read_back_as_the_published_sdk_does(cloud: Cloud) -> None:
    assert_error(cloud.call("GET", "/index/demo"), 404, "demo")
    reply = cloud.call("POST", "/index/push", content=sample("session_push_demo.request.json"))
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "completed" and reply.json()["jobId"]

    info = cloud.call("GET", "/index/demo").json()
    assert {k: info[k] for k in ("name", "document_count", "model_id", "version")} == {
        "name": "demo", "document_count": 3, "model_id": "custom", "version": "1"}
    assert info["created_at"] == info["updated_at"]
    assert cloud.call("GET", "/index/").json() == [info]
    assert cloud.call("GET", "/index").json() == [info]

    urls = cloud.call("GET", "/index/demo/url").json()
    assert set(urls) == {"indexUrl", "dataUrl"}
    # presigned: fetched with no auth header at all, bytes exactly those the SDK accepted
    assert httpx.get(urls["indexUrl"]).content == sample("index_artifact_demo.moss")
    assert httpx.get(urls["dataUrl"]).content == sample("index_docs_demo.json")


def test_get_docs_applies_doc_ids(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(4))
    every = cloud.call("GET", "/index/idx/docs").json()
    assert [d["id"] for d in every] == ["d0", "d1", "d2", "d3"]
    assert set(every[0]) == {"id", "text", "metadata", "payload"}
    some = cloud.call("GET", "/index/idx/docs", params={"docIds": "d2,d0,zz"}).json()
    assert [d["id"] for d in some] == ["d0", "d2"]
    assert_error(cloud.call("GET", "/index/nope/docs"), 404, "nope")


def test_add_and_delete_docs_are_jobs_that_complete(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(2))
    before = cloud.call("GET", "/index/idx").json()
    new = make_docs(3, seed=5)
    new[0]["text"] = "replaced"
    reply = cloud.call("POST", "/index/idx/docs", json={"docs": new, "upsert": True})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["status"], body["added"], body["updated"]) == ("completed", 1, 2)
    status = cloud.call("GET", f"/index/{body['jobId']}/status").json()
    assert status["id"] == body["jobId"] and status["status"] == "completed"
    assert status["progress"] == 1.0 and status["created_at"]
    after = cloud.call("GET", "/index/idx").json()
    assert after["document_count"] == 3 and after["updated_at"] > before["updated_at"]
    assert cloud.call("GET", "/index/idx/docs", params={"docIds": "d0"}).json()[0]["text"] == \
        "replaced"

    reply = cloud.call("DELETE", "/index/idx/docs", json={"docIds": ["d0", "unknown"]})
    assert reply.status_code == 200 and reply.json()["deleted"] == 1
    assert cloud.call("GET", "/index/idx").json()["document_count"] == 2
    assert cloud.state()["projects"]["alpha"]["indexes"]["idx"]["doc_ids"] == ["d1", "d2"]


def test_downloads_follow_changes(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(2))
    first = cloud.call("GET", "/index/idx/url").json()
    extra = make_docs(1, seed=3, prefix="x")
    cloud.call("POST", "/index/idx/docs", json={"docs": extra})
    second = cloud.call("GET", "/index/idx/url").json()
    assert second["indexUrl"] != first["indexUrl"]
    artifact = decode_artifact(httpx.get(second["indexUrl"]).content)
    assert artifact.doc_ids == ["d0", "d1", "x0"]
    assert artifact.version == "2"
    assert artifact.embeddings[2].tolist() == extra[0]["embedding"]
    docs = decode_documents(httpx.get(second["dataUrl"]).content)
    assert [d.id for d in docs] == ["d0", "d1", "x0"]


def test_downloads_are_built_once_per_version(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(3))
    urls = cloud.call("GET", "/index/idx/url").json()
    httpx.get(urls["indexUrl"])
    cache = cloud.server.settings.data_dir / "cache"
    files = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert len(files) == 2
    for _ in range(3):
        assert cloud.call("GET", "/index/idx/url").json()["indexUrl"].split("?")[0] == \
            urls["indexUrl"].split("?")[0]
        httpx.get(urls["indexUrl"]).raise_for_status()
        httpx.get(urls["dataUrl"]).raise_for_status()
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == files
    # a new version evicts the old files
    cloud.push("idx", make_docs(2))
    cloud.call("GET", "/index/idx/url")
    assert len([p for p in cache.rglob("*") if p.is_file()]) == 2
    assert not any(p.exists() for p in files)
    assert_error(httpx.get(urls["indexUrl"]), 404, "gone")


def test_delete_index(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(2))
    reply = cloud.call("DELETE", "/index/idx")
    assert reply.status_code == 200 and reply.json() is True
    assert_error(cloud.call("GET", "/index/idx"), 404)
    assert_error(cloud.call("DELETE", "/index/idx"), 404)
    assert cloud.call("GET", "/index/").json() == []


def test_create_index_flow_with_presigned_upload(cloud: Cloud) -> None:
    blob = sample("create_index_upload_mg.bin")
    init = cloud.call("POST", "/index/init", json={
        "indexName": "made", "modelId": "custom", "docCount": 2, "dimension": 4})
    assert init.status_code == 200, init.text
    job_id, url = init.json()["jobId"], init.json()["presignedUrl"]
    assert cloud.call("GET", f"/index/{job_id}/status").json()["status"] == "pending_upload"
    assert_error(cloud.call("POST", f"/index/{job_id}/confirm", json={}), 409, "uploaded")
    put = httpx.put(url, content=blob, headers={"Content-Type": "application/octet-stream"})
    assert put.status_code == 200, put.text
    confirm = cloud.call("POST", f"/index/{job_id}/confirm", json={})
    assert confirm.json() == {"jobId": job_id, "status": "completed", "indexName": "made",
                              "docCount": 2}
    status = cloud.call("GET", f"/index/{job_id}/status").json()
    assert status["status"] == "completed" and status["completed_at"]
    assert cloud.call("GET", "/index/made").json()["document_count"] == 2
    assert [d["id"] for d in cloud.call("GET", "/index/made/docs").json()] == ["m0", "m1"]
    # the URL was for one upload only
    assert_error(httpx.put(url, content=blob), 409, "completed")


def test_create_index_for_a_built_in_model_fails_its_job(cloud: Cloud) -> None:
    from protocol import StoredDocument, UploadBlob, encode_upload

    blob = encode_upload(UploadBlob([StoredDocument("a", "t")], np.zeros((1, 0), np.float32)))
    init = cloud.call("POST", "/index/init", json={
        "indexName": "built", "modelId": "moss-minilm", "docCount": 1, "dimension": 0}).json()
    assert httpx.put(init["presignedUrl"], content=blob).status_code == 200
    confirm = cloud.call("POST", f"/index/{init['jobId']}/confirm", json={}).json()
    assert confirm["status"] == "failed"
    status = cloud.call("GET", f"/index/{init['jobId']}/status").json()
    assert status["status"] == "failed" and "never computes embeddings" in status["error_message"]
    assert_error(cloud.call("GET", "/index/built"), 404)


def test_jobs_are_per_project(cloud: Cloud) -> None:
    job = cloud.push("idx", make_docs(1)).json()["jobId"]
    assert cloud.call("GET", f"/index/{job}/status").status_code == 200
    assert_error(cloud.call("GET", f"/index/{job}/status", project="beta"), 404)
    assert_error(cloud.call("GET", "/index/job_unknown/status"), 404)


def test_telemetry_accepts_one_event_or_many_and_is_logged(cloud: Cloud) -> None:
    seq = cloud.last_seq()
    one = cloud.call("POST", "/index/telemetry", json={"eventType": "session.query"})
    many = cloud.call("POST", "/index/telemetry", json=[{"eventType": "a"}, {"eventType": "b"}])
    assert one.status_code == many.status_code == 200
    # the published SDK sends telemetry with its token but no X-Project-Id
    bare = cloud.http.post("/index/telemetry", json={"eventType": "c"},
                           headers={"Authorization": f"Bearer {cloud.token()}"})
    assert bare.status_code == 200
    assert_error(cloud.call("POST", "/index/telemetry", json=[1, 2]), 400, "event")
    assert_error(cloud.call("POST", "/index/telemetry", content=b"{nope"), 400, "JSON")
    events = cloud.control("GET", "/telemetry").json()
    assert [e["event"]["eventType"] for e in events] == ["session.query", "a", "b", "c"]
    logged = [e for e in cloud.requests(seq) if e["route"] == "/index/telemetry"]
    assert len(logged) == 5 and all(e["project"] == "alpha" for e in logged)


def test_routes_named_like_literals_still_reach_indexes(cloud: Cloud) -> None:
    for name in ("push", "init", "telemetry", "status"):
        assert cloud.push(name, make_docs(1)).status_code == 200
        assert cloud.call("GET", f"/index/{name}").json()["name"] == name
        assert cloud.call("GET", f"/index/{name}/docs").status_code == 200
    assert {i["name"] for i in cloud.call("GET", "/index/").json()} == {
        "push", "init", "telemetry", "status"}


def test_names_with_spaces_and_unicode_round_trip(cloud: Cloud) -> None:
    name = "my index · ünïcode?#%"
    assert cloud.push(name, make_docs(2)).status_code == 200
    path = "/index/" + name.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    assert cloud.call("GET", path).json()["name"] == name
    urls = cloud.call("GET", path + "/url").json()
    assert decode_artifact(httpx.get(urls["indexUrl"]).content).name == name


def test_unknown_routes_and_methods_answer_json(cloud: Cloud) -> None:
    assert_error(cloud.http.get("/nope"), 404, "/nope")
    assert_error(cloud.http.get("/index/a/b/c"), 404)
    assert_error(cloud.call("PATCH", "/index/idx"), 405, "PATCH")
    assert_error(cloud.call("GET", "/index/push/url/extra"), 404)


def test_responses_are_compact_json_with_snake_case_index_info(cloud: Cloud) -> None:
    cloud.push("idx", make_docs(1))
    raw = cloud.call("GET", "/index/idx")
    assert raw.headers["content-type"] == "application/json"
    info = orjson.loads(raw.content)
    assert {"name", "document_count", "model_id", "created_at", "updated_at"} <= set(info)
    assert info["updated_at"].endswith("Z")


def test_bodies_of_several_megabytes_arrive_whole(cloud: Cloud) -> None:
    # Bodies from 1 MiB up are read into an anonymous map rather than a bytearray: the push
    # (streamed parse), a JSON body (add_docs) and an upload blob all go through it.
    from mock_cloud.bodies import _MAPPED_BYTES
    from protocol import StoredDocument, UploadBlob, encode_upload
    from protocol.push import PushBody, encode_push
    from protocol.rowhelper import MIN_BYTES

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3000, 128)).astype(np.float32)
    docs = [StoredDocument(f"d{i}", f"text {i}", {"k": str(i)}) for i in range(3000)]
    body = encode_push(PushBody("big", None, docs, vectors))
    assert len(body) > max(2 * _MAPPED_BYTES, MIN_BYTES)
    helper = cloud.server.app.state.cloud.row_helper
    parsed = helper.batches_parsed
    assert cloud.call("POST", "/index/push", content=body).status_code == 200
    assert helper.batches_parsed > parsed  # the push's rows went through the helper process
    cloud.control("POST", "/settle")
    artifact = decode_artifact(cloud.http.get(cloud.call("GET", "/index/big/url")
                                              .json()["indexUrl"]).content)
    assert artifact.embeddings.tobytes() == vectors.tobytes()
    assert artifact.doc_ids == [d.id for d in docs]

    more = [{"id": f"e{i}", "text": "t", "embedding": vectors[i].tolist()} for i in range(1500)]
    added = cloud.call("POST", "/index/big/docs", json={"docs": more})
    assert added.status_code == 200, added.text
    assert cloud.call("GET", "/index/big").json()["document_count"] == 4500

    blob = encode_upload(UploadBlob(docs, vectors))
    assert len(blob) > _MAPPED_BYTES
    init = cloud.call("POST", "/index/init", json={
        "indexName": "up", "modelId": "custom", "docCount": 3000, "dimension": 128}).json()
    assert httpx.put(init["presignedUrl"], content=blob).status_code == 200
    assert cloud.call("POST", f"/index/{init['jobId']}/confirm", json={}).json()["status"] == (
        "completed")
    assert cloud.call("GET", "/index/up").json()["document_count"] == 3000
