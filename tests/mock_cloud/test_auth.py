"""Tokens, project headers, expiry and isolation between projects."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_cloud.server import ServerThread, running_server
from tests.mock_cloud.conftest import Cloud, assert_error, make_docs, settings_for


def test_token_for_good_credentials(cloud: Cloud) -> None:
    reply = cloud.http.post("/auth/token", json={"projectId": "alpha",
                                                 "projectKey": "alpha-key"})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"token", "expiresIn"} and body["expiresIn"] == 3600


@pytest.mark.parametrize("body, status, fragment", [
    ({"projectId": "alpha", "projectKey": "wrong"}, 401, "projectKey"),
    ({"projectId": "nobody", "projectKey": "alpha-key"}, 401, "projectId"),
    ({"projectId": "beta", "projectKey": "alpha-key"}, 401, "projectKey"),
    ({"projectId": "alpha"}, 400, "projectKey"),
    ({"projectKey": "alpha-key"}, 400, "projectId"),
    ({"projectId": 5, "projectKey": "alpha-key"}, 400, "projectId"),
    ({"projectId": "", "projectKey": "x"}, 400, "projectId"),
])
def test_bad_credentials(cloud: Cloud, body: dict[str, object], status: int,
                         fragment: str) -> None:
    assert_error(cloud.http.post("/auth/token", json=body), status, fragment)


def test_malformed_token_request(cloud: Cloud) -> None:
    assert_error(cloud.http.post("/auth/token", content=b"{oops",
                                 headers={"Content-Type": "application/json"}), 400)


def test_index_calls_need_a_bearer_token_and_the_project_header(cloud: Cloud) -> None:
    token = cloud.token("alpha")
    assert_error(cloud.http.get("/index/"), 401, "Authorization")
    assert_error(cloud.http.get("/index/", headers={"X-Project-Id": "alpha"}), 401, "Bearer")
    assert_error(cloud.http.get("/index/", headers={"Authorization": f"Bearer {token}"}), 401,
                 "X-Project-Id")
    assert_error(cloud.http.get("/index/", headers={"Authorization": f"Bearer {token}",
                                                    "X-Project-Id": "beta"}), 403,
                 "X-Project-Id")
    for bad in ("garbage", token[:-2] + "xx", token.replace(".", ".1", 1), "a.b.c.d"):
        assert_error(cloud.http.get("/index/", headers={"Authorization": f"Bearer {bad}",
                                                        "X-Project-Id": "alpha"}), 401)
    assert_error(cloud.http.get("/index/", headers={"Authorization": f"Basic {token}",
                                                    "X-Project-Id": "alpha"}), 401)


def test_changing_a_key_revokes_its_tokens(cloud: Cloud) -> None:
    old = cloud.token("alpha")
    headers = {"Authorization": f"Bearer {old}", "X-Project-Id": "alpha"}
    assert cloud.http.get("/index/", headers=headers).status_code == 200
    cloud.control("POST", "/projects", json={"projectId": "alpha", "projectKey": "rotated"})
    assert_error(cloud.http.get("/index/", headers=headers), 401, "invalid token")
    cloud.reset()  # back to the keys the server started with
    assert cloud.http.get("/index/", headers=headers).status_code == 200


def test_projects_never_see_or_change_each_other(cloud: Cloud) -> None:
    cloud.push("shared", make_docs(3), project="alpha")
    cloud.push("only-alpha", make_docs(1), project="alpha")
    assert cloud.call("GET", "/index/", project="beta").json() == []
    assert_error(cloud.call("GET", "/index/shared", project="beta"), 404)
    assert_error(cloud.call("GET", "/index/shared/url", project="beta"), 404)
    assert_error(cloud.call("GET", "/index/shared/docs", project="beta"), 404)
    assert_error(cloud.call("POST", "/index/shared/docs", project="beta",
                            json={"docs": make_docs(1)}), 404)
    assert_error(cloud.call("DELETE", "/index/shared/docs", project="beta",
                            json={"docIds": ["d0"]}), 404)
    assert_error(cloud.call("DELETE", "/index/shared", project="beta"), 404)
    # beta's index of the same name is its own
    cloud.push("shared", make_docs(1, seed=4), project="beta")
    assert cloud.call("GET", "/index/shared", project="beta").json()["document_count"] == 1
    assert cloud.call("GET", "/index/shared", project="alpha").json()["document_count"] == 3
    state = cloud.state()["projects"]
    assert set(state["alpha"]["indexes"]) == {"shared", "only-alpha"}
    assert set(state["beta"]["indexes"]) == {"shared"}


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    settings = settings_for(Path(tmp_path_factory.mktemp("short")), token_ttl_s=2.0)
    with running_server(settings) as running:
        yield running


def test_tokens_expire(short_lived: ServerThread) -> None:
    cloud = Cloud(short_lived)
    try:
        reply = cloud.http.post("/auth/token", json={"projectId": "alpha",
                                                     "projectKey": "alpha-key"})
        assert reply.json()["expiresIn"] == 2
        headers = {"Authorization": f"Bearer {reply.json()['token']}", "X-Project-Id": "alpha"}
        assert cloud.http.get("/index/", headers=headers).status_code == 200
        time.sleep(2.1)
        assert_error(cloud.http.get("/index/", headers=headers), 401, "expired")
    finally:
        cloud.close()
