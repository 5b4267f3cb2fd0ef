"""The suite's view of the mock cloud: typed helpers over the control API, and the suite run
against an already running cloud (``--cloud-url``)."""

import os
import subprocess
import sys

import httpx
import pytest

from conformance.cloud import Cloud, CloudControlError, local_cloud
from conformance.vectors import checksum


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with local_cloud(tmp_path_factory.mktemp("cloud"), in_thread=True) as started:
        yield started


def push(cloud: Cloud, project, name: str, vectors: dict[str, list[float]]) -> None:
    token = httpx.post(
        cloud.auth_url, json={"projectId": project.id, "projectKey": project.key}
    ).json()["token"]
    docs = [{"id": k, "text": k, "metadata": None, "embedding": v} for k, v in vectors.items()]
    reply = httpx.post(
        cloud.index_url + "/push",
        json={"indexName": name, "docs": docs},
        headers={"Authorization": f"Bearer {token}", "X-Project-Id": project.id},
    )
    reply.raise_for_status()


def test_projects_state_and_vectors(cloud):
    project = cloud.add_project()
    assert cloud.state(project) == {}
    mark = cloud.log_mark()
    push(cloud, project, "faq", {"a": [1.0, 0.0], "b": [0.0, 1.0]})
    stored = cloud.index(project, "faq")
    assert stored is not None
    assert (stored.doc_ids, stored.dimension, stored.model_id) == (["a", "b"], 2, "custom")
    assert stored.checksums == {"a": checksum([1.0, 0.0]), "b": checksum([0.0, 1.0])}

    cloud.overwrite_vector(project.id, "faq", "b", [0.5, 0.5])
    changed = cloud.index(project, "faq")
    assert changed.checksums["b"] == checksum([0.5, 0.5])
    assert changed.updated_at != stored.updated_at

    routes = [(e.method, e.route) for e in cloud.requests(since=mark, project=project)]
    assert routes == [("POST", "/auth/token"), ("POST", "/index/push")]
    assert cloud.requests(since=mark, project="someone-else") == [
        e for e in cloud.requests(since=mark) if e.project is None
    ]
    assert cloud.log_mark() > mark


def test_faults(cloud):
    cloud.fault("/auth/token", method="POST", count=1, status=503)
    assert httpx.post(cloud.auth_url, json={"projectId": "x", "projectKey": "y"}).status_code == 503
    assert httpx.post(cloud.auth_url, json={"projectId": "x", "projectKey": "y"}).status_code != 503
    cloud.fault("/auth/token", count=5)
    cloud.clear_faults()
    assert httpx.post(cloud.auth_url, json={"projectId": "x", "projectKey": "y"}).status_code != 503


def test_wrong_control_key_is_explained(cloud):
    wrong = Cloud(cloud.base_url, "not-the-key")
    with pytest.raises(CloudControlError, match="control-key"):
        wrong.add_project()
    wrong.close()


def test_suite_against_running_cloud(cloud, tmp_path):
    """``pytest --pyargs conformance.suite`` from another directory, on a cloud started apart."""
    key = cloud._http.headers["X-Control-Key"]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "SESSIONSPEC_CONTROL_KEY": key}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "sessionspec", "-p", "no:cacheprovider",
         "--pyargs", "conformance.suite", "-k", "test_push_creates or test_wrong_key",
         "--target", "reference", "--cloud-url", cloud.base_url, "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
