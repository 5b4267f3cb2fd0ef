"""A real mock cloud on 127.0.0.1 with a real SQLite file, shared by the integration tests.

Each test gets a project of its own through the control API, so tests never see each other's
indexes."""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mock_cloud.server import ServerProcess, running_server_process
from mock_cloud.settings import Settings
from reference import Client

CONTROL_KEY = "integration-control-key"


@dataclass
class Project:
    id: str
    key: str
    auth_url: str
    index_url: str
    base_url: str

    def client(self, key: str | None = None) -> Client:
        return Client(self.id, key or self.key, auth_url=self.auth_url, index_url=self.index_url)

    def env(self) -> dict[str, str]:
        return {
            "MOSS_AUTH_URL": self.auth_url,
            "MOSS_INDEX_URL": self.index_url,
            "MOSS_PROJECT_ID": self.id,
            "MOSS_PROJECT_KEY": self.key,
        }

    def state(self) -> dict:
        response = httpx.get(f"{self.base_url}/_mock/state", headers=_control())
        response.raise_for_status()
        return response.json()["projects"].get(self.id, {})

    def overwrite_vector(self, index: str, doc_id: str, vector: list[float]) -> None:
        response = httpx.put(
            f"{self.base_url}/_mock/indexes/{self.id}/{index}/vectors/{doc_id}",
            json={"embedding": vector},
            headers=_control(),
        )
        response.raise_for_status()


def _control() -> dict[str, str]:
    return {"X-Control-Key": CONTROL_KEY}


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # A child process, because the published SDK blocks the GIL while it waits on some calls.
    data_dir: Path = tmp_path_factory.mktemp("cloud")
    with running_server_process(Settings(data_dir, {}, CONTROL_KEY)) as server:
        yield server


def new_project(cloud: ServerProcess) -> Project:
    """A project of its own, created through the control API."""
    pid, key = f"proj-{secrets.token_hex(4)}", secrets.token_hex(8)
    response = httpx.post(
        f"{cloud.base_url}/_mock/projects",
        json={"projectId": pid, "projectKey": key},
        headers=_control(),
    )
    response.raise_for_status()
    return Project(pid, key, cloud.auth_url, cloud.index_url, cloud.base_url)


@pytest.fixture
def project(cloud: ServerProcess) -> Project:
    return new_project(cloud)
